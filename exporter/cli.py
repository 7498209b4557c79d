"""Command line -> one frozen Settings; logging set-up; run the app. Usage errors exit 2 with one line."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from exporter import __version__
from exporter.collectors import COLLECTORS
from exporter.logformat import FORMATS, formatter
from exporter.prices import PRICINGS, Price, PriceBook, PriceError, fixed_price, load_prices
from exporter.settings import DEFAULT_MAX_LINE_BYTES, DEFAULT_POD_RESOURCES_SOCKET, Settings
from exporter.sources.monconfig import (
    DEFAULT_PERIOD,
    ConfigError,
    MonitorConfig,
    load_monitor_config,
    parse_duration,
)

FALLBACK_MONITOR = "/opt/aws/neuron/bin/neuron-monitor"
SHAPES = ("inf1.xlarge", "inf2.48xlarge", "trn1.2xlarge", "trn1.32xlarge", "trn2.48xlarge")
EXIT_USAGE = 2


class UsageError(Exception):
    """A problem the user must fix before the exporter can run; printed as one line, exit 2."""


def build_parser() -> argparse.ArgumentParser:
    """The flag reference (the README's table is generated from this parser's help)."""
    parser = argparse.ArgumentParser(
        prog="neuron-exporter",
        description="Prometheus exporter for AWS Inferentia/Trainium: runs neuron-monitor and serves /metrics.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="neuron-monitor config file, passed as `-c` (required unless --replay, --simulate or --input; "
        "with --input it only sets the period that staleness is measured in)",
    )
    parser.add_argument(
        "--config.strict",
        dest="config_strict",
        action="store_true",
        help="refuse a config with a metric group or key the exporter does not know (default: warn and "
        "pass it to neuron-monitor, which may be newer)",
    )
    parser.add_argument(
        "--config.allow-fractional-periods",
        dest="config_fractional",
        action="store_true",
        help='accept periods like "0.5s" or "1.0s", which neuron-monitor has been seen to ignore (for '
        "stand-ins that honour them, such as the built-in simulator)",
    )
    parser.add_argument(
        "--neuron-monitor-path",
        help=f"neuron-monitor executable (default: `neuron-monitor` on PATH, then {FALLBACK_MONITOR})",
    )
    parser.add_argument(
        "--simulate",
        metavar="SHAPE",
        choices=SHAPES,
        help=f"run the built-in neuron-monitor simulator instead ({', '.join(SHAPES)})",
    )
    parser.add_argument(
        "--simulate-runtimes",
        type=int,
        default=4,
        metavar="N",
        help="runtimes the simulator reports (default 4)",
    )
    parser.add_argument(
        "--replay",
        type=Path,
        metavar="FILE",
        help="read reports from a JSON-lines capture instead of running neuron-monitor",
    )
    parser.add_argument(
        "--input",
        metavar="SOURCE",
        help="sidecar mode: read the reports neuron-monitor writes to `-` (stdin), a FIFO or a file, "
        "instead of starting it",
    )
    parser.add_argument(
        "--once", action="store_true", help="with --replay: print the final exposition and exit"
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        default=":8000",
        help="address to serve /metrics on (default :8000, the port of AWS's exporter)",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        type=Path,
        metavar="FILE",
        help="TLS, client-certificate and basic-auth config in the Prometheus exporter-toolkit format "
        "(as node_exporter's); re-read when it or its certificate files change",
    )
    parser.add_argument(
        "--compat",
        choices=("none", "aws"),
        default="none",
        help="`aws`: emit the metric names and labels of AWS's neuron-monitor-prometheus.py",
    )
    for collector in COLLECTORS:
        parser.add_argument(
            f"--collector.{collector.name}",
            dest=f"collector_{collector.name}",
            action=argparse.BooleanOptionalAction,
            default=collector.default_enabled,
            help=f"{collector.description} (default {'on' if collector.default_enabled else 'off'})",
        )
    parser.add_argument(
        "--collector.memory_used.per-model",
        dest="per_model",
        action="store_true",
        help="export per-model memory series (labels carry model names, often temp paths)",
    )
    parser.add_argument(
        "--collector.vcpu_usage.per-vcpu",
        dest="per_vcpu",
        action="store_true",
        help="export host CPU usage per vCPU, not only the average",
    )
    parser.add_argument(
        "--web.max-connections",
        dest="max_connections",
        type=int,
        default=1024,
        help="open HTTP connections before the oldest one without a request in progress is shed for a new one",
    )
    cost = parser.add_mutually_exclusive_group()
    cost.add_argument(
        "--instance-hourly-cost",
        type=float,
        metavar="USD",
        help="what this node costs per hour, exported as neuron_instance_hourly_cost_usd for the cost dashboard",
    )
    cost.add_argument(
        "--instance-prices",
        type=Path,
        metavar="FILE",
        help="price file (JSON) keyed by instance type and region, with each figure's source and date "
        "(examples/prices.json); the node's figure is picked by what neuron-monitor reports",
    )
    parser.add_argument(
        "--path.procfs",
        dest="procfs",
        type=Path,
        default=Path("/proc"),
        help="where runtime processes' command lines are read, for the model a Triton stub serves (default /proc)",
    )
    parser.add_argument(
        "--instance-pricing",
        choices=PRICINGS,
        default="on-demand",
        help="the capacity type this node is paid as, for the price file's figure (default on-demand)",
    )
    parser.add_argument(
        "--kubernetes",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pod attribution from the kubelet's PodResources API: namespace, pod and container on "
        "per-core and per-runtime series (default: on when the socket exists)",
    )
    parser.add_argument(
        "--kubernetes.pod-resources-socket",
        dest="pod_resources_socket",
        type=Path,
        default=DEFAULT_POD_RESOURCES_SOCKET,
        metavar="PATH",
        help=f"the kubelet's PodResources socket (default {DEFAULT_POD_RESOURCES_SOCKET})",
    )
    parser.add_argument(
        "--kubernetes.refresh-interval",
        dest="kubernetes_refresh",
        default="10s",
        metavar="DURATION",
        help="how often the pod mapping is asked for (default 10s)",
    )
    parser.add_argument(
        "--kubernetes.timeout",
        dest="kubernetes_timeout",
        default="2s",
        metavar="DURATION",
        help="how long one answer from the kubelet may take (default 2s)",
    )
    parser.add_argument(
        "--kubernetes.keep-mapping",
        dest="kubernetes_keep",
        default="60s",
        metavar="DURATION",
        help="how long the last good pod mapping is used while the kubelet gives no good answer (default 60s)",
    )
    parser.add_argument(
        "--kubernetes.node-name",
        dest="node_name",
        default=os.environ.get("NODE_NAME") or None,
        metavar="NAME",
        help="the node's name, exported as neuron_kubernetes_node_info (default: $NODE_NAME, which the "
        "DaemonSet sets from the downward API)",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        help="longest report line accepted; longer ones are dropped and counted",
    )
    parser.add_argument(
        "--stale-periods",
        type=float,
        default=3.0,
        help="periods without a report after which data is stale (readiness fails, up=0)",
    )
    parser.add_argument(
        "--hang-periods",
        type=float,
        default=10.0,
        help="periods of silence after which neuron-monitor is killed and restarted",
    )
    parser.add_argument(
        "--log.level",
        dest="log_level",
        default="info",
        choices=("debug", "info", "warning", "error"),
        help="log level (default info)",
    )
    parser.add_argument(
        "--log.format",
        dest="log_format",
        default="text",
        choices=FORMATS,
        help="log line format: text for people (default), logfmt or json for log pipelines",
    )
    parser.add_argument("--version", action="version", version=f"neuron-exporter {__version__}")
    return parser


def resolve_monitor(path: str | None) -> str:
    """The neuron-monitor executable to run, checked now so a typo fails at start, not in a loop."""
    candidates = [path] if path else ["neuron-monitor", FALLBACK_MONITOR]
    for candidate in candidates:
        found = shutil.which(candidate)
        if found:
            return found
    if path:
        if os.path.exists(path):
            raise UsageError(f"neuron-monitor at {path} is not executable")
        raise UsageError(f"neuron-monitor not found at {path}")
    raise UsageError(
        f"neuron-monitor not found on PATH or at {FALLBACK_MONITOR}: install aws-neuronx-tools, "
        "pass --neuron-monitor-path, or try --simulate trn2.48xlarge"
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate the flags together and resolve paths; UsageError on anything the user must fix."""
    from exporter.web.http import parse_listen_address

    if args.once and not args.replay:
        raise UsageError("--once needs --replay FILE")
    sources = [
        flag
        for flag, value in (("--replay", args.replay), ("--simulate", args.simulate), ("--input", args.input))
        if value
    ]
    if len(sources) > 1:
        raise UsageError(f"{' and '.join(sources)} exclude each other")
    if args.config is None and not sources:
        raise UsageError(
            "--config mon.json is required (or --replay FILE, --simulate SHAPE or --input SOURCE)"
        )
    try:
        host, port = parse_listen_address(args.listen_address)
    except ValueError as exc:
        raise UsageError(f"--web.listen-address: {exc}") from None
    if args.replay:
        _check_replay(args.replay)
    if args.input and args.input != "-":
        _check_input(Path(args.input))
    try:
        config = (
            load_monitor_config(args.config, strict=args.config_strict, fractional=args.config_fractional)
            if args.config
            else MonitorConfig(None, DEFAULT_PERIOD, frozenset())
        )
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    config_args = ("-c", str(args.config)) if args.config else ()
    if args.replay or args.input:
        argv: tuple[str, ...] = ()
    elif args.simulate:
        argv = (
            sys.executable,
            "-m",
            "exporter.simulator",
            "--shape",
            args.simulate,
            "--runtimes",
            str(args.simulate_runtimes),
            *config_args,
        )
    else:
        argv = (resolve_monitor(args.neuron_monitor_path), *config_args)
    for flag, value in (("--stale-periods", args.stale_periods), ("--hang-periods", args.hang_periods)):
        if not 0 < value < math.inf:
            raise UsageError(f"{flag} must be a number of periods above 0, not {value:g}")
    if args.max_line_bytes < 1024:
        raise UsageError("--max-line-bytes must be at least 1024")
    fixed_price, prices = _prices(args)
    if args.max_connections < 1:
        raise UsageError("--web.max-connections must be at least 1")
    refresh, timeout, keep = (
        _duration(flag, value)
        for flag, value in (
            ("--kubernetes.refresh-interval", args.kubernetes_refresh),
            ("--kubernetes.timeout", args.kubernetes_timeout),
            ("--kubernetes.keep-mapping", args.kubernetes_keep),
        )
    )
    kubernetes = args.kubernetes if args.kubernetes is not None else args.pod_resources_socket.is_socket()
    return Settings(
        monitor_config=config,
        monitor_argv=argv,
        replay=args.replay,
        input=args.input,
        once=args.once,
        listen_host=host,
        listen_port=port,
        web_config_file=args.web_config_file,
        aws_compat=args.compat == "aws",
        collectors=frozenset(c.name for c in COLLECTORS if getattr(args, f"collector_{c.name}")),
        per_model=args.per_model,
        per_vcpu=args.per_vcpu,
        fixed_price=fixed_price,
        prices=prices,
        pricing=args.instance_pricing,
        procfs=args.procfs,
        max_connections=args.max_connections,
        max_line_bytes=args.max_line_bytes,
        config_strict=args.config_strict,
        config_fractional=args.config_fractional,
        stale_periods=args.stale_periods,
        hang_periods=args.hang_periods,
        log_level=args.log_level,
        kubernetes=kubernetes,
        pod_resources_socket=args.pod_resources_socket,
        kubernetes_refresh=refresh,
        kubernetes_timeout=timeout,
        kubernetes_keep=keep,
        node_name=args.node_name,
    )


