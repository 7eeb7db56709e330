"""Tenant limits: what a VideoAsset may ask for in its namespace (pure).

``problems`` compares a spec's ``priority`` and ``resources`` with the caps of
its namespace (``settings.LimitSettings.for_namespace``) and says, one sentence
per field, what is over and what the cap is. The handlers turn a non-empty
list into ``errors.OverLimit`` (phase Failed, reason ``OverLimit``).
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity
from kubevod.operator.resource import VideoAssetSpec
from kubevod.operator.settings import Caps


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity ("500m", "4Gi", 2) as a number of base units.

    Raises:
        ValueError: not a quantity.
    """
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc


def problems(spec: VideoAssetSpec, namespace: str, caps: Caps) -> list[str]:
    """Every field of ``spec`` over ``caps``, one sentence each; empty when within.

    Args:
        spec: the VideoAsset's spec.
        namespace: its namespace (named in the messages: caps differ per namespace).
        caps: the caps that apply there.

    Returns:
        e.g. ``["spec.priority: 500 is above the cap of 100 in namespace 'movies'"]``.
    """
    where = f"in namespace {namespace!r}"
    found: list[str] = []
    if spec.priority > caps.max_priority:
        found.append(
            f"spec.priority: {spec.priority} is above the cap of {caps.max_priority} {where}"
        )
    asked = spec.resources
    for part, values in (("requests", asked.requests), ("limits", asked.limits)):
        for name, value, cap in (("cpu", values.cpu, caps.max_cpu),
                                 ("memory", values.memory, caps.max_memory)):  # fmt: skip
            if value is None:
                continue
            field = f"spec.resources.{part}.{name}"
            try:
                over = quantity(value) > quantity(cap)
            except ValueError:
                found.append(f"{field}: {value!r} is not a Kubernetes quantity")
                continue
            if over:
                found.append(f"{field}: {value} is above the cap of {cap} {where}")
    return found
