"""The neuron-monitor config: every published example is judged as current neuron-monitor would."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.sources.monconfig import (
    ConfigError,
    check_tag_filter,
    load_monitor_config,
    parse_duration,
    parse_monitor_config,
    parse_period,
)

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


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("2m", 120.0), ("20s", 20.0), ("90s", 90.0)])
def test_periods(text: str, seconds: float) -> None:
    assert parse_period(text) == seconds


@pytest.mark.parametrize(
    ("text", "instead"),
    [("1.0s", "1s"), ("0.5s", "1s"), (" 20s ", "20s"), ("1 s", "1s"), ("1.5m", "90s"), ("2.0m", "2m")],
)
def test_periods_neuron_monitor_may_ignore_are_refused_saying_what_to_write(text: str, instead: str) -> None:
    with pytest.raises(ValueError, match=f'ignore others .*; write "{instead}"$'):
        parse_period(text)
    assert parse_period(text, fractional=True) == parse_duration(text)


@pytest.mark.parametrize("text", ["1h", "s", "", "0s", 5, None, "1.s", "-1s"])
def test_bad_periods(text: object) -> None:
    with pytest.raises(ValueError):
        parse_period(text)
    with pytest.raises(ValueError):
        parse_duration(text)


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


def test_a_fractional_period_in_a_file_is_one_line_naming_file_and_fix(tmp_path: Path) -> None:
    path = tmp_path / "mon.json"
    path.write_text('{"period": "1.0s", "system_metrics": [{"type": "memory_info"}]}')
    with pytest.raises(ConfigError) as caught:
        load_monitor_config(path)
    assert str(caught.value).startswith(f"neuron-monitor config {path}: period '1.0s'")
    assert str(caught.value).endswith('write "1s"')
    assert load_monitor_config(path, fractional=True).period == 1.0


@pytest.mark.parametrize("name", ["k8s_info", "neuron_k8s_info"])
def test_both_spellings_of_the_k8s_group_are_accepted(name: str) -> None:
    config = parse_monitor_config({"system_metrics": [{"type": name, "period": "15s"}]}, strict=True)
    assert config.groups == {name} and config.warnings == ()


def test_an_unknown_group_is_a_warning_unless_strict() -> None:
    data = {"system_metrics": [{"type": "memory_info"}, {"type": "neuron_power_usage"}]}
    config = parse_monitor_config(data)
    assert config.groups == {"memory_info", "neuron_power_usage"}
    [warning] = config.warnings
    assert "system_metrics[1]: unknown metric group 'neuron_power_usage'" in warning
    assert "a newer neuron-monitor may know it" in warning and "passed to neuron-monitor as it is" in warning
    with pytest.raises(
        ConfigError, match=r"unknown metric group 'neuron_power_usage'.*refused: --config.strict"
    ):
        parse_monitor_config(data, strict=True)


def test_a_misspelt_group_warns_with_the_nearest_name() -> None:
    config = parse_monitor_config({"neuron_runtimes": [{"metrics": [{"type": "memory_usd"}]}]})
    assert 'did you mean "memory_used"?' in config.warnings[0]


def test_old_group_names_current_neuron_monitor_rejects_are_refused_with_the_new_name() -> None:
    with pytest.raises(ConfigError, match="'inference_stats' was renamed 'execution_stats'"):
        parse_monitor_config({"neuron_runtimes": [{"metrics": [{"type": "inference_stats"}]}]})


@pytest.mark.parametrize(
    ("data", "where", "nearest"),
    [
        ({"perod": "1s"}, "the configuration", "period"),
        ({"neuron_runtimes": [{"tag_filtre": ".*"}]}, "neuron_runtimes[0]", "tag_filter"),
        ({"system_metrics": [{"type": "memory_info", "periods": "1s"}]}, "system_metrics[0]", "period"),
    ],
)
def test_unknown_keys_are_warned_with_the_nearest_known_key(
    data: dict[str, object], where: str, nearest: str
) -> None:
    [warning] = parse_monitor_config(data).warnings
    assert warning.startswith(f"{where}: unknown key") and f'did you mean "{nearest}"?' in warning
    with pytest.raises(ConfigError, match="unknown key"):
        parse_monitor_config(data, strict=True)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("app_(?=prod)", "look-around"),
        ("(?<!test_)app", "look-around"),
        (r"(a)\1", "back-references"),
        ("(?P<n>x)(?P=n)", "back-references"),
        ("(?>ab)", "atomic groups"),
    ],
)
def test_tag_filters_outside_re2_are_refused_with_the_reason(pattern: str, why: str) -> None:
    with pytest.raises(
        ConfigError, match=f"uses {why}, which neuron-monitor's regular expressions \\(RE2\\)"
    ):
        parse_monitor_config({"neuron_runtimes": [{"tag_filter": pattern, "metrics": []}]})


@pytest.mark.parametrize("pattern", [".*", "app_[0-9]+", r"\\1", "[(?=]x", "[]]", r"a\(\?=b"])
def test_re2_tag_filters_pass(pattern: str) -> None:
    check_tag_filter(pattern)
