"""The neuron-monitor config: every published example is judged as current neuron-monitor would."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.sources.monconfig import ConfigError, load_monitor_config, parse_monitor_config, parse_period

CONFIGS = Path(__file__).parent / "fixtures" / "configs"
REJECTED = {
    # Group names that current neuron-monitor rejects (renamed in 2020-11, inference_stats dropped in 2.4).
    "docs-2020-09-17_as-released-2020-09-22__01-config.json": "'nc_counters'",
    "docs-2020-09-17_draft__01-config.json": "'cpu_usage'",
    "docs-2020-11-17_release-2020-11-17__01-config.json": "'inference_stats'",
    "docs-2021-10-27_neuron-1.16.0_monitor-2.x__01-config.json": "'inference_stats'",
    "docs-2022-03-03_typo-fix__01-config.json": "'inference_stats'",
}


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.stem)
def test_published_configs(path: Path) -> None:
    if path.name in REJECTED:
        with pytest.raises(ConfigError, match=REJECTED[path.name]):
            load_monitor_config(path)
    else:
        assert load_monitor_config(path).period > 0


def test_current_example_period_and_groups() -> None:
    config = load_monitor_config(CONFIGS / "docs-current__01-config.json")
    assert config.period == 1.0
    assert "neuron_hw_counters" in config.groups


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("2m", 120.0), ("0.5s", 0.5), (" 20s ", 20.0)])
def test_periods(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize("text", ["1h", "s", "", "0s", 5, None, "1.s"])
def test_bad_periods(text: object) -> None:
    with pytest.raises(ValueError):
        parse_period(text)


def test_smallest_effective_period_wins() -> None:
    config = parse_monitor_config(
        {
            "period": "10s",
            "neuron_runtimes": [{"period": "3s", "metrics": [{"type": "memory_used"}]}],
            "system_metrics": [{"type": "vcpu_usage", "period": "2s"}, {"type": "memory_info"}],
        }
    )
    assert config.period == 2.0


def test_no_period_is_five_seconds() -> None:
    assert parse_monitor_config({"system_metrics": [{"type": "memory_info"}]}).period == 5.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "JSON object"),
        ({"neuron_runtimes": {}}, "must be a list"),
        ({"neuron_runtimes": [{"tag_filter": "(", "metrics": []}]}, "regular expression"),
        ({"system_metrics": [{"period": "1s"}]}, '"type"'),
        ({"system_metrics": [{"type": "memory_info", "period": "soon"}]}, "period"),
    ],
)
def test_invalid_configs(data: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_monitor_config(data)


def test_not_json(tmp_path: Path) -> None:
    path = tmp_path / "mon.json"
    path.write_text("{period: 1s}")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_monitor_config(path)
