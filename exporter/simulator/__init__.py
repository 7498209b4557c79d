"""The built-in neuron-monitor stand-in: instance shapes, moving load, loaded models and fault injection.

`python -m exporter.simulator -c mon.json` prints what neuron-monitor would; `Simulator` builds the same
reports in-process for tests and benchmarks.
"""

from __future__ import annotations

from exporter.simulator.config import ConfigError, SimulatorConfig, load_config, parse_config
from exporter.simulator.shapes import DEFAULT_SHAPE, SHAPES, Shape
from exporter.simulator.simulator import MonitorConfigLike, Simulator

__all__ = [
    "DEFAULT_SHAPE",
    "SHAPES",
    "ConfigError",
    "MonitorConfigLike",
    "Shape",
    "Simulator",
    "SimulatorConfig",
    "load_config",
    "parse_config",
]
