"""Pruning idle core entries before validation loses nothing the default metrics would show."""

from __future__ import annotations

import copy
import sys
from typing import Any

import orjson

from exporter.prune import without_idle_cores
from exporter.report import ParseOptions, parse_report
from exporter.simulator import Simulator
from exporter.state import State, advance
from tests.reports import core_counters, memory, runtime


def runtime_report(**groups: dict[str, Any]) -> dict[str, Any]:
    return runtime("1", **groups)["report"]


def test_zero_cores_are_dropped_from_both_maps_and_used_ones_kept() -> None:
    raw = runtime_report(
        neuroncore_counters=core_counters({0: 0, 1: 30, 2: 0, 3: 0}),
        memory_used=memory({0: 5, 1: 0, 2: 0, 3: 0}),
    )
    pruned = without_idle_cores(raw, 2)
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"0", "1"}
    per_core = pruned["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"][
        "neuroncore_memory_usage"
    ]
    assert set(per_core) == {"0", "1"}
    assert set(raw["neuroncore_counters"]["neuroncores_in_use"]) == {"0", "1", "2", "3"}  # input untouched


def test_core_with_a_model_or_a_malformed_value_is_kept() -> None:
    mem = memory({0: 0, 1: 0, 2: 0})
    # Device 1, its core 0: global core 2 with two cores per device.
    mem["loaded_models"] = [{"subgraphs": {"sg_00": {"neuroncore_index": 0, "neuron_device_index": 1}}}]
    counters = core_counters({0: 0, 1: 0, 2: 0})
    counters["neuroncores_in_use"]["1"]["neuroncore_utilization"] = "n/a"
    pruned = without_idle_cores(runtime_report(neuroncore_counters=counters, memory_used=mem), 2)
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"1", "2"}
    report = parse_report(
        {"neuron_runtime_data": [runtime("1", neuroncore_counters=counters)]},
        ParseOptions(prune_idle_cores=True),
    )
    assert [p.group for p in report.problems] == ["neuroncore_counters"]  # still validated, still rejected


def nested(leaf: float, depth: int) -> Any:
    """{"a": {"a": ... leaf}} `depth` levels deep."""
    value: Any = leaf
    for _ in range(depth):
        value = {"a": value}
    return value


def test_core_entry_nested_past_the_recursion_limit_is_judged_like_any_other() -> None:
    """orjson reads objects nested 1024 deep, more than Python can recurse into: checking such an entry
    for zeros must not raise, or the whole report is lost where the AWS mode (no pruning) keeps it."""
    depth = 5 * sys.getrecursionlimit()
    counters = core_counters({0: 0, 1: 30, 2: 0})
    counters["neuroncores_in_use"]["0"] = nested(0, depth)
    counters["neuroncores_in_use"]["2"] = nested(1, depth)
    pruned = without_idle_cores(runtime_report(neuroncore_counters=counters), 2)
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"1", "2"}


def test_model_placement_keeps_nothing_while_cores_per_device_are_unknown() -> None:
    mem = memory({0: 0, 1: 0, 2: 0})
    mem["loaded_models"] = [{"subgraphs": {"sg_00": {"neuroncore_index": 0, "neuron_device_index": 1}}}]
    pruned = without_idle_cores(runtime_report(memory_used=mem), None)
    per_core = pruned["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"][
        "neuroncore_memory_usage"
    ]
    assert per_core == {}


def test_pruned_and_full_parses_render_the_same_state() -> None:
    sim = Simulator("trn1.32xlarge", runtimes=8)
    full, pruned = State(), State()
    for index in range(3):
        doc = orjson.loads(sim.line(index))
        full = advance(full, parse_report(copy.deepcopy(doc)))
        pruned = advance(pruned, parse_report(doc, ParseOptions(prune_idle_cores=True)))
    for tag, runtime_state in full.runtimes.items():
        assert pruned.runtimes[tag].cores == runtime_state.cores
        assert pruned.runtimes[tag].totals == runtime_state.totals
