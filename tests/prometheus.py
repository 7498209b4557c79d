"""A real Prometheus server (Debian's package) on loopback for tests: start it, wait for it, query it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from tests.daemon import stop_process, wait_for


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class QueryError(AssertionError):
    """Prometheus answered a query with an error."""


class Prometheus:
    """`prometheus` scraping `targets` as job `job` every second, evaluating `rule_files` every second."""

    def __init__(
        self, tmp_path: Path, targets: list[str], rule_files: list[Path], job: str = "neuron-exporter"
    ) -> None:
        assert shutil.which("prometheus"), (
            "prometheus not found: `make tools` installs Debian's prometheus package"
        )
        self.dir = tmp_path
        config = tmp_path / "prometheus.yml"
        rules = "".join(f"  - {path}\n" for path in rule_files)
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}\n"
            f"rule_files:\n{rules}"
            "scrape_configs:\n"
            f"  - job_name: {job}\n"
            f"    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
        )
        self.port = free_port()
        self._log = (tmp_path / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=self._log,
            cwd=tmp_path,
        )

    def __enter__(self) -> Prometheus:
        try:
            wait_for(self._ready, 60, "Prometheus to be ready")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object | TracebackType) -> None:
        stop_process(self.proc, grace=30)
        self._log.close()

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{(self.dir / 'prometheus.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (or a one-element list for a scalar); QueryError on an error."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.load(error)
        if body.get("status") != "success":
            raise QueryError(f"{body.get('errorType')}: {body.get('error')}\n  in: {expr}")
        data = body["data"]
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result

    def value(self, expr: str) -> float:
        """The single value of a query that must return exactly one sample."""
        result = self.query(expr)
        assert len(result) == 1, f"{len(result)} results for {expr}: {result}"
        return float(result[0]["value"][1])
