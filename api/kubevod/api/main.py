"""``kubevod-api``: run the API with uvicorn on the settings' host and port (one process).

Tracing is set up here, at the process edge (docs/architecture.md §8): the tracer
provider (exporting OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), MongoDB
command spans, and a server span per request (``kubevod.api.tracing``).
``create_app`` itself stays free of process-wide state, so tests and local mode
build apps as they like.
Scale by running more pods (the chart's HPA), not more workers per pod.
"""

from __future__ import annotations

import sys
from urllib.parse import urlsplit

import uvicorn
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings
from kubevod.api.tracing import ServerSpans
from pydantic import ValidationError

from kubevod import telemetry
from kubevod.backends import redact_url
from kubevod.logs import get_logger, register_secret, setup_logging


def main() -> None:
    """Entry point of the ``kubevod-api`` console script."""
    # JSON lines in a pod, text in a terminal; trace ids on every line inside a span.
    setup_logging(service="kubevod-api")
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        # One line a person reads in `kubectl logs`, not a traceback (pydantic says which field).
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        print(f"kubevod-api: refusing to start: {reasons}", file=sys.stderr)
        raise SystemExit(2) from None
    for secret in (settings.api_token, settings.signing_secret):
        if secret is not None:
            register_secret(secret.get_secret_value())  # never in a log line, whatever the context
    for url in (settings.resolved_catalog_url(), settings.resolved_store_url()):
        register_secret(urlsplit(url).password)  # e.g. the S3 secret key, should a library log it
    telemetry.setup_telemetry("kubevod-api", component="api")
    telemetry.instrument_pymongo()  # before create_app opens a MongoClient
    app = create_app(settings)
    app.add_middleware(ServerSpans, excluded_paths=telemetry.UNTRACED_PATHS.split(","))
    get_logger("kubevod.api").info(
        "catalog %s, store %s, media %s",
        redact_url(settings.resolved_catalog_url()),
        redact_url(settings.resolved_store_url()),
        settings.media_base_url,
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        log_config=None,  # uvicorn's loggers go through the root handler set up above
    )


if __name__ == "__main__":
    main()
