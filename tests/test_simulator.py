"""The built-in neuron-monitor simulator: shapes, config handling, report contents, determinism, faults."""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from exporter.simulator import SHAPES, ConfigError, Simulator, parse_config
from exporter.simulator.config import parse_period

REPO = Path(__file__).resolve().parents[1]
ALL_RUNTIME = ["execution_stats", "memory_used", "neuron_runtime_vcpu_usage", "neuroncore_counters"]
ALL_SYSTEM = ["memory_info", "neuron_hw_counters", "vcpu_usage"]


def config(
    period: str = "1s", runtime: list[str] | None = None, system: list[str] | None = None
) -> dict[str, Any]:
    """A neuron-monitor config with the given groups (all of them by default)."""
    return {
        "period": period,
        "neuron_runtimes": [
            {
                "tag_filter": ".*",
                "metrics": [{"type": t} for t in (ALL_RUNTIME if runtime is None else runtime)],
            }
        ],
        "system_metrics": [{"type": t} for t in (ALL_SYSTEM if system is None else system)],
    }


def write(tmp_path: Path, data: dict[str, Any]) -> str:
    path = tmp_path / "mon.json"
    path.write_text(json.dumps(data))
    return str(path)


def sim_cmd(*flags: str) -> list[str]:
    return [sys.executable, "-m", "exporter.simulator", *flags]


