"""The interval neuron-monitor actually reports at, next to the one its config asks for.

neuron-monitor has been seen to ignore a period it does not understand and report every 5 s
(SCHEMA.md §14). Freshness derived only from the configured period would then call every report
stale for most of its interval, and `neuron_monitor_up` and `/-/ready` would flap. So the gaps
between reports are measured: when the median of the last few is clearly longer than configured,
freshness and hang detection follow the measured interval (with one warning), and return to the
configured one when reports speed up again. A real gap adds no sample until it ends, so it still
turns data stale after `--stale-periods` measured intervals.
"""

from __future__ import annotations

import statistics
from collections import deque

WINDOW = 5
"""Gaps the measurement is the median of: one restart or one late report does not move it."""
SLOWER = 1.5
"""How much longer than configured the measured interval must be before freshness follows it."""


class Cadence:
    """Arrival times in, the report period to measure freshness in out."""

    configured: float
    period: float
    _last: float | None

    def __init__(self, configured: float) -> None:
        self._gaps: deque[float] = deque(maxlen=WINDOW)
        self.reset(configured)

    def reset(self, configured: float) -> None:
        """A new config (SIGHUP): forget the measurements, start from its period."""
        self.configured = self.period = configured
        self._last = None
        self._gaps.clear()

    def observe(self, at: float) -> bool:
        """A report arrived at `at` (seconds); True when the period to use changed with it."""
        last, self._last = self._last, at
        if last is None or at <= last:
            return False
        self._gaps.append(at - last)
        if len(self._gaps) < 3:
            return False
        measured = statistics.median(self._gaps)
        period = measured if measured > self.configured * SLOWER else self.configured
        if period == self.period or (period != self.configured and abs(period - self.period) < 0.1 * period):
            return False
        self.period = period
        return True

    @property
    def slower_than_configured(self) -> bool:
        """Whether freshness follows a measured interval rather than the configured one."""
        return self.period != self.configured
