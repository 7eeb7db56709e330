"""The cluster's certificates, keys, tokens and kubeconfigs (openssl, under ``state/pki``)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

from tests.cluster import config, layout
from tests.cluster.layout import Layout

#: Token users: file stem -> (user name, groups).
USERS: dict[str, tuple[str, str]] = {
    "admin": ("kubevod-test-admin", "system:masters"),
    "kcm": ("system:kube-controller-manager", ""),
    "sched": ("system:kube-scheduler", ""),
    "proxy": ("system:kube-proxy", ""),
    "node": (f"system:node:{layout.NODE_NAME}", "system:nodes"),
}

API_SANS = (
    "IP:127.0.0.1",
    f"IP:{layout.NODE_IP}",
    f"IP:{layout.KUBERNETES_SERVICE_IP}",
    "DNS:localhost",
    "DNS:kubernetes",
    "DNS:kubernetes.default",
    "DNS:kubernetes.default.svc",
    f"DNS:kubernetes.default.svc.{layout.CLUSTER_DOMAIN}",
)


def _openssl(*args: str | Path, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))}: {result.stderr}")


def _key(d: Path, name: str) -> None:
    # P-256 keys: generated in milliseconds where RSA takes seconds on a busy machine.
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        f"{name}.key",
        cwd=d,
    )


def _signed(d: Path, name: str, subject: str, ca: str, ext: str | None = None) -> None:
    _key(d, name)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=d)
    argv = ["x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key"]
    argv += ["-CAcreateserial", "-days", "7", "-out", f"{name}.crt"]
    if ext:
        (d / f"{name}.ext").write_text(ext + "\n")
        argv += ["-extfile", f"{name}.ext"]
    _openssl(*argv, cwd=d)


def make(lay: Layout) -> None:
    """Write every certificate, key, token file and kubeconfig the cluster uses."""
    d = lay.pki
    d.mkdir(parents=True, exist_ok=True)
    for ca, cn in (("ca", "kubevod-test-ca"), ("front-proxy-ca", "kubevod-test-front-proxy")):
        _key(d, ca)
        _openssl(
            "req",
            "-x509",
            "-new",
            "-key",
            f"{ca}.key",
            "-days",
            "7",
            "-subj",
            f"/CN={cn}",
            "-out",
            f"{ca}.crt",
            cwd=d,
        )
    _signed(d, "apiserver", "/CN=kube-apiserver", "ca", "subjectAltName=" + ",".join(API_SANS))
    _signed(d, "kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client", "ca")
    _signed(d, "front-proxy-client", "/CN=front-proxy-client", "front-proxy-ca")
    _key(d, "sa")
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=d)
    lines = []
    for stem, (user, groups) in USERS.items():
        token = secrets.token_hex(16)
        (d / f"{stem}.token").write_text(token)
        lines.append(f"{token},{user},{stem}-uid" + (f',"{groups}"' if groups else ""))
        (d / f"{stem}.kubeconfig").write_text(
            config.kubeconfig(config.api_server_url(), d / "ca.crt", token, user)
        )
    (d / "tokens.csv").write_text("\n".join(lines) + "\n")


def host_kubeconfig(lay: Layout, port: int) -> str:
    """The admin kubeconfig for host clients, through the forwarder on 127.0.0.1:port."""
    token = (lay.pki / "admin.token").read_text().strip()
    return config.kubeconfig(
        config.api_server_url("127.0.0.1", port), lay.pki / "ca.crt", token, USERS["admin"][0]
    )
