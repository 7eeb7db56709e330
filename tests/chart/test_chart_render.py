"""The chart renders, lints, rejects wrong values, and every pod is locked down.

Everything here runs the real helm binary; nothing needs a cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart.helm import (
    CHART,
    COMBINATIONS,
    DIGEST,
    container_env,
    documents,
    find,
    helm,
    pod_specs,
    template_text,
)
from tests.chart.nginx_conf import NGINX_CONF, NGINX_TLS_CONF, placeholders

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("render")
    return {
        name: documents(template_text(values, tmp=tmp).stdout)
        for name, values in COMBINATIONS.items()
    }


def test_helm_lint_strict_passes() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"cache": {"maxSize": "lots"}}, "cache.maxSize"),
        ({"operator": {"replicas": 0}}, "operator.replicas"),
        ({"operator": {"imag": {}}}, "imag"),
        ({"api": {"service": {"type": "Public"}}}, "api.service.type"),
        ({"worker": {"gpu": {"defaultVendor": "amd"}}}, "worker.gpu.defaultVendor"),
        ({"api": {"image": {"digest": "sha256:short"}}}, "digest"),
        ({"api": {"resources": {"requests": {"cpu": "a lot"}}}}, "api.resources"),
        ({"minio": {"enabled": False}}, "externalS3"),
        ({"mongodb": {"enabled": False}}, "externalMongo"),
        ({"externalMongo": {"uri": "postgres://x"}}, "externalMongo.uri"),
        ({"cache": {"tls": {"enabled": True}}}, "cache.tls.secretName"),
        ({"cache": {"signedUrls": {"ttlSeconds": 5}}}, "cache.signedUrls.ttlSeconds"),
    ],
)
def test_values_schema_rejects_wrong_values(
    values: dict[str, Any], complaint: str, tmp_path: Path
) -> None:
    result = template_text(values, tmp=tmp_path, check=False)
    assert result.returncode != 0
    assert complaint in result.stderr


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_every_pod_runs_non_root_read_only_without_privileges_and_with_resources(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    specs = list(pod_specs(rendered[combination]))
    assert specs
    for name, spec in specs:
        pod_ctx = spec["securityContext"]
        assert pod_ctx["runAsNonRoot"] is True, name
        assert pod_ctx["seccompProfile"]["type"] == "RuntimeDefault", name
        for c in spec.get("initContainers", []) + spec["containers"]:
            ctx = c["securityContext"]
            where = f"{name} container {c['name']}"
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in ctx["capabilities"], where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), where


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_no_container_is_given_one_variable_twice(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    """The API server refuses to patch a Deployment whose env lists a name twice (a
    ``helm upgrade`` fails), and which of the two a process reads is not said."""
    for name, spec in pod_specs(rendered[combination]):
        for c in spec.get("initContainers", []) + spec["containers"]:
            names = [e["name"] for e in c.get("env", [])]
            twice = sorted({n for n in names if names.count(n) > 1})
            assert not twice, f"{name} container {c['name']}: {twice}"


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_objects_carry_recommended_labels_and_selectors_omit_the_version(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    for d in rendered[combination]:
        labels = d["metadata"]["labels"]
        for key in ("name", "instance", "component", "version", "managed-by", "part-of"):
            assert f"app.kubernetes.io/{key}" in labels, (d["kind"], d["metadata"]["name"])
        selector = d.get("spec", {}).get("selector", {})
        match = selector.get("matchLabels", selector if d["kind"] == "Service" else {})
        assert "app.kubernetes.io/version" not in match
        assert "helm.sh/chart" not in match


def test_nginx_configmap_is_the_very_file_the_tests_run(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    cm = find(rendered["default"], "ConfigMap", "-cache")
    assert cm["data"]["nginx.conf.template"] == NGINX_CONF.read_text().rstrip("\n")


@pytest.mark.parametrize("combination", sorted(COMBINATIONS))
def test_cache_deployment_fills_every_nginx_placeholder(
    rendered: dict[str, list[dict[str, Any]]], combination: str
) -> None:
    deploy = find(rendered[combination], "Deployment", "-cache")
    env = {e["name"]: e for e in deploy["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert placeholders() <= set(env)
    assert env["NGINX_ENVSUBST_FILTER"]["value"] == "^KUBEVOD_"


def test_tls_listener_snippet_ships_verbatim_only_when_enabled(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["tls-telemetry-pinned"]
    cm = find(docs, "ConfigMap", "-cache")
    assert cm["data"]["tls.conf.template"] == NGINX_TLS_CONF.read_text().rstrip("\n")
    deploy = find(docs, "Deployment", "-cache")
    assert placeholders(NGINX_TLS_CONF.read_text()) <= set(container_env(deploy))
    volumes = {v["name"]: v for v in deploy["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "kubevod-tls"
    ports = {p["name"]: p["port"] for p in find(docs, "Service", "-cache")["spec"]["ports"]}
    assert ports == {"http": 80, "https": 443, "metrics": 9113}
    assert "tls.conf.template" not in find(rendered["default"], "ConfigMap", "-cache")["data"]


def test_media_origin_is_minio_public_s3_or_the_api(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    def origin(combination: str) -> tuple[str, ...]:
        deploy = find(rendered[combination], "Deployment", "-cache")
        env = container_env(deploy)
        keys = ("KUBEVOD_MEDIA_SCHEME", "KUBEVOD_MEDIA_HOST", "KUBEVOD_MEDIA_PORT")
        return (*(str(env[k]) for k in keys), str(env["KUBEVOD_MEDIA_PREFIX"]))

    assert origin("default") == ("http", "vod-kubevod-minio", "9000", "/kubevod/videos/")
    assert origin("external-s3-and-mongo") == (
        "https", "s3.example.com", "443", "/videos-prod/videos/",
    )  # fmt: skip
    assert origin("external-existing-secrets") == ("http", "vod-kubevod-api", "8000", "/media/")


def test_signed_urls_give_the_api_the_secret_and_the_link_lifetime(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    env = container_env(find(rendered["signed-urls"], "Deployment", "-api"))
    assert env["KUBEVOD_SIGNING_SECRET"]["secretKeyRef"]["key"] == "signing-secret"
    assert env["KUBEVOD_SIGNING_TTL_S"] == "21600"
    assert "KUBEVOD_SIGNING_TTL_S" not in container_env(
        find(rendered["default"], "Deployment", "-api")
    )
    shorter = {"cache": {"signedUrls": {"enabled": True, "ttlSeconds": 900}}}
    docs = documents(template_text(shorter, tmp=tmp_path).stdout)
    assert container_env(find(docs, "Deployment", "-api"))["KUBEVOD_SIGNING_TTL_S"] == "900"


def test_connection_urls_use_scoped_users_and_root_stays_with_the_servers(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    import base64

    def decoded(secret: dict[str, Any]) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}

    docs = rendered["default"]
    minio = decoded(find(docs, "Secret", "-minio"))
    mongo = decoded(find(docs, "Secret", "-mongodb"))
    urls = decoded(find(docs, "Secret", "-connections"))
    assert set(urls) == {"store-url", "catalog-url", "api-store-url", "api-catalog-url"}
    for key in ("root-password", "worker-password", "api-password"):
        assert len(minio[key]) >= 32 and len(mongo[key]) >= 32
    assert len({minio["root-password"], minio["worker-password"], minio["api-password"]}) == 3
    host = "vod-kubevod-minio:9000/kubevod?secure=false"
    assert urls["store-url"] == f"s3://kubevod-worker:{minio['worker-password']}@{host}"
    assert urls["api-store-url"] == f"s3://kubevod-api:{minio['api-password']}@{host}"
    db = "vod-kubevod-mongodb:27017/kubevod?authSource=kubevod"
    assert urls["catalog-url"] == f"mongodb://kubevod-worker:{mongo['worker-password']}@{db}"
    assert urls["api-catalog-url"] == f"mongodb://kubevod-api:{mongo['api-password']}@{db}"
    every_url = " ".join(urls.values())
    assert minio["root-password"] not in every_url and mongo["root-password"] not in every_url
    keep = find(docs, "Secret", "-minio")["metadata"]["annotations"]["helm.sh/resource-policy"]
    assert keep == "keep"
    # Root credentials reach only the MinIO and MongoDB pods themselves.
    for name, pod in pod_specs(docs):
        refs = {
            e["valueFrom"]["secretKeyRef"]["key"]
            for c in pod["containers"]
            for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})
        }
        if any(k.startswith("root-") for k in refs):
            assert name.endswith(("-minio", "-mongodb")), name


def test_api_reads_with_its_own_users_and_operator_with_the_workers(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["default"]
    api = container_env(find(docs, "Deployment", "-api"))
    operator = container_env(find(docs, "Deployment", "-operator"))
    assert api["KUBEVOD_STORE_URL"]["secretKeyRef"]["key"] == "api-store-url"
    assert api["KUBEVOD_CATALOG_URL"]["secretKeyRef"]["key"] == "api-catalog-url"
    assert operator["KUBEVOD_STORE_URL"]["secretKeyRef"]["key"] == "store-url"
    assert operator["KUBEVOD_CATALOG_URL"]["secretKeyRef"]["key"] == "catalog-url"


def test_without_scoped_mongo_users_the_catalog_urls_are_root_s(tmp_path: Path) -> None:
    import base64

    docs = documents(
        template_text({"mongodb": {"scopedUsers": {"enabled": False}}}, tmp=tmp_path).stdout
    )
    urls = {
        k: base64.b64decode(v).decode()
        for k, v in find(docs, "Secret", "-connections")["data"].items()
    }
    assert urls["catalog-url"].startswith("mongodb://kubevod:")
    assert urls["catalog-url"].endswith("?authSource=admin")
    sts = find(docs, "StatefulSet", "-mongodb")["spec"]["template"]["spec"]
    assert [c["name"] for c in sts["containers"]] == ["mongodb"]


def test_mongodb_users_get_read_write_on_the_catalog_database_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    sts = find(rendered["default"], "StatefulSet", "-mongodb")["spec"]["template"]["spec"]
    users = next(c for c in sts["containers"] if c["name"] == "users")
    script = users["args"][0]
    assert 'const roles = [{role: "readWrite", db: env.CATALOG_DB}];' in script
    assert script.count("role:") == 1  # that one role, on that one database
    assert "createUser" in script and "updateUser" in script  # idempotent on every start
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in users["env"]}
    assert env["CATALOG_DB"] == "kubevod"
    assert env["WORKER_PASSWORD"]["secretKeyRef"]["key"] == "worker-password"
    assert users["readinessProbe"]["exec"]["command"] == ["test", "-f", "/tmp/users/ready"]


def test_the_api_token_is_generated_given_or_taken_from_a_secret(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    import base64

    docs = rendered["default"]
    token = base64.b64decode(find(docs, "Secret", "-api-token")["data"]["token"]).decode()
    assert len(token) == 48 and token.isalnum()
    for workload in ("-api", "-cache"):
        env = container_env(find(docs, "Deployment", workload))
        assert env["KUBEVOD_API_TOKEN"]["secretKeyRef"] == {"name": "vod-kubevod-api-token",
                                                             "key": "token"}  # fmt: skip
    api = container_env(find(docs, "Deployment", "-api"))
    assert api["KUBEVOD_ENVIRONMENT"] == "production"
    assert api["KUBEVOD_MANAGED_BY_OPERATOR"] == "true"  # a DELETE points to the VideoAsset
    assert api["KUBEVOD_PUBLIC_LIBRARY"] == "false"  # with signing on, a private library
    given = {"api": {"apiToken": {"value": "my-long-token_1.2"}}}
    docs = documents(template_text(given, tmp=tmp_path).stdout)
    secret = find(docs, "Secret", "-api-token")["data"]["token"]
    assert base64.b64decode(secret).decode() == "my-long-token_1.2"
    existing = rendered["external-existing-secrets"]
    for workload in ("-api", "-cache"):
        env = container_env(find(existing, "Deployment", workload))
        assert env["KUBEVOD_API_TOKEN"]["secretKeyRef"]["name"] == "my-token"
    bad = {"api": {"apiToken": {"value": 'with"quote'}}}
    assert template_text(bad, tmp=tmp_path, check=False).returncode != 0


def test_images_are_pinned_by_tag_and_digest_when_a_digest_is_given(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["tls-telemetry-pinned"]
    api = find(docs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0]
    assert api["image"] == f"ghcr.io/kubevod/kubevod-api:0.1.0@{DIGEST}"
    env = container_env(find(docs, "Deployment", "-operator"))
    assert env["KUBEVOD_WORKER__IMAGE"] == f"ghcr.io/kubevod/kubevod-worker:0.1.0@{DIGEST}"


def test_ha_runs_several_replicas_with_a_disruption_budget_and_peering(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["ha"]
    assert find(docs, "Deployment", "-api")["spec"]["replicas"] == 3
    assert find(docs, "PodDisruptionBudget", "-api")["spec"]["minAvailable"] == 1
    assert find(docs, "Deployment", "-cache")["spec"]["replicas"] == 2
    operator = find(docs, "Deployment", "-operator")
    assert operator["spec"]["replicas"] == 2
    assert container_env(operator)["KUBEVOD_PEERING__NAME"]
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert (CHART / "crds" / "kopfpeerings.kopf.dev.yaml").exists()


def test_gpu_and_worker_settings_reach_the_operator_for_its_jobs(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    env = container_env(find(rendered["gpu"], "Deployment", "-operator"))
    assert env["KUBEVOD_GPU__DEFAULT_VENDOR"] == "intel"
    assert env["KUBEVOD_GPU__NVIDIA_RUNTIME_CLASS"] == "nvidia-experimental"
    assert yaml.safe_load(env["KUBEVOD_GPU__NVIDIA_NODE_SELECTOR"]) == {"gpu": "rtx"}
    assert yaml.safe_load(env["KUBEVOD_GPU__NVIDIA_TOLERATIONS"])[0]["key"] == "gpu"
    assert env["KUBEVOD_GPU__INTEL_RENDER_GROUP"] == "105"
    assert env["KUBEVOD_WORKER__SERVICE_ACCOUNT"] == "vod-kubevod-worker"
    assert env["KUBEVOD_WORKER__SECRET_NAME"] == "vod-kubevod-connections"
    assert env["KUBEVOD_WORKER__MEMORY_LIMIT"] == "4Gi"


def test_existing_connections_secret_replaces_the_generated_one(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["external-existing-secrets"]
    assert not [d for d in docs if d["kind"] == "Secret"]
    for workload in ("-api", "-operator"):
        env = container_env(find(docs, "Deployment", workload))
        assert env["KUBEVOD_STORE_URL"]["secretKeyRef"]["name"] == "my-connections"
        assert env["KUBEVOD_CATALOG_URL"]["secretKeyRef"]["name"] == "my-connections"
    operator = container_env(find(docs, "Deployment", "-operator"))
    assert operator["KUBEVOD_WORKER__SECRET_NAME"] == "my-connections"


def test_namespaced_rbac_watches_only_the_release_namespace(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    docs = rendered["namespaced-rbac"]
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    env = container_env(find(docs, "Deployment", "-operator"))
    assert env["KUBEVOD_NAMESPACES"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert find(docs, "KopfPeering")["metadata"]["name"] == env["KUBEVOD_PEERING__NAME"]
    cluster_env = container_env(find(rendered["default"], "Deployment", "-operator"))
    assert "KUBEVOD_NAMESPACES" not in cluster_env
    peering = find(rendered["default"], "ClusterKopfPeering")
    assert peering["metadata"]["name"] == cluster_env["KUBEVOD_PEERING__NAME"]


def test_network_policies_let_each_server_be_reached_only_by_who_needs_it(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    def component(peer: dict[str, Any]) -> str:
        labels = peer["podSelector"]["matchLabels"]
        if "namespaceSelector" in peer:
            assert peer["namespaceSelector"] == {}  # Jobs run in the VideoAssets' namespaces
        return str(labels.get("app.kubernetes.io/component"))

    docs = rendered["default"]

    def sources(name: str) -> list[str]:
        rule = find(docs, "NetworkPolicy", name)["spec"]["ingress"]
        assert len(rule) == 1
        return [component(p) if "podSelector" in p else "namespace" for p in rule[0]["from"]]

    assert sources("-minio") == ["cache", "api", "operator", "transcoder"]
    assert sources("-mongodb") == ["api", "operator", "transcoder"]
    # The API only behind the cache (and Prometheus' namespace for /metrics), never the Ingress.
    assert sources("-api") == ["cache", "namespace"]
    api_from = find(docs, "NetworkPolicy", "-api")["spec"]["ingress"][0]["from"]
    assert api_from[1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
    }
    cache = find(docs, "NetworkPolicy", "-cache")["spec"]["ingress"]
    assert "from" not in cache[0]
    operator = find(docs, "NetworkPolicy", "-operator")["spec"]["ingress"]
    assert operator == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]  # scrapes only
    # The peers are the real pods' labels: the Job's builder and each Deployment's.
    from kubevod.operator.job_manifest import labels as job_labels
    from kubevod.operator.resource import Asset

    asset = Asset.from_body({"metadata": {"name": "a", "uid": "u"}, "spec": {"source": {}}})
    minio_from = find(docs, "NetworkPolicy", "-minio")["spec"]["ingress"][0]["from"]
    assert minio_from[3]["podSelector"]["matchLabels"].items() <= job_labels(asset, "v").items()
    for peer, workload in zip(minio_from[:3], ("-cache", "-api", "-operator"), strict=True):
        pod_labels = find(docs, "Deployment", workload)["spec"]["template"]["metadata"]["labels"]
        assert peer["podSelector"]["matchLabels"].items() <= pod_labels.items()


def test_namespaced_network_policies_take_jobs_from_the_release_namespace_only(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    rule = find(rendered["namespaced-rbac"], "NetworkPolicy", "-minio")["spec"]["ingress"]
    assert not [p for p in rule[0]["from"] if "namespaceSelector" in p]


def test_ingress_tls_by_cert_manager_and_class_is_settable(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    ing = find(rendered["tls-telemetry-pinned"], "Ingress")
    assert ing["spec"]["ingressClassName"] == "traefik"
    assert ing["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt"
    assert ing["spec"]["tls"][0]["hosts"] == ["kubevod.local"]
    assert "ingressClassName" not in find(rendered["default"], "Ingress")["spec"]


def test_service_monitor_only_when_the_prometheus_operator_crd_exists(tmp_path: Path) -> None:
    without = documents(template_text({}, tmp=tmp_path).stdout)
    assert not [d for d in without if d["kind"] == "ServiceMonitor"]
    with_crd = documents(
        template_text(
            {}, tmp=tmp_path, extra=("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
        ).stdout
    )
    monitor = find(with_crd, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    with_sidecar = documents(
        template_text(
            {"cache": {"metrics": {"enabled": True}}}, tmp=tmp_path,
            extra=("--api-versions", "monitoring.coreos.com/v1/ServiceMonitor"),
        ).stdout
    )  # fmt: skip
    cache_monitor = find(with_sidecar, "ServiceMonitor", "-cache")
    assert cache_monitor["spec"]["endpoints"][0]["port"] == "metrics"
    sidecar = find(with_sidecar, "Deployment", "-cache")["spec"]["template"]["spec"]["containers"][
        1
    ]
    assert sidecar["command"][:3] == ["python", "-m", "kubevod.nginx_exporter"]
    assert container_env(find(with_sidecar, "Deployment", "-cache"))["KUBEVOD_METRICS_LOG"] == "1"


def test_helm_test_hook_checks_the_path_a_browser_takes(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    pod = find(rendered["default"], "Pod", "-test")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    script = pod["spec"]["containers"][0]["args"][0]
    assert "vod-kubevod-cache" in script
    assert "/readyz" in script


def test_every_value_is_documented_with_a_helm_docs_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    documented: set[tuple[str, ...]] = set()
    stack: list[str] = []
    comment = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = True
            continue
        key = line.split(":", 1)[0]
        if (
            stripped
            and not stripped.startswith(("#", "-"))
            and ":" in line
            and " " not in key.strip()
        ):
            depth = (len(line) - len(line.lstrip())) // 2
            stack = [*stack[:depth], key.strip()]
            if comment:
                documented.add(tuple(stack))
        comment = False

    def check(node: Any, path: tuple[str, ...]) -> list[str]:
        if path in documented:
            return []
        if isinstance(node, dict) and node:
            return [m for k, v in node.items() for m in check(v, (*path, k))]
        return [".".join(path)]

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert check(values, ()) == []


def test_the_operator_reads_the_fetch_limit_and_scheduling_values_the_chart_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubevod.operator.job_manifest import fetch_env
    from kubevod.operator.settings import OperatorSettings

    values = {
        "worker": {
            "fetch": {
                "allow": ["192.168.1.20/32", "nas.home.arpa"],
                "deadlineSeconds": 120,
                "s3Buckets": ["recordings"],
            },
            "scratchSizeLimit": "8Gi",
        },
        "operator": {
            "limits": {"maxPriority": 5, "namespaces": {"family": {"maxPriority": 1000}}},
            "unschedulableSeconds": 300,
        },
    }
    docs = documents(template_text(values, tmp=tmp_path).stdout)
    for name, value in container_env(find(docs, "Deployment", "-operator")).items():
        if isinstance(value, str):
            monkeypatch.setenv(name, value)
    settings = OperatorSettings()
    assert settings.worker.fetch_allow == ["192.168.1.20/32", "nas.home.arpa"]
    assert settings.worker.fetch_deny == ["10.42.0.0/16", "10.43.0.0/16"]
    assert settings.worker.s3_source_buckets == ["recordings"]
    assert settings.limits.for_namespace("family").max_priority == 1000
    assert settings.limits.for_namespace("movies").max_priority == 5
    assert settings.limits.for_namespace("movies").max_memory == "8Gi"
    assert settings.timing.unschedulable_seconds == 300
    job_env = {e["name"]: e["value"] for e in fetch_env(settings.worker)}
    assert job_env["KUBEVOD_FETCH_DEADLINE"] == "120"
    assert job_env["KUBEVOD_MAX_SOURCE_BYTES"] == str(4 * 1024**3)  # half of the 8Gi scratch
