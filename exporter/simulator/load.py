"""Deterministic randomness, the emission schedule and each runtime's load pattern.

Every random value is drawn from a generator seeded by (seed, what, who, when), never from the clock, so
any report can be computed on its own and `--count N --no-sleep` prints the same bytes on every run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of a few integers (splitmix64 steps), stable across platforms and Python runs."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        z = (state + (part & _MASK) + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        state = z ^ (z >> 31)
    return state


def rng(*parts: int) -> random.Random:
    """A generator seeded from the given integers; same integers, same stream."""
    return random.Random(mix(*parts))


def tidy(value: float) -> float | int:
    """A whole number as an int, like neuron-monitor prints `"idle": 100` (SCHEMA.md §3)."""
    return int(value) if value.is_integer() else value


def round64(value: float) -> int:
    """Bytes rounded down to a 64-byte multiple, as allocations are."""
    return max(0, int(value)) // 64 * 64


_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Schedule:
    """When lines are printed and when a group of a given period is refreshed.

    Line k is printed at `first + k * step` seconds after start. A group of period p is due on an
    absolute grid (`first + n * p`, n = 1, 2, ...) and refreshed by the first line at or after its due
    time, so a 1.5 s group under a 1 s step alternates 2 s and 1 s samples without drifting. Refresh 0
    is the start-up sample in line 0, which covers only `first` seconds (~0.06 s in real captures).
    """

    step: float
    first: float

    def line_time(self, line: int) -> float:
        """Seconds after start at which line `line` is printed."""
        return self.first + line * self.step

    def refresh_line(self, period: float, refresh: int) -> int:
        """The line that carries refresh number `refresh` of a group with this period."""
        if refresh <= 0:
            return 0
        return max(0, math.ceil(refresh * period / self.step - _EPS))

    def refresh_of(self, period: float, line: int) -> int:
        """The latest refresh number of a group with this period at line `line`."""
        refresh = max(0, math.floor(line * self.step / period + _EPS))
        # Make the two functions exact inverses whatever the float rounding did.
        while self.refresh_line(period, refresh + 1) <= line:
            refresh += 1
        while refresh > 0 and self.refresh_line(period, refresh) > line:
            refresh -= 1
        return refresh

    def covered(self, period: float, refresh: int) -> float:
        """Nominal seconds covered by refresh `refresh` (since the previous one, or since start)."""
        if refresh <= 0:
            return self.first
        lines = self.refresh_line(period, refresh) - self.refresh_line(period, refresh - 1)
        return lines * self.step


@dataclass(frozen=True, slots=True)
class LoadPattern:
    """A runtime's activity over time: a slow sine wave with idle phases in which nothing executes."""

    wave_period: float
    phase: float
    idle_cycle: float
    idle_fraction: float
    idle_offset: float

    @classmethod
    def draw(cls, gen: random.Random, first: bool) -> LoadPattern:
        """A random pattern; the first runtime starts busy so a short run always shows some work."""
        cycle = gen.uniform(60.0, 180.0)
        return cls(
            wave_period=gen.uniform(40.0, 150.0),
            phase=gen.uniform(0.0, 2 * math.pi),
            idle_cycle=cycle,
            idle_fraction=gen.uniform(0.15, 0.3),
            idle_offset=0.0 if first else gen.uniform(0.0, cycle),
        )

    def busy(self, t: float) -> bool:
        """Whether the application executes anything at time t (idle phases come last in each cycle)."""
        position = (t + self.idle_offset) % self.idle_cycle
        return position < (1.0 - self.idle_fraction) * self.idle_cycle

    def activity(self, t: float) -> float:
        """Load at time t between 0 (idle) and 1 (flat out)."""
        if not self.busy(t):
            return 0.0
        return 0.55 + 0.45 * math.sin(2 * math.pi * t / self.wave_period + self.phase)


def split_cores(cores: int, runtimes: int) -> list[tuple[int, ...]]:
    """Cores of each runtime: contiguous blocks when they suffice, else runtime i shares core i % cores."""
    if runtimes <= cores:
        base, extra = divmod(cores, runtimes) if runtimes else (0, 0)
        blocks: list[tuple[int, ...]] = []
        start = 0
        for i in range(runtimes):
            size = base + (1 if i < extra else 0)
            blocks.append(tuple(range(start, start + size)))
            start += size
        return blocks
    return [(i % cores,) for i in range(runtimes)]
