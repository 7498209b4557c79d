"""How a pydantic ValidationError is told to a person: one line, where and what, never the input.

The input is never echoed: in a report it can be megabytes or nested a thousand deep, and in the web
config it can be a password hash. Shared by the report parser and the web config loader.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError) -> str:
    """'where: what' for the first error, and how many more there are."""
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "(root)"
    message = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
    more = exc.error_count() - 1
    return f"{where}: {message}" + (f" (+{more} more)" if more else "")