def run_sim(*flags: str, timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(sim_cmd(*flags), capture_output=True, timeout=timeout, cwd=REPO)


def runtime_report(report: dict[str, Any], i: int = 0) -> dict[str, Any]:
    entry: dict[str, Any] = report["neuron_runtime_data"][i]
    groups: dict[str, Any] = entry["report"]
    return groups


# --- shapes -----------------------------------------------------------------------------------------

EXPECTED = {
    # shape: (devices, cores per device, vCPUs, device type, core version, lnc)
    "inf1.xlarge": (1, 4, 4, "inferentia", "v1", 1),
    "inf2.48xlarge": (12, 2, 192, "inferentia2", "v2", 1),
    "trn1.2xlarge": (1, 2, 8, "trainium", "v2", 1),
    "trn1.32xlarge": (16, 2, 128, "trainium", "v2", 1),
    "trn2.48xlarge": (16, 4, 192, "trainium2", "v3d", 2),
}


@pytest.mark.parametrize("shape", sorted(EXPECTED))
def test_shape_counts(shape: str) -> None:
    devices, per_device, vcpus, device_type, core_version, lnc = EXPECTED[shape]
    report = Simulator(shape, config(), runtimes=2).report(1)
    hw = report["neuron_hardware_info"]
    assert (hw["neuron_device_count"], hw["neuroncore_per_device_count"]) == (devices, per_device)
    assert (hw["neuron_device_type"], hw["neuroncore_version"], hw["logical_neuroncore_config"]) == (
        device_type,
        core_version,
        lnc,
    )
    assert hw["error"] == "" and report["instance_info"]["instance_type"] == shape
    assert report["instance_info"]["instance_id"].startswith("i-0")
    for i in range(2):
        rt = runtime_report(report, i)
        cores = rt["neuroncore_counters"]["neuroncores_in_use"]
        # Every runtime lists every core of the node, as in real captures.
        assert sorted(cores, key=int) == [str(c) for c in range(devices * per_device)]
        memory = rt["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"]["neuroncore_memory_usage"]
        assert set(memory) == set(cores)
        # Current tools print the rate as effective_flops and no flops (SCHEMA.md §14); inf1 has neither.
        assert all(("effective_flops" in c) == (shape != "inf1.xlarge") for c in cores.values())
        assert not any("flops" in c for c in cores.values())
    system = report["system_data"]
    assert len(system["vcpu_usage"]["usage_data"]) == vcpus
    assert [d["neuron_device_index"] for d in system["neuron_hw_counters"]["neuron_devices"]] == list(
        range(devices)
    )


def test_trn2_numbers() -> None:
    hw = Simulator("trn2.48xlarge").report(0)["neuron_hardware_info"]
    assert hw["neuron_device_memory_size"] == 103079215104 and hw["neuron_device_version"] == "v4"
    assert SHAPES["trn2.48xlarge"].cores == 64


def test_v3d_mean_of_physical_cores() -> None:
    sim = Simulator("trn2.48xlarge", config(), runtimes=3)
    busy = 0
    for index in range(6):
        cores = runtime_report(sim.report(index))["neuroncore_counters"]["neuroncores_in_use"]
        for key, core in cores.items():
            k = int(key)
            physical = core["v3d"]
            assert list(physical) == [f"nc_v3.{2 * k}", f"nc_v3.{2 * k + 1}"]
            values = [p["neuroncore_utilization"] for p in physical.values()]
            assert all(0 <= v <= 100 for v in values)
            assert core["neuroncore_utilization"] == pytest.approx(sum(values) / 2, abs=1e-9)
            busy += core["neuroncore_utilization"] > 0
    assert busy > 0


# --- config ---------------------------------------------------------------------------------------


def test_only_configured_groups() -> None:
    report = Simulator("inf1.xlarge", config(runtime=["execution_stats"], system=["memory_info"])).report(0)
    assert set(runtime_report(report)) == {"execution_stats"}
    assert set(report["system_data"]) == {"memory_info"}
    assert "neuron_k8s_info" not in report
    bare = Simulator("inf1.xlarge", config(system=[])).report(0)
    assert "system_data" not in bare and set(runtime_report(bare)) == set(ALL_RUNTIME)
    assert set(bare) == {"neuron_runtime_data", "instance_info", "neuron_hardware_info"}


def test_every_group_has_period_and_error() -> None:
    report = Simulator("trn1.2xlarge", config(), k8s=True).report(0)
    found = [*runtime_report(report).values(), *report["system_data"].values(), report["neuron_k8s_info"]]
    assert len(found) == 8
    for group in found:
        assert group["error"] == "" and 0 < group["period"] < 0.1  # the short start-up sample


def test_default_config_is_all_groups_every_5s() -> None:
    sim = Simulator("inf1.xlarge")
    assert sim.period == 5.0
    report = sim.report(2)
    assert set(runtime_report(report)) == set(ALL_RUNTIME) and set(report["system_data"]) == set(ALL_SYSTEM)
    assert runtime_report(report)["memory_used"]["period"] == pytest.approx(5.0, abs=0.05)


def test_tag_filter_whole_tag_and_first_matching_entry() -> None:
    cfg = {
        "neuron_runtimes": [
            {"tag_filter": "app_1", "metrics": [{"type": "neuroncore_counters"}]},
            {"tag_filter": "app_1.", "metrics": [{"type": "memory_used"}]},
            {"tag_filter": "app_[0-9]", "metrics": [{"type": "execution_stats"}]},
        ]
    }
    report = Simulator("trn1.32xlarge", cfg, runtimes=13, tagged=True).report(0)
    got = {e["neuron_runtime_tag"]: set(e["report"]) for e in report["neuron_runtime_data"]}
    assert got["app_1"] == {"neuroncore_counters"}
    assert got["app_12"] == {"memory_used"}  # "app_1" must match the whole tag, not a prefix
    assert got["app_0"] == got["app_9"] == {"execution_stats"}
    assert len(got) == 13
    untagged = Simulator("inf1.xlarge", {"neuron_runtimes": [{"tag_filter": "app_.*"}]}, runtimes=2).report(0)
    assert untagged["neuron_runtime_data"] == []
    pids = Simulator("inf1.xlarge", {"neuron_runtimes": [{}]}, runtimes=2).report(0)["neuron_runtime_data"]
    assert [e["neuron_runtime_tag"] for e in pids] == [str(e["pid"]) for e in pids]
    assert all("address" not in e and e["error"] == "" and e["report"] == {} for e in pids)


def test_period_override_and_repeats() -> None:
    cfg = {
        "period": "1s",
        "neuron_runtimes": [
            {
                "period": "3s",
                "metrics": [{"type": "execution_stats"}, {"type": "memory_used", "period": "2s"}],
            }
        ],
        "system_metrics": [{"type": "memory_info"}, {"type": "vcpu_usage", "period": "0.5m"}],
    }
    sim = Simulator("inf1.xlarge", cfg)
    assert sim.period == 1.0 and sim.line_time(3) - sim.line_time(2) == pytest.approx(1.0)
    reports = [sim.report(i) for i in range(8)]
    mem = [runtime_report(r)["memory_used"] for r in reports]
    execs = [runtime_report(r)["execution_stats"] for r in reports]
    info = [r["system_data"]["memory_info"] for r in reports]
    # A group that is not due repeats its previous sample exactly; a due one is new.
    assert mem[1] == mem[0] and mem[2] != mem[1] and mem[3] == mem[2] and mem[4] != mem[3]
    assert execs[1] == execs[0] == execs[2] and execs[3] != execs[2]
    assert all(info[i] != info[i + 1] for i in range(7))
    assert mem[2]["period"] == pytest.approx(2.0, abs=0.04)
    assert execs[3]["period"] == pytest.approx(3.0, abs=0.04)
    assert info[5]["period"] == pytest.approx(1.0, abs=0.04)
    assert reports[7]["system_data"]["vcpu_usage"] == reports[0]["system_data"]["vcpu_usage"]


def test_sub_second_period_sets_the_line_step() -> None:
    cfg = config("2s")
    cfg["system_metrics"].append({"type": "neuron_hw_counters", "period": "0.5s"})
    assert Simulator("inf1.xlarge", cfg).period == 0.5


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("0.5s", 0.5), ("2m", 120.0), ("1.5m", 90.0)])
def test_parse_period(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"period": "1h"},
        {"period": "0s"},
        {"period": 5},
        {"neuron_runtimes": [{"metrics": [{"type": "inference_stats"}]}]},
        {"neuron_runtimes": [{"tag_filter": "("}]},
        {"system_metrics": [{"type": "memory_used"}]},
        {"system_metrics": {"type": "memory_info"}},
    ],
)
def test_invalid_configs(bad: Any) -> None:
    with pytest.raises(ConfigError):
        parse_config(bad)


