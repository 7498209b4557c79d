"""`python -m exporter.healthcheck`: the container's HEALTHCHECK, wherever and however the exporter listens.

A fixed `http://127.0.0.1:8000/-/healthy` fails under TLS, basic auth or `--web.listen-address
10.0.0.5:8000`. This reads the exporter's own command line (/proc/<pid>/cmdline: pid 1 in the image, or the
exporter sharing our mount namespace where the container has the host's PID namespace),
finds its listen address with the exporter's parser, and asks `/-/healthy` there. Any HTTP answer
proves the exporter serves, so 401 (basic auth) and the 400 a TLS port gives plain HTTP count as
alive; no answer, or no exporter process, is unhealthy (exit 1).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from exporter.cli import build_parser
from exporter.web.http import parse_listen_address

TIMEOUT = 4.0


def _argv(pid: int | str) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")


def _exporter_start(argv: list[str]) -> int | None:
    """Where the exporter's own arguments begin in a command line; None if it is not the exporter's."""
    for index, arg in enumerate(argv):
        if arg.endswith("neuron-exporter") or arg == "exporter.cli":
            return index + 1
    return None


def find_exporter() -> int:
    """The exporter of this container: pid 1, or, with the host's PID namespace (the standalone
    DaemonSet, `docker run --pid=host`), the exporter process that shares our mount namespace."""
    try:
        if _exporter_start(_argv(1)) is not None:
            return 1
    except OSError:
        pass
    ours = os.readlink("/proc/self/ns/mnt")
    pids = sorted(int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit())
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            if _exporter_start(_argv(pid)) is not None and os.readlink(f"/proc/{pid}/ns/mnt") == ours:
                return pid
        except OSError:
            continue
    raise OSError("no neuron-exporter process found")


def listen_address(pid: int) -> tuple[str, int]:
    """The address to reach the exporter of process `pid` at: its listen host, or loopback for all."""
    argv = _argv(pid)
    args, _ = build_parser().parse_known_args(argv[_exporter_start(argv) or 1 :])
    host, port = parse_listen_address(args.listen_address)
    if host in (None, "", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port


def alive(host: str, port: int) -> bool:
    """Whether an HTTP answer of any status comes back for GET /-/healthy."""
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            sock.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: healthcheck\r\nConnection: close\r\n\r\n")
            return sock.recv(16).startswith((b"HTTP/1.1 ", b"HTTP/1.0 "))
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Exit 0 if the exporter answers, 1 otherwise, with one line saying why."""
    parser = argparse.ArgumentParser(prog="python -m exporter.healthcheck", description=__doc__)
    parser.add_argument("--pid", type=int, help="the exporter's process (default: found; pid 1 in the image)")
    args = parser.parse_args(argv)
    try:
        host, port = listen_address(args.pid if args.pid is not None else find_exporter())
    except (OSError, ValueError, SystemExit) as exc:
        who = f"process {args.pid}" if args.pid is not None else "neuron-exporter"
        print(f"unhealthy: cannot read how {who} listens: {exc}", file=sys.stderr)
        return 1
    if alive(host, port):
        return 0
    print(f"unhealthy: no HTTP answer from {host}:{port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
