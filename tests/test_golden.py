"""Golden expositions: every fixture report replayed through the real CLI, the exact /metrics text out.

Inputs are tests/fixtures/reports/*.jsonl (every sample of ../shared/neuron-monitor/samples, and
simulator captures); outputs are tests/fixtures/metrics/*.prom. The values that depend on the clock,
the last report's timestamp and the pod mapping's age, are replaced by 0 before comparing.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.kubelet import kubelet, pod

FIXTURES = Path(__file__).parent / "fixtures"
REPORTS = sorted((FIXTURES / "reports").glob("*.jsonl"))
METRICS = FIXTURES / "metrics"
TIMESTAMP = re.compile(
    r"^(neuron_exporter_last_report_timestamp_seconds|neuron_exporter_kubelet_mapping_age_seconds) \S+$",
    re.MULTILINE,
)
"""The values that depend on the clock: the last report's time, and the pod mapping's age."""

VARIANTS = {
    "": (),
    ".optin": ("--collector.memory_used.per-model", "--collector.vcpu_usage.per-vcpu"),
    ".aws": ("--compat", "aws"),
}
"""Golden file suffix -> extra flags. Opt-in and AWS variants run on the richer inputs only."""

RICH_INPUTS = ("real__", "sim-", "docs-current__02", "docs-current__09")
KUBELET = ".kubelet"
"""The variant with pod attribution: the CLI asks a real PodResources server (KUBELET_PODS) once."""
KUBELET_INPUTS = ("sim-inf2.48xlarge.jsonl", "sim-trn1.32xlarge.jsonl", "sim-trn2.48xlarge.jsonl")
KUBELET_PODS = [
    pod("ml", "a-0", main={"aws.amazon.com/neuron": ["0"]}),
    pod("ml", "b-0", worker={"aws.amazon.com/neuroncore": ["8", "9", "nc-x"]}, logs={}),
    pod("ml", "c-0", main={"aws.amazon.com/neurondevice": ["5"]}),
    pod("kube-system", "coredns-0", coredns={"example.com/other": ["0"]}),
]


def cases() -> list[tuple[Path, str]]:
    out = []
    for report in REPORTS:
        for suffix in VARIANTS:
            if suffix and not report.name.startswith(RICH_INPUTS):
                continue
            out.append((report, suffix))
        if report.name in KUBELET_INPUTS:
            out.append((report, KUBELET))
    return out


@pytest.fixture(scope="module")
def pod_resources() -> Iterator[Path]:
    """The socket of a PodResources server answering KUBELET_PODS."""
    with kubelet() as server:
        server.pods = KUBELET_PODS
        yield server.socket


def replay_once(report: Path, *flags: str) -> str:
    """The exposition `neuron-exporter --replay REPORT --once` prints, timestamp normalised."""
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", "--replay", str(report), "--once", *flags],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return TIMESTAMP.sub(r"\1 0", result.stdout.decode())


@pytest.mark.parametrize(
    ("report", "suffix"), cases(), ids=lambda v: v.stem if isinstance(v, Path) else v or "default"
)
def test_golden_exposition(
    report: Path, suffix: str, update_golden: bool, request: pytest.FixtureRequest
) -> None:
    if suffix == KUBELET:
        socket = request.getfixturevalue("pod_resources")
        flags: tuple[str, ...] = ("--kubernetes", "--kubernetes.pod-resources-socket", str(socket))
    else:
        flags = VARIANTS[suffix]
    text = replay_once(report, *flags)
    golden = METRICS / f"{report.stem}{suffix}.prom"
    if update_golden:
        METRICS.mkdir(exist_ok=True)
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden.name}; run pytest --update-golden and review it"
    assert text == golden.read_text(), f"{golden.name} differs; review, then run pytest --update-golden"
    list(text_string_to_metric_families(text))  # parses back


def test_every_golden_file_has_an_input() -> None:
    expected = {f"{report.stem}{suffix}.prom" for report, suffix in cases()}
    assert {p.name for p in METRICS.glob("*.prom")} == expected


def test_promtool_finds_nothing_to_complain_about() -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: `make tools` installs Debian's prometheus package"
    for golden in sorted(METRICS.glob("*.prom")):
        if golden.name.endswith(".aws.prom"):
            continue  # AWS's names are reproduced as they are, lint findings included
        result = subprocess.run(
            [promtool, "check", "metrics"], input=golden.read_bytes(), capture_output=True, timeout=60
        )
        assert result.returncode == 0 and not result.stdout.strip() and not result.stderr.strip(), (
            f"{golden.name}: {result.stdout.decode()}{result.stderr.decode()}"
        )


@pytest.mark.parametrize("report", sorted((FIXTURES / "reports").glob("sim-*.jsonl")), ids=lambda p: p.stem)
def test_simulator_fixtures_are_current(report: Path) -> None:
    """The simulator is deterministic and its committed captures match it (rebuild: build_fixtures.py)."""
    sys.path.insert(0, str(FIXTURES))
    from build_fixtures import simulator_capture

    assert simulator_capture(report.stem.removeprefix("sim-")) == report.read_bytes()
