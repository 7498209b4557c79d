"""Generates the README's flag reference and metric tables from the parser and the collectors.

`python -m exporter.docs --write README.md` rewrites the generated blocks in place; `--check` fails if
they are out of date (a test runs it), so the documentation cannot drift from the code.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from exporter.collectors import COLLECTORS, Collector
from exporter.collectors.base import OWNER_LABELS
from exporter.collectors.self import SPECS as SELF_SPECS


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def flag_table() -> str:
    """Markdown table of every command-line flag."""
    from exporter.cli import build_parser

    rows = ["| flag | default | meaning |", "|---|---|---|"]
    for action in build_parser()._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flags = ", ".join(f"`{flag}`" for flag in action.option_strings)
        default = "" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
        rows.append(f"| {flags} | {default} | {_cell(action.help or '')} |")
    return "\n".join(rows)


def metric_table(collectors: Iterable[type[Collector]]) -> str:
    """Markdown table of every metric the collectors declare."""
    rows = ["| metric | type | labels | source field | collector |", "|---|---|---|---|---|"]
    for collector in collectors:
        default = "" if collector.default_enabled else " (off by default)"
        for spec in collector.specs:
            labels = ", ".join(f"`{label}`" for label in spec.labels)
            if collector.owner_labelled(spec):
                labels += (
                    " (+ " + ", ".join(f"`{label}`" for label in OWNER_LABELS) + " with pod attribution)"
                )
            rows.append(
                f"| `{spec.name}` | {spec.kind} | {labels} | `{_cell(spec.source)}` | {collector.name}{default} |"
            )
    return "\n".join(rows)


def self_table() -> str:
    """Markdown table of the exporter's own metrics."""
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for spec in SELF_SPECS:
        labels = ", ".join(f"`{label}`" for label in spec.labels)
        rows.append(f"| `{spec.name}` | {spec.kind} | {labels} | {_cell(spec.help)} |")
    return "\n".join(rows)


def aws_table() -> str:
    """Markdown table of the AWS-compatible names and the default-mode metric each corresponds to."""
    from exporter.collectors.aws_compat import AWS_COLLECTORS

    return metric_table(AWS_COLLECTORS)


def default_table() -> str:
    """Markdown table of the default metric set."""
    return metric_table(COLLECTORS)


DASHBOARDS = Path(__file__).resolve().parents[1] / "dashboards"


def dashboard_panels() -> str:
    """Each committed dashboard's panels by row, read from its JSON (dashboards/*.json)."""
    import json

    out: list[str] = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dashboard = json.loads(path.read_text())
        out.append(f"**{dashboard['title']}** (`dashboards/{path.name}`, uid `{dashboard['uid']}`)\n")
        rows: list[tuple[str, list[str]]] = []
        for panel in dashboard["panels"]:
            if panel["type"] == "row":
                rows.append((panel["title"], []))
            elif rows:
                rows[-1][1].append(f"{panel['title']} ({panel['type']})")
        out.extend(f"- {row}: {', '.join(titles)}" for row, titles in rows)
        out.append("")
    return "\n".join(out).rstrip()


def remote_write_block() -> str:
    """The prometheus.yml lines that send a central store what the fleet dashboard reads."""
    from dashboards.fleet import REMOTE_WRITE_KEEP

    return (
        "```yaml\n"
        "global:\n"
        "  external_labels: {cluster: eks-prod-us-east-1}   # one value per cluster\n"
        "remote_write:\n"
        "  - url: https://aps-workspaces.us-east-1.amazonaws.com/workspaces/<id>/api/v1/remote_write\n"
        "    write_relabel_configs:\n"
        "      - source_labels: [__name__]\n"
        "        action: keep\n"
        f"        regex: '{REMOTE_WRITE_KEEP}'\n"
        "```"
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "flags": flag_table,
    "metrics": default_table,
    "self-metrics": self_table,
    "aws-metrics": aws_table,
    "dashboards": dashboard_panels,
    "remote-write": remote_write_block,
}


def regenerate(text: str) -> str:
    """The README text with every generated block replaced by its current content."""
    for name, build in BLOCKS.items():
        pattern = re.compile(
            rf"(<!-- BEGIN GENERATED: {name} -->\n).*?(<!-- END GENERATED: {name} -->)", re.DOTALL
        )
        match = pattern.search(text)
        if match is None:
            raise SystemExit(f"README has no generated block {name!r}")
        start, end = match.span()
        text = f"{text[:start]}<!-- BEGIN GENERATED: {name} -->\n{build()}\n<!-- END GENERATED: {name} -->{text[end:]}"
    return text


def write_or_check(outputs: Mapping[Path, str], *, check: bool, remedy: str) -> int:
    """Write generated files, or (check) exit status 1 naming the committed ones that differ.

    Shared by every generator of committed files (dashboards, rules, manifests), so each has the same
    `--check` that its test runs.
    """
    stale = []
    for path, text in outputs.items():
        if not check:
            path.write_text(text)
        elif not path.exists() or path.read_text() != text:
            stale.append(path.name)
    if stale:
        print(f"stale: {', '.join(stale)}; run `{remedy}`", file=sys.stderr)
        return 1
    return 0


def generator_main(
    prog: str, outputs: Callable[[], Mapping[Path, str]], remedy: str, argv: Sequence[str] | None
) -> int:
    """The command line of a generator of committed files: write them, or `--check` them."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed file is stale")
    args = parser.parse_args(argv)
    return write_or_check(outputs(), check=args.check, remedy=remedy)


def main(argv: Sequence[str] | None = None) -> int:
    """`--write FILE` updates the blocks; `--check FILE` exits 1 when they are stale."""
    parser = argparse.ArgumentParser(prog="python -m exporter.docs")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", type=Path)
    mode.add_argument("--check", type=Path)
    args = parser.parse_args(argv)
    path: Path = args.write or args.check
    current = path.read_text()
    fresh = regenerate(current)
    if args.write:
        path.write_text(fresh)
        return 0
    if fresh != current:
        print(f"{path}: generated blocks are out of date; run `make docs`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
