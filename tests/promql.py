"""Just enough PromQL reading for static checks of generated dashboards and rules.

Not a parser: it finds the argument of a function call by balancing parentheses, metric names by
their position before a selector or range, and a regex matcher's literal alternatives. Grafana's
`$variables` are left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

COUNTER_FUNCTIONS = ("rate", "irate", "increase", "resets")
"""Functions whose argument must be a counter: on a gauge they invent resets and increases."""

_CALL = re.compile(r"\b(rate|irate|increase|resets|delta|deriv|idelta)\s*\(")
_NAME = re.compile(r"(?<![\w:$.\"])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[)")
_BARE_NAME = re.compile(r"(?<![\w:$.\"=~!])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:(\"])")
_NAME_MATCHER = re.compile(r'__name__\s*=~?\s*"([^"]*)"')
_REGEX_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=~\s*"([^"]*)"')
KEYWORDS = frozenset(
    [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "topk",
        "bottomk",
        "quantile",
        "stddev",
        "stdvar",
        "count_values",
        "time",
        "vector",
        "scalar",
    ]
)


def call_arguments(expr: str, functions: tuple[str, ...] = COUNTER_FUNCTIONS) -> Iterator[str]:
    """The text inside each call of one of `functions`."""
    for match in _CALL.finditer(expr):
        if match.group(1) not in functions:
            continue
        depth, start = 1, match.end()
        for position in range(start, len(expr)):
            depth += {"(": 1, ")": -1}.get(expr[position], 0)
            if depth == 0:
                yield expr[start:position]
                break


def metric_names(expr: str) -> set[str]:
    """Metric names a selector names: `name{…}`, `name[…]`, a bare `name`, and `__name__` literals."""
    names = {m.group(1) for m in _NAME.finditer(expr)}
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    grouping = r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"
    without_grouping = re.sub(grouping, "", without_strings)
    without_calls = re.sub(r"[a-zA-Z_]+\s*\(", "(", without_grouping)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_calls)
    without_selectors = re.sub(r"\{[^}]*\}", "", without_ranges)
    names |= {
        m.group(1)
        for m in _BARE_NAME.finditer(without_selectors)
        if m.group(1) not in KEYWORDS and not re.fullmatch(r"[0-9.e+-]+|[smhdwy]", m.group(1))
    }
    for match in _NAME_MATCHER.finditer(expr):
        names |= set(literal_alternatives(match.group(1)) or ())
    return names


def literal_alternatives(pattern: str) -> list[str] | None:
    """`a|b|c` -> [a, b, c] when every alternative is a plain literal; None for any other regex."""
    alternatives = pattern.split("|")
    if any(not a or re.search(r"[\\.*+?()\[\]{}^$]", a) for a in alternatives):
        return None
    return alternatives


def regex_matchers(expr: str) -> Iterator[tuple[str, list[str]]]:
    """(label, alternatives) of each `label=~"a|b"` matcher with two or more literal alternatives."""
    for match in _REGEX_MATCHER.finditer(expr):
        alternatives = literal_alternatives(match.group(2))
        if alternatives is not None and len(alternatives) > 1:
            yield match.group(1), alternatives
