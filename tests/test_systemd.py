"""The systemd unit verifies and stays hardened; the real daemon speaks sd_notify to a socket we bind."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.fakes import FRACTIONAL, simulator_monitor, write_config

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "systemd" / "neuron-exporter.service"
MAX_EXPOSURE = 2.0


def systemd_analyze(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run([tool, *args], capture_output=True, text=True, timeout=60, cwd="/")


def test_the_unit_verifies(tmp_path: Path) -> None:
    """`systemd-analyze verify` checks every directive; it also wants ExecStart's binary to exist, so
    the copy under test points at this checkout's neuron-exporter instead of /opt/neuron-exporter."""
    executable = Path(sys.executable).with_name("neuron-exporter")
    assert executable.exists()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/neuron-exporter/bin/neuron-exporter", str(executable)))
    result = systemd_analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert "neuron-exporter.service" not in result.stderr, result.stderr


def test_the_unit_scores_at_most_2_0_exposure() -> None:
    result = systemd_analyze("security", "--offline=yes", str(UNIT))
    match = re.search(r"Overall exposure level for neuron-exporter\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_every_relaxation_is_explained() -> None:
    """The settings that open something up carry a comment naming the neuron-monitor need they serve."""
    text = UNIT.read_text()
    for setting, reason in (
        ("PrivateDevices=no", "/dev/neuron"),
        ("DeviceAllow=char-neuron rw", "neuron"),
        ("ProtectProc=default", "/proc/<pid>/stat"),
        ("ProcSubset=all", "/proc/stat"),
        ("SupplementaryGroups=neuron", "group"),
        ("RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "unix"),
    ):
        before = text.split(setting)[0].rsplit("\n\n", 1)[-1]
        assert setting in text and reason in before, setting


class NotifySocket:
    """A unix datagram socket bound where $NOTIFY_SOCKET will point, reading what the daemon says."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[dict[str, str]] = []

    def _next(self, deadline: float) -> dict[str, str] | None:
        """The next datagram as KEY=value pairs, or None once `deadline` passed without one."""
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            message = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            self.messages.append(message)
            return message
        return None

    def receive(self, until: Callable[[dict[str, str]], bool], timeout: float, what: str) -> dict[str, str]:
        """Read datagrams until one satisfies `until`; fail after `timeout` seconds saying `what`."""
        deadline = time.monotonic() + timeout
        while (message := self._next(deadline)) is not None:
            if until(message):
                return message
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; got {self.messages[-10:]}")

    def during(self, seconds: float) -> list[dict[str, str]]:
        """Everything received in the next `seconds` (for what must not arrive)."""
        end = time.monotonic() + seconds
        got = []
        while (message := self._next(end)) is not None:
            got.append(message)
        return got


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, NotifySocket]]:
    if request.param == "path":
        path = str(tmp_path_factory.mktemp("notify") / "notify.sock")
        env_value, address = path, path
    else:
        name = f"neuron-exporter-test-{id(request)}"
        env_value, address = f"@{name}", "\0" + name
    listener = NotifySocket(address)
    try:
        yield env_value, listener
    finally:
        listener.sock.close()


def test_the_daemon_tells_systemd_what_it_does(
    tmp_path: Path, notify_socket: tuple[str, NotifySocket]
) -> None:
    """READY once serving with neuron-monitor started, STATUS lines, WATCHDOG while reports arrive and
    still once they stop (the exporter is alive; neuron-monitor's trouble is in the status line),
    RELOADING then READY around SIGHUP, STOPPING on SIGTERM."""
    env_value, listener = notify_socket
    # Reports every 0.2 s; after 30 of them the simulator goes silent (hangs), which the exporter only
    # notices as a hang after 5 s, while the data is stale after 0.6 s.
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge", "--hang-after", "30")
    config = write_config(tmp_path, period="0.2s")
    env = {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "1000000"}  # a ping every 0.5 s
    with Daemon(
        tmp_path, "--config", str(config), FRACTIONAL, "--neuron-monitor-path", str(monitor), env=env
    ) as daemon:
        ready = listener.receive(lambda m: m.get("READY") == "1", 30, "READY=1")
        assert ready["STATUS"]
        listener.receive(lambda m: m.get("WATCHDOG") == "1", 10, "a watchdog ping while reports arrive")
        listener.receive(lambda m: m.get("STATUS", "").startswith("serving"), 10, "STATUS=serving")
        listener.receive(lambda m: m.get("STATUS", "").startswith("data stale"), 20, "STATUS=data stale")
        stale = listener.during(1.5)  # three watchdog intervals, still short of the 5 s hang timeout
        assert len([m for m in stale if m.get("WATCHDOG") == "1"]) >= 2, stale
        daemon.proc.send_signal(signal.SIGHUP)
        listener.receive(lambda m: m.get("RELOADING") == "1", 10, "RELOADING=1")
        assert int(listener.messages[-1]["MONOTONIC_USEC"]) > 0
        listener.receive(lambda m: m.get("READY") == "1", 10, "READY=1 after the reload")
        assert daemon.stop() == 0
        listener.receive(lambda m: m.get("STOPPING") == "1", 10, "STOPPING=1")


def test_without_notify_socket_nothing_is_sent(tmp_path: Path) -> None:
    """Outside systemd the notifier is inert (the other tests run the daemon without $NOTIFY_SOCKET)."""
    from exporter.sdnotify import Notifier

    notifier = Notifier({"WATCHDOG_USEC": "1000000"})
    assert not notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("x")  # no socket, no error


def test_the_watchdog_pings_at_half_of_watchdog_usec_read_as_microseconds(
    tmp_path: Path, notify_socket: tuple[str, NotifySocket]
) -> None:
    """WATCHDOG_USEC=1000000 is one second: a ping every 0.5 s, so six in a three-second window.

    Misread as milliseconds it would be one ping every 500 s, which the first ping alone cannot show.
    The window allows one ping more or less for where its edges fall and for a loaded machine.
    """
    env_value, listener = notify_socket
    monitor = simulator_monitor(tmp_path, "--shape", "inf1.xlarge")
    config = write_config(tmp_path, period="0.2s")
    env = {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "1000000"}
    with Daemon(
        tmp_path, "--config", str(config), FRACTIONAL, "--neuron-monitor-path", str(monitor), env=env
    ) as daemon:
        listener.receive(lambda m: m.get("WATCHDOG") == "1", 30, "a first watchdog ping")
        pings = [m for m in listener.during(3.0) if m.get("WATCHDOG") == "1"]
        assert 5 <= len(pings) <= 7, len(pings)
        assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("usec", "interval"), [("1000000", 0.5), ("30000000", 15.0), ("0", None), ("1e6", None)]
)
def test_the_watchdog_interval_is_half_the_timeout_in_microseconds(usec: str, interval: float | None) -> None:
    from exporter.sdnotify import Notifier

    assert Notifier({"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": usec}).watchdog_interval == interval


def test_the_exporter_keeps_feeding_the_watchdog_while_neuron_monitor_cannot_start(
    tmp_path: Path, notify_socket: tuple[str, NotifySocket]
) -> None:
    """A neuron-monitor that exits at once (no Neuron device) must not get the exporter killed by
    systemd's watchdog: pings go on at their interval, the status line says what is wrong."""
    env_value, listener = notify_socket
    monitor = simulator_monitor(tmp_path, "--exit-code-at-start", "1")
    env = {"NOTIFY_SOCKET": env_value, "WATCHDOG_USEC": "1000000"}
    config = write_config(tmp_path)
    with Daemon(tmp_path, "--config", str(config), "--neuron-monitor-path", str(monitor), env=env) as daemon:
        listener.receive(lambda m: m.get("READY") == "1", 30, "READY=1")
        pings = [m for m in listener.during(3.0) if m.get("WATCHDOG") == "1"]
        assert 5 <= len(pings) <= 7, len(pings)
        statuses = [m["STATUS"] for m in listener.messages if "STATUS" in m]
        assert any("neuron-monitor" in s and not s.startswith("serving") for s in statuses), statuses
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0


def test_the_install_steps_create_every_group_the_unit_needs_before_starting_it() -> None:
    """SupplementaryGroups= names a group a stock node may lack (216/GROUP at start otherwise)."""
    groups = re.findall(r"^SupplementaryGroups=(.+)$", UNIT.read_text(), re.MULTILINE)
    readme = (UNIT.parents[1] / "README.md").read_text()
    block = (
        readme.split("### systemd on a plain EC2 instance", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    )
    for group in " ".join(groups).split():
        created = block.find(f"getent group {group} >/dev/null || groupadd --system {group}")
        assert created != -1, f"the README's install steps do not create group {group}"
        assert created < block.find("systemctl daemon-reload"), "the group must exist before the unit starts"
    assert "python3.11" in block and "Amazon Linux 2023" in block and "Ubuntu" in block
