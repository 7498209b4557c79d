# neuron-exporter images, two targets (`make image` builds both with the version and revision labels):
#   docker build --target standalone -t neuron-exporter:standalone .   # runs neuron-monitor itself (default)
#   docker build --target sidecar    -t neuron-exporter:sidecar .      # reads neuron-monitor's output (--input)
# Linted with hadolint in CI, and its install steps are replayed by tests/test_dockerfile.py.
ARG PYTHON_VERSION=3.11

# --- the wheel and its dependencies, built once -----------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

# --- AWS's Neuron apt key, fetched apart so the runtime images carry no curl or gpg -----------------
FROM debian:bookworm-slim AS neuron-apt-key
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && curl -fsSL https://apt.repos.neuron.amazonaws.com/GPG-PUB-KEY-AMAZON-AWS-NEURON.PUB \
    | gpg --dearmor -o /neuron-keyring.gpg \
 && rm -rf /var/lib/apt/lists/*

# --- sidecar: the exporter alone, beside AWS's neuron-monitor container ------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS sidecar
# Labels only: the version installed is whatever wheel the build stage made from pyproject.toml, the
# one place it is written. `make image` passes these from pyproject.toml and git.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE_URL=unknown
LABEL org.opencontainers.image.title="neuron-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS Inferentia and Trainium, fed by neuron-monitor" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.documentation="${SOURCE_URL}#readme" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/neuron_exporter-*.whl && rm -rf /wheels
COPY examples/mon.json /etc/neuron-exporter/mon.json
USER 10001
EXPOSE 8000
# Asks /-/healthy wherever the exporter listens (its own flags, read from /proc/1/cmdline); any HTTP
# answer, 401 under basic auth or 400 on a TLS port included, means it serves.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-m", "exporter.healthcheck"]
# Exec form, so SIGTERM reaches the exporter, which stops neuron-monitor (if it runs one) and exits 0.
ENTRYPOINT ["neuron-exporter"]
CMD ["--input", "/run/neuron-monitor/reports.fifo", "--config", "/etc/neuron-exporter/mon.json"]

# --- standalone: the exporter runs neuron-monitor from aws-neuronx-tools --------------------------
FROM sidecar AS standalone
ARG NEURON_TOOLS_VERSION=2.*
USER 0
COPY --from=neuron-apt-key /neuron-keyring.gpg /usr/share/keyrings/aws-neuron.gpg
RUN echo "deb [signed-by=/usr/share/keyrings/aws-neuron.gpg] https://apt.repos.neuron.amazonaws.com jammy main" \
      > /etc/apt/sources.list.d/neuron.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "aws-neuronx-tools=${NEURON_TOOLS_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
USER 10001
ENTRYPOINT ["neuron-exporter"]
CMD ["--config", "/etc/neuron-exporter/mon.json", "--neuron-monitor-path", "/opt/aws/neuron/bin/neuron-monitor"]
