# syntax=docker/dockerfile:1
# segport: one image for both roles. The command picks the role:
#   docker run IMAGE                       -> API (serve on 0.0.0.0:8000)
#   docker run IMAGE worker                -> arq worker (needs SEGPORT_REDIS_URL)
#   docker run IMAGE rotate-keys           -> re-encrypt stored credentials

ARG PYTHON_IMAGE=python:3.12.11-slim-bookworm

# --- builder: turn the service, the Constant Contact plugin and every dependency into wheels.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY plugins/constant_contact ./plugins/constant_contact
# Wheels (not an installed tree) so the final stage needs no compiler and no source.
RUN pip wheel --no-cache-dir --wheel-dir /wheels . ./plugins/constant_contact

# --- runtime: only the wheels, installed once, run as a fixed non-root user.
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="segport" \
      org.opencontainers.image.description="GraphQL service that exports customer segments to marketing destinations" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SEGPORT_DATABASE_URL=sqlite:////data/segport.db \
    SEGPORT_LOG_FORMAT=json \
    SEGPORT_HEALTHCHECK_URL=http://127.0.0.1:8000/healthz

# A fixed UID/GID so volume ownership and Kubernetes runAsUser stay predictable.
RUN groupadd --system --gid 10001 segport \
    && useradd --system --no-log-init --uid 10001 --gid segport --home-dir /data --shell /usr/sbin/nologin segport \
    && mkdir -p /data \
    && chown segport:segport /data

# The wheels come in through a bind mount, so they never become an image layer.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index /wheels/*.whl

WORKDIR /data
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

# No curl in slim images: Python's urllib fails (non-zero exit) on any non-2xx answer.
# Workers have no HTTP API; point SEGPORT_HEALTHCHECK_URL at their metrics port instead.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SEGPORT_HEALTHCHECK_URL'], timeout=4)"]

ENTRYPOINT ["segport"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
