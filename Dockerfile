# neuron-exporter image for the Kubernetes DaemonSet. neuron-monitor itself comes from AWS's
# aws-neuronx-tools package, which the base stage of your choice must provide (see README).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home exporter
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY examples/mon.json /etc/neuron-exporter/mon.json
USER 10001
EXPOSE 8000
# Exec form, so SIGTERM reaches the exporter, which stops neuron-monitor and exits 0.
ENTRYPOINT ["neuron-exporter", "--config", "/etc/neuron-exporter/mon.json"]
