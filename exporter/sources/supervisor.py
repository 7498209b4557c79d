"""Owns the neuron-monitor child and nothing else: spawn, stdout -> sink, stderr -> logs, backoff restarts."""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import random
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.abc

from exporter.sources.stderr_level import stated_level
from exporter.sources.stream import LineFramer, Oversized, deliver

log = logging.getLogger(__name__)
child_log = logging.getLogger("exporter.neuron_monitor")

READ_CHUNK = 64 * 1024
STDERR_MAX_LINE_BYTES = 8 * 1024
"""neuron-monitor's stderr is for humans; a longer line is noted in the log by its length, not shown."""
EXIT_DRAIN_SECONDS = 1.0
"""After the child exits, how long its pipes may take to deliver what it wrote before dying."""


class LineSink(Protocol):
    """Where the supervisor delivers what the child produced; called synchronously, must be cheap."""

    def on_line(self, line: bytes) -> None:
        """One complete stdout line, without its line terminator."""

    def on_oversized_line(self, length: int) -> None:
        """A stdout line longer than the bound was dropped."""

    def on_child_started(self, pid: int) -> None:
        """A child process is running."""

    def on_start_failed(self, retry_in: float) -> None:
        """Starting a child failed (executable gone, not executable, out of resources); retried later."""

    def on_child_exited(self, returncode: int | None, restart_in: float) -> None:
        """The child is gone (None: its exit status is unknown); the next one starts in `restart_in` s."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with equal jitter.

    Equal jitter (half the nominal delay fixed, half random) rather than full jitter: there is one
    child per node and no shared server to stampede, so the backoff's job is to bound how fast a
    crash loop spins and floods the journal; full jitter can draw delays near zero and lose that.
    The random half still keeps a fleet of nodes from restarting in lockstep after a common fault.
    """

    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if not (0 <= self.initial <= self.maximum) or self.multiplier < 1:
            raise ValueError(f"invalid backoff {self}: need 0 <= initial <= maximum and multiplier >= 1")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before restart number `attempt` (0 for the first after a healthy run)."""
        try:
            nominal = min(self.maximum, self.initial * self.multiplier ** max(attempt, 0))
        except OverflowError:
            nominal = self.maximum
        return nominal / 2 + rng.uniform(0, nominal / 2)


class _Ending(enum.Enum):
    """Why a child's run ended."""

    EXITED = "exited"
    HUNG = "hung"
    RESTART_REQUESTED = "restart requested"


_End = Callable[[_Ending], None]
"""Ends the current child's run, recording the first reason given."""


