"""Shared pytest options and fixtures."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--update-golden` rewrites golden expositions instead of comparing (review the diff after)."""
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/fixtures/metrics/*.prom")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    """Whether golden files are being regenerated."""
    return bool(request.config.getoption("--update-golden"))
