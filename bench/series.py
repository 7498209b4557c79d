"""What one node costs a Prometheus, raw and after the remote_write keep-list, per shape.

    .venv/bin/python bench/series.py                      # prints the table
    .venv/bin/python bench/series.py --write README.md    # and rewrites its measured block there

For each shape, the real exporter runs the built-in simulator with a typical number of runtimes,
and a real Prometheus scrapes it every second with our recording rules. Raw is what one scrape
brings in (`scrape_samples_scraped`); after the keep-list is what the README's remote_write sends a
central store for that node (every series whose name matches dashboards.fleet.REMOTE_WRITE_KEEP).
Per 1,000 nodes is that times 1,000: series are per node, nothing is shared between nodes.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from alerts import rules  # noqa: E402
from dashboards.fleet import REMOTE_WRITE_KEEP  # noqa: E402
from tests.daemon import Daemon, wait_for  # noqa: E402
from tests.prometheus import Prometheus  # noqa: E402

SHAPES = (
    ("inf1.xlarge", 1),
    ("inf2.48xlarge", 6),
    ("trn1.2xlarge", 1),
    ("trn1.32xlarge", 4),
    ("trn2.48xlarge", 4),
    ("trn2.48xlarge", 16),
)
"""(shape, runtimes): one model server per few cores, two models each (the simulator's default)."""
BLOCK = re.compile(r"(<!-- BEGIN MEASURED: series -->\n).*?(<!-- END MEASURED: series -->)", re.DOTALL)


def measure(shape: str, runtimes: int, tmp: Path) -> tuple[int, int]:
    """(raw series per scrape, series after the keep-list) of one node."""
    config = REPO / "examples" / "mon.json"
    args = ("--config", str(config), "--simulate", shape, "--simulate-runtimes", str(runtimes))
    with (
        Daemon(tmp, *args) as daemon,
        Prometheus(tmp / "prometheus", [f"127.0.0.1:{daemon.port}"], [rules.RULES_FILE]) as prometheus,
    ):

        def counts() -> tuple[int, int] | None:
            raw = prometheus.query("scrape_samples_scraped")
            kept = prometheus.query(f'count({{__name__=~"{REMOTE_WRITE_KEEP}"}})')
            rates = prometheus.query("instance:neuron_executions:rate5m")
            if not (raw and kept and rates):
                return None
            return int(float(raw[0]["value"][1])), int(float(kept[0]["value"][1]))

        wait_for(counts, 60, f"{shape}'s series and recording rules", interval=0.5)
        # Percentiles and ECC event types come with the first reports; take the count once it settles.
        previous = counts()
        while True:
            time.sleep(2)  # a benchmark, not a test: settle for a couple of scrapes
            current = counts()
            if current == previous:
                assert current is not None
                return current
            previous = current


def table() -> str:
    rows = [
        "| shape | runtimes | raw series per node | after the keep-list | raw per 1,000 nodes | kept per 1,000 nodes |",
        "|---|---|---|---|---|---|",
    ]
    for shape, runtimes in SHAPES:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "prometheus").mkdir()
            raw, kept = measure(shape, runtimes, Path(tmp))
        rows.append(f"| {shape} | {runtimes} | {raw:,} | {kept} | {raw * 1000:,} | {kept * 1000:,} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/series.py")
    parser.add_argument("--write", type=Path, help="rewrite the measured block of this file (README.md)")
    args = parser.parse_args(argv)
    text = table()
    print(text)
    if args.write:
        current = args.write.read_text()
        if not BLOCK.search(current):
            raise SystemExit(f"{args.write} has no <!-- BEGIN MEASURED: series --> block")
        args.write.write_text(BLOCK.sub(lambda m: f"{m.group(1)}{text}\n{m.group(2)}", current))
    return 0


if __name__ == "__main__":
    sys.exit(main())
