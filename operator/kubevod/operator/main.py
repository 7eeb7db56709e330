"""``kubevod-operator``: run the kopf operator with settings from the environment.

Watches the namespaces of ``KUBEVOD_NAMESPACES`` (the whole cluster when
empty), joins the kopf peering named by ``KUBEVOD_PEERING__NAME`` so two
replicas never act twice, and serves kopf's liveness endpoint.
"""

from __future__ import annotations

import logging
import random
import sys
from urllib.parse import urlsplit

import kopf
from kubevod.operator.settings import load_settings

from kubevod.backends import redact_url
from kubevod.logs import register_secret, setup_logging
from kubevod.metrics import operator_metrics, start_metrics_server
from kubevod.telemetry import instrument_pymongo, setup_telemetry


def _drop_kopf_settings(record: logging.LogRecord) -> bool:
    """kopf attaches its whole settings object to object-related records: not log material."""
    record.__dict__.pop("settings", None)
    return True


def main() -> None:
    """Entry point of the ``kubevod-operator`` console script."""
    settings = load_settings()
    handler = setup_logging(service="kubevod-operator")
    handler.addFilter(_drop_kopf_settings)
    # One trace per transcode: the handler's span travels to the worker in TRACEPARENT.
    setup_telemetry("kubevod-operator", component="operator")
    instrument_pymongo()  # before the handlers open the catalog: its commands become spans
    # kopf logs every successful timer run at INFO; keep its warnings and errors.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    missing = [n for n in ("catalog_url", "store_url") if not getattr(settings, n)]
    if missing:
        names = ", ".join(f"KUBEVOD_{n.upper()}" for n in missing)
        sys.exit(f"kubevod-operator: {names} must be set (from the backends Secret)")
    for url in (settings.catalog_url, settings.store_url):
        register_secret(urlsplit(url).password)  # e.g. the S3 secret key, should a library log it
    logging.getLogger("kubevod.operator").info(
        "catalog %s, store %s, namespaces %s, %d transcodes at once",
        redact_url(settings.catalog_url),
        redact_url(settings.store_url),
        settings.namespaces or "all",
        settings.queue.max_concurrent,
    )
    if settings.metrics_port is not None:
        operator_metrics()  # registered now, so every family reads 0 before the first event
        start_metrics_server(settings.metrics_port)
    # Importing the module registers the handlers with kopf's default registry.
    from kubevod.operator import handlers  # noqa: F401

    peering = settings.peering
    # Equal priorities make kopf pause every replica; a random one breaks ties.
    priority = peering.priority if peering.priority is not None else random.randint(1, 10**6)
    kopf.run(
        clusterwide=not settings.namespaces,
        namespaces=settings.namespaces,
        standalone=peering.standalone,
        peering_name=None if peering.standalone else peering.name,
        priority=priority,
        liveness_endpoint=settings.liveness_endpoint,
    )


if __name__ == "__main__":
    main()
