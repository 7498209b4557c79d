"""The daemon fixes glibc's mmap threshold at start (exporter/memtune.py); bench/run.py measures the effect."""

from __future__ import annotations

import platform

from exporter.memtune import keep_large_blocks_in_mmap


def test_malloc_is_tuned_where_the_c_library_is_glibc() -> None:
    assert keep_large_blocks_in_mmap() is (platform.libc_ver()[0] == "glibc")
