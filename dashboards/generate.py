"""Writes (or checks) dashboards/*.json from the grafanalib code beside it.

.venv/bin/python -m dashboards.generate          # make dashboards
.venv/bin/python -m dashboards.generate --check  # exit 1 if a committed JSON differs
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from grafanalib import core as g
from grafanalib._gen import DashboardEncoder

from dashboards import cost, fleet, node
from exporter.docs import generator_main

HERE = Path(__file__).resolve().parent
DASHBOARDS: dict[str, Callable[[], g.Dashboard]] = {
    "neuron-fleet.json": fleet.build,
    "neuron-node.json": node.build,
    "neuron-cost.json": cost.build,
}


def render(build: Callable[[], g.Dashboard]) -> str:
    """One dashboard as stable, importable JSON."""
    data = build().to_json_data()
    return json.dumps(data, cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def outputs() -> dict[Path, str]:
    """Every dashboard's JSON by the committed file it belongs in."""
    return {HERE / name: render(build) for name, build in DASHBOARDS.items()}


def main(argv: list[str] | None = None) -> int:
    """Write the dashboards' JSON, or (--check) exit 1 if a committed file is stale."""
    return generator_main("python -m dashboards.generate", outputs, "make dashboards", argv)


if __name__ == "__main__":
    sys.exit(main())
