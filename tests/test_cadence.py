"""Freshness follows the interval neuron-monitor keeps, not only the one its config asks for."""

from __future__ import annotations

import time
from pathlib import Path

from exporter.cadence import Cadence
from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import fake_monitor, write_config


def test_the_configured_period_holds_until_reports_are_clearly_slower() -> None:
    cadence = Cadence(1.0)
    assert not any(cadence.observe(t) for t in (0.0, 1.0, 2.1, 3.0, 4.2))
    assert cadence.period == 1.0 and not cadence.slower_than_configured


def test_a_steady_slower_interval_is_followed_after_three_gaps_and_left_when_it_returns() -> None:
    cadence = Cadence(1.0)
    changes = [cadence.observe(t) for t in (0.0, 5.0, 10.0, 15.0)]
    assert changes == [False, False, False, True] and cadence.period == 5.0
    assert cadence.slower_than_configured
    assert not cadence.observe(20.02), "a small wobble is no change"
    back = [cadence.observe(t) for t in (21.0, 22.0, 23.0, 24.0)]
    assert back == [False, False, True, False] and cadence.period == 1.0


def test_one_long_gap_does_not_move_the_median() -> None:
    """A restart or a hang that ends adds one long gap; the interval measured stays the configured one."""
    cadence = Cadence(1.0)
    assert not any(cadence.observe(t) for t in (0.0, 1.0, 2.0, 3.0, 33.0, 34.0, 35.0))
    assert cadence.period == 1.0


def test_reset_starts_from_the_new_configured_period() -> None:
    cadence = Cadence(1.0)
    for t in (0.0, 5.0, 10.0, 15.0):
        cadence.observe(t)
    cadence.reset(2.0)
    assert cadence.period == cadence.configured == 2.0 and not cadence.observe(16.0)


def test_reports_every_5_s_under_a_1_s_config_stay_fresh_and_a_real_gap_still_goes_stale(
    tmp_path: Path,
) -> None:
    """neuron-monitor ignoring the config's "1s" and reporting every 5 s (SCHEMA.md §14): after one
    warning, readiness stays green between reports; when reports stop, data goes stale 3 periods of
    5 s after the last one, not 3 s and not never."""
    config = write_config(tmp_path, period="1s")
    actual = tmp_path / "actual.json"
    actual.write_text(config.read_text().replace('"period": "1s"', '"period": "5s"'))
    args = ["-m", "exporter.simulator", "--shape", "inf1.xlarge", "-c", str(actual), "--hang-after", "6"]
    monitor = fake_monitor(tmp_path, f"os.execv(sys.executable, [sys.executable, *{args!r}])")
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor)) as daemon:
        wait_for(lambda: b"not every 1 s as its config asks" in daemon.log(), 60, "the cadence warning")
        assert b"WARNING exporter.ingest: neuron-monitor reports every 5 s" in daemon.log()
        # From the warning until the last report and a little beyond it, readiness never fails.
        while (reports := sample_value(daemon.metrics(), "neuron_exporter_reports_total")) != 6:
            assert daemon.get("/-/ready")[0] == 200, f"stale between reports after {reports} reports"
            time.sleep(0.2)
        last_seen = sample_value(daemon.metrics(), "neuron_exporter_last_report_timestamp_seconds")
        assert last_seen is not None
        wait_for(lambda: daemon.get("/-/ready")[0] == 503, 30, "data to go stale once reports stop")
        stale_after = time.time() - last_seen
        assert 14.5 <= stale_after < 18, stale_after
        assert sample_value(daemon.metrics(), "neuron_monitor_up") == 0
        assert daemon.log().count(b"WARNING exporter.ingest: neuron-monitor reports every") == 1
