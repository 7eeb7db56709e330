"""``kubevod-api``: run the API with uvicorn on the settings' host and port (one process).

Tracing is set up here, at the process edge (DESIGN.md §8): the tracer
provider (exporting OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set), MongoDB
command spans, and a server span per request. ``create_app`` itself stays free
of process-wide state, so tests and local mode build apps as they like.
Scale by running more pods (the chart's HPA), not more workers per pod.
"""

from __future__ import annotations

import logging

import uvicorn
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings

from kubevod import telemetry


def main() -> None:
    """Entry point of the ``kubevod-api`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ApiSettings()
    telemetry.setup_telemetry("kubevod-api", component="api")
    telemetry.instrument_pymongo()  # before create_app opens a MongoClient
    app = create_app(settings)
    telemetry.instrument_fastapi(app)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
    )


if __name__ == "__main__":
    main()
