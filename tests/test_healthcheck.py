"""The image's HEALTHCHECK follows the exporter's own listen address, TLS and basic auth."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.daemon import Daemon
from tests.prometheus import free_port
from tests.test_websecurity import PASSWORD, Pki, bcrypt_hash, full_config, pki, write_web_config  # noqa: F401

CAPTURE = Path(__file__).parent / "fixtures" / "reports" / "sim-inf1.xlarge.jsonl"


def healthcheck(pid: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.healthcheck", "--pid", str(pid)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("protection", ["none", "basic auth", "mTLS and basic auth"])
def test_healthy_wherever_and_however_it_listens(tmp_path: Path, pki: Pki, protection: str) -> None:  # noqa: F811
    """127.0.0.2 is not where the old fixed check looked; behind auth or TLS any HTTP answer is life."""
    flags: list[str] = ["--replay", str(CAPTURE)]
    if protection == "basic auth":
        flags += [
            "--web.config.file",
            str(write_web_config(tmp_path, f"basic_auth_users:\n  p: {bcrypt_hash(PASSWORD)}\n")),
        ]
    elif protection != "none":
        flags += ["--web.config.file", str(write_web_config(tmp_path, full_config(bcrypt_hash(PASSWORD))))]
    with Daemon(tmp_path, *flags, listen=f"127.0.0.2:{free_port()}") as daemon:
        result = healthcheck(daemon.proc.pid)
        assert result.returncode == 0, result.stderr
        pid = daemon.proc.pid
        assert daemon.stop() == 0
    result = healthcheck(pid)
    assert result.returncode == 1 and result.stderr.startswith("unhealthy: cannot read how process")


def test_a_process_that_does_not_answer_is_unhealthy(tmp_path: Path) -> None:
    port = free_port()
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--web.listen-address", f"127.0.0.1:{port}"]
    )
    try:
        result = healthcheck(sleeper.pid)
        assert (
            result.returncode == 1 and result.stderr == f"unhealthy: no HTTP answer from 127.0.0.1:{port}\n"
        )
    finally:
        sleeper.kill()
        sleeper.wait()
