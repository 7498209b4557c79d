"""The README's flag and metric tables are generated from the code and must be current."""

from __future__ import annotations

from pathlib import Path

from exporter.docs import regenerate

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_generated_blocks_are_current() -> None:
    text = README.read_text()
    assert regenerate(text) == text, "README is stale: run `make docs` and commit"


def test_readme_starts_with_the_two_setup_commands() -> None:
    head = README.read_text().split("## How it works")[0]
    assert "make demo" in head and "make test" in head
