"""Composition root: builds the data path from Settings and runs it in one task group.

neuron-monitor stdout -> Supervisor -> Ingestor (decode, validate, advance) -> Store
HTTP scrape -> NeuronCollector(Store) -> exposition
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from functools import partial

import anyio
import anyio.abc

from exporter.cadence import Cadence
from exporter.collectors import COLLECTORS, Collector, Options
from exporter.exposition import Exposition, NeuronCollector, Store
from exporter.health import Health
from exporter.ingest import Ingestor
from exporter.model.state import State
from exporter.sdnotify import Notifier, describe, keep_systemd_informed
from exporter.settings import Settings
from exporter.sources.follow import Follower
from exporter.sources.monconfig import ConfigError, MonitorConfig, load_monitor_config
from exporter.sources.stream import LineFramer, deliver
from exporter.sources.supervisor import Supervisor
from exporter.web.http import HttpServer, Request, Response

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 16

LANDING_PAGE = b"""<!doctype html>
<html><head><title>neuron-exporter</title></head>
<body><h1>neuron-exporter</h1>
<p>Prometheus exporter for AWS Inferentia and Trainium, fed by neuron-monitor.</p>
<ul><li><a href="/metrics">/metrics</a></li>
<li><a href="/-/healthy">/-/healthy</a> (liveness)</li>
<li><a href="/-/ready">/-/ready</a> (readiness: fresh neuron-monitor data)</li></ul>
</body></html>
"""


def log_config_warnings(config: MonitorConfig) -> None:
    """One warning line for each thing in the neuron-monitor config that may not do what was meant."""
    for warning in config.warnings:
        log.warning("neuron-monitor config %s: %s", config.path, warning)


def make_collectors(settings: Settings) -> list[Collector]:
    """The enabled collectors of the chosen naming scheme, in table order."""
    table: Sequence[type[Collector]] = COLLECTORS
    if settings.aws_compat:
        from exporter.collectors.aws_compat import AWS_COLLECTORS

        table = AWS_COLLECTORS
    options = Options(
        per_model=settings.per_model,
        per_vcpu=settings.per_vcpu,
        fixed_price=settings.fixed_price,
        prices=settings.prices,
        pricing=settings.pricing,
        procfs=settings.procfs,
        node_name=settings.node_name,
    )
    return [cls(options) for cls in table if cls.name in settings.collectors]


class App:
    """The running exporter: state, health, ingest, and the HTTP routes over them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(State())
        self.health = Health(stale_after=settings.stale_after, replay=settings.replay is not None)
        # AWS's names include every core every runtime lists, so that mode keeps them all.
        # Loaded models and vCPUs are validated one by one only where their series are rendered.
        self.ingestor = Ingestor(
            self.store,
            self.health,
            prune_idle_cores=not settings.aws_compat,
            model_detail=settings.per_model and not settings.aws_compat,
            vcpu_detail=settings.per_vcpu and not settings.aws_compat,
            cadence=None if settings.replay else Cadence(settings.monitor_config.period),
            stale_periods=settings.stale_periods,
        )
        self.ingestor.on_period_change = self._follow_period
        collector = NeuronCollector(self.store, self.health, make_collectors(settings))
        self.exposition = Exposition(collector, process_metrics=not settings.once)
        self.supervisor: Supervisor | None = None
        self.notifier = Notifier()

    def _follow_period(self, period: float) -> None:
        """The period neuron-monitor keeps changed: hang detection follows it as freshness does."""
        if self.supervisor is not None:
            self.supervisor.hang_timeout = self.settings.hang_timeout_for(period)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The current /metrics body and its content type."""
        return self.exposition.render(accept)

    def handle(self, request: Request) -> Response:
        """Route one HTTP request."""
        path = request.path
        if path == "/metrics":
            body, content_type = self.render(request.headers.get("accept"))
            return Response(200, body, content_type)
        if path == "/":
            return Response(200, LANDING_PAGE, "text/html; charset=utf-8")
        if path in ("/-/healthy", "/healthz"):
            return Response(200, b"OK\n")
        if path in ("/-/ready", "/readyz"):
            if self.health.fresh():
                return Response(200, b"ready\n")
            reason = (
                "no report yet" if self.health.last_report_time is None else "neuron-monitor data is stale"
            )
            return Response(503, f"not ready: {reason}\n".encode())
        return Response(404, b"not found\n")

    async def replay(self) -> None:
        """Feed a capture file through the same framing and ingest path as a live child."""
        assert self.settings.replay is not None
        framer = LineFramer(self.settings.max_line_bytes)
        async with await anyio.open_file(self.settings.replay, "rb") as stream:
            while chunk := await stream.read(READ_CHUNK):
                deliver(framer.feed(chunk), self.ingestor)
        deliver(framer.flush(), self.ingestor)

    async def attribute_pods(
        self, *, once: bool = False, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep the kubelet's pod mapping in the state (--kubernetes), whatever the report source;
        with `once`, ask the kubelet one time (--once prints what a scrape would show)."""
        # Imported only when used: grpcio and protobuf add ~16 MiB to the resident set.
        from exporter.sources.kubelet.client import PodResourcesClient
        from exporter.sources.kubelet.refresher import Refresher

        settings = self.settings
        client = PodResourcesClient(
            settings.pod_resources_socket,
            timeout=settings.kubernetes_timeout,
            reconnect_backoff=settings.kubernetes_refresh,
        )
        refresher = Refresher(
            client,
            self.store,
            self.health,
            interval=settings.kubernetes_refresh,
            keep_for=settings.kubernetes_keep,
        )
        log.info(
            "pod attribution from the kubelet at %s, every %g s",
            settings.pod_resources_socket,
            settings.kubernetes_refresh,
        )
        try:
            if once:
                await refresher.refresh()
                task_status.started()
            else:
                await refresher.run(task_status=task_status)
        finally:
            client.close()

    def reload(self) -> None:
        """SIGHUP: re-read and validate the config; restart the child with it, or keep the old one."""
        self.notifier.reloading()
        try:
            self._reload()
        finally:
            self.notifier.ready(describe(self.health))

    def _reload(self) -> None:
        config = self.settings.monitor_config
        if config.path is None or (self.supervisor is None and self.settings.input is None):
            log.info("SIGHUP: nothing to reload")
            return
        try:
            new = load_monitor_config(
                config.path, strict=self.settings.config_strict, fractional=self.settings.config_fractional
            )
        except ConfigError as exc:
            log.error("SIGHUP: %s; keeping the running configuration", exc)
            return
        log_config_warnings(new)
        if self.ingestor.cadence is not None:
            self.ingestor.cadence.reset(new.period)
        self.health.stale_after = self.settings.stale_after_for(new.period)
        if self.supervisor is None:
            log.info("SIGHUP: configuration valid (period %.3g s); staleness follows it", new.period)
            return
        self.supervisor.hang_timeout = self.settings.hang_timeout_for(new.period)
        log.info("SIGHUP: configuration valid (period %.3g s); restarting neuron-monitor", new.period)
        self.supervisor.request_restart()

    async def watch_signals(self, scope: anyio.CancelScope) -> None:
        """SIGTERM/SIGINT stop everything (the child is terminated on the way out); SIGHUP reloads."""
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
            async for signum in signals:
                if signum == signal.SIGHUP:
                    self.reload()
                    continue
                log.info("received %s; shutting down", signal.Signals(signum).name)
                self.notifier.stopping()
                scope.cancel()
                return


