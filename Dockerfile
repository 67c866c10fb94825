# syntax=docker/dockerfile:1.7
# One image for the CLI, the stage entrypoints, the operator and the dbt project.
#   docker build -t ghcr.io/smepulse/smepulse:0.1.0 .
# Stage 1 builds a virtualenv (wheels only need a compiler for the odd sdist) and bakes dbt's
# parse artefacts; stage 2 copies the virtualenv into a slim base with no compilers.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIRTUAL_ENV=/opt/venv
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv "$VIRTUAL_ENV"
ENV PATH="$VIRTUAL_ENV/bin:$PATH"
WORKDIR /src
# Dependencies first, so that code changes do not re-download them.
COPY pyproject.toml setup.py README.md ./
RUN mkdir -p jobs operator && touch jobs/__init__.py operator/__init__.py \
 && pip install . && pip uninstall -y smepulse
COPY jobs/ jobs/
COPY operator/ operator/
RUN pip install --no-deps . && python -m compileall -q "$VIRTUAL_ENV"
# dbt: parse once at build time so every stage starts from a warm manifest
# (target/manifest.json + partial_parse.msgpack).
COPY dbt/ /opt/smepulse/dbt/
RUN cd /opt/smepulse/dbt \
 && SMEPULSE_DBT_TARGET=duckdb SMEPULSE_DUCKDB_PATH=/tmp/parse.duckdb SMEPULSE_BRONZE_ROOT=/tmp/bronze \
    dbt parse --project-dir . --profiles-dir . --target duckdb \
 && rm -rf logs /tmp/parse.duckdb

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
LABEL org.opencontainers.image.title="smepulse" \
      org.opencontainers.image.description="SME Pulse: data and ML pipelines for a small business on Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV VIRTUAL_ENV=/opt/venv \
    PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SMEPULSE_HOME=/var/lib/smepulse \
    SMEPULSE_DBT_PROJECT_DIR=/opt/smepulse/dbt \
    SMEPULSE_LOG_FORMAT=json \
    MPLCONFIGDIR=/tmp/matplotlib
RUN groupadd --system --gid 10001 smepulse \
 && useradd --system --uid 10001 --gid smepulse --home-dir /var/lib/smepulse --create-home smepulse
COPY --from=build /opt/venv /opt/venv
COPY --from=build --chown=10001:10001 /opt/smepulse/dbt /opt/smepulse/dbt
USER 10001:10001
WORKDIR /var/lib/smepulse
ENTRYPOINT ["smepulse"]
CMD ["--help"]
