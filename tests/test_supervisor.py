"""Supervisor against real child processes (small `python -c` scripts standing in for neuron-monitor)."""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from exporter.sources.supervisor import Backoff, Supervisor

FAST = Backoff(initial=0.02, maximum=0.08, multiplier=2.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class RecordingSink(logging.Handler):
    """Keeps every callback, in order, and wakes `wait_until` on each (and on each supervisor log record)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[Any, ...]] = []
        self._changed: anyio.Event | None = None

    def record(self, *event: Any) -> None:
        self.events.append(event)
        self.emit(None)

    def emit(self, record: logging.LogRecord | None) -> None:
        if self._changed is not None:
            self._changed.set()

    async def wait_until(self, condition: Callable[[], object], seconds: float = 5.0) -> None:
        """Wait for a condition the supervisor's callbacks (or logging) make true; fail after `seconds`."""
        with anyio.fail_after(seconds):
            while not condition():
                self._changed = anyio.Event()
                await self._changed.wait()

    def on_line(self, line: bytes) -> None:
        self.record("line", line)

    def on_oversized_line(self, length: int) -> None:
        self.record("oversized", length)

    def on_child_started(self, pid: int) -> None:
        self.record("started", pid)

    def on_child_exited(self, returncode: int | None, restart_in: float) -> None:
        self.record("exited", returncode, restart_in)

    def on_start_failed(self, retry_in: float) -> None:
        self.record("start_failed", retry_in)

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]

    def pids(self) -> list[int]:
        return [event[1] for event in self.of("started")]


def script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def supervisor(argv: list[str], sink: RecordingSink, **kwargs: Any) -> Supervisor:
    options: dict[str, Any] = {
        "max_line_bytes": 1024,
        "hang_timeout": None,
        "backoff": FAST,
        "term_grace": 2.0,
    }
    options.update(kwargs)
    return Supervisor(argv, sink, **options)


def pid_gone(pid: int) -> bool:
    """True once the process is reaped (a zombie still answers signal 0)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


SLEEPER = """
    import sys, time
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.anyio
async def test_lines_in_order_then_restart_with_backoff() -> None:
    sink = RecordingSink()
    argv = script(r"""
        import sys
        sys.stdout.write("a\nb\r\n\nc")
        sys.exit(3)
    """)
    sup = supervisor(argv, sink)
    sup.rng = random.Random(1)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: len(sink.of("exited")) >= 3)
        tg.cancel_scope.cancel()

    expected_rng = random.Random(1)
    delays = [FAST.delay(attempt, expected_rng) for attempt in range(3)]
    pids = sink.pids()
    first_three_runs = sink.events[: sink.events.index(("exited", 3, delays[2])) + 1]
    assert first_three_runs == [
        event
        for attempt in range(3)
        for event in (
            ("started", pids[attempt]),
            ("line", b"a"),
            ("line", b"b"),
            ("line", b"c"),  # the unterminated last line, flushed at exit
            ("exited", 3, delays[attempt]),
        )
    ]
    assert delays[0] < delays[1] < delays[2]
    assert len(set(pids)) == len(pids)
    assert sup.restarts == len(pids) - 1
    assert not sup.running


@pytest.mark.anyio
async def test_attempts_reset_after_a_healthy_run() -> None:
    sink = RecordingSink()
    sup = supervisor(script("pass"), sink, healthy_after=0.0)
    sup.rng = random.Random(2)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: len(sink.of("exited")) >= 3)
        tg.cancel_scope.cancel()
    expected_rng = random.Random(2)
    assert [event[2] for event in sink.of("exited")[:3]] == [FAST.delay(0, expected_rng) for _ in range(3)]


def test_backoff_is_capped_exponential_with_equal_jitter() -> None:
    backoff = Backoff(initial=0.5, maximum=30.0, multiplier=2.0)
    rng = random.Random(0)
    for attempt, nominal in [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (10_000, 30.0)]:
        for _ in range(50):
            assert nominal / 2 <= backoff.delay(attempt, rng) <= nominal
    with pytest.raises(ValueError):
        Backoff(initial=5.0, maximum=1.0)