class Supervisor:
    """Runs neuron-monitor, feeds its stdout lines to a sink, and restarts it when it exits or hangs."""

    def __init__(
        self,
        argv: Sequence[str],
        sink: LineSink,
        *,
        max_line_bytes: int,
        hang_timeout: float | None,
        backoff: Backoff = Backoff(),
        healthy_after: float = 60.0,
        term_grace: float = 3.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._argv = self._checked_argv(argv)
        self.sink = sink
        self.max_line_bytes = max_line_bytes
        # Public and read at each child start and on every watchdog wake-up, so a reload can change it.
        self.hang_timeout = hang_timeout
        self.backoff = backoff
        self.healthy_after = healthy_after
        self.term_grace = term_grace
        self.env = dict(env) if env is not None else None
        # Seeded from the OS by default so nodes do not share a jitter sequence; tests replace it.
        self.rng = random.Random()
        self.restarts = 0
        self._spawned = 0
        self._process: anyio.abc.Process | None = None
        self._last_line_at = 0.0
        self._kill_at: float | None = None
        self._restart_requested = False
        self._wakeup: anyio.Event | None = None

    @property
    def running(self) -> bool:
        """Whether a child process is alive right now."""
        return self._process is not None and self._process.returncode is None

    def set_argv(self, argv: Sequence[str]) -> None:
        """Use this command line from the next (re)start on."""
        self._argv = self._checked_argv(argv)

    def request_restart(self) -> None:
        """Stop the running child (or skip a pending backoff) and start a new one right away."""
        self._restart_requested = True
        if self._wakeup is not None:
            self._wakeup.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Keep a child running until cancelled; `task_status.started()` follows the first spawn attempt."""
        attempt = 0
        started = False
        while True:
            # A fresh event per spawn: a request arriving after this point (even mid-spawn, after argv
            # was read) must still end the child about to start.
            self._wakeup = anyio.Event()
            self._restart_requested = False
            argv = self._argv
            try:
                # Shielded so a shutdown arriving mid-spawn cannot leave a child nobody will reap.
                with anyio.CancelScope(shield=True):
                    process = await anyio.open_process(
                        list(argv),
                        stdin=subprocess.DEVNULL,
                        env=self.env,
                        # Its own session: a terminal's Ctrl-C reaches only the exporter, which then stops
                        # the child in order; and the child's whole process group can be signalled.
                        start_new_session=True,
                    )
            except OSError as exc:
                if not started:
                    task_status.started()
                    started = True
                delay = self.backoff.delay(attempt, self.rng)
                attempt += 1
                log.error("cannot start neuron-monitor %s: %s; retrying in %.1f s", argv[0], _why(exc), delay)
                self.sink.on_start_failed(delay)
                await self._pause(delay)
                continue

            self._spawned += 1
            if self._spawned > 1:
                self.restarts += 1
            began = anyio.current_time()
            self.sink.on_child_started(process.pid)
            if not started:
                task_status.started()
                started = True
            ending, returncode = await self._supervise(process)

            if anyio.current_time() - began >= self.healthy_after:
                attempt = 0
            if ending is _Ending.RESTART_REQUESTED:
                delay = 0.0
                log.info("neuron-monitor (pid %d) stopped for restart (%s)", process.pid, _status(returncode))
            else:
                delay = self.backoff.delay(attempt, self.rng)
                attempt += 1
                log.warning(
                    "neuron-monitor (pid %d) %s; restarting in %.1f s",
                    process.pid,
                    _status(returncode),
                    delay,
                )
            self.sink.on_child_exited(returncode, delay)
            await self._pause(delay)

    async def _pause(self, delay: float) -> None:
        """Sleep before the next spawn, cut short by a restart request."""
        if self._restart_requested or delay <= 0:
            return
        assert self._wakeup is not None
        with anyio.move_on_after(delay):
            await self._wakeup.wait()

    async def _supervise(self, process: anyio.abc.Process) -> tuple[_Ending, int | None]:
        """Pump one child's output until it exits, hangs or a restart is requested; stop and reap it."""
        assert process.stdout is not None and process.stderr is not None
        self._process = process
        self._kill_at = None
        self._last_line_at = anyio.current_time()
        framer = LineFramer(self.max_line_bytes)
        ending: list[_Ending] = []

        def end(why: _Ending) -> None:
            if not ending:
                ending.append(why)
            watchers.cancel_scope.cancel()

        try:
            async with anyio.create_task_group() as outputs:
                outputs.start_soon(self._forward_stderr, process.stderr, process.pid)
                async with anyio.create_task_group() as watchers:
                    watchers.start_soon(self._pump_stdout, process.stdout, framer, end)
                    watchers.start_soon(self._watch_exit, process, end)
                    watchers.start_soon(self._watch_hang, process.pid, end)
                    watchers.start_soon(self._watch_restart_request, end)
                why = ending[0] if ending else _Ending.EXITED
                if why is _Ending.EXITED:
                    # Stdout closed: normally the child is exiting; give it the chance to report its
                    # own status before signalling it.
                    with anyio.move_on_after(self.term_grace):
                        await process.wait()
                    # Its last line may lack a newline. (A child stopped for hanging or restart gets
                    # no flush: its partial line was cut off by us, not finished by it.)
                    self._deliver(framer.flush())
                await self._stop(process)
                # Let the last stderr lines (often the reason it died) reach the log, but a grandchild
                # holding the pipe open must not stall the restart.
                outputs.cancel_scope.deadline = anyio.current_time() + EXIT_DRAIN_SECONDS
        finally:
            with anyio.CancelScope(shield=True):
                await self._stop(process)
                await process.aclose()
                self._process = None
        return why, process.returncode

    async def _pump_stdout(self, stdout: anyio.abc.ByteReceiveStream, framer: LineFramer, end: _End) -> None:
        """Deliver stdout lines to the sink until end of stream."""
        while True:
            try:
                chunk = await stdout.receive(READ_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                end(_Ending.EXITED)
                return
            self._deliver(framer.feed(chunk))

    def _deliver(self, items: list[bytes | Oversized]) -> None:
        """Hand framed lines to the sink; any line, even a dropped one, shows the child is alive."""
        if not items:
            return
        self._last_line_at = anyio.current_time()
        deliver(items, self.sink)

    async def _watch_exit(self, process: anyio.abc.Process, end: _End) -> None:
        """End the run once the child has exited and its stdout had a moment to drain.

        Stdout EOF normally ends the run first; this covers a grandchild that inherited the pipe.
        """
        await process.wait()
        await anyio.sleep(EXIT_DRAIN_SECONDS)
        end(_Ending.EXITED)

    async def _watch_hang(self, pid: int, end: _End) -> None:
        """End the run if the child goes `hang_timeout` seconds without a stdout line."""
        while True:
            timeout = self.hang_timeout
            if timeout is None:
                return
            silent = anyio.current_time() - self._last_line_at
            if silent >= timeout:
                log.warning("neuron-monitor (pid %d) produced no output for %.1f s; stopping it", pid, silent)
                end(_Ending.HUNG)
                return
            await anyio.sleep(timeout - silent)

    async def _watch_restart_request(self, end: _End) -> None:
        """End the run when a restart is requested."""
        assert self._wakeup is not None
        await self._wakeup.wait()
        end(_Ending.RESTART_REQUESTED)

    async def _forward_stderr(self, stderr: anyio.abc.ByteReceiveStream, pid: int) -> None:
        """Log the child's stderr line by line, marked as coming from neuron-monitor."""
        framer = LineFramer(STDERR_MAX_LINE_BYTES)
        while True:
            try:
                chunk = await stderr.receive(READ_CHUNK)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                break
            _log_stderr(framer.feed(chunk), pid)
        _log_stderr(framer.flush(), pid)

    async def _stop(self, process: anyio.abc.Process) -> None:
        """SIGTERM, up to `term_grace` seconds to exit, then SIGKILL; returns once the child is reaped."""
        if process.returncode is not None:
            return
        # A shutdown can interrupt a stop already under way; the grace then runs from the first SIGTERM.
        if self._kill_at is None:
            _signal_group(process, signal.SIGTERM)
            self._kill_at = anyio.current_time() + self.term_grace
        with anyio.CancelScope(deadline=self._kill_at):
            await process.wait()
        if process.returncode is None:
            log.warning(
                "neuron-monitor (pid %d) still running %.1f s after SIGTERM; sending SIGKILL",
                process.pid,
                self.term_grace,
            )
            _signal_group(process, signal.SIGKILL)
            await process.wait()

    @staticmethod
    def _checked_argv(argv: Sequence[str]) -> tuple[str, ...]:
        if isinstance(argv, str) or not argv:
            raise ValueError("argv must be a non-empty sequence of arguments (never a shell string)")
        return tuple(argv)


def _signal_group(process: anyio.abc.Process, signum: signal.Signals) -> None:
    """Signal the child's process group, so helpers it forked stop with it."""
    # The child leads its own session, so its pid is its group id; callers only signal while
    # returncode is None, i.e. before the pid can be recycled (the same premise as Process.send_signal).
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        # A setuid child can refuse group signals; the direct signal is still ours to send.
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)


def _log_stderr(items: list[bytes | Oversized], pid: int) -> None:
    for item in items:
        if isinstance(item, Oversized):
            child_log.warning("neuron-monitor[%d]: (stderr line of %d bytes not shown)", pid, item.length)
        else:
            text = item.decode("utf-8", errors="replace")
            child_log.log(stated_level(text), "neuron-monitor[%d]: %s", pid, text)


def _status(returncode: int | None) -> str:
    """'exited with code 1', 'was killed by SIGKILL', for the log."""
    if returncode is None:
        return "exited with unknown status"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with code {returncode}"


def _why(exc: OSError) -> str:
    """The OS's reason without the repeated path, e.g. 'No such file or directory'."""
    return exc.strerror or str(exc)
