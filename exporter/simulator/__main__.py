"""`python -m exporter.simulator`: run the simulator as a drop-in neuron-monitor."""

from __future__ import annotations

import sys

from exporter.simulator.cli import main

sys.exit(main())