@pytest.mark.anyio
async def test_oversized_line_reported_and_next_line_kept() -> None:
    sink = RecordingSink()
    argv = script("""
        import sys, time
        sys.stdout.write("x" * 3000 + "\\nok\\n")
        sys.stdout.flush()
        time.sleep(60)
    """)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor(argv, sink).run)
        await sink.wait_until(lambda: ("line", b"ok") in sink.events)
        tg.cancel_scope.cancel()
    assert sink.events[1:] == [("oversized", 3000), ("line", b"ok")]


@pytest.mark.anyio
async def test_hung_child_is_stopped_and_restarted(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingSink()
    sup = supervisor(script(SLEEPER), sink, hang_timeout=0.3)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: len(sink.of("started")) >= 2)
        assert sup.running
        tg.cancel_scope.cancel()
    first = sink.pids()[0]
    assert sink.of("exited")[0][1] == -signal.SIGTERM
    assert pid_gone(first)
    assert sup.restarts >= 1
    assert f"neuron-monitor (pid {first}) produced no output for" in caplog.text


@pytest.mark.anyio
async def test_spawn_failure_is_retried_until_the_binary_appears(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sink = RecordingSink()
    monitor = tmp_path / "neuron-monitor"
    sup = supervisor([str(monitor)], sink)

    def failures() -> int:
        return caplog.text.count(f"cannot start neuron-monitor {monitor}: No such file or directory")

    supervisor_log = logging.getLogger("exporter.sources.supervisor")
    supervisor_log.addHandler(sink)  # so that wait_until wakes on each failure logged
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(sup.run)  # returns after the first (failed) attempt
            assert not sup.running
            await sink.wait_until(lambda: failures() >= 2)
            assert [event[0] for event in sink.events] == ["start_failed"] * failures()
            # Appear atomically and executable, as a package upgrade would.
            staging = tmp_path / "staging"
            staging.write_text(
                f"#!{sys.executable}\nprint('appeared', flush=True)\nimport time\ntime.sleep(60)\n"
            )
            staging.chmod(0o755)
            staging.rename(monitor)
            await sink.wait_until(lambda: ("line", b"appeared") in sink.events)
            tg.cancel_scope.cancel()
    finally:
        supervisor_log.removeHandler(sink)
    assert sup.restarts == 0  # failed spawns are not restarts of a child


@pytest.mark.anyio
async def test_spawn_failures_back_off_with_growing_delays_kept_on_time(tmp_path: Path) -> None:
    """A missing binary is retried after each delay of the backoff in turn, not at a fixed pace."""
    backoff = Backoff(initial=0.1, maximum=0.8, multiplier=2.0)
    sink = RecordingSink()
    sup = supervisor([str(tmp_path / "absent")], sink, backoff=backoff)
    sup.rng = random.Random(7)
    expected_rng = random.Random(7)
    expected = [backoff.delay(attempt, expected_rng) for attempt in range(6)]
    failed_at: list[float] = []
    original = sink.on_start_failed

    def timed(retry_in: float) -> None:
        failed_at.append(anyio.current_time())
        original(retry_in)

    sink.on_start_failed = timed  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: len(failed_at) >= len(expected), seconds=30)
        tg.cancel_scope.cancel()
    delays = [event[1] for event in sink.of("start_failed")][: len(expected)]
    assert delays == expected
    assert expected[-1] > 3 * expected[0], "the delays grow"
    for (before, after), delay in zip(itertools.pairwise(failed_at), expected, strict=False):
        # Not before the delay, and not a whole second after it even on a loaded machine.
        assert delay <= after - before < delay + 1.0, (delay, after - before)