def _check_replay(path: Path) -> None:
    """A capture to replay must exist and hold at least one report: an empty one would serve nothing
    and --once would print an empty exposition as if all were well."""
    from exporter.model.report import looks_like_report

    try:
        with path.open("rb") as stream:
            if any(looks_like_report(line) for line in stream):
                return
    except FileNotFoundError:
        raise UsageError(f"replay file {path} not found") from None
    except OSError as exc:
        raise UsageError(f"replay file {path}: {exc.strerror}") from None
    raise UsageError(f"replay file {path} holds no neuron-monitor report (one JSON object per line)")


def _check_input(path: Path) -> None:
    """--input PATH must be a FIFO or a regular file we can read, or not exist yet (it is waited for):
    a directory, a socket or a file we may not read would otherwise fail only later, or forever."""
    import stat

    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise UsageError(f"--input {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UsageError(f"--input {path} is a directory; give the FIFO or file neuron-monitor writes")
    if not (stat.S_ISFIFO(mode) or stat.S_ISREG(mode)):
        raise UsageError(f"--input {path} is neither a FIFO nor a regular file")
    if stat.S_ISFIFO(mode):
        # Not opened: that would let a writer blocked in open() through, and our close right after
        # would meet its first write with SIGPIPE. access() asks the same question without it.
        if not os.access(path, os.R_OK):
            raise UsageError(f"--input {path}: cannot read: Permission denied")
        return
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError as exc:
        raise UsageError(f"--input {path}: cannot read: {exc.strerror}") from None


def _duration(flag: str, text: str) -> float:
    """A flag's duration ("10s", "1m", "0.5s") in seconds; UsageError if it is not one."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {str(exc).replace('period', 'duration', 1)}") from None


def _prices(args: argparse.Namespace) -> tuple[Price | None, PriceBook | None]:
    """The node's price from --instance-hourly-cost or --instance-prices (at most one is given)."""
    if args.instance_hourly_cost is not None:
        if not 0 <= args.instance_hourly_cost < float("inf"):
            raise UsageError("--instance-hourly-cost must be a non-negative number of dollars")
        return fixed_price(args.instance_hourly_cost, args.instance_pricing), None
    if args.instance_prices is not None:
        try:
            return None, load_prices(args.instance_prices)
        except PriceError as exc:
            raise UsageError(str(exc)) from None
    return None, None


def _raise_file_limit() -> None:
    """Lift the soft open-files limit to the hard one (as Go programs do): systemd and most container
    runtimes start services at 1024, below what --web.max-connections plus neuron-monitor need."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `neuron-exporter` command."""
    from exporter.app import run
    from exporter.memtune import keep_large_blocks_in_mmap
    from exporter.web.http import ListenAddressError
    from exporter.web.webconfig import WebConfigError

    args = build_parser().parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(args.log_format))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    keep_large_blocks_in_mmap()
    _raise_file_limit()
    try:
        settings = settings_from_args(args)
        return anyio.run(run, settings)
    except (UsageError, ListenAddressError, WebConfigError) as exc:
        print(f"neuron-exporter: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
