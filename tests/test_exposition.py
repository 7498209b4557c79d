"""Our text writer is byte-identical to prometheus_client's generate_latest, escapes and odd values included."""

from __future__ import annotations

import math

from prometheus_client.exposition import generate_latest

from exporter.collectors.base import MetricSpec

VALUES = [0.0, -0.0, 1.0, 3, 0.4201, 1e-10, 123456789.0, 1.2e16, 2**53, math.inf, -math.inf, math.nan, -7.5]
LABELS = [
    {},
    {"runtime_tag": "plain", "neuroncore": "3"},
    {"neuroncore": "3", "runtime_tag": "plain"},  # same names, other insertion order
    {"model_name": 'a "quoted"\\path\nwith newline'},
    {"a": "", "b": "é"},
]


class Registry:
    def __init__(self, metrics: list[object]) -> None:
        self.metrics = metrics

    def collect(self) -> list[object]:
        return self.metrics


def test_text_matches_prometheus_client() -> None:
    families = []
    for kind, name in (("gauge", "x_ratio"), ("counter", "y_total"), ("info", "z_info")):
        family = MetricSpec(name, kind, 'help with \\ and\nnewline and "quotes"', (), "-").family()  # type: ignore[arg-type]
        for labels in LABELS:
            for value in VALUES:
                family.add(labels, value)
        families.append(family)
    ours: list[str] = []
    for family in families:
        family.text_lines(ours)
    theirs = generate_latest(Registry([family.to_metric() for family in families]))  # type: ignore[arg-type]
    assert "".join(ours).encode() == theirs
