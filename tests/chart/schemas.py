"""Offline JSON schemas for kubeconform, made from the real kube-apiserver's OpenAPI.

kubeconform normally downloads schemas from the internet. The tests have no
internet, so a session fixture asks the kube-apiserver fixture for
``/openapi/v2`` (which also holds the schemas of installed CRDs) and this module
turns each definition carrying ``x-kubernetes-group-version-kind`` into one
standalone file in kubeconform's layout, the way openapi2jsonschema does:

* every ``$ref`` is inlined (a reference back into itself, as in
  ``JSONSchemaProps``, becomes ``{}``: anything);
* strict: objects with ``properties`` get ``additionalProperties: false``, so a
  misspelt field fails;
* ``IntOrString`` and ``Quantity`` accept both strings and numbers, and every
  typed value also accepts ``null`` (the API server drops nulls).

The files are named ``<kind>-<group prefix>-<version>.json``, which is what
kubeconform's ``{{ .ResourceKind }}{{ .KindSuffix }}`` expands to, so the
location passed to kubeconform is ``DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOCATION_TEMPLATE = "{{ .ResourceKind }}{{ .KindSuffix }}.json"

_SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "oneOf": [{"type": "string"}, {"type": "integer"}]
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "oneOf": [{"type": "string"}, {"type": "number"}]
    },
}


def kind_suffix(api_version: str) -> str:
    """kubeconform's ``KindSuffix``: ``-apps-v1`` for apps/v1, ``-v1`` for v1."""
    group, _, version = api_version.rpartition("/")
    if not group:
        return f"-{version.lower()}"
    return f"-{group.split('.')[0].lower()}-{version.lower()}"


def _inline(node: Any, definitions: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_inline(item, definitions, stack) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in _SPECIAL:
            return dict(_SPECIAL[name])
        if name in stack:
            return {}
        return _inline(definitions.get(name, {}), definitions, (*stack, name))
    if node.get("format") == "int-or-string" or node.get("x-kubernetes-int-or-string"):
        return {"oneOf": [{"type": "string"}, {"type": "integer"}]}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {k: _inline(v, definitions, stack) for k, v in value.items()}
        elif key.startswith("x-kubernetes-") or key in ("description", "format"):
            continue
        else:
            out[key] = _inline(value, definitions, stack)
    typ = out.get("type")
    if isinstance(typ, str):
        out["type"] = [typ, "null"]
    if "properties" in out and "additionalProperties" not in out:
        preserve = node.get("x-kubernetes-preserve-unknown-fields")
        if not preserve:
            out["additionalProperties"] = False
    return out


def standalone_schemas(openapi_v2: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """File name -> standalone strict JSON schema, for every kind the server serves.

    Args:
        openapi_v2: the document served at ``/openapi/v2``.

    Returns:
        ``{"deployment-apps-v1.json": {...}, ...}``.
    """
    definitions: dict[str, Any] = openapi_v2["definitions"]
    out: dict[str, dict[str, Any]] = {}
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            schema = _inline(definition, definitions, (name,))
            schema["$schema"] = "http://json-schema.org/draft-07/schema#"
            out[f"{gvk['kind'].lower()}{kind_suffix(api_version)}.json"] = schema
    return out


def write_schemas(openapi_v2: dict[str, Any], folder: Path) -> str:
    """Write the schemas into ``folder``; return kubeconform's ``-schema-location``."""
    folder.mkdir(parents=True, exist_ok=True)
    for filename, schema in standalone_schemas(openapi_v2).items():
        (folder / filename).write_text(json.dumps(schema))
    return str(folder / LOCATION_TEMPLATE)
