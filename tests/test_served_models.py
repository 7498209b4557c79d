"""The model a runtime serves, read from real processes' command lines as Triton starts its stubs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.sources.processes import ServedModel, from_argv
from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import FRACTIONAL, simulator_monitor, write_config

STUB_TAIL = ("triton_shm_1", "1048576", "1048576", "4242", "/opt/tritonserver/backends/python", "0")
"""What the launcher passes between the model path and the instance name (region, sizes, parent, lib, ipc)."""


def stub_argv(stub: Path, repository: Path, model: str, version: str, instance: str) -> list[str]:
    return [str(stub), str(repository / model / version / "model.py"), *STUB_TAIL, instance]


def test_a_stub_command_line_names_model_version_and_instance() -> None:
    argv = stub_argv(
        Path("/opt/tritonserver/backends/python/triton_python_backend_stub"),
        Path("/models"),
        "vit",
        "3",
        "vit_0_1",
    )
    assert from_argv(argv) == ServedModel("triton", "vit", "3", "vit_0_1")
    assert from_argv(["/usr/bin/python3", "serve.py"]) is None
    assert from_argv([argv[0], "/models/vit/3/other.py", *argv[2:]]) is None
    assert from_argv(argv[:-1]) is None


@pytest.fixture
def stubs(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Two processes with a stub's command line: a harmless program (this Python, sleeping in
    model.py) under the stub's name, as the launcher execs it."""
    stub = tmp_path / "bin" / "triton_python_backend_stub"
    stub.parent.mkdir()
    stub.symlink_to(sys.executable)
    repository = tmp_path / "models"
    procs = {}
    for model, version in (("resnet", "1"), ("vit", "2")):
        path = repository / model / version / "model.py"
        path.parent.mkdir(parents=True)
        path.write_text("import time\ntime.sleep(600)\n")
        procs[model] = subprocess.Popen(stub_argv(stub, repository, model, version, f"{model}_0_0"))
    try:
        yield procs
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait(10)


def test_the_exposition_names_each_runtimes_model_and_forgets_a_process_that_exits(
    tmp_path: Path, stubs: dict[str, subprocess.Popen[bytes]]
) -> None:
    # A procfs where the stubs are the real ones, and one more runtime whose command line cannot be read.
    procfs = tmp_path / "proc"
    procfs.mkdir()
    for proc in stubs.values():
        (procfs / str(proc.pid)).symlink_to(f"/proc/{proc.pid}")
    broken = max(proc.pid for proc in stubs.values()) + 100_000
    (procfs / str(broken) / "cmdline").mkdir(parents=True)
    pids = [stubs["resnet"].pid, stubs["vit"].pid, broken]
    monitor = simulator_monitor(
        tmp_path, "--shape", "inf1.xlarge", "--runtimes", "3", "--pids", ",".join(map(str, pids))
    )
    config = write_config(tmp_path, period="0.2s")
    args = (
        "--config",
        str(config),
        FRACTIONAL,
        "--neuron-monitor-path",
        str(monitor),
        "--path.procfs",
        str(procfs),
    )
    with Daemon(tmp_path, *args) as exporter:

        def model_of(pid: int, model: str, version: str) -> float | None:
            labels = {
                "model": model,
                "model_instance": f"{model}_0_0",
                "model_version": version,
                "pid": str(pid),
                "runtime_tag": str(pid),
                "server": "triton",
            }
            return sample_value(exporter.metrics(), "neuron_runtime_served_model_info", **labels)

        wait_for(lambda: model_of(pids[0], "resnet", "1") == 1, 30, "the resnet stub's model")
        text = exporter.metrics()
        assert model_of(pids[1], "vit", "2") == 1
        assert sample_value(text, "neuron_exporter_process_inspection_failures") == 1
        assert f'pid="{broken}"' not in "".join(
            line for line in text.splitlines() if line.startswith("neuron_runtime_served_model_info")
        )
        # The vit stub exits: its runtime keeps being reported, its model labels go with the next report.
        stubs["vit"].kill()
        stubs["vit"].wait(10)
        wait_for(lambda: model_of(pids[1], "vit", "2") is None, 30, "the exited stub to lose its model")
        assert model_of(pids[0], "resnet", "1") == 1
        assert exporter.proc.poll() is None
        assert os.path.isdir(procfs / str(broken) / "cmdline")
