"""Command line of the simulator: neuron-monitor's flags plus shape, load and fault-injection switches."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import IO, NoReturn

from exporter.simulator.config import ConfigError, load_config
from exporter.simulator.groups import RUNTIME_GROUPS, SYSTEM_GROUPS
from exporter.simulator.shapes import DEFAULT_SHAPE, SHAPES
from exporter.simulator.simulator import Simulator

EXIT_BAD_CONFIG = 1
"""neuron-monitor's exit code for unusable input (SCHEMA.md §1)."""
EXIT_CRASH = 3
DEFAULT_OVERSIZED_BYTES = 2 * 1024 * 1024

_EPOCH = datetime(2025, 6, 1, 12, 0, 0, tzinfo=timezone.utc)
"""Timestamps in simulated log lines count from here, so stderr is as reproducible as stdout."""

_GARBAGE = (
    b'{"neuron_runtime_data":[{"pid":15439,"neuron_runtime_tag":"15439","error":"","report":{"neuroncore_co',
    b"\x00\xff\xfe\x1b[0m\x80\x81 binary noise \xc3\x28",
    b"nrt_get_version: unable to read /sys/devices/virtual/neuron_device/neuron0 (stray stdout text)",
)
_NOISE = (
    "nrt_poll_status: transient error reading runtime {tag} counters, retrying",
    "tdrv_get_dev_info: device 0 busy, sample for runtime {tag} delayed",
    "neuron_sysfs: stale memory usage entry for pid {pid} ignored",
)


