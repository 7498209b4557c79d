"""What a scrape costs through the HTTP layer: the cached one and the first after a report.

The daemon rows measure cached scrapes end to end, and the render columns measure a fresh render
without HTTP. Changing the HTTP layer (parsing, framing, gzip) needs both paths measured through it,
so this section serves a replayed App with the exporter's own HttpServer on loopback (in a thread, by
an anyio blocking portal) and scrapes it with Prometheus's headers on a kept-alive connection:
- cached: /metrics as it is served between reports (the render cache answers);
- fresh: /metrics with the render cache emptied first, which is what the first scrape after each
  report costs;
- tiny: /-/healthy, where nearly all the time is the HTTP layer itself.
The three alternate, so drift on a shared machine touches each alike. Nothing here asserts a time.
"""

from __future__ import annotations

import http.client
import time

import anyio
from anyio.from_thread import start_blocking_portal

from exporter.app import App
from exporter.web.http import HttpServer, Request, Response

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;"
    "version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip",
    "User-Agent": "Prometheus/2.42.0",
    "X-Prometheus-Scrape-Timeout-Seconds": "10",
}
"""What a Prometheus 2 scrape sends, so negotiation and gzip take the path they take in production."""
PATHS = {"cached": "/metrics", "fresh": "/metrics?fresh", "tiny": "/-/healthy"}


def http_scrape_cost(app: App, requests: int) -> dict[str, list[float]]:
    """Serve `app` (already fed) on loopback; seconds taken by each of `requests` rounds, per PATHS kind."""

    def handle(request: Request) -> Response:
        if request.query == "fresh":
            app.exposition.rendered.clear()
        return app.handle(request)

    timings: dict[str, list[float]] = {kind: [] for kind in PATHS}
    with start_blocking_portal() as portal:
        server = portal.call(HttpServer.bind, "127.0.0.1", 0)
        portal.start_task_soon(server.serve, handle)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            for round_ in range(requests + 1):
                for kind, path in PATHS.items():
                    start = time.perf_counter()
                    conn.request("GET", path, headers=PROMETHEUS_HEADERS)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"{path} answered {response.status}")
                    if round_:  # the first round warms caches and connections
                        timings[kind].append(time.perf_counter() - start)
        finally:
            conn.close()
            portal.call(server.aclose)
    return timings


def fed_app(app: App) -> App:
    """The App after its replay has been read, ready to serve."""
    anyio.run(app.replay)
    return app
