# syntax=docker/dockerfile:1
# calmon container image: a wheel built in one stage, installed into a slim runtime.
# The install steps are the ones tests/integration/deploy/test_image_steps.py runs:
# build the wheel, install the hashed lock requirements/runtime.txt and then the wheel
# with no extras, run `calmon migrate` and `calmon --help`.

# The base image of both stages. Pin it by digest for a reproducible build, resolved when
# you build (or release), since a tag moves with every Python patch release:
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<that digest> .
# (docs/operations.md, "The container image"). The default is the tag: no digest is
# committed here because none could be verified against the registry when this was written.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir build==1.2.2 \
 && python -m build --wheel --outdir /dist .

FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="calmon" \
      org.opencontainers.image.description="Calibration and score-drift monitor for probability models" \
      org.opencontainers.image.source="https://github.com/calmon/calmon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Every dependency from the hashed lock (requirements/runtime.txt, `make lock`), binary
# wheels only (no compiler is installed, in this stage or any other); then calmon itself,
# resolving nothing; `pip check`: the lock satisfies what the wheel requires.
COPY requirements/runtime.txt /tmp/requirements.txt
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.txt \
 && pip install --no-cache-dir --no-deps --no-index /tmp/*.whl \
 && pip check \
 && rm /tmp/*.whl /tmp/requirements.txt \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin calmon
USER 10001:10001
WORKDIR /tmp
# Config from a mounted file; secrets (CALMON_STORE_URL...) from the environment.
# MPLCONFIGDIR: the user has no home, so matplotlib (report --png) keeps its font cache
# in /tmp instead of warning about a temporary directory on every run.
ENV CALMON_CONFIG=/etc/calmon/calmon.yaml \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["calmon"]
CMD ["run"]
