"""Log lines as a person reads them (`text`), or as log pipelines parse them (`logfmt`, `json`).

EKS log pipelines (Fluent Bit, CloudWatch) parse JSON lines; Loki and most Go tooling read logfmt.
Every format carries the same fields: time (UTC, RFC 3339 with milliseconds), level, logger, message,
and the exception when there is one.
"""

from __future__ import annotations

import logging
import time

import orjson

FORMATS = ("text", "logfmt", "json")
TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, str]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    fields = {
        "time": f"{stamp}.{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    if record.exc_info:
        fields["error"] = formatter.formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(record, self)).decode()


class LogfmtFormatter(logging.Formatter):
    """`key=value` pairs, a value quoted (with `\\`, `"` and newlines escaped) when it needs to be."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_logfmt_value(value)}" for key, value in _fields(record, self).items())


def _logfmt_value(value: str) -> str:
    if value and not any(c in value for c in ' ="\\\n\t') and value.isprintable():
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def formatter(name: str) -> logging.Formatter:
    """The formatter of a --log.format value."""
    if name == "json":
        return JsonFormatter()
    if name == "logfmt":
        return LogfmtFormatter()
    return logging.Formatter(TEXT)
