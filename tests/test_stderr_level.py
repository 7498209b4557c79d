"""neuron-monitor's stderr keeps the level each line states."""

from __future__ import annotations

import logging

import pytest

from exporter.sources.stderr_level import stated_level


@pytest.mark.parametrize(
    ("line", "level"),
    [
        ('time="2026-01-01T00:00:00Z" level=error msg="no Neuron device found"', logging.ERROR),
        ("level=info msg=started period=1s", logging.INFO),
        ('level="warning" msg="slow read"', logging.WARNING),
        ("lvl=debug msg=x", logging.DEBUG),
        ("severity=FATAL msg=x", logging.CRITICAL),
        ("ERROR: cannot open /dev/neuron0", logging.ERROR),
        ("[info] collecting", logging.INFO),
        ("Warn something", logging.WARNING),
        ("disk on fire", logging.WARNING),
        ("the level=errors field is not a level", logging.WARNING),
        ("information is not a level word", logging.WARNING),
        ("", logging.WARNING),
    ],
)
def test_the_stated_level_or_a_warning(line: str, level: int) -> None:
    assert stated_level(line) == level
