"""The node's price: --instance-hourly-cost, or a price file looked up by instance type and region."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.collectors import Options
from exporter.prices import PriceError, fixed_price, load_prices
from tests.reports import report
from tests.test_e2e import run_cli
from tests.test_state import Pipeline, labels

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "prices.json"


def node(instance_type: str, region: str) -> dict[str, object]:
    doc = report()
    doc["instance_info"] = {"instance_type": instance_type, "instance_region": region, "error": ""}
    return doc


def test_the_example_price_file_has_the_seed_figures_with_source_and_date() -> None:
    book = load_prices(EXAMPLE)
    inf1 = book.lookup("inf1.2xlarge", "us-west-1")
    assert inf1 is not None and inf1.usd_per_hour == 0.435 and inf1.date == "2022-12" and inf1.source
    g4dn = book.lookup("g4dn.12xlarge", "us-west-1")
    assert g4dn is not None and g4dn.usd_per_hour == 4.694
    assert book.lookup("inf1.2xlarge", "eu-west-1") is None  # no figure for another region
    assert book.lookup(None, "us-west-1") is None


def write(tmp_path: Path, prices: object) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(prices))
    return path


def test_a_region_less_figure_applies_where_no_regional_one_does(tmp_path: Path) -> None:
    entry = {"instance_type": "trn1.32xlarge", "usd_per_hour": 21.5, "source": "test", "date": "2026-12"}
    book = load_prices(
        write(tmp_path, {"prices": [entry, {**entry, "region": "us-east-1", "usd_per_hour": 20.0}]})
    )
    assert book.lookup("trn1.32xlarge", "us-east-1").usd_per_hour == 20.0  # type: ignore[union-attr]
    assert book.lookup("trn1.32xlarge", "ap-south-1").usd_per_hour == 21.5  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        (
            {"prices": [{"instance_type": "x", "usd_per_hour": -1, "source": "s", "date": "d"}]},
            "usd_per_hour",
        ),
        ({"prices": [{"instance_type": "x", "usd_per_hour": 1, "date": "d"}]}, "source"),
        (
            {"prices": [{"instance_type": "x", "usd_per_hour": 1, "source": "s", "date": "d", "rate": 2}]},
            "unknown key",
        ),
        ({"currency": "EUR", "prices": []}, "only USD"),
        (
            {"prices": [{"instance_type": "x", "usd_per_hour": 1, "source": "s", "date": "d"}] * 2},
            "listed twice",
        ),
    ],
)
def test_a_bad_price_file_says_what_is_wrong(tmp_path: Path, prices: object, message: str) -> None:
    with pytest.raises(PriceError, match=message):
        load_prices(write(tmp_path, prices))


def test_the_figure_that_fits_the_node_is_exported_with_its_source() -> None:
    p = Pipeline(Options(prices=load_prices(EXAMPLE)))
    p.feed(node("inf1.2xlarge", "us-west-1"))
    assert p.samples("neuron_instance_hourly_cost_usd") == {(): 0.435}
    info = p.samples("neuron_instance_price_info")
    assert list(info) == [
        labels(
            date="2022-12",
            pricing="on-demand",
            region="us-west-1",
            source="AWS EC2 On-Demand pricing, US West (N. California), the figure this project starts from",
        )
    ]
    p.feed(node("trn2.48xlarge", "us-west-1"))  # no figure for it: nothing is made up
    assert p.samples("neuron_instance_hourly_cost_usd") == {}


def test_a_fixed_figure_applies_to_any_instance() -> None:
    p = Pipeline(Options(fixed_price=fixed_price(12.5)))
    p.feed(node("trn2.48xlarge", "us-east-2"))
    assert p.samples("neuron_instance_hourly_cost_usd") == {(): 12.5}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--instance-hourly-cost", "-3"), "must be a non-negative"),
        (("--instance-hourly-cost", "1", "--instance-prices", str(EXAMPLE)), "not allowed with"),
        (("--instance-prices", "/nonexistent/prices.json"), "price file /nonexistent/prices.json"),
    ],
)
def test_bad_cost_flags_exit_2_with_one_line(args: tuple[str, ...], message: str) -> None:
    result = run_cli("--simulate", "inf1.xlarge", *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_the_figure_follows_the_capacity_type_and_every_offering_is_exported(tmp_path: Path) -> None:
    entry = {"instance_type": "inf2.xlarge", "region": "us-east-1", "source": "test", "date": "2026-12"}
    book = load_prices(
        write(
            tmp_path,
            {
                "prices": [
                    {**entry, "usd_per_hour": 0.7582},
                    {**entry, "usd_per_hour": 0.2275, "pricing": "spot"},
                    {**entry, "usd_per_hour": 0.48, "pricing": "savings-plan"},
                ]
            },
        )
    )
    spot = Pipeline(Options(prices=book, pricing="spot"))
    spot.feed(node("inf2.xlarge", "us-east-1"))
    assert spot.samples("neuron_instance_hourly_cost_usd") == {(): 0.2275}
    assert spot.samples("neuron_instance_offering_hourly_cost_usd") == {
        labels(pricing="on-demand"): 0.7582,
        labels(pricing="spot"): 0.2275,
        labels(pricing="savings-plan"): 0.48,
    }
    reserved = Pipeline(Options(prices=book, pricing="reserved"))
    reserved.feed(node("inf2.xlarge", "us-east-1"))
    assert reserved.samples("neuron_instance_hourly_cost_usd") == {}
    assert reserved.samples("neuron_exporter_price_missing") == {labels(reason="no_entry"): 1}


def test_an_unpriced_node_says_why() -> None:
    unconfigured = Pipeline(Options())
    unconfigured.feed(node("inf2.xlarge", "us-east-1"))
    assert unconfigured.samples("neuron_exporter_price_missing") == {labels(reason="no_price_source"): 1}
    waiting = Pipeline(Options(prices=load_prices(EXAMPLE)))
    assert waiting.samples("neuron_exporter_price_missing") == {labels(reason="instance_type_unknown"): 1}
    priced = Pipeline(Options(fixed_price=fixed_price(1.0)))
    assert priced.samples("neuron_exporter_price_missing") == {}


def test_a_price_file_without_the_nodes_figure_fails_the_collector_and_logs_it_once(tmp_path: Path) -> None:
    """The replayed node is an inf1.xlarge in us-east-2; the example file prices inf1.2xlarge in us-west-1."""
    capture = tmp_path / "capture.jsonl"
    simulate = ["-m", "exporter.simulator", "--shape", "inf1.xlarge", "--count", "3", "--no-sleep"]
    capture.write_bytes(subprocess.run([sys.executable, *simulate], capture_output=True, check=True).stdout)
    result = run_cli("--replay", str(capture), "--once", "--instance-prices", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert 'neuron_exporter_collector_success{collector="cost"} 0.0' in result.stdout
    assert 'neuron_exporter_price_missing{reason="no_entry"} 1.0' in result.stdout
    assert result.stderr.count("no price for inf1.xlarge in us-east-2 (on-demand)") == 1
    started = run_cli("--replay", str(capture), "--once")
    assert "this node is unpriced" in started.stderr