def test_k8s_info() -> None:
    report = Simulator("trn1.32xlarge", config(), runtimes=2, k8s=True).report(0)
    k8s = report["neuron_k8s_info"]
    assert sorted(k8s["neuroncores_k8s_info"], key=int) == [str(c) for c in range(32)]
    assert sorted(k8s["neurondevices_k8s_info"], key=int) == [str(d) for d in range(16)]
    pod = k8s["neuroncores_k8s_info"]["0"]
    assert isinstance(pod["container_name"], list) and pod["namespace"] and pod["pod_name"]
    assert k8s["neuroncores_k8s_info"]["16"]["pod_name"] != pod["pod_name"]
    cfg = config()
    cfg["system_metrics"].append({"type": "neuron_k8s_info", "period": "15s"})
    assert "neuron_k8s_info" in Simulator("inf1.xlarge", cfg).report(0)


# --- contents --------------------------------------------------------------------------------------


def placed_core(subgraph: dict[str, Any], shape: str) -> int:
    """The node-wide core of a subgraph: `neuroncore_index` counts within its device (SCHEMA.md §5.6)."""
    return subgraph["neuron_device_index"] * SHAPES[shape].cores_per_device + subgraph["neuroncore_index"]


def test_cores_split_among_runtimes() -> None:
    report = Simulator("trn1.32xlarge", config(), runtimes=3).report(0)
    owned = []
    for entry in report["neuron_runtime_data"]:
        models = entry["report"]["memory_used"]["loaded_models"]
        owned.append(
            sorted({placed_core(sg, "trn1.32xlarge") for m in models for sg in m["subgraphs"].values()})
        )
    assert owned == [list(range(0, 11)), list(range(11, 22)), list(range(22, 32))]
    shared = Simulator("inf1.xlarge", config(), runtimes=6, models_per_runtime=1).report(0)
    cores = [
        placed_core(m["subgraphs"]["sg_00"], "inf1.xlarge")
        for e in shared["neuron_runtime_data"]
        for m in e["report"]["memory_used"]["loaded_models"]
    ]
    assert cores == [0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize(
    ("shape", "runtimes", "models"),
    [("trn1.32xlarge", 32, 20), ("trn1.32xlarge", 3, 2), ("trn2.48xlarge", 5, 3), ("inf2.48xlarge", 4, 7)],
)
def test_every_model_sits_on_a_core_its_runtime_uses(shape: str, runtimes: int, models: int) -> None:
    """The property real captures have: a subgraph at (device d, index i) is on global core
    d * cores_per_device + i, where its runtime's memory is, and within the device's cores."""
    per_device = SHAPES[shape].cores_per_device
    for entry in Simulator(shape, config(), runtimes=runtimes, models_per_runtime=models).report(3)[
        "neuron_runtime_data"
    ]:
        memory = entry["report"]["memory_used"]
        per_core = memory["neuron_runtime_used_bytes"]["usage_breakdown"]["neuroncore_memory_usage"]
        used = {int(core) for core, categories in per_core.items() if any(categories.values())}
        placed = set()
        for model in memory["loaded_models"]:
            for subgraph in model["subgraphs"].values():
                assert 0 <= subgraph["neuroncore_index"] < per_device
                placed.add(placed_core(subgraph, shape))
        assert placed and placed <= used


def test_idle_phases_have_null_latency_and_busy_ones_ordered_percentiles() -> None:
    sim = Simulator("trn1.2xlarge", config())
    idle = busy = 0
    for index in range(0, 400, 3):
        rt = runtime_report(sim.report(index))
        stats = rt["execution_stats"]
        utilization = [
            c["neuroncore_utilization"] for c in rt["neuroncore_counters"]["neuroncores_in_use"].values()
        ]
        latency = stats["latency_stats"]
        if stats["execution_summary"]["completed"] == 0:
            idle += 1
            assert latency == {"total_latency": None, "device_latency": None}
            assert not any(utilization) and sum(stats["execution_summary"].values()) == 0
        else:
            busy += 1
            total = [latency["total_latency"][p] for p in ("p0", "p1", "p25", "p50", "p75", "p99", "p100")]
            device = [latency["device_latency"][p] for p in ("p0", "p1", "p25", "p50", "p75", "p99", "p100")]
            assert total == sorted(total) and device == sorted(device)
            assert all(0 < d <= t < 1 for d, t in zip(device, total, strict=True))
    assert idle > 5 and busy > 5


def test_memory_totals_are_sums_of_breakdowns() -> None:
    for shape in ("inf1.xlarge", "trn2.48xlarge"):
        sim = Simulator(shape, config(), runtimes=3, models_per_runtime=3)
        for index in (0, 7):
            for entry in sim.report(index)["neuron_runtime_data"]:
                mem = entry["report"]["memory_used"]
                used = mem["neuron_runtime_used_bytes"]
                breakdown = used["usage_breakdown"]
                assert used["host"] == sum(breakdown["host"].values())
                assert used["neuron_device"] == sum(
                    sum(c.values()) for c in breakdown["neuroncore_memory_usage"].values()
                )
                assert used["neuron_device"] < SHAPES[shape].device_memory_bytes * SHAPES[shape].device_count
                assert [m["model_id"] for m in mem["loaded_models"]] == [10001, 10002, 10003]
                for model in mem["loaded_models"]:
                    assert len(model["uuid"]) == 32 and isinstance(model["is_running"], bool)
                    for sg in model["subgraphs"].values():
                        sizes = sg["memory_used_bytes"]
                        assert sizes["host"] == sum(sizes["usage_breakdown"]["host"].values())
                        assert sizes["neuron_device"] == sum(
                            sizes["usage_breakdown"]["neuron_device"].values()
                        )
                        core = breakdown["neuroncore_memory_usage"][str(placed_core(sg, shape))]
                        assert core["constants"] >= sizes["usage_breakdown"]["neuron_device"]["constants"] > 0
                        assert sg["neuroncore_index"] < SHAPES[shape].cores_per_device


def test_vcpu_usage_sums_to_100() -> None:
    system = Simulator("trn1.2xlarge", config()).report(4)["system_data"]
    vcpu = system["vcpu_usage"]
    for modes in [vcpu["average_usage"], *vcpu["usage_data"].values()]:
        assert list(modes) == ["user", "nice", "system", "idle", "io_wait", "irq", "soft_irq"]
        assert sum(modes.values()) == pytest.approx(100, abs=0.05)
    assert isinstance(vcpu["context_switch_count"], int) and vcpu["context_switch_count"] > 0
    info = system["memory_info"]
    assert 0 < info["memory_used_bytes"] < info["memory_total_bytes"] == SHAPES["trn1.2xlarge"].memtotal_bytes


def test_runtime_count_zero_gives_empty_list() -> None:
    report = Simulator("inf1.xlarge", config(), runtimes=0).report(0)
    assert report["neuron_runtime_data"] == [] and "system_data" in report


def test_library_is_deterministic_and_seeded() -> None:
    a = Simulator("trn2.48xlarge", config(), runtimes=4, seed=7, k8s=True)
    b = Simulator("trn2.48xlarge", config(), runtimes=4, seed=7, k8s=True)
    assert [a.line(i) for i in (5, 0, 3)] == [b.line(i) for i in (5, 0, 3)]
    assert Simulator("trn2.48xlarge", config(), runtimes=4, seed=8).line(3) != a.line(3)
    assert a.line(2).endswith(b"\n") and a.line(2).count(b"\n") == 1
    assert orjson.loads(a.line(2)) == a.report(2)


def test_big_report_is_fast_enough() -> None:
    sim = Simulator("trn2.48xlarge", config(), runtimes=64)
    start = time.perf_counter()
    sim.line(3)
    assert time.perf_counter() - start < 1.0  # ~30 ms on a laptop; generous for loaded CI machines


# --- the command line ------------------------------------------------------------------------------


def test_cli_is_byte_identical_across_runs(tmp_path: Path) -> None:
    path = write(tmp_path, config("1s"))
    flags = ("-c", path, "--shape", "trn1.32xlarge", "--runtimes", "3", "--k8s", "--count", "4", "--no-sleep")
    first = run_sim(*flags)
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    second = subprocess.run(
        sim_cmd(*flags, "--verbose", "3"), capture_output=True, timeout=30, cwd=REPO, env=env
    )
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout and first.stderr == b""
    lines = first.stdout.splitlines()
    assert len(lines) == 4 and all(orjson.loads(line)["neuron_k8s_info"] for line in lines)
    assert first.stdout == b"".join(
        Simulator("trn1.32xlarge", path, runtimes=3, k8s=True).line(i) for i in range(4)
    )


def test_cli_invalid_config_exits_1(tmp_path: Path) -> None:
    bad = run_sim("-c", write(tmp_path, {"period": "soon"}), "--count", "1", "--no-sleep")
    assert bad.returncode == 1 and bad.stdout == b"" and len(bad.stderr.splitlines()) == 1
    missing = run_sim("-c", str(tmp_path / "nope.json"), "--count", "1")
    assert missing.returncode == 1 and missing.stdout == b"" and len(missing.stderr.splitlines()) == 1


def test_crash_after(tmp_path: Path) -> None:
    result = run_sim("--shape", "inf1.xlarge", "--count", "10", "--no-sleep", "--crash-after", "2")
    assert result.returncode == 3
    assert len(result.stdout.splitlines()) == 2 and b"crash" in result.stderr


def test_garbage_every_and_stderr_noise() -> None:
    result = run_sim(
        "--shape", "inf1.xlarge", "--count", "4", "--no-sleep", "--garbage-every", "2", "--stderr-noise"
    )
    assert result.returncode == 0
    lines = result.stdout.split(b"\n")[:-1]
    assert len(lines) == 6
    good = [json.loads(line) for i, line in enumerate(lines) if i not in (2, 5)]
    assert len(good) == 4
    for i in (2, 5):
        with pytest.raises(ValueError):
            json.loads(lines[i])
    noise = result.stderr.decode().splitlines()
    assert len(noise) == 4 and all("level=warning" in line for line in noise)


def test_oversized_line() -> None:
    result = run_sim(
        "--shape", "inf1.xlarge", "--count", "3", "--no-sleep", "--oversized-line-after", "1",
        "--oversized-bytes", "300000",
    )  # fmt: skip
    assert result.returncode == 0
    lines = result.stdout.split(b"\n")[:-1]
    assert [len(line) for line in lines].count(300000) == 1 and len(lines) == 4
    assert len(lines[1]) == 300000 and json.loads(lines[1])["padding"].startswith("x")
    default = run_sim("--shape", "inf1.xlarge", "--count", "1", "--no-sleep", "--oversized-line-after", "0")
    assert len(default.stdout.split(b"\n")[0]) == 2 * 1024 * 1024


def test_exit_code_at_start() -> None:
    result = run_sim("--exit-code-at-start", "5")
    assert result.returncode == 5 and result.stdout == b"" and b"level=error" in result.stderr


def _read_lines(proc: subprocess.Popen[bytes], count: int, timeout: float) -> list[bytes]:
    """Exactly the first `count` lines of the child's stdout, read from the raw pipe (no buffering
    that would hide data from select)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while data.count(b"\n") < count:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "no output in time"
        chunk = os.read(fd, 1 << 20)
        assert chunk, "stdout closed"
        data += chunk
    return data.split(b"\n")[:count]


def _silent_for(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout.fileno()], [], [], seconds)
    return not ready


def test_hang_after_stays_alive_and_silent() -> None:
    cmd = sim_cmd("--shape", "inf1.xlarge", "--no-sleep", "--hang-after", "2")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=REPO) as proc:
        try:
            assert all(orjson.loads(line) for line in _read_lines(proc, 2, 20))
            assert _silent_for(proc, 1.0) and proc.poll() is None
        finally:
            proc.kill()


def test_sigterm_exits_zero_quietly(tmp_path: Path) -> None:
    cmd = sim_cmd("-c", write(tmp_path, config("1s")), "--shape", "inf1.xlarge")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as proc:
        try:
            assert orjson.loads(_read_lines(proc, 1, 20)[0])
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            assert proc.stderr is not None and proc.stderr.read() == b""
        finally:
            proc.kill()


def test_broken_pipe_exits_zero_quietly() -> None:
    cmd = sim_cmd("--shape", "inf1.xlarge", "--no-sleep")
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as proc:
        try:
            assert orjson.loads(_read_lines(proc, 1, 20)[0])
            assert proc.stdout is not None
            proc.stdout.close()
            assert proc.wait(10) == 0
            assert proc.stderr is not None and proc.stderr.read() == b""
        finally:
            proc.kill()


def test_a_fixed_execution_rate_is_held_exactly_and_cleanly() -> None:
    """--executions-per-second: the node's total completed executions grow at exactly that rate, always busy
    and error-free, whatever the period and the number of applications (the cost proof depends on it)."""
    cfg = {
        "period": "0.2s",
        "neuron_runtimes": [{"tag_filter": ".*", "metrics": [{"type": "execution_stats"}]}],
    }
    sim = Simulator("inf2.48xlarge", cfg, runtimes=3, executions_per_second=191)
    completed = failed = 0
    for index in range(600):
        for entry in sim.report(index)["neuron_runtime_data"]:
            summary = entry["report"]["execution_stats"]["execution_summary"]
            completed += summary["completed"]
            failed += sum(summary.values()) - summary["completed"]
    assert failed == 0
    assert abs(completed - 191 * sim.line_time(599)) <= 3  # one rounding per application at most


PROBE = (
    REPO.parent
    / "shared"
    / "neuron-monitor"
    / "samples"
    / "real"
    / "inf2.xlarge_rt-2.30.51_keypath-schema.txt"
)
PROBE_PREFIXES = (
    ("...latency_stats.", "neuron_runtime_data[].report.execution_stats.latency_stats."),
    ("...execution_stats.", "neuron_runtime_data[].report.execution_stats."),
    ("...memory_used.", "neuron_runtime_data[].report.memory_used."),
    (
        "...usage_breakdown.",
        "neuron_runtime_data[].report.memory_used.neuron_runtime_used_bytes.usage_breakdown.",
    ),
    ("...loaded_models[].", "neuron_runtime_data[].report.memory_used.loaded_models[]."),
    ("...subgraphs.", "neuron_runtime_data[].report.memory_used.loaded_models[].subgraphs."),
    ("...neuron_runtime_vcpu_usage.", "neuron_runtime_data[].report.neuron_runtime_vcpu_usage."),
)
"""The listing's `...` abbreviations, spelled out."""
UNLISTED = re.compile(r"(^|\.)(error|period)$")
"""Members the listing leaves out though current output prints them (trn1 tools 2.28's first record has
`"error": ""` and memory_info's `period`): compared only where the listing names them."""


def _normalised(path: str) -> str:
    """Indices (cores, vCPUs) and subgraph names as `*`, so paths compare across shapes."""
    return ".".join("*" if re.fullmatch(r"\d+|sg_\d+", key) else key for key in path.split("."))


def probe_key_paths(text: str) -> set[str]:
    """Every key path of the real inf2 probe's listing, braces expanded and abbreviations spelled out."""
    paths = set()
    for line in text.splitlines():
        match = re.match(r"^(\S+?)(\s+=|\s+--|$)", line)
        if not match or "." not in match.group(1) or line.startswith("==="):
            continue
        path = match.group(1)
        for short, full in PROBE_PREFIXES:
            if path.startswith(short):
                path = full + path[len(short) :]
        assert not path.startswith("..."), f"an abbreviation this test does not know: {line}"
        pieces = [p[1:-1].split(",") if p.startswith("{") else [p] for p in re.split(r"(\{[^}]*\})", path)]
        paths.update(_normalised("".join(combo)) for combo in itertools.product(*pieces))
    return paths


def document_key_paths(doc: Any, prefix: str = "") -> set[str]:
    """Every leaf's key path in a decoded report, lists as `[]`."""
    if isinstance(doc, dict):
        return set().union(*(document_key_paths(v, f"{prefix}.{k}" if prefix else k) for k, v in doc.items()))
    if isinstance(doc, list):
        return set().union(*(document_key_paths(v, prefix + "[]") for v in doc))
    return {_normalised(prefix)}


def test_default_output_has_the_keys_of_the_real_inf2_probe_at_every_level() -> None:
    """The same key paths as runtime 2.30.51 printed on an inf2 (SCHEMA.md §14), nothing it lacks:
    effective_flops and no flops, no generic error type, each subgraph's physical core name."""
    probe = probe_key_paths(PROBE.read_text())
    sim = Simulator("inf2.48xlarge", config=str(REPO / "examples" / "mon.json"), runtimes=2, seed=3)
    ours = set().union(*(document_key_paths(sim.report(i)) for i in range(1, 4)))
    assert sorted(probe - ours) == []
    assert sorted(p for p in ours - probe if not UNLISTED.search(p)) == []


def test_the_guide_format_prints_flops_and_generic_errors() -> None:
    sim = Simulator("trn1.2xlarge", runtimes=1, seed=3, guide=True)
    paths = set().union(*(document_key_paths(sim.report(i)) for i in range(1, 4)))
    assert "neuron_runtime_data[].report.neuroncore_counters.neuroncores_in_use.*.flops" in paths
    assert "neuron_runtime_data[].report.execution_stats.error_summary.generic" in paths
    assert not any(p.endswith("effective_flops") or p.endswith(".v2") for p in paths)
