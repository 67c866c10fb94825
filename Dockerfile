# Two images from one Dockerfile, both installed from uv.lock (exactly the locked versions):
#
#   docker build --target operator -t ghcr.io/smepulse/smepulse-operator:0.1.0 .
#       the kopf operator and `smepulse submit`: the `operator` dependency group only
#       (kopf, the Kubernetes client, pydantic, typer; no dbt, Prophet, MLflow, matplotlib)
#   docker build --target stages -t ghcr.io/smepulse/smepulse-stages:0.1.0 .
#       every `smepulse stage <name>`: the project's dependencies, the dbt project with its
#       parse artefacts baked in (target/), so Jobs start from a parsed manifest
#
# Both run as uid 10001 under tini (SIGTERM reaches the stage's whole process group), work on a
# read-only root file system (writable: /tmp, and the /var/lib/smepulse volume of the stages
# image), and carry no compiler, pip or uv.
#
# Build arguments:
#   BUILD_BASE, RUNTIME_BASE  base images (default: the public Python 3.11 slim image); tests
#       pass a Debian bookworm image with Debian's python3 built by scripts/docker-tools.sh.
#       Both must have the same python3 path (the virtualenv links to it).
#   UV_VERSION  the uv that installs from the lock (build stages only).
# A file `build-ca.pem` in the build context (optional, not in git) is a CA bundle for a
# TLS-inspecting proxy in front of PyPI: only the build stages read it, the images do not
# contain it.
#
# Written for the classic builder and BuildKit alike (no `# syntax` line, no --mount): the
# classic builder builds every stage above the target, so the operator's stages come first.

ARG BUILD_BASE=python:3.11-slim-bookworm
ARG RUNTIME_BASE=python:3.11-slim-bookworm

# ---- build tools: uv and tini (Debian's static build) -----------------------------------------
FROM ${BUILD_BASE} AS build-base
ARG UV_VERSION=0.13.9
ENV UV_NO_CACHE=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=python3 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The glob matches nothing when there is no CA bundle; .dockerignore is always there, so the
# COPY succeeds either way.
COPY .dockerignore build-ca.pe[m] /src/
RUN set -eu; \
    if [ -f /src/build-ca.pem ]; then export PIP_CERT=/src/build-ca.pem; fi; \
    apt-get update -qq; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tini; \
    rm -rf /var/lib/apt/lists/*; \
    python3 -m venv /opt/uv; \
    /opt/uv/bin/pip install -q "uv==${UV_VERSION}"; \
    ln -s /opt/uv/bin/uv /usr/local/bin/uv
COPY pyproject.toml uv.lock /src/

# ---- the project as a wheel (code changes rebuild from here, not the dependencies) -----------
FROM build-base AS wheel
COPY README.md /src/
COPY jobs/src/ /src/jobs/src/
COPY operator/src/ /src/operator/src/
RUN set -eu; \
    if [ -f /src/build-ca.pem ]; then export SSL_CERT_FILE=/src/build-ca.pem; fi; \
    uv build --wheel --out-dir /wheels /src

# ---- operator virtualenv: the locked `operator` group + the project without its dependencies --
FROM build-base AS build-operator
RUN set -eu; \
    if [ -f /src/build-ca.pem ]; then export SSL_CERT_FILE=/src/build-ca.pem; fi; \
    uv venv -q /opt/venv; \
    UV_PROJECT_ENVIRONMENT=/opt/venv uv sync -q --frozen --only-group operator --no-install-project
COPY --from=wheel /wheels/ /wheels/
RUN uv pip install -q --python /opt/venv/bin/python --no-deps /wheels/*.whl \
 && /opt/venv/bin/python -c "import smepulse.cli, smepulse_operator.handlers, smepulse_operator.submit"

# ---- what both images share: user 10001, tini, environment -------------------------------------
FROM ${RUNTIME_BASE} AS runtime
LABEL org.opencontainers.image.source="https://github.com/smepulse/smepulse" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build-base /usr/bin/tini-static /usr/bin/tini
RUN groupadd --system --gid 10001 smepulse \
 && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin smepulse
# HOME, MPLCONFIGDIR and the like point into /tmp: the root file system may be read-only.
ENV PATH="/opt/venv/bin:$PATH" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    SMEPULSE_LOG_FORMAT=json
WORKDIR /tmp
# -g: a SIGTERM goes to the whole process group (a stage's subprocesses stop too).
ENTRYPOINT ["/usr/bin/tini", "-g", "--"]
CMD ["smepulse", "--help"]

# ---- target: operator ---------------------------------------------------------------------------
FROM runtime AS operator
LABEL org.opencontainers.image.title="smepulse-operator" \
      org.opencontainers.image.description="SME Pulse operator: runs PipelineRuns as Kubernetes Jobs"
COPY --from=build-operator /opt/venv /opt/venv
ENV SMEPULSE_HOME=/tmp/smepulse
USER 10001:10001
EXPOSE 8000 8080
CMD ["smepulse", "operator"]

# ---- stages virtualenv and the dbt project's parse artefacts -----------------------------------
FROM build-base AS build-stages
RUN set -eu; \
    if [ -f /src/build-ca.pem ]; then export SSL_CERT_FILE=/src/build-ca.pem; fi; \
    uv venv -q /opt/venv; \
    UV_PROJECT_ENVIRONMENT=/opt/venv uv sync -q --frozen --no-default-groups --no-install-project
COPY --from=wheel /wheels/ /wheels/
RUN uv pip install -q --python /opt/venv/bin/python --no-deps /wheels/*.whl
COPY dbt/ /opt/smepulse/dbt/
# dbt's parse, baked per target into target/<trino|duckdb>/ (partial_parse.msgpack, manifest.json):
# dbt_runner seeds each stage's writable target folder from the one of its warehouse, and dbt
# then parses only what changed instead of the whole project. dbt reuses it only for the same
# profile connection values, so it is parsed with smepulse.dbt_runner.BAKED_SETTINGS: the
# default chart install's Trino (stage Jobs) and the image's own DuckDB defaults.
RUN set -eu; \
    cd /opt/smepulse/dbt; \
    rm -rf target logs; \
    /opt/venv/bin/python -c "from pathlib import Path; from smepulse.dbt_runner import bake_image_artefacts; bake_image_artefacts(Path('/opt/smepulse/dbt'))"; \
    test -s target/trino/partial_parse.msgpack; \
    test -s target/duckdb/partial_parse.msgpack; \
    rm -rf /tmp/smepulse /var/lib/smepulse .user.yml logs

# ---- target: stages -----------------------------------------------------------------------------
FROM runtime AS stages
LABEL org.opencontainers.image.title="smepulse-stages" \
      org.opencontainers.image.description="SME Pulse stages: dbt, UC09/UC10 ML, report, notify (smepulse stage <name>)"
COPY --from=build-stages /opt/venv /opt/venv
COPY --from=build-stages /opt/smepulse/dbt /opt/smepulse/dbt
RUN install -d -o 10001 -g 10001 -m 0750 /var/lib/smepulse
ENV SMEPULSE_HOME=/var/lib/smepulse \
    SMEPULSE_DBT_PROJECT_DIR=/opt/smepulse/dbt
VOLUME ["/var/lib/smepulse"]
USER 10001:10001
WORKDIR /var/lib/smepulse
