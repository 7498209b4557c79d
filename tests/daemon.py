"""Runs the real neuron-exporter as a subprocess and talks to it over real HTTP, for end-to-end tests."""

from __future__ import annotations

import gzip
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")
PORT_LINE = re.compile(rb"serving /metrics on port (\d+)")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """Poll until `condition` returns something truthy, or fail after `timeout` seconds saying `what`."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop_process(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class Daemon:
    """`neuron-exporter ARGS --web.listen-address 127.0.0.1:0` with its log captured to a file."""

    def __init__(
        self,
        tmp_path: Path,
        *args: str,
        env: dict[str, str] | None = None,
        listen: str = "127.0.0.1:0",
        wrapper: tuple[str, ...] = (),
    ) -> None:
        """`wrapper` runs before the exporter's command (setpriv, to drop capabilities)."""
        command = [*wrapper, sys.executable, "-m", "exporter.cli", "--web.listen-address", listen]
        self._start(tmp_path, [*command, *args], {**os.environ, **(env or {})})

    def _start(self, tmp_path: Path, argv: list[str], env: dict[str, str], cwd: str | None = None) -> None:
        """Start the process with its stderr in exporter.log; the log is closed if the start fails."""
        self.log_path = tmp_path / "exporter.log"
        self._log = self.log_path.open("wb")
        try:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=self._log, stdin=subprocess.DEVNULL, env=env, cwd=cwd
            )
        except BaseException:
            self._log.close()
            raise
        self.port = 0

    def __enter__(self) -> Daemon:
        try:
            match = wait_for(lambda: PORT_LINE.search(self.log()) or self._died(), 30, "the daemon to listen")
        except BaseException:
            # __exit__ does not run when __enter__ fails: stop the process and close the log here.
            self.__exit__()
            raise
        self.port = int(match.group(1))
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        # SIGTERM first, so the daemon stops its neuron-monitor; a SIGKILL would orphan it.
        stop_process(self.proc, grace=10)
        self._log.close()

    def _died(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log().decode()}")

    def log(self) -> bytes:
        """Everything the daemon logged so far."""
        return self.log_path.read_bytes()

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """GET over HTTP; returns status, headers and the (decompressed) body, also for 4xx/5xx."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, head, body = response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            status, head, body = error.code, dict(error.headers), error.read()
        if head.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return status, head, body

    def metrics(self) -> str:
        """The /metrics text."""
        status, _, body = self.get("/metrics")
        assert status == 200
        return body.decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send a signal and wait for the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def sample_value(text: str, name: str, **labels: str) -> float | None:
    """The value of one series in an exposition, or None if it is absent."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None
