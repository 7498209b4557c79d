"""Sidecar mode: follow a report stream that neuron-monitor writes elsewhere (--input - or --input PATH).

Beside AWS's neuron-monitor container the exporter starts no child: it reads stdin, a FIFO in a
shared volume, or a file neuron-monitor appends to, through the same framing and ingest as a child's
stdout, so staleness, readiness, self-metrics and bad-input counting are the same. `up` means "a
writer is connected": stdin until EOF, a FIFO while a writer holds it open, a file while it exists.

* A FIFO whose writer goes away is reopened, which waits for the next writer; a line the old writer
  left unfinished is counted as a bad line, never joined to the new writer's first line.
* EOF on stdin ends the input, not the exporter: it keeps serving (stale, `up` 0) until stopped.
* A regular file is followed like `tail -F`: from its end when the exporter starts (its history is
  not replayed; --replay does that), as it grows, and from the start when replaced or truncated.

Pipes are opened and read without blocking, waiting for readability on the event loop, so a FIFO
with no writer never holds up shutdown (a thread blocked in open() or read() would); lines are ingested
on the event loop, never beside a scrape.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import anyio
import anyio.abc

from exporter.ingest import Ingestor
from exporter.sources.stream import LineFramer, deliver

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
FILE_POLL_SECONDS = 0.25
"""How often a followed regular file is checked for growth or replacement."""
WAITING_LOG_EVERY = 60.0
"""While the input does not exist (or cannot be opened), a log line naming it this often."""
STDIN = "-"


class Follower:
    """Reads one input until cancelled and hands its lines to the sink."""

    def __init__(self, source: str, sink: Ingestor, *, max_line_bytes: int) -> None:
        self.source = source
        self.sink = sink
        self.max_line_bytes = max_line_bytes

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        if self.source == STDIN:
            await self._stdin()
            return
        await self._path(Path(self.source))

    async def _drain(self, fd: int, framer: LineFramer, connected: bool) -> None:
        """Read a non-blocking pipe to its EOF, delivering complete lines as they come."""
        while True:
            await anyio.wait_readable(fd)
            try:
                chunk = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                continue
            if not chunk:
                return
            if not connected:
                self.sink.on_input_connected(self.source)
                connected = True
            deliver(framer.feed(chunk), self.sink)

    async def _stdin(self) -> None:
        framer = LineFramer(self.max_line_bytes)
        self.sink.on_input_connected(self.source)
        os.set_blocking(0, False)
        try:
            await self._drain(0, framer, connected=True)
        finally:
            os.set_blocking(0, True)
        deliver(framer.flush(), self.sink)
        log.warning("stdin closed: no more reports; serving the last state (stale) until stopped")
        self.sink.on_input_lost(self.source)

    async def _fifo(self, path: Path) -> None:
        while True:
            # Non-blocking, so this returns at once; readability then waits for a writer's data (or
            # the hang-up of a writer that leaves without writing, which reopens).
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            framer = LineFramer(self.max_line_bytes)
            try:
                await self._drain(fd, framer, connected=False)
            finally:
                os.close(fd)
            deliver(framer.flush(), self.sink)
            log.info("the writer of %s went away; waiting for the next one", path)
            self.sink.on_input_lost(self.source)

    async def _path(self, path: Path) -> None:
        """A FIFO or a regular file, whichever the path is when it exists (a sidecar's FIFO may be
        made by another container after the exporter started)."""
        connected = False
        from_end = True  # only the first open: what the file held before we started is history
        waiting = _Waiting(path)
        while True:
            kind = _kind(path)
            if kind == "fifo":
                await self._fifo(path)
                return
            if kind == "missing":
                if connected:
                    self.sink.on_input_lost(self.source)
                    connected = False
                waiting.note("does not exist (yet)")
                await anyio.sleep(FILE_POLL_SECONDS)
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except FileNotFoundError:
                continue
            except OSError as exc:
                # Checked at start; a path that became a directory or unreadable since is waited out.
                waiting.note(f"cannot be read: {exc.strerror}")
                await anyio.sleep(FILE_POLL_SECONDS)
                continue
            waiting.reset()
            if not connected:
                self.sink.on_input_connected(self.source)
                connected = True
            try:
                await self._follow(fd, path, from_end)
            finally:
                os.close(fd)
            from_end = False

    async def _follow(self, fd: int, path: Path, from_end: bool) -> None:
        """Read a regular file as it grows; return when it was replaced or truncated."""
        framer = LineFramer(self.max_line_bytes)
        identity = os.fstat(fd).st_ino
        offset = os.lseek(fd, 0, os.SEEK_END) if from_end else 0
        while True:
            chunk = await anyio.to_thread.run_sync(os.read, fd, READ_CHUNK, abandon_on_cancel=True)
            if chunk:
                offset += len(chunk)
                deliver(framer.feed(chunk), self.sink)
                continue
            await anyio.sleep(FILE_POLL_SECONDS)
            try:
                now = os.stat(path)
            except FileNotFoundError:
                return
            if now.st_ino != identity or now.st_size < offset:
                log.info("%s was replaced or truncated; reading it from the start", path)
                deliver(framer.flush(), self.sink)
                return


class _Waiting:
    """Says, once a minute, that the input is still not there, so a typo in the path is seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._next_at: float | None = None

    def note(self, why: str) -> None:
        now = anyio.current_time()
        if self._next_at is None or now >= self._next_at:
            log.warning(
                "waiting for --input %s: it %s; looking again every %g s", self.path, why, FILE_POLL_SECONDS
            )
            self._next_at = now + WAITING_LOG_EVERY

    def reset(self) -> None:
        self._next_at = None


def _kind(path: Path) -> str:
    """`fifo`, `file`, or `missing` (neuron-monitor or another container may create it later)."""
    try:
        return "fifo" if stat.S_ISFIFO(path.stat().st_mode) else "file"
    except FileNotFoundError:
        return "missing"
