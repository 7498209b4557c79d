"""Claims the rest of the suite did not hold: each test here fails with the bug it names in place.

(Issue 12 tried each bug deliberately and the suite stayed green: a collector exception that spreads,
ECC counted twice on a repeated sample, a SIGHUP that keeps the old period's timeouts, `:8000` bound to
loopback only, and staleness several periods late.)
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from exporter.app import App
from exporter.cli import build_parser, settings_from_args
from exporter.collectors import COLLECTORS, Collector, Options
from exporter.collectors.base import Family, MetricSpec
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.model.state import State
from exporter.sources.supervisor import Supervisor
from tests.daemon import Daemon, sample_value
from tests.fakes import FRACTIONAL, simulator_monitor, write_config
from tests.prometheus import free_port
from tests.reports import report
from tests.test_state import Pipeline, labels


class Raising(Collector):
    name = "raising"
    description = "test: always fails"
    specs: ClassVar[tuple[MetricSpec, ...]] = (MetricSpec("x_broken", "gauge", "h", (), "-"),)

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        families["x_broken"].add({}, 1)
        raise RuntimeError("collector bug")


def test_a_raising_collector_costs_only_its_own_families() -> None:
    store, health = Store(State()), Health(stale_after=None, replay=True)
    collectors = [Raising(Options()), *(cls(Options()) for cls in COLLECTORS)]
    exposition = Exposition(NeuronCollector(store, health, collectors), process_metrics=False)
    for accept in (None, "application/openmetrics-text; version=1.0.0"):
        text = exposition.render(accept)[0].decode()
        assert "x_broken" not in text
        assert 'neuron_exporter_collector_success{collector="raising"} 0.0' in text
        assert 'neuron_exporter_collector_success{collector="info"} 1.0' in text
        assert "neuron_exporter_build_info" in text  # everything else is still served


def hw(count: int, period: float) -> dict[str, object]:
    return {
        "neuron_hw_counters": {
            "period": period,
            "neuron_devices": [{"neuron_device_index": 0, "mem_ecc_corrected": count}],
            "error": "",
        }
    }


def test_a_repeated_hw_counters_sample_is_not_counted_twice() -> None:
    p = Pipeline()
    p.feed(report(**hw(2, period=1.0231)))
    p.feed(report(**hw(2, period=1.0231)))  # not due in this line: repeated to the letter
    p.feed(report(**hw(3, period=0.9987)))
    assert p.samples("neuron_device_ecc_events_total") == {
        labels(event_type="mem_ecc_corrected", neuron_device="0"): 5
    }


def test_sighup_with_a_new_period_moves_the_staleness_and_hang_timeouts(tmp_path: Path) -> None:
    config = write_config(tmp_path, period="1s")
    settings = settings_from_args(
        build_parser().parse_args(["--config", str(config), "--simulate", "inf1.xlarge"])
    )
    app = App(settings)
    app.supervisor = Supervisor(
        settings.monitor_argv, app.ingestor, max_line_bytes=1024, hang_timeout=settings.hang_timeout
    )
    assert app.health.stale_after == 3.0 and app.supervisor.hang_timeout == 10.0
    config.write_text(config.read_text().replace('"period": "1s"', '"period": "4s"'))
    app.reload()
    assert app.health.stale_after == 12.0  # 3 periods of the new period
    assert app.supervisor.hang_timeout == 40.0  # 10 periods of it


def test_staleness_comes_after_stale_periods_periods_not_later(tmp_path: Path) -> None:
    config = write_config(tmp_path, period="0.5s")
    args = ["--config", str(config), FRACTIONAL, "--simulate", "inf1.xlarge", "--stale-periods", "3"]
    settings = settings_from_args(build_parser().parse_args(args))
    assert settings.stale_after == 1.5
    app = App(settings)
    assert app.health.stale_after == 1.5
    now = [1000.0]
    health = Health(stale_after=settings.stale_after, clock=lambda: now[0])
    health.last_report_time, health.child_running = 1000.0, True
    now[0] = 1001.49
    assert health.fresh() and health.up()
    now[0] = 1001.51
    assert not health.fresh() and not health.up()


def test_a_listen_address_without_host_listens_on_every_interface(tmp_path: Path) -> None:
    """`:PORT` must not mean loopback only: reach the daemon through 127.0.0.2, which a socket bound
    to 127.0.0.1 does not answer (still the loopback range, no traffic leaves the machine)."""
    port = free_port()
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge")
    config = write_config(tmp_path)
    with Daemon(
        tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor), listen=f":{port}"
    ) as daemon:
        for host in ("127.0.0.1", "127.0.0.2"):
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                assert sock.recv(64).startswith(b"HTTP/1.1 200"), host
        assert sample_value(daemon.metrics(), "neuron_exporter_build_info", version="0.1.0") == 1
