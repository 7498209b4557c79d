# The two entry points a fresh clone needs: `make demo` and `make test`. Each installs what it uses.
VENV ?= .venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
BIN := $(VENV)/bin

.PHONY: install tools demo test lint docs bench dashboards alerts manifests protos image

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/.installed

# From Debian's packages: promtool and the Prometheus server (tests lint the exposition with promtool
# and have the real server scrape the exporter over TLS); podman with runc and mmdebstrap (tests build
# the image from a Debian base made here and run it as the overlays do).
TOOLS := promtool prometheus podman runc mmdebstrap
tools:
	@for tool in $(TOOLS); do command -v $$tool >/dev/null || missing=1; done; [ -z "$$missing" ] || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	  --no-install-recommends prometheus podman runc mmdebstrap >/dev/null; }

demo: install
	$(BIN)/neuron-exporter --config examples/mon.json --simulate trn2.48xlarge

lint: install
	$(BIN)/ruff check exporter tests bench dashboards alerts deploy
	$(BIN)/mypy

test: install tools lint
	$(BIN)/pytest

docs: install
	$(BIN)/python -m exporter.docs --write README.md

# Grafana dashboards (grafanalib -> dashboards/*.json) and Prometheus rules (-> alerts/*.rules.yml),
# both generated from code that takes metric names from the collectors; tests fail if either is stale.
dashboards: install
	$(BIN)/python -m dashboards.generate

alerts: install
	$(BIN)/python -m alerts.rules --write

# The Kubernetes objects generated from alerts/, dashboards/ and examples/ (PrometheusRule, dashboards
# ConfigMap, neuron-monitor config); run after `make alerts` or `make dashboards`.
manifests: install
	$(BIN)/python -m deploy.kubernetes.generate

# The kubelet PodResources messages, generated from exporter/sources/kubelet/podresources.proto.
protos: install
	$(BIN)/python -m exporter.sources.kubelet.generate

bench: install
	$(BIN)/python bench/run.py --write bench/README.md

# Both image targets, labelled with the version in pyproject.toml and the git revision. ENGINE=podman
# works too; IMAGE names the repository to push to (ECR: <account>.dkr.ecr.<region>.amazonaws.com/neuron-exporter).
ENGINE ?= docker
IMAGE ?= neuron-exporter
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
image:
	for target in standalone sidecar; do $(ENGINE) build --target $$target \
	  --build-arg VERSION=$(VERSION) --build-arg REVISION=$$(git rev-parse HEAD) \
	  --build-arg SOURCE_URL=$$(git remote get-url origin 2>/dev/null || echo unknown) \
	  -t $(IMAGE):$(VERSION)-$$target . || exit 1; done
