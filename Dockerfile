# neuron-exporter images, two targets:
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
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="neuron-exporter" \
      org.opencontainers.image.description="Prometheus exporter for AWS Inferentia and Trainium, fed by neuron-monitor" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="README.md"
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "neuron-exporter==${VERSION}" && rm -rf /wheels
COPY examples/mon.json /etc/neuron-exporter/mon.json
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/-/healthy', timeout=4)"]
# Exec form, so SIGTERM reaches the exporter, which stops neuron-monitor (if it runs one) and exits 0.
ENTRYPOINT ["neuron-exporter"]
CMD ["--input", "/run/neuron-monitor/reports.fifo", "--config", "/etc/neuron-exporter/mon.json"]

# --- standalone: the exporter runs neuron-monitor from aws-neuronx-tools --------------------------
FROM sidecar AS standalone
ARG NEURON_TOOLS_VERSION=2.*
USER root
COPY --from=neuron-apt-key /neuron-keyring.gpg /usr/share/keyrings/aws-neuron.gpg
RUN echo "deb [signed-by=/usr/share/keyrings/aws-neuron.gpg] https://apt.repos.neuron.amazonaws.com jammy main" \
      > /etc/apt/sources.list.d/neuron.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "aws-neuronx-tools=${NEURON_TOOLS_VERSION}" \
 && rm -rf /var/lib/apt/lists/*
USER 10001
ENTRYPOINT ["neuron-exporter"]
CMD ["--config", "/etc/neuron-exporter/mon.json", "--neuron-monitor-path", "/opt/aws/neuron/bin/neuron-monitor"]
