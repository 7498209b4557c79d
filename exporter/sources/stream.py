"""Bytes to lines: bounded framing of neuron-monitor's stdout; knows nothing of JSON."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Oversized:
    """A line longer than the bound was dropped; `length` is how many bytes it had (without "\\n")."""

    length: int


class FramedSink(Protocol):
    """What takes a LineFramer's output: complete lines, and the lengths of the dropped ones."""

    def on_line(self, line: bytes) -> None:
        """One complete line, without its terminator."""

    def on_oversized_line(self, length: int) -> None:
        """A line longer than the bound was dropped."""


def deliver(items: Iterable[bytes | Oversized], sink: FramedSink) -> None:
    """Hand framed items to the sink in order."""
    for item in items:
        if isinstance(item, Oversized):
            sink.on_oversized_line(item.length)
        else:
            sink.on_line(item)


class LineFramer:
    """Splits a byte stream into lines, never holding more than `max_line_bytes` of one line.

    The bound applies to a line's bytes before its "\\n" (a "\\r" before it counts), and the outcome
    does not depend on how the stream was chunked: an over-long line always becomes one `Oversized`.
    """

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 1:
            raise ValueError(f"max_line_bytes must be at least 1, got {max_line_bytes}")
        self.max_line_bytes = max_line_bytes
        # Invariant: `_pending` never contains b"\n", so each byte is searched for a newline exactly once,
        # when its chunk arrives; a 500 KB line in 64 KiB chunks costs one scan and one append per chunk.
        self._pending = bytearray()
        # While skipping, the rest of an over-long line is counted and thrown away up to its newline.
        self._skipping = False
        self._skipped = 0

    def feed(self, chunk: bytes) -> list[bytes | Oversized]:
        """The lines completed by `chunk`, in order."""
        out: list[bytes | Oversized] = []
        start = 0
        if self._skipping:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._skipped += len(chunk)
                return out
            out.append(Oversized(self._skipped + newline))
            self._skipping = False
            self._skipped = 0
            start = newline + 1
        while (newline := chunk.find(b"\n", start)) >= 0:
            self._emit(out, chunk, start, newline)
            start = newline + 1
        tail = len(chunk) - start
        if len(self._pending) + tail > self.max_line_bytes:
            # Stop accumulating now rather than at the newline, which may be megabytes (or never) away.
            self._skipping = True
            self._skipped = len(self._pending) + tail
            self._pending.clear()
        elif tail:
            self._pending += chunk[start:]
        return out

    def flush(self) -> list[bytes | Oversized]:
        """End of stream: the trailing line without a newline, if any (call when the child exits)."""
        out: list[bytes | Oversized] = []
        if self._skipping:
            out.append(Oversized(self._skipped))
        elif self._pending:
            self._emit(out, b"", 0, 0)
        self._pending.clear()
        self._skipping = False
        self._skipped = 0
        return out

    def _emit(self, out: list[bytes | Oversized], chunk: bytes, start: int, end: int) -> None:
        """Append the line made of the pending bytes plus chunk[start:end] (unless empty)."""
        length = len(self._pending) + end - start
        if length > self.max_line_bytes:
            out.append(Oversized(length))
            self._pending.clear()
            return
        if self._pending:
            self._pending += chunk[start:end]
            line = bytes(self._pending)
            self._pending.clear()
        else:
            line = chunk[start:end]
        if line.endswith(b"\r"):
            line = line[:-1]
        if line:
            out.append(line)
