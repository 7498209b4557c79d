"""The web guard's pieces that depend on time, driven by an injected clock."""

from __future__ import annotations

from exporter.web.webconfig import RateLimit
from exporter.web.webguard import TokenBucket


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_one_token_per_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(RateLimit(interval=1.0, burst=3), clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.99
    assert not bucket.take()
    clock.now += 0.02
    assert [bucket.take(), bucket.take()] == [True, False]


def test_after_an_idle_hour_the_bucket_admits_its_burst_and_no_more() -> None:
    """An uncapped bucket would admit 3,603 requests here: one per idle second plus the burst."""
    clock = Clock()
    bucket = TokenBucket(RateLimit(interval=1.0, burst=3), clock)
    assert bucket.take()
    clock.now += 3600
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