@pytest.mark.anyio
async def test_stderr_goes_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    """Each line at the level it states (logfmt, as neuron-monitor writes), else as a warning."""
    caplog.set_level(logging.INFO, logger="exporter.neuron_monitor")
    sink = RecordingSink()
    argv = script(r"""
        import sys
        sys.stderr.buffer.write(b"level=info msg=started\ndisk on fire\n\xff bad utf-8\nlast words")
    """)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor(argv, sink).run)
        await sink.wait_until(lambda: bool(sink.of("exited")))
        tg.cancel_scope.cancel()
    pid = sink.pids()[0]
    records = [r for r in caplog.records if r.name == "exporter.neuron_monitor"]
    assert [(r.levelno, r.getMessage()) for r in records][:4] == [
        (logging.INFO, f"neuron-monitor[{pid}]: level=info msg=started"),
        (logging.WARNING, f"neuron-monitor[{pid}]: disk on fire"),
        (logging.WARNING, f"neuron-monitor[{pid}]: \ufffd bad utf-8"),
        (logging.WARNING, f"neuron-monitor[{pid}]: last words"),
    ]
    exit_logs = [r for r in caplog.records if "exited with code 0" in r.getMessage()]
    assert exit_logs and exit_logs[0].levelno == logging.WARNING


@pytest.mark.anyio
async def test_cancellation_terminates_and_reaps_the_child() -> None:
    sink = RecordingSink()
    sup = supervisor(script(SLEEPER), sink)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: ("line", b"ready") in sink.events)
        pid = sink.pids()[0]
        assert sup.running
        assert not pid_gone(pid)
        tg.cancel_scope.cancel()
    assert pid_gone(pid)
    assert not sup.running
    assert sink.of("exited") == []  # shutdown is not a crash to report


@pytest.mark.anyio
async def test_child_ignoring_sigterm_is_killed_after_the_grace(caplog: pytest.LogCaptureFixture) -> None:
    sink = RecordingSink()
    argv = script("""
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(60)
    """)
    sup = supervisor(argv, sink, term_grace=0.3)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: ("line", b"ready") in sink.events)
        pid = sink.pids()[0]
        tg.cancel_scope.cancel()
        cancelled_at = anyio.current_time()
    assert anyio.current_time() - cancelled_at >= 0.3
    assert pid_gone(pid)
    assert "still running 0.3 s after SIGTERM; sending SIGKILL" in caplog.text


@pytest.mark.anyio
async def test_request_restart_with_new_argv() -> None:
    sink = RecordingSink()
    sup = supervisor(script(SLEEPER), sink)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        await sink.wait_until(lambda: ("line", b"ready") in sink.events)
        sup.set_argv(script("print('second', flush=True); import time; time.sleep(60)"))
        sup.request_restart()
        await sink.wait_until(lambda: ("line", b"second") in sink.events)
        tg.cancel_scope.cancel()
    first, second = sink.pids()
    assert sink.events == [
        ("started", first),
        ("line", b"ready"),
        ("exited", -signal.SIGTERM, 0.0),
        ("started", second),
        ("line", b"second"),
    ]
    assert sup.restarts == 1


@pytest.mark.anyio
async def test_child_runs_in_its_own_session_with_the_given_env() -> None:
    sink = RecordingSink()
    argv = script("""
        import os, time
        print(os.getsid(0), os.getpgid(0), os.environ.get("NEURON_TEST"), os.environ.get("HOME"), flush=True)
        time.sleep(60)
    """)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor(argv, sink, env={"NEURON_TEST": "yes"}).run)
        await sink.wait_until(lambda: bool(sink.of("line")))
        tg.cancel_scope.cancel()
    pid = sink.pids()[0]
    assert sink.of("line")[0][1] == f"{pid} {pid} yes None".encode()


@pytest.mark.anyio
async def test_exit_detected_while_a_grandchild_holds_stdout() -> None:
    sink = RecordingSink()
    # The grandchild inherits stdout (so no EOF arrives) but not stderr.
    argv = script("""
        import subprocess, sys
        grandchild = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(30)"], stderr=subprocess.DEVNULL
        )
        print(grandchild.pid, flush=True)
        sys.exit(4)
    """)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor(argv, sink).run)
        await sink.wait_until(lambda: bool(sink.of("exited")))
        tg.cancel_scope.cancel()
    assert sink.of("exited")[0][1] == 4
    for _, line in sink.of("line"):
        os.kill(int(line), signal.SIGKILL)


def test_argv_must_be_a_list() -> None:
    with pytest.raises(ValueError, match="never a shell string"):
        Supervisor("neuron-monitor -c x", RecordingSink(), max_line_bytes=10, hang_timeout=None)
    with pytest.raises(ValueError):
        Supervisor([], RecordingSink(), max_line_bytes=10, hang_timeout=None)
