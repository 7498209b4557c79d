"""LineFramer: chunking never changes the lines, and over-long lines are dropped without being held."""

from __future__ import annotations

import random
import time

import pytest

from exporter.sources.stream import LineFramer, Oversized


def frame_all(
    data: bytes, chunk_sizes: list[int] | int, max_line_bytes: int = 100
) -> list[bytes | Oversized]:
    """Feed `data` in chunks of the given sizes (cycled), then flush."""
    framer = LineFramer(max_line_bytes)
    sizes = [chunk_sizes] if isinstance(chunk_sizes, int) else chunk_sizes
    out: list[bytes | Oversized] = []
    pos = 0
    i = 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out += framer.feed(data[pos : pos + size])
        pos += size
        i += 1
    return out + framer.flush()


def test_lines_split_across_chunks() -> None:
    framer = LineFramer(100)
    assert framer.feed(b'{"a"') == []
    assert framer.feed(b": 1}\n{") == [b'{"a": 1}']
    assert framer.feed(b'"b": 2}\n\n') == [b'{"b": 2}']
    assert framer.flush() == []


def test_every_chunking_gives_the_same_lines() -> None:
    data = b"one\r\ntwo\n\nthree\r\n" + b"x" * 150 + b"\nfour\n" + b"y" * 100 + b"\nfive"
    expected = [b"one", b"two", b"three", Oversized(150), b"four", b"y" * 100, b"five"]
    for size in range(1, len(data) + 1):
        assert frame_all(data, size) == expected, size
    rng = random.Random(7)
    for _ in range(200):
        sizes = [rng.randint(1, 40) for _ in range(rng.randint(1, 6))]
        assert frame_all(data, sizes) == expected, sizes


def test_crlf_stripped_and_empty_lines_dropped() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"a\r\n\r\n\n\rb\r") == [b"a"]
    # Only the one "\r" that ends the line goes; one inside the line is data.
    assert framer.feed(b"\n") == [b"\rb"]
    assert framer.flush() == []


def test_cr_at_chunk_boundary() -> None:
    framer = LineFramer(100)
    assert framer.feed(b"abc\r") == []
    assert framer.feed(b"\ndef") == [b"abc"]
    assert framer.flush() == [b"def"]


def test_oversized_line_then_recovery() -> None:
    framer = LineFramer(10)
    assert framer.feed(b"0123456789") == []  # exactly the bound: still held
    assert framer.feed(b"ab") == []  # now over: dropped, skipping to the newline
    assert framer._pending == bytearray()
    assert framer.feed(b"cdef") == []
    assert framer.feed(b"gh\nok\n") == [Oversized(18), b"ok"]
    assert framer.feed(b"0123456789\n") == [b"0123456789"]


def test_oversized_line_inside_one_chunk() -> None:
    framer = LineFramer(4)
    assert framer.feed(b"ok\ntoolong\nfine\n") == [b"ok", Oversized(7), b"fine"]


def test_flush_returns_partial_line_and_resets() -> None:
    framer = LineFramer(10)
    framer.feed(b"partial\r")
    assert framer.flush() == [b"partial"]
    assert framer.flush() == []
    framer.feed(b"x" * 25)
    assert framer.flush() == [Oversized(25)]
    assert framer.feed(b"next\n") == [b"next"]


def test_invalid_bound() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LineFramer(0)


def test_large_lines_in_64k_chunks_are_linear() -> None:
    line = b"[" + b"1234567," * 64_000 + b"0]"  # ~512 KB
    data = (line + b"\n") * 20
    chunk = 64 * 1024
    framer = LineFramer(1024 * 1024)
    began = time.perf_counter()
    out: list[bytes | Oversized] = []
    for pos in range(0, len(data), chunk):
        out += framer.feed(data[pos : pos + chunk])
    elapsed = time.perf_counter() - began
    assert out == [line] * 20
    # ~10 MB: linear work takes milliseconds; re-scanning the pending buffer per chunk would take seconds.
    assert elapsed < 1.0


def test_large_oversized_line_is_never_held() -> None:
    framer = LineFramer(100_000)
    chunk = b"z" * (64 * 1024)
    peak = 0
    for _ in range(32):  # 2 MiB without a newline
        assert framer.feed(chunk) == []
        peak = max(peak, len(framer._pending))
    assert peak <= 100_000
    assert framer.feed(b"\n{}\n") == [Oversized(32 * 64 * 1024), b"{}"]
