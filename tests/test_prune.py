"""Pruning idle core entries before validation loses nothing the default metrics would show."""

from __future__ import annotations

import copy
import sys
from typing import Any

import orjson

from exporter.model.prune import without_idle_cores
from exporter.model.report import ParseOptions, parse_report
from exporter.model.state import State, advance
from exporter.simulator import Simulator
from tests.reports import core_counters, memory, report, runtime


def runtime_report(**groups: dict[str, Any]) -> dict[str, Any]:
    return runtime("1", **groups)["report"]


def test_zero_cores_are_dropped_from_both_maps_and_used_ones_kept() -> None:
    raw = runtime_report(
        neuroncore_counters=core_counters({0: 0, 1: 30, 2: 0, 3: 0}),
        memory_used=memory({0: 5, 1: 0, 2: 0, 3: 0}),
    )
    pruned = without_idle_cores(raw)
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"0", "1"}
    per_core = pruned["memory_used"]["neuron_runtime_used_bytes"]["usage_breakdown"][
        "neuroncore_memory_usage"
    ]
    assert set(per_core) == {"0", "1"}
    assert set(raw["neuroncore_counters"]["neuroncores_in_use"]) == {"0", "1", "2", "3"}  # input untouched


def test_a_malformed_value_is_kept_and_still_rejected() -> None:
    counters = core_counters({0: 0, 1: 0, 2: 0, 3: 0})
    counters["neuroncores_in_use"]["1"]["neuroncore_utilization"] = "n/a"
    counters["neuroncores_in_use"]["2"]["neuroncore_utilization"] = float("nan")
    counters["neuroncores_in_use"]["3"] = {"neuroncore_utilization": 0, "v3d": {"nc_v3.6": {"x": [0]}}}
    pruned = without_idle_cores(runtime_report(neuroncore_counters=counters))
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"1", "2", "3"}
    report = parse_report(
        {"neuron_runtime_data": [runtime("1", neuroncore_counters=counters)]},
        ParseOptions(prune_idle_cores=True),
    )
    assert [p.group for p in report.problems] == ["neuroncore_counters"]  # still validated, still rejected


def test_a_core_whose_model_has_no_memory_on_it_is_still_owned() -> None:
    """Pruning ignores placement (a model always has memory on its core); ownership does not."""
    mem = memory({0: 0, 1: 0, 2: 0})
    mem["loaded_models"] = [{"subgraphs": {"sg_00": {"neuroncore_index": 0, "neuron_device_index": 1}}}]
    doc = report(
        runtime("1", neuroncore_counters=core_counters({0: 0, 1: 0, 2: 0}), memory_used=mem),
        cores_per_device=2,
    )
    state = advance(State(), parse_report(doc, ParseOptions(prune_idle_cores=True, model_detail=False)))
    assert state.runtimes["1"].cores == {2}


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
    pruned = without_idle_cores(runtime_report(neuroncore_counters=counters))
    assert set(pruned["neuroncore_counters"]["neuroncores_in_use"]) == {"1", "2"}


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
