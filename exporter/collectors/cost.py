"""The node's price, so dashboards can put cost beside the work: per hour, per execution, idle.

    neuron_instance_hourly_cost_usd 0.435
    neuron_instance_price_info{date="2022-12",pricing="on-demand",region="us-west-1",source="…"} 1

The figure comes from --instance-hourly-cost, or from --instance-prices by the instance type and
region that neuron-monitor reports (exporter/prices.py). Nothing is exported while no figure fits.
The name follows OpenCost's `node_total_hourly_cost` with the currency spelled out; a dashboard
variable lets a cluster that runs OpenCost use its metric instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from exporter.collectors.base import Collector, Family, MetricSpec
from exporter.model.state import State
from exporter.prices import Price


class CostCollector(Collector):
    """The hourly price of this node and where the figure came from."""

    name = "cost"
    description = "the node's hourly price, from --instance-hourly-cost or --instance-prices"
    specs = (
        MetricSpec(
            "neuron_instance_hourly_cost_usd",
            "gauge",
            "What this instance costs per hour in US dollars (--instance-hourly-cost, or the price file's "
            "figure for its instance type and region).",
            (),
            "instance_info.{instance_type,instance_region} + price file",
        ),
        MetricSpec(
            "neuron_instance_price_info",
            "info",
            "Where the hourly price figure comes from: its pricing model, source and date; always 1.",
            ("date", "pricing", "region", "source"),
            "price file entry (or the flag)",
        ),
    )

    def fill(self, state: State, families: Mapping[str, Family]) -> None:
        """The figure that fits this node, if any."""
        price = self.price(state)
        if price is None:
            return
        families["neuron_instance_hourly_cost_usd"].add({}, price.usd_per_hour)
        families["neuron_instance_price_info"].add(
            {
                "date": price.date,
                "pricing": price.pricing,
                "region": price.region or "",
                "source": price.source,
            },
            1,
        )

    def price(self, state: State) -> Price | None:
        """The fixed figure, else the price book's for the reported instance type and region."""
        if self.options.fixed_price is not None:
            return self.options.fixed_price
        if self.options.prices is None or state.instance is None:
            return None
        return self.options.prices.lookup(state.instance.instance_type, state.instance.instance_region)
