# syntax=docker/dockerfile:1
# calmon container image: a wheel built in one stage, installed into a slim runtime.
# The install steps are the ones tests/integration/deploy/test_image_steps.py runs:
# build the wheel, install it with no extras, run `calmon migrate` and `calmon --help`.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install --no-cache-dir build==1.2.2 \
 && python -m build --wheel --outdir /dist .

FROM python:${PYTHON_VERSION}-slim AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="calmon" \
      org.opencontainers.image.description="Calibration and score-drift monitor for probability models" \
      org.opencontainers.image.source="https://github.com/calmon/calmon" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
# Binary wheels only: no compiler is installed, in this stage or any other.
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-cache-dir --only-binary=:all: /tmp/*.whl \
 && rm /tmp/*.whl \
 && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin calmon
USER 10001:10001
WORKDIR /tmp
# Config from a mounted file; secrets (CALMON_STORE_URL...) from the environment.
ENV CALMON_CONFIG=/etc/calmon/calmon.yaml \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
ENTRYPOINT ["calmon"]
CMD ["run"]
