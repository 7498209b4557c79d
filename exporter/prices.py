"""What the node costs: a fixed hourly figure, or a price file keyed by instance type and region.

Teams move models to Inferentia and Trainium to cut serving cost, so the exporter exports the node's
price beside its work and the dashboards divide one by the other. A price file lists figures with
where they came from and when, because prices change and a dashboard is only as good as its figure:

    {"currency": "USD",
     "prices": [{"instance_type": "inf1.2xlarge", "region": "us-west-1", "usd_per_hour": 0.435,
                 "pricing": "on-demand", "source": "AWS EC2 On-Demand pricing", "date": "2022-12"}]}

An entry without `region` applies to every region; one with it wins in its region. `pricing` is the
capacity type the figure is for (on-demand by default, spot, reserved, savings-plan); the node's is
--instance-pricing, and every capacity type's figure is exported too, for a rule that picks by the
node's capacity-type label where Kubernetes gives one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exporter.validation import first_error


class PriceError(ValueError):
    """The price file cannot be used; the message says why."""


class Price(BaseModel):
    """One figure: what an instance type costs per hour, and where that number came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    instance_type: str = Field(min_length=1)
    region: str | None = None
    usd_per_hour: float = Field(ge=0, allow_inf_nan=False)
    pricing: Literal["on-demand", "spot", "reserved", "savings-plan"] = "on-demand"
    """The capacity type the figure is for (Karpenter's capacity types, and Savings Plans)."""
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)


class PriceFile(BaseModel):
    """The file as a whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: str = "USD"
    prices: tuple[Price, ...]


PRICINGS = ("on-demand", "spot", "reserved", "savings-plan")
"""Capacity types a figure can be for: what the bill says the node is paid as."""


@dataclass(frozen=True, slots=True)
class PriceBook:
    """Figures by (instance type, region, pricing); region None is the fallback for every region."""

    figures: dict[tuple[str, str | None, str], Price]

    def lookup(
        self, instance_type: str | None, region: str | None, pricing: str = "on-demand"
    ) -> Price | None:
        """The figure for this node as it is paid (on-demand unless said), its region's if there is one."""
        if not instance_type:
            return None
        return self.figures.get((instance_type, region, pricing)) or self.figures.get(
            (instance_type, None, pricing)
        )

    def offerings(self, instance_type: str | None, region: str | None) -> list[Price]:
        """Every capacity type's figure for this node, so a rule can pick the one a node label names."""
        found = (self.lookup(instance_type, region, pricing) for pricing in PRICINGS)
        return [price for price in found if price is not None]


def fixed_price(usd_per_hour: float, pricing: str = "on-demand") -> Price:
    """A --instance-hourly-cost figure: it applies to whatever instance the exporter runs on."""
    return Price.model_validate(
        {
            "instance_type": "*",
            "usd_per_hour": usd_per_hour,
            "pricing": pricing,
            "source": "flag",
            "date": "-",
        }
    )


def load_prices(path: Path) -> PriceBook:
    """Read and validate a price file; PriceError says what is wrong with it."""
    try:
        raw = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise PriceError(f"price file {path}: {exc.strerror}") from None
    except orjson.JSONDecodeError as exc:
        raise PriceError(f"price file {path} is not JSON: {exc}") from None
    try:
        parsed = PriceFile.model_validate(raw)
    except ValidationError as exc:
        raise PriceError(f"price file {path}: {first_error(exc)}") from None
    if parsed.currency != "USD":
        raise PriceError(f"price file {path}: currency {parsed.currency!r}; only USD is supported")
    figures: dict[tuple[str, str | None, str], Price] = {}
    for price in parsed.prices:
        key = (price.instance_type, price.region, price.pricing)
        if key in figures:
            where = f" in {price.region}" if price.region else ""
            raise PriceError(
                f"price file {path}: {price.instance_type}{where} ({price.pricing}) is listed twice"
            )
        figures[key] = price
    return PriceBook(figures)