def log_unpriced(settings: Settings) -> None:
    """Say at start that this node has no price source (after the start-up checks, whose failures
    are one line each)."""
    if settings.fixed_price is None and settings.prices is None:
        log.info(
            "no --instance-hourly-cost or --instance-prices: this node is unpriced "
            "(neuron_exporter_price_missing), listed as such on the cost dashboard"
        )


async def run(settings: Settings) -> int:
    """Run until a signal (or, with --once, until the capture is rendered); the exit code."""
    app = App(settings)
    log_config_warnings(settings.monitor_config)
    if settings.once:
        log_unpriced(settings)
        await app.replay()
        if settings.kubernetes:
            await app.attribute_pods(once=True)
        sys.stdout.buffer.write(app.render()[0])
        sys.stdout.buffer.flush()
        return 0
    guard = None
    if settings.web_config_file is not None:
        # Imported only when used: yaml, bcrypt and the TLS layer cost about 1 MiB of every exporter's
        # memory, and most run on a private network without them.
        from exporter.web.webguard import WebGuard

        guard = WebGuard.load(settings.web_config_file, app.health)
    server = await HttpServer.bind(settings.listen_host, settings.listen_port)
    server.max_connections = settings.max_connections

    def count_cut(reason: str) -> None:
        app.health.http_cut[reason] += 1

    server.on_shed = count_cut
    if settings.replay is not None:
        await app.replay()
        log.info("replayed %d reports from %s", app.health.reports, settings.replay)
    protection = f" ({guard.describe()})" if guard is not None else ""
    log_unpriced(settings)
    log.info("serving /metrics on port %d%s", server.port, protection)
    async with anyio.create_task_group() as tg:
        tg.start_soon(app.watch_signals, tg.cancel_scope)
        await tg.start(partial(server.serve, app.handle, guard=guard))
        if settings.kubernetes:
            await tg.start(app.attribute_pods)
        if settings.input is not None:
            follower = Follower(settings.input, app.ingestor, max_line_bytes=settings.max_line_bytes)
            await tg.start(follower.run)
        elif settings.replay is None:
            app.supervisor = Supervisor(
                settings.monitor_argv,
                app.ingestor,
                max_line_bytes=settings.max_line_bytes,
                hang_timeout=settings.hang_timeout,
            )
            await tg.start(app.supervisor.run)
        # /metrics is served and neuron-monitor has been started (or the capture replayed).
        app.notifier.ready(describe(app.health))
        tg.start_soon(keep_systemd_informed, app.notifier, app.health)
    await server.aclose()
    return 0
