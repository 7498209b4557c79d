"""A real Prometheus server (Debian's package) on loopback for tests: start it, wait for it, query it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Sequence
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


def static_job(
    name: str, targets: list[str], labels: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A scrape config of fixed targets, with target labels (prometheus-operator's, say) and options."""
    group: dict[str, Any] = {"targets": targets}
    if labels:
        group["labels"] = labels
    return {"job_name": name, "static_configs": [group], **extra}


class Prometheus:
    """`prometheus` scraping and evaluating rules every second.

    Either `targets` (one static job named `job`) or whole `scrape_configs`; `external_labels` and
    `remote_write` as in prometheus.yml; `receiver` turns on the remote-write receiver, so this
    server can stand in for a central store (Amazon Managed Prometheus, Mimir, Thanos).
    """

    def __init__(
        self,
        tmp_path: Path,
        targets: list[str] | None = None,
        rule_files: Sequence[Path] = (),
        job: str = "neuron-exporter",
        *,
        scrape_configs: list[dict[str, Any]] | None = None,
        external_labels: dict[str, str] | None = None,
        remote_write: list[dict[str, Any]] | None = None,
        receiver: bool = False,
    ) -> None:
        assert shutil.which("prometheus"), (
            "prometheus not found: `make tools` installs Debian's prometheus package"
        )
        self.dir = tmp_path
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
                **({"external_labels": external_labels} if external_labels else {}),
            },
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": scrape_configs
            if scrape_configs is not None
            else [static_job(job, targets or [])],
        }
        if remote_write:
            config["remote_write"] = remote_write
        path = tmp_path / "prometheus.yml"
        path.write_text(json.dumps(config, indent=1))  # JSON is YAML
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (tmp_path / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *(["--web.enable-remote-write-receiver"] if receiver else []),
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

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (or a one-element list for a scalar), now or `at` a Unix
        time; QueryError on an error."""
        params = {"query": expr, **({"time": f"{at:.3f}"} if at is not None else {})}
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode(params)
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

    def value(self, expr: str, at: float | None = None) -> float:
        """The single value of a query that must return exactly one sample."""
        result = self.query(expr, at)
        assert len(result) == 1, f"{len(result)} results for {expr}: {result}"
        return float(result[0]["value"][1])
