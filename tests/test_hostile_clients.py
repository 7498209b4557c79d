"""Slow or idle clients never keep Prometheus out: sockets that stall in the request head or in the TLS
handshake, and keep-alive connections left idle, while a client scrapes once a second (part of issue 12)."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.daemon import Daemon, sample_value, wait_for
from tests.test_websecurity import Pki, pki, write_web_config  # noqa: F401 - pki is a fixture

SCRAPE_BUDGET = 1.0
"""Every scrape must complete within this (Prometheus' own timeout is 10 s)."""


@contextmanager
def stalled(port: int, count: int, payload: bytes) -> Iterator[list[socket.socket]]:
    """`count` connections that send `payload` and then nothing."""
    with ExitStack() as stack:
        sockets = []
        for _ in range(count):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=10))
            if payload:
                sock.sendall(payload)
            sockets.append(sock)
        yield sockets


def timed_scrapes(get: Callable[[], int], count: int) -> list[float]:
    """`count` scrapes one second apart; each must succeed within the budget (its socket timeout)."""
    taken = []
    for index in range(count):
        start = time.monotonic()
        status = get()
        taken.append(time.monotonic() - start)
        assert status == 200
        if index + 1 < count:
            time.sleep(max(0.0, 1.0 - taken[-1]))  # the scrape schedule, not a wait for a condition
    return taken


def scraper(connect: Callable[[], http.client.HTTPConnection]) -> Callable[[], int]:
    """One GET /metrics on a new connection from `connect`, its status."""

    def scrape() -> int:
        connection = connect()
        try:
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    return scrape


def cut(daemon: Daemon) -> dict[str, float]:
    text = daemon.metrics()
    return {
        reason: sample_value(text, "neuron_exporter_http_connections_cut_total", reason=reason) or 0.0
        for reason in (
            "head_timeout",
            "evicted_head",
            "evicted_idle",
            "handshake_timeout",
            "evicted_handshake",
        )
    }


def test_stalled_heads_and_idle_keep_alives_do_not_delay_scrapes(tmp_path: Path) -> None:
    with Daemon(tmp_path, "--simulate", "inf1.xlarge", "--web.max-connections", "150") as daemon:
        wait_for(lambda: daemon.get("/-/ready")[0] == 200, 30, "readiness")
        idle: list[http.client.HTTPConnection] = []
        stack = ExitStack()
        for _ in range(20):  # keep-alive connections that completed a request and went quiet
            connection = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
            connection.request("GET", "/-/healthy")
            connection.getresponse().read()
            stack.callback(connection.close)
            idle.append(connection)

        scrape = scraper(lambda: http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=SCRAPE_BUDGET))

        with stack, stalled(daemon.port, 200, b"GET /metrics HTTP/1.1\r\nHost: x\r\n"):
            taken = timed_scrapes(scrape, 7)  # spans the 5 s head deadline
        assert max(taken) < SCRAPE_BUDGET

        def heads_cut() -> dict[str, float] | None:
            counts = cut(daemon)
            return counts if counts["head_timeout"] + counts["evicted_head"] >= 200 else None

        counts = wait_for(heads_cut, 30, "the stalled heads to be cut and counted")
        assert counts["evicted_idle"] + counts["evicted_head"] >= 220 - 150


def test_stalled_tls_handshakes_do_not_delay_https_scrapes(tmp_path: Path, pki: Pki) -> None:  # noqa: F811
    config = write_web_config(
        tmp_path, "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    )
    with Daemon(
        tmp_path, "--simulate", "inf1.xlarge", "--web.config.file", str(config), "--web.max-connections", "60"
    ) as daemon:
        context = ssl.create_default_context()
        pki.ca.configure_trust(context)

        scrape = scraper(
            lambda: http.client.HTTPSConnection(
                "127.0.0.1", daemon.port, context=context, timeout=SCRAPE_BUDGET
            )
        )

        def https_metrics() -> str:
            connection = http.client.HTTPSConnection("127.0.0.1", daemon.port, context=context, timeout=10)
            try:
                connection.request("GET", "/metrics")
                return connection.getresponse().read().decode()
            finally:
                connection.close()

        wait_for(lambda: "neuron_instance_info" in https_metrics(), 30, "a report")
        with stalled(daemon.port, 100, b""):  # connect, never send a ClientHello
            taken = timed_scrapes(scrape, 7)
        assert max(taken) < SCRAPE_BUDGET

        def counted() -> dict[str, float] | None:
            text = https_metrics()
            found = {
                reason: sample_value(text, "neuron_exporter_http_connections_cut_total", reason=reason) or 0.0
                for reason in ("handshake_timeout", "evicted_handshake")
            }
            return found if sum(found.values()) >= 100 else None

        counts = wait_for(counted, 30, "the stalled handshakes to be cut and counted")
        assert counts["evicted_handshake"] >= 100 - 60
