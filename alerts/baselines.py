"""alerts/baselines.yml, validated, as Prometheus series: what each model cost per request before.

Users know what a model did on the GPU fleet (its share's price per hour, the requests per second it
served at the latency target); the per-million figure is derived here, so nobody works it out by hand
and types it into a dashboard. One recording rule per model, in its own group of the rule file.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from alerts.records import Record

DEFAULT_FILE = Path(__file__).resolve().parent / "baselines.yml"
RECORD = "model:gpu_baseline_cost_per_million_requests:usd"


class Baseline(BaseModel):
    """One model's measured figures on the fleet it is compared with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    instance_type: str = Field(min_length=1)
    usd_per_hour: float = Field(gt=0)
    requests_per_second: float = Field(gt=0)
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)

    @field_validator("date", mode="before")
    @classmethod
    def _date_as_text(cls, value: object) -> object:
        # YAML reads 2022-12-01 as a date; the file means the text.
        return value.isoformat() if isinstance(value, datetime.date) else value

    def per_million(self) -> float:
        """Dollars per million requests: the share's price over what it served in an hour."""
        return self.usd_per_hour / 3600 / self.requests_per_second * 1e6


class Baselines(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    baselines: tuple[Baseline, ...] = ()

    @field_validator("baselines")
    @classmethod
    def _one_per_model(cls, value: tuple[Baseline, ...]) -> tuple[Baseline, ...]:
        seen = [b.model for b in value]
        twice = sorted({m for m in seen if seen.count(m) > 1})
        if twice:
            raise ValueError(f"listed twice: {', '.join(twice)}")
        return value


def load(path: Path = DEFAULT_FILE) -> Baselines:
    return Baselines.model_validate(yaml.safe_load(path.read_text()) or {})


def records(baselines: Baselines) -> tuple[Record, ...]:
    """One constant series per model, labelled (statically) with where the figure came from."""
    out = []
    for b in baselines.baselines:
        labels = (
            ("model", b.model),
            ("baseline_instance_type", b.instance_type),
            ("baseline_source", b.source),
            ("baseline_date", b.date),
        )
        help_text = f"{b.model}: ${b.usd_per_hour}/h at {b.requests_per_second} requests/s"
        out.append(Record(RECORD, f"vector({b.per_million():.10g})", help_text, labels))
    return tuple(out)
