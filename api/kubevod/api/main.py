"""``kubevod-api``: run the API with uvicorn on the settings' host and port (one process).

Scale by running more pods (the chart's HPA), not more workers per pod.
"""

from __future__ import annotations

import logging

import uvicorn
from kubevod.api.app import create_app
from kubevod.api.settings import ApiSettings


def main() -> None:
    """Entry point of the ``kubevod-api`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = ApiSettings()
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
    )


if __name__ == "__main__":
    main()
