"""neuron-exporter: a Prometheus exporter for AWS Inferentia and Trainium nodes, fed by neuron-monitor."""

__version__ = "0.1.0"
