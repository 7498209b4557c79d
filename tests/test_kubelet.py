"""Pod attribution end to end: the real daemon, a real gRPC PodResources server, scrapes over HTTP."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon import Daemon, sample_value, wait_for
from tests.fakes import fake_monitor, write_config
from tests.kubelet import FakeKubelet, kubelet, pod
from tests.reports import core_counters, execution, memory, report, runtime
from tests.test_e2e import run_cli

CORE = "aws.amazon.com/neuroncore"
DEVICE = "aws.amazon.com/neuron"
LEGACY_DEVICE = "aws.amazon.com/neurondevice"
BERT = {"container": "server", "namespace": "ml", "pod": "bert-0"}
LLAMA = {"container": "main", "namespace": "ml", "pod": "llama-0"}
BERT_1 = {"container": "server", "namespace": "ml", "pod": "bert-1"}


def node_report() -> dict[str, object]:
    """Two devices of four cores; runtime 1001 on cores 0-1, 1002 on device 1, 1003 on core 2.

    neuron-monitor's own k8s info names core 0's pod differently from the kubelet and agrees on core 1.
    """
    doc = report(
        runtime(
            "1001",
            neuroncore_counters=core_counters({0: 50, 1: 40}),
            memory_used=memory({0: 10, 1: 10}),
            execution_stats=execution(10),
        ),
        runtime(
            "1002",
            neuroncore_counters=core_counters({c: 10 for c in range(4, 8)}),
            memory_used=memory({c: 10 for c in range(4, 8)}),
        ),
        runtime("1003", neuroncore_counters=core_counters({2: 30}), memory_used=memory({2: 10})),
        devices=2,
        cores_per_device=4,
    )
    doc["neuron_k8s_info"] = {
        "period": 1.0,
        "neuroncores_k8s_info": {
            "0": {"pod_name": "someone-else", "namespace": "ml", "container_name": ["x"]},
            "1": {"pod_name": "bert-0", "namespace": "ml", "container_name": ["server"]},
        },
        "neurondevices_k8s_info": {},
        "error": "",
    }
    return doc


def first_pods(server: FakeKubelet) -> None:
    server.pods = [
        pod("ml", "bert-0", server={CORE: ["0", "1"]}),
        pod("ml", "llama-0", main={DEVICE: ["1"]}, sidecar={}),
        pod("kube-system", "coredns", coredns={"example.com/other": ["x"]}),  # no Neuron resources
        pod("ml", "odd-0", worker={CORE: ["nc-3"]}),  # an ID that is not an index
    ]


def daemon_args(tmp_path: Path, source: str) -> list[str]:
    """Flags that feed node_report() through `source`: the child, --input or --replay."""
    line = json.dumps(node_report())
    config = str(write_config(tmp_path))
    if source == "child":
        monitor = fake_monitor(
            tmp_path, f"line = {line!r}\nwhile True:\n    print(line, flush=True)\n    time.sleep(0.2)"
        )
        return ["--config", config, "--neuron-monitor-path", str(monitor)]
    capture = tmp_path / "capture.jsonl"
    # --input follows a file from its end, like tail -F: feed() appends to it once the daemon reads.
    capture.write_text(f"{line}\n{line}\n" if source == "replay" else "")
    return ["--replay", str(capture)] if source == "replay" else ["--config", config, "--input", str(capture)]


def feed(tmp_path: Path, exporter: Daemon, source: str) -> None:
    """With --input, write the report where the daemon follows it, once it does."""
    if source == "input":
        wait_for(
            lambda: b"reading reports from" in exporter.log() or None, 30, "the daemon to follow its input"
        )
        with (tmp_path / "capture.jsonl").open("a") as capture:
            capture.write(json.dumps(node_report()) + "\n")


def attribution(server: FakeKubelet, *extra: str) -> list[str]:
    return [
        "--kubernetes",
        "--kubernetes.pod-resources-socket",
        str(server.socket),
        "--kubernetes.refresh-interval",
        "0.2s",
        "--kubernetes.timeout",
        "1s",
        *extra,
    ]


def scraped(exporter: Daemon, condition: Callable[[str], bool], what: str) -> str:
    """The first /metrics page that meets `condition` (bounded wait)."""
    return wait_for(lambda: text if condition(text := exporter.metrics()) else None, 30, what)


def expect(text: str, *series: tuple[str, dict[str, str], float]) -> None:
    """Each (name, exact labels, value) is on the page."""
    for name, labels, value in series:
        assert sample_value(text, name, **labels) == value, (name, labels)


def has(name: str, **labels: str) -> Callable[[str], bool]:
    return lambda text: sample_value(text, name, **labels) is not None


@pytest.mark.parametrize("source", ["child", "input", "replay"])
def test_the_kubelet_names_the_pod_of_every_core_and_runtime(tmp_path: Path, source: str) -> None:
    with kubelet() as server:
        first_pods(server)
        args = [*daemon_args(tmp_path, source), *attribution(server)]
        with Daemon(tmp_path, *args, env={"NODE_NAME": "ip-10-0-0-17.ec2.internal"}) as exporter:
            feed(tmp_path, exporter, source)
            text = scraped(
                exporter,
                lambda t: (
                    has("neuron_neuroncore_pod_info", neuroncore="4", **LLAMA)(t)
                    and has("neuron_runtime_info", pid="1001", runtime_tag="1001", **BERT)(t)
                ),
                "the mapping and a report",
            )
            # One _info series per allocated core; device grants stand for the device's four cores.
            info = {
                core: owner
                for core, owner in [("0", BERT), ("1", BERT), *((str(c), LLAMA) for c in range(4, 8))]
            }
            for core, owner in info.items():
                assert sample_value(text, "neuron_neuroncore_pod_info", neuroncore=core, **owner) == 1
            assert text.count("neuron_neuroncore_pod_info{") == len(info)  # nothing for coredns, odd-0
            assert sample_value(text, "neuron_device_pod_info", neuron_device="1", **LLAMA) == 1
            assert "coredns" not in text and "odd-0" not in text and "sidecar" not in text
            # Per-core and per-runtime series carry the owner themselves; core 2 has none.
            expect(
                text,
                (
                    "neuron_neuroncore_utilization_ratio",
                    {"neuroncore": "0", "runtime_tag": "1001", **BERT},
                    0.5,
                ),
                (
                    "neuron_neuroncore_utilization_ratio",
                    {"neuroncore": "5", "runtime_tag": "1002", **LLAMA},
                    0.1,
                ),
                ("neuron_neuroncore_utilization_ratio", {"neuroncore": "2", "runtime_tag": "1003"}, 0.3),
                ("neuron_runtime_info", {"pid": "1001", "runtime_tag": "1001", **BERT}, 1),
                ("neuron_runtime_info", {"pid": "1003", "runtime_tag": "1003"}, 1),
                ("neuron_execution_status_total", {"runtime_tag": "1001", "status": "completed", **BERT}, 10),
            )
            # The kubelet wins over neuron-monitor's k8s info, and the disagreement is counted.
            assert "someone-else" not in text
            assert sample_value(text, "neuron_exporter_pod_attribution_disagreements") == 1
            assert sample_value(text, "neuron_exporter_kubelet_unparsed_device_ids") == 1
            assert (sample_value(text, "neuron_exporter_kubelet_refreshes_total", result="success") or 0) >= 1
            assert sample_value(text, "neuron_exporter_kubelet_mapping_age_seconds") is not None
            assert sample_value(text, "neuron_kubernetes_node_info", node="ip-10-0-0-17.ec2.internal") == 1

            # Pods come and go: on the next refresh the old one's series are gone, the new one's there.
            server.pods = [
                pod("ml", "bert-1", server={CORE: ["2"]}),
                pod("ml", "llama-0", main={LEGACY_DEVICE: ["1"]}),
            ]
            text = scraped(
                exporter,
                lambda t: (
                    "bert-0" not in t and has("neuron_neuroncore_pod_info", neuroncore="2", **BERT_1)(t)
                ),
                "bert-0 to leave",
            )
            expect(
                text,
                (
                    "neuron_neuroncore_utilization_ratio",
                    {"neuroncore": "2", "runtime_tag": "1003", **BERT_1},
                    0.3,
                ),
                ("neuron_neuroncore_utilization_ratio", {"neuroncore": "0", "runtime_tag": "1001"}, 0.5),
            )
            assert sample_value(text, "neuron_neuroncore_pod_info", neuroncore="6", **LLAMA) == 1
            assert sample_value(text, "neuron_exporter_kubelet_unparsed_device_ids") == 0


def refreshes(exporter: Daemon, result: str) -> float:
    return sample_value(exporter.metrics(), "neuron_exporter_kubelet_refreshes_total", result=result) or 0


def wait_for_refresh(exporter: Daemon, result: str) -> None:
    """Until one more refresh has ended with `result` (bounded)."""
    before = refreshes(exporter, result)
    wait_for(lambda: refreshes(exporter, result) > before or None, 30, f"a {result} refresh")


def test_a_slow_failing_or_garbage_kubelet_keeps_the_last_mapping(tmp_path: Path) -> None:
    with kubelet() as server:
        first_pods(server)
        args = [*daemon_args(tmp_path, "child"), *attribution(server, "--kubernetes.keep-mapping", "10m")]
        with Daemon(tmp_path, *args) as exporter:
            scraped(exporter, has("neuron_neuroncore_pod_info", neuroncore="0", **BERT), "the mapping")
            for mode, result in (
                ("slow", "timeout"),
                ("garbage", "invalid"),
                ("error", "error"),
                ("down", "unavailable"),
            ):
                if mode == "down":
                    server.stop()
                server.mode = mode
                wait_for_refresh(exporter, result)
                # /metrics answers while the kubelet misbehaves, and still with the last good mapping.
                assert (
                    sample_value(exporter.metrics(), "neuron_neuroncore_pod_info", neuroncore="0", **BERT)
                    == 1
                )
            # The kubelet comes back with other pods: the client reconnects and the mapping follows.
            server.mode = "normal"
            server.pods = [pod("ml", "bert-1", server={CORE: ["0"]})]
            server.start()
            scraped(
                exporter,
                lambda t: (
                    "bert-0" not in t and has("neuron_neuroncore_pod_info", neuroncore="0", **BERT_1)(t)
                ),
                "the new mapping",
            )
            assert "kubelet PodResources" in exporter.log().decode()


def test_the_mapping_expires_when_the_kubelet_stays_away(tmp_path: Path) -> None:
    with kubelet() as server:
        first_pods(server)
        args = [*daemon_args(tmp_path, "child"), *attribution(server, "--kubernetes.keep-mapping", "1s")]
        with Daemon(tmp_path, *args) as exporter:
            scraped(exporter, has("neuron_neuroncore_pod_info", neuroncore="0", **BERT), "the mapping")
            server.stop()
            text = scraped(exporter, lambda t: "llama-0" not in t, "the mapping to expire")
            assert sample_value(text, "neuron_exporter_kubelet_mapping_age_seconds") is None
            assert sample_value(text, "neuron_exporter_pod_attribution_disagreements") is None
            # Back to neuron-monitor's own attribution, the only one left.
            assert (
                sample_value(
                    text,
                    "neuron_neuroncore_pod_info",
                    container="x",
                    namespace="ml",
                    neuroncore="0",
                    pod="someone-else",
                )
                == 1
            )
            # ... which labels the per-core series the same way the kubelet's did.
            owner = {"container": "x", "namespace": "ml", "pod": "someone-else"}
            assert (
                sample_value(
                    text, "neuron_neuroncore_utilization_ratio", neuroncore="0", runtime_tag="1001", **owner
                )
                == 0.5
            )
            assert (
                sample_value(text, "neuron_exporter_kubelet_refreshes_total", result="unavailable") or 0
            ) >= 1
            assert "pod attribution dropped" in exporter.log().decode()


@pytest.mark.parametrize(("flag", "attributed"), [(None, True), ("--no-kubernetes", False)])
def test_attribution_is_on_when_the_socket_exists_unless_turned_off(
    tmp_path: Path, flag: str | None, attributed: bool
) -> None:
    with kubelet() as server:
        first_pods(server)
        args = [*daemon_args(tmp_path, "replay"), "--kubernetes.pod-resources-socket", str(server.socket)]
        with Daemon(tmp_path, *args, *([flag] if flag else [])) as exporter:
            if attributed:
                scraped(exporter, has("neuron_neuroncore_pod_info", neuroncore="0", **BERT), "the mapping")
            else:
                text = exporter.metrics()
                assert "neuron_exporter_kubelet" not in text and "llama-0" not in text
                assert server.calls == 0


def test_without_a_socket_attribution_stays_off(tmp_path: Path) -> None:
    args = [
        *daemon_args(tmp_path, "replay"),
        "--kubernetes.pod-resources-socket",
        str(tmp_path / "missing.sock"),
    ]
    with Daemon(tmp_path, *args) as exporter:
        text = scraped(exporter, has("neuron_exporter_reports_total"), "a page")
        assert "neuron_exporter_kubelet" not in text
        assert "pod attribution" not in exporter.log().decode()


def test_bad_durations_are_usage_errors(tmp_path: Path) -> None:
    result = run_cli(*daemon_args(tmp_path, "replay"), "--kubernetes.timeout", "soon")
    assert result.returncode == 2
    assert "--kubernetes.timeout: duration 'soon' is not like" in result.stderr


NO_CAPABILITIES = ("setpriv", "--bounding-set=-all", "--inh-caps=-all", "--no-new-privs", "--")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv")
def test_root_without_any_capability_reads_a_root_only_socket(tmp_path: Path) -> None:
    """What the manifests run: UID 0 with every capability dropped, against a socket only root may use
    (the kubelet's is root's, mode 0600). Owning it is enough; no capability is needed."""
    with kubelet() as server:
        first_pods(server)
        server.socket.chmod(0o600)
        args = [*daemon_args(tmp_path, "replay"), *attribution(server)]
        with Daemon(tmp_path, *args, wrapper=NO_CAPABILITIES) as exporter:
            status = Path(f"/proc/{exporter.proc.pid}/status").read_text()
            assert re.search(r"^CapEff:\s+0+$", status, re.M) and re.search(r"^CapBnd:\s+0+$", status, re.M)
            text = scraped(
                exporter, has("neuron_neuroncore_pod_info", neuroncore="4", **LLAMA), "the mapping"
            )
            assert sample_value(text, "neuron_exporter_kubelet_refreshes_total", result="success")
