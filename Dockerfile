# syntax=docker/dockerfile:1.7
# kubevod's three images, one target each (names: kubevod/images.py):
#   operator  kopf handlers that turn VideoAssets into transcode Jobs
#   api       FastAPI app: manifests, library JSON, web player
#   worker    one transcode (probe, ladder, one ffmpeg, upload) per Job pod
#
# `make images` builds all three (scripts/images). By hand, from the repository root:
#   scripts/testenv hlsjs        # vendors hls.js into the API's UI; the build needs it
#   docker buildx build --target worker --platform linux/amd64,linux/arm64 \
#     -t ghcr.io/kubevod/kubevod-worker:0.1.0 .
#
# The base only has to provide `python` with its `venv` and `pip` modules, and
# apt-get (the worker installs ffmpeg); PYTHON_IMAGE may name any such image.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The kubevod wheel is pure Python: build it once, on the build machine's arch.
FROM --platform=$BUILDPLATFORM ${PYTHON_IMAGE} AS wheel
WORKDIR /src
COPY pyproject.toml README.md ./
COPY kubevod ./kubevod
COPY operator/kubevod ./operator/kubevod
COPY api/kubevod ./api/kubevod
COPY worker/kubevod ./worker/kubevod
# hls.js is vendored, not in git (pyproject.toml lists it as a wheel artifact).
RUN test -s api/kubevod/api/ui/vendor/hls.min.js || { \
      echo "api/kubevod/api/ui/vendor/hls.min.js is missing: run 'scripts/testenv hlsjs'" \
           "(or 'make images') before building the images" >&2; \
      exit 1; }
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

# The wheel and its dependencies for the target arch (binary wheels); only the
# venv leaves this stage.
FROM ${PYTHON_IMAGE} AS venv
RUN python -m venv /opt/kubevod
# The dependencies first, read from pyproject.toml alone: a change of kubevod's
# own code then rebuilds only the small layer that installs the wheel.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
 && /opt/kubevod/bin/python -m pip install --no-cache-dir --prefer-binary -r /tmp/requirements.txt
COPY --from=wheel /dist/ /tmp/dist/
RUN /opt/kubevod/bin/python -m pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
 && /opt/kubevod/bin/python -m pip uninstall -y pip \
 && find /opt/kubevod -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE} AS operator
LABEL org.opencontainers.image.title="kubevod-operator" \
      org.opencontainers.image.source="https://github.com/kubevod/kubevod" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=venv /opt/kubevod /opt/kubevod
ENV PATH=/opt/kubevod/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A passwd entry for the uid: kopf's peering and getpass ask who they run as.
RUN groupadd --system --gid 10001 kubevod \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kubevod
USER 10001:10001
# kopf's liveness endpoint (KUBEVOD_LIVENESS_ENDPOINT).
EXPOSE 8080
ENTRYPOINT ["kubevod-operator"]

FROM ${PYTHON_IMAGE} AS api
LABEL org.opencontainers.image.title="kubevod-api" \
      org.opencontainers.image.source="https://github.com/kubevod/kubevod" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=venv /opt/kubevod /opt/kubevod
ENV PATH=/opt/kubevod/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KUBEVOD_HOST=0.0.0.0 \
    KUBEVOD_PORT=8000
# A passwd entry for the uid: kopf's peering and getpass ask who they run as.
RUN groupadd --system --gid 10001 kubevod \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kubevod
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["kubevod-api"]

# Hardware encoders: Debian's ffmpeg dlopens libnvidia-encode/libcuda, which the
# NVIDIA container runtime mounts into the pod on GPU nodes (runtimeClassName
# nvidia, NVIDIA_DRIVER_CAPABILITIES=video); nothing NVIDIA is in the image.
# VAAPI/QSV: the Intel media driver (amd64 only) and Mesa's VAAPI drivers are
# installed; the Intel device plugin gives the pod /dev/dri.
FROM ${PYTHON_IMAGE} AS worker
LABEL org.opencontainers.image.title="kubevod-worker" \
      org.opencontainers.image.source="https://github.com/kubevod/kubevod" \
      org.opencontainers.image.licenses="Apache-2.0"
# The stage's own arch decides (what TARGETARCH says under buildx; buildah 1.28 leaves it unset).
RUN set -eux; \
    extra=""; \
    if [ "$(dpkg --print-architecture)" = "amd64" ]; then extra="intel-media-va-driver"; fi; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ffmpeg mesa-va-drivers ca-certificates $extra; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*
COPY --from=venv /opt/kubevod /opt/kubevod
ENV PATH=/opt/kubevod/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NVIDIA_DRIVER_CAPABILITIES=compute,video,utility
# A passwd entry for the uid: kopf's peering and getpass ask who they run as.
RUN groupadd --system --gid 10001 kubevod \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kubevod
USER 10001:10001
ENTRYPOINT ["kubevod-worker"]
