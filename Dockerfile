# Minimal for now; the multi-stage, non-root image lands with the deployment issue.
FROM python:3.11-slim
WORKDIR /app
COPY . /app
RUN pip install --no-cache-dir .
ENTRYPOINT ["calmon"]
