"""The ingest path: one line from neuron-monitor -> decode -> validate -> advance -> publish.

Every failure is counted in Health by reason or group and logged once per distinct message, so a
neuron-monitor that repeats the same error every second does not flood the journal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson

from exporter.cadence import Cadence
from exporter.exposition import Store
from exporter.gcpause import gc_paused
from exporter.health import Health
from exporter.model.report import NotAReport, ParseOptions, parse_report
from exporter.model.state import State, advance

log = logging.getLogger(__name__)

DISTINCT_MESSAGES_LOGGED = 1000
"""After this many distinct problem messages, further new ones are only counted (bounded memory)."""


def _group_periods(state: State) -> float | None:
    """The shortest `period` any group of the state says it covered (neuron-monitor's own measure)."""
    groups = [*state.system.values(), *(g for r in state.runtimes.values() for g in r.groups.values())]
    periods = [g.period for g in groups if g.period]
    return min(periods) if periods else None


class Ingestor:
    """Turns neuron-monitor lines into states in the store; also the supervisor's LineSink."""

    def __init__(
        self,
        store: Store,
        health: Health,
        *,
        prune_idle_cores: bool = True,
        model_detail: bool = False,
        vcpu_detail: bool = False,
        cadence: Cadence | None = None,
        stale_periods: float = 3.0,
    ) -> None:
        self.store = store
        self.health = health
        self.cadence = cadence
        """Measures neuron-monitor's real interval (None: replay, where nothing goes stale)."""
        self.stale_periods = stale_periods
        self.on_period_change: Callable[[float], None] = lambda period: None
        """Called with the period freshness follows whenever it changes (the hang timeout follows it)."""
        self._warned_cadence = False
        self.options = ParseOptions(
            prune_idle_cores=prune_idle_cores, model_detail=model_detail, vcpu_detail=vcpu_detail
        )
        self._logged: set[str] = set()
        self._children_started = 0

    def _log_once(self, message: str, kind: str | None = None) -> None:
        """Log the first problem of its kind: `kind` where the message varies from line to line
        (a length, a decoder's position), else the message itself."""
        key = kind or message
        if key in self._logged or len(self._logged) >= DISTINCT_MESSAGES_LOGGED:
            return
        self._logged.add(key)
        log.warning("%s (logged once; counted every time)", message)

    def on_line(self, line: bytes) -> None:
        """Ingest one report line; a bad line is counted and dropped, nothing else is lost."""
        with gc_paused():
            self._ingest(line)

    def _ingest(self, line: bytes) -> None:
        health = self.health
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            health.bad_lines["not_json"] += 1
            self._log_once(f"line from neuron-monitor is not JSON: {exc}", kind="bad_line:not_json")
            return
        try:
            report = parse_report(doc, self.options)
            state = advance(self.store.current, report)
        except NotAReport as exc:
            health.bad_lines["schema"] += 1
            self._log_once(f"line from neuron-monitor skipped: {exc}")
            return
        except RecursionError:
            # orjson accepts nesting up to 1024 levels, deeper than Python can recurse into while
            # validating or comparing it (an unknown ECC member of neuron_hw_counters is kept as is):
            # such a line is no usable report, and must not end the ingest task.
            health.bad_lines["schema"] += 1
            self._log_once("line from neuron-monitor skipped: nested too deeply to process")
            return
        for problem in report.problems:
            if problem.kind == "invalid":
                health.invalid_groups[problem.group] += 1
                self._log_once(f"invalid group skipped: {problem.message}")
            else:
                health.monitor_errors[problem.group] += 1
                self._log_once(f"neuron-monitor reported an error: {problem.message}")
        self.store.current = state
        health.reports += 1
        health.last_report_time = now = health.clock()
        if self.cadence is not None and self.cadence.observe(now):
            self._follow_cadence(self.cadence)

    def _follow_cadence(self, cadence: Cadence) -> None:
        """Freshness follows the interval neuron-monitor keeps: warned about once, then noted."""
        covered = _group_periods(self.store.current)
        said = f" (its groups cover {covered:.3g} s each)" if covered else ""
        if cadence.slower_than_configured:
            message = (
                f"neuron-monitor reports every {cadence.period:.3g} s{said}, not every {cadence.configured:.3g} s "
                "as its config asks (it may ignore a period it does not understand); freshness and hang "
                f"detection now follow {cadence.period:.3g} s"
            )
            log.log(logging.INFO if self._warned_cadence else logging.WARNING, message)
            self._warned_cadence = True
        else:
            log.info("neuron-monitor reports every %.3g s again, as its config asks", cadence.period)
        self.health.stale_after = self.stale_periods * cadence.period
        self.on_period_change(cadence.period)

    def on_oversized_line(self, length: int) -> None:
        """Count a line dropped for exceeding the length bound."""
        self.health.bad_lines["too_long"] += 1
        self._log_once(
            f"line from neuron-monitor longer than the bound was dropped ({length} bytes)",
            kind="bad_line:too_long",
        )

    def on_child_started(self, pid: int) -> None:
        """The child is running: `up` can become 1 once fresh data arrives."""
        if self._children_started:
            self.health.restarts += 1
        self._children_started += 1
        self.health.child_running = True
        log.info("neuron-monitor started (pid %d)", pid)

    def on_start_failed(self, retry_in: float) -> None:
        """Count it: a node whose neuron-monitor cannot even start is a node to look at."""
        self.health.start_failures += 1

    def on_input_connected(self, source: str) -> None:
        """Sidecar mode: a writer is connected to the input; `up` can become 1 once data arrives."""
        if self._children_started:
            self.health.restarts += 1
        self._children_started += 1
        self.health.child_running = True
        log.info("reading reports from %s", "stdin" if source == "-" else source)

    def on_input_lost(self, source: str) -> None:
        """Sidecar mode: the writer went away (EOF); `up` is 0 until one is back."""
        self.health.child_running = False

    def on_child_exited(self, returncode: int | None, restart_in: float) -> None:
        """The child is gone: `up` is 0 until a new one reports."""
        self.health.child_running = False
        log.debug("neuron-monitor exited with %s; restart in %.1f s", returncode, restart_in)
