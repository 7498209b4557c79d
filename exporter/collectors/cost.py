"""The node's price, so dashboards can put cost beside the work: per hour, per execution, idle.

    neuron_instance_hourly_cost_usd 0.435
    neuron_instance_price_info{date="2022-12",pricing="on-demand",region="us-west-1",source="…"} 1

The figure comes from --instance-hourly-cost, or from --instance-prices by the instance type and
region that neuron-monitor reports and the capacity type it is paid as (--instance-pricing;
exporter/prices.py). While no figure fits, neuron_exporter_price_missing{reason} says why; a price
file without an entry for the node also fails the collector (logged once), since that is a gap in the
file, not a choice.
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
            "neuron_instance_offering_hourly_cost_usd",
            "gauge",
            "What this instance costs per hour by capacity type (pricing: on-demand, spot, reserved, "
            "savings-plan), every figure the price file has for it; a rule picks the one the node's "
            "capacity-type label names.",
            ("pricing",),
            "instance_info.{instance_type,instance_region} + price file",
        ),
        MetricSpec(
            "neuron_exporter_price_missing",
            "gauge",
            "1 while this node has no price, by reason: no_price_source (no --instance-hourly-cost or "
            "--instance-prices), instance_type_unknown (neuron-monitor has not reported it), no_entry "
            "(the price file has no figure for its type, region and pricing).",
            ("reason",),
            "-",
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
        """The figure that fits this node, every capacity type's, or why there is none."""
        prices = self.options.prices
        if prices is not None and state.instance is not None:
            for offering in prices.offerings(state.instance.instance_type, state.instance.instance_region):
                families["neuron_instance_offering_hourly_cost_usd"].add(
                    {"pricing": offering.pricing}, offering.usd_per_hour
                )
        price = self.price(state)
        if price is None:
            families["neuron_exporter_price_missing"].add({"reason": self.missing(state)}, 1)
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
        """The fixed figure, else the price book's for the reported instance type and region, as the
        node is paid (--instance-pricing)."""
        if self.options.fixed_price is not None:
            return self.options.fixed_price
        if self.options.prices is None or state.instance is None:
            return None
        instance = state.instance
        return self.options.prices.lookup(
            instance.instance_type, instance.instance_region, self.options.pricing
        )

    def missing(self, state: State) -> str:
        """Why there is no price: the reason label of neuron_exporter_price_missing."""
        if self.options.prices is None:
            return "no_price_source"
        if state.instance is None or not state.instance.instance_type:
            return "instance_type_unknown"
        return "no_entry"

    def problem(self, state: State) -> str | None:
        """A price file that has no figure for this node is a configuration gap: the node is missing
        from every cost figure, so the collector reports failure (and it is logged once)."""
        if self.price(state) is None and self.missing(state) == "no_entry":
            instance = state.instance
            assert instance is not None
            return (
                f"no price for {instance.instance_type} in {instance.instance_region or 'any region'} "
                f"({self.options.pricing}) in the price file: this node is unpriced on the cost dashboard"
            )
        return None
