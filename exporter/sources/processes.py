"""Which model a Neuron runtime process serves, read from its command line in /proc.

Triton Inference Server's Python backend runs each model instance in its own stub process, started
(python_backend src/stub_launcher.cc) as

    triton_python_backend_stub <repository>/<model>/<version>/model.py <shm region> <shm size>
        <shm growth> <parent pid> <python lib> <ipc handle> <instance name>

so the model, its version and the instance name are in /proc/<pid>/cmdline of the process that
neuron-monitor reports as a runtime. Reading it needs the host's PID namespace (the DaemonSet's
hostPID), which both Kubernetes overlays have. A process that is gone, or any other program, has no
model; one whose command line cannot be read is reported as unreadable, for a self-metric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

STUB = "triton_python_backend_stub"
STUB_ARGS = 9
"""argv of a stub: the program, the model path, six launcher arguments and the instance name."""


@dataclass(frozen=True, slots=True)
class ServedModel:
    """A model instance one process serves."""

    server: str
    model: str
    version: str
    instance: str


class Unreadable:
    """The process exists but its command line could not be read (permissions, a broken /proc)."""


UNREADABLE = Unreadable()


def served_model(pid: int, procfs: Path) -> ServedModel | Unreadable | None:
    """The model process `pid` serves, None if it serves none we recognise or is gone."""
    try:
        raw = (procfs / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return UNREADABLE
    return from_argv([arg.decode("utf-8", "replace") for arg in raw.split(b"\0") if arg])


def from_argv(argv: list[str]) -> ServedModel | None:
    """A Triton Python-backend stub's model, version and instance; None for any other command line."""
    if len(argv) != STUB_ARGS or os.path.basename(argv[0]) != STUB:
        return None
    parts = Path(argv[1]).parts
    if len(parts) < 3 or parts[-1] != "model.py":
        return None
    return ServedModel(server="triton", model=parts[-3], version=parts[-2], instance=argv[-1])
