"""A real HTTP server that answers /metrics as Triton Inference Server does, at rates a test sets.

The families and labels are Triton's (docs/user_guide/metrics.md): per model and version,
nv_inference_request_success (requests, a batch-n request counted once), nv_inference_count
(inferences: every item of every batch), nv_inference_exec_count (batch executions: dynamic batching
folds several requests into one) and nv_inference_compute_infer_duration_us (compute time). Counters
grow with wall time at the given rates, so Prometheus's rate() reads them back exactly. With
`triton_namespace`, series carry Triton's own `namespace` label as --model-namespacing adds it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from tests.exposition_server import exposition_server


@dataclass(frozen=True)
class ModelLoad:
    """What one model of one Triton server does per second."""

    model: str
    requests: float
    inferences: float
    executions: float
    compute_us: float
    version: str = "1"
    triton_namespace: str | None = None


FAMILIES = (
    ("nv_inference_request_success", "Number of successful inference requests, all batch sizes", "requests"),
    ("nv_inference_count", "Number of inferences performed (does not include cached requests)", "inferences"),
    (
        "nv_inference_exec_count",
        "Number of model executions performed (does not include cached requests)",
        "executions",
    ),
    (
        "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds",
        "compute_us",
    ),
)


def exposition(loads: tuple[ModelLoad, ...], elapsed: float) -> bytes:
    lines = []
    for name, help_text, field in FAMILIES:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for load in loads:
            labels = f'model="{load.model}",version="{load.version}"'
            if load.triton_namespace is not None:
                labels = f'namespace="{load.triton_namespace}",{labels}'
            lines.append(f"{name}{{{labels}}} {getattr(load, field) * elapsed:.3f}")
    return ("\n".join(lines) + "\n").encode()


@contextmanager
def triton_server(*loads: ModelLoad) -> Iterator[str]:
    """Serve the models' counters, growing from now; yields host:port."""
    started = time.monotonic()
    with exposition_server(lambda: exposition(loads, time.monotonic() - started)) as address:
        yield address