class _Stopped(BaseException):
    """Raised by the SIGTERM/SIGINT handler: leave quietly with exit code 0."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # neuron-monitor exits 1 on a bad flag; its usage text goes to stderr here, stdout is the stream.
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_CONFIG, f"{self.prog}: error: {message}\n")


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


def _pid_list(text: str) -> tuple[int, ...]:
    try:
        pids = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of pids") from None
    if any(pid < 1 for pid in pids):
        raise argparse.ArgumentTypeError(f"{text!r}: pids are positive")
    return pids


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The simulator's flags: neuron-monitor's own (-c, --verbose) first, then the simulation's."""
    parser = _Parser(
        prog="python -m exporter.simulator",
        description="A stand-in for AWS neuron-monitor: prints one JSON report per line on stdout.",
    )
    parser.add_argument(
        "-c",
        "--config-file",
        dest="config",
        metavar="PATH",
        help="neuron-monitor config file (default: every metric group, period 5 s)",
    )
    parser.add_argument(
        "--verbose", type=int, default=0, metavar="N", help="accepted like neuron-monitor's, ignored"
    )
    parser.add_argument(
        "--shape",
        choices=tuple(SHAPES),
        default=DEFAULT_SHAPE,
        help=f"instance type to play (default {DEFAULT_SHAPE})",
    )
    parser.add_argument(
        "--runtimes", type=_count, default=1, metavar="N", help="Neuron applications running (default 1)"
    )
    parser.add_argument(
        "--models-per-runtime",
        type=_count,
        default=2,
        metavar="M",
        help="models each application has loaded (default 2)",
    )
    parser.add_argument(
        "--pids",
        type=_pid_list,
        default=(),
        metavar="P,P,...",
        help="the pids of the first applications (real processes a test started), instead of made-up ones",
    )
    parser.add_argument(
        "--tagged",
        action="store_true",
        help='tag application i "app_<i>" (NEURON_PROCESS_TAG) instead of its PID',
    )
    parser.add_argument(
        "--executions-per-second",
        type=float,
        metavar="R",
        help="hold the node at exactly R completed executions per second, always busy and error-free "
        "(split among the applications), e.g. to check cost-per-execution arithmetic",
    )
    parser.add_argument(
        "--shared-tag",
        metavar="TAG",
        help="every application reports under this one tag, as workers inheriting NEURON_PROCESS_TAG do",
    )
    parser.add_argument(
        "--k8s", action="store_true", help="add neuron_k8s_info (pods owning cores and devices)"
    )
    parser.add_argument(
        "--format",
        choices=("current", "guide"),
        default="current",
        help="`current` (default): what neuron-monitor prints in 2025-2026 (effective_flops, no flops, no "
        "generic error type, subgraphs naming their physical core); `guide`: the user guide's shape",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every random value (default 0)")
    parser.add_argument("--count", type=_count, metavar="N", help="print N reports, then exit 0")
    parser.add_argument(
        "--no-sleep",
        action="store_true",
        help="print reports back to back (their periods still follow the config)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--crash-after",
        type=_count,
        metavar="N",
        help=f"exit {EXIT_CRASH} right after N reports, with a line on stderr",
    )
    faults.add_argument(
        "--hang-after", type=_count, metavar="N", help="after N reports stay alive and silent until killed"
    )
    faults.add_argument(
        "--garbage-every",
        type=_positive,
        metavar="N",
        help="after every N-th report print a line that is not JSON",
    )
    faults.add_argument(
        "--oversized-line-after",
        type=_count,
        metavar="N",
        help="after N reports print one line of --oversized-bytes bytes (once)",
    )
    faults.add_argument(
        "--oversized-bytes",
        type=_positive,
        default=DEFAULT_OVERSIZED_BYTES,
        metavar="B",
        help="length of that line without its newline (default 2 MiB)",
    )
    faults.add_argument(
        "--group-error",
        action="append",
        default=[],
        choices=("neuron_runtime_data", *RUNTIME_GROUPS, *SYSTEM_GROUPS),
        metavar="GROUP",
        help="this group (or neuron_runtime_data: each whole runtime entry) carries neuron-monitor's own "
        "error in every report, beside its data; repeatable",
    )
    faults.add_argument("--stderr-noise", action="store_true", help="one log-like line on stderr per report")
    faults.add_argument(
        "--exit-code-at-start",
        type=int,
        metavar="C",
        help="print an error on stderr and exit C at once (like neuron-monitor without a device)",
    )
    return parser


def _stamp(seconds: float) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _log(err: IO[str], seconds: float, level: str, message: str) -> None:
    """A logfmt line on stderr, the format a third party saw from neuron-monitor (SCHEMA.md §1)."""
    err.write(f'time="{_stamp(seconds)}" level={level} msg="{message}"\n')
    err.flush()


def oversized_line(size: int) -> bytes:
    """A JSON object padded to exactly `size` bytes, plus the newline."""
    head, tail = b'{"padding":"', b'"}'
    if size < len(head) + len(tail):
        return b"x" * size + b"\n"
    return head + b"x" * (size - len(head) - len(tail)) + tail + b"\n"


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def _silence_stdout() -> None:
    # Whatever is left in the buffer cannot be delivered (broken pipe) or is a torn line of a dying
    # process; point fd 1 at /dev/null so the interpreter's final flush has nothing to complain about.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def run(sim: Simulator, args: argparse.Namespace, out: IO[bytes], err: IO[str]) -> int:
    """The emission loop with its fault switches; returns the exit code."""
    start = time.monotonic()
    written = 0
    while True:
        # Faults "after N reports" come first, so they also fire when N equals --count or is 0.
        if args.oversized_line_after == written:
            out.write(oversized_line(args.oversized_bytes))
            out.flush()
        if args.crash_after is not None and written >= args.crash_after:
            message = f"lost the Neuron driver after {written} reports (simulated crash), exiting"
            _log(err, sim.line_time(written), "fatal", message)
            return EXIT_CRASH
        if args.hang_after is not None and written >= args.hang_after:
            while True:
                time.sleep(3600)
        if args.count is not None and written >= args.count:
            return 0
        data = sim.line(written)
        if not args.no_sleep:
            deadline = start + sim.line_time(written)
            now = time.monotonic()
            if now < deadline:
                time.sleep(deadline - now)
            elif now - deadline > sim.period:
                # After a stall (SIGSTOP, a slow reader) carry on from now instead of bursting to catch up.
                start = now - sim.line_time(written)
        out.write(data)
        out.flush()
        written += 1
        if args.stderr_noise:
            _log(err, sim.line_time(written - 1), "warning", _noise(sim, written))
        if args.garbage_every is not None and written % args.garbage_every == 0:
            out.write(_GARBAGE[(written // args.garbage_every - 1) % len(_GARBAGE)] + b"\n")
            out.flush()


def _noise(sim: Simulator, written: int) -> str:
    runtime = sim.runtimes[written % len(sim.runtimes)] if sim.runtimes else None
    return _NOISE[written % len(_NOISE)].format(
        tag=runtime.tag if runtime else "-", pid=runtime.pid if runtime else 0
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m exporter.simulator`; returns the process exit code."""
    # Installed first, so a SIGTERM during start-up is just as quiet as one during the loop.
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        return _main(build_parser().parse_args(argv))
    except _Stopped:
        _silence_stdout()
        return 0
    except BrokenPipeError:
        _silence_stdout()
        return 0


def _main(args: argparse.Namespace) -> int:
    if args.exit_code_at_start is not None:
        _log(sys.stderr, 0.0, "error", "no Neuron devices found: failed to open /dev/neuron0 (simulated)")
        return int(args.exit_code_at_start)
    try:
        config = load_config(args.config) if args.config else None
    except ConfigError as exc:
        print(f"neuron-monitor: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    sim = Simulator(
        shape=args.shape,
        config=config,
        runtimes=args.runtimes,
        models_per_runtime=args.models_per_runtime,
        seed=args.seed,
        k8s=args.k8s,
        tagged=args.tagged,
        shared_tag=args.shared_tag,
        group_errors=tuple(args.group_error),
        executions_per_second=args.executions_per_second,
        guide=args.format == "guide",
        pids=args.pids,
    )
    return run(sim, args, sys.stdout.buffer, sys.stderr)
