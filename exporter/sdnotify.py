"""Tells systemd the truth about the exporter (Type=notify): ready, what it is doing, alive, reloading.

The protocol is one datagram of `KEY=value` lines to the unix socket named by $NOTIFY_SOCKET (a path,
or an abstract name when it starts with `@`), so no dependency is needed. Without $NOTIFY_SOCKET
every call does nothing. The watchdog interval comes from $WATCHDOG_USEC (for this pid, when
$WATCHDOG_PID is set). Pings say the exporter itself is alive: they come from a task of the event loop
that serves /metrics, so a wedged loop stops them and systemd restarts the exporter after WatchdogSec.
They do not depend on neuron-monitor: while it cannot produce data (its driver not loaded after a
kernel update) a restart of the exporter would fix nothing, and would reset the self-metrics, blank
/metrics and restart the monitor-down alert's `for:` clock. neuron-monitor's health is in
neuron_monitor_up, /-/ready and the status line instead.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import anyio

from exporter.health import Health

log = logging.getLogger(__name__)

STATUS_EVERY = 1.0
"""How often the status line is reconsidered (sent only when it changes)."""


class Notifier:
    """A client of systemd's notification socket; inert when the exporter is not run by systemd."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if self.address and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            # Half the timeout, as sd_notify(3) advises, so one late ping is no restart.
            self.watchdog_interval = int(usec) / 1e6 / 2
        self._status = ""

    @property
    def enabled(self) -> bool:
        """Whether systemd listens."""
        return bool(self.address)

    def send(self, *fields: str) -> None:
        """One notification; a failure is logged, never raised (systemd going away must not kill us)."""
        if not self.address:
            return
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)

    def status(self, text: str) -> None:
        """STATUS=…, sent only when it changed."""
        if text != self._status:
            self._status = text
            self.send(f"STATUS={text}")

    def ready(self, status: str) -> None:
        self._status = status
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        # MONOTONIC_USEC lets systemd tell this reload from an older one (Type=notify-reload needs it).
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: neuron-monitor is being stopped")


def describe(health: Health, clock: Callable[[], float] = time.time) -> str:
    """What the exporter is doing, in one line for `systemctl status`."""
    if health.last_report_time is None:
        if health.start_failures and not health.child_running:
            return f"neuron-monitor cannot be started ({health.start_failures} attempts); retrying"
        return "waiting for the first report from neuron-monitor"
    age = clock() - health.last_report_time
    if not health.child_running and not health.replay:
        return f"neuron-monitor restarting ({health.restarts} restarts so far); last report {age:.0f} s ago"
    if not health.fresh():
        return f"data stale: no report from neuron-monitor for {age:.0f} s"
    return f"serving: {health.reports} reports, {health.restarts} neuron-monitor restarts"


async def keep_systemd_informed(notifier: Notifier, health: Health) -> None:
    """Runs for the daemon's life: the status line, and watchdog pings while the event loop runs."""
    if not notifier.enabled:
        return
    interval = (
        STATUS_EVERY if notifier.watchdog_interval is None else min(STATUS_EVERY, notifier.watchdog_interval)
    )
    last_ping = 0.0
    while True:
        notifier.status(describe(health))
        now = time.monotonic()
        due = notifier.watchdog_interval is not None and now - last_ping >= notifier.watchdog_interval
        if due:
            notifier.send("WATCHDOG=1")
            last_ping = now
        await anyio.sleep(interval)
