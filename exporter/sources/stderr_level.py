"""The log level a line of neuron-monitor's stderr states, so it is re-logged at that level.

neuron-monitor is believed to be a Go program and logs in logfmt (`level=error msg=...`, SCHEMA.md §1);
other tools prefix a level word (`ERROR:`, `[warn]`). A line that states none is logged as a warning:
stderr is where a child says what went wrong.
"""

from __future__ import annotations

import logging
import re

LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "err": logging.ERROR,
    "fatal": logging.CRITICAL,
    "panic": logging.CRITICAL,
    "critical": logging.CRITICAL,
}
_WORDS = "|".join(sorted(LEVELS, key=len, reverse=True))
_LOGFMT = re.compile(rf'(?:^|\s)(?:level|lvl|severity)="?({_WORDS})"?(?:\s|$)', re.IGNORECASE)
_PREFIX = re.compile(rf"^\s*(?:\[({_WORDS})\]|({_WORDS})(?::|\s))", re.IGNORECASE)


def stated_level(line: str, default: int = logging.WARNING) -> int:
    """The level `line` states in logfmt or as a leading word; `default` when it states none."""
    match = _LOGFMT.search(line)
    if match is None:
        match = _PREFIX.match(line)
    if match is None:
        return default
    word = next(group for group in match.groups() if group)
    return LEVELS[word.lower()]
