"""Keeps glibc's malloc from holding on to the megabytes each report passes through.

A trn2.48xlarge report is a 1.1 MB line that decodes into ~8 MiB of objects and is freed a moment
later. glibc raises its mmap threshold the first time such a large block is freed, and from then on
serves those blocks from the heap, which it does not give back: the exporter's resident memory
settles ~7 MiB above what it uses (52 MiB instead of 45 MiB at trn2.48xlarge with 64 runtimes).
Fixing the threshold at glibc's own default keeps large blocks in mmap, returned on free. The price
is page faults when they are touched again: ~15 % more CPU per report at that scale (measured by
bench/run.py), about 5 ms a second on a node that reports every second.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
"""mallopt()'s parameter number (malloc.h)."""
MMAP_THRESHOLD_BYTES = 128 * 1024
"""glibc's default before it starts adjusting; setting it explicitly turns the adjustment off."""


def keep_large_blocks_in_mmap() -> bool:
    """Fix glibc's mmap threshold; False (and nothing changed) where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        log.debug("no mallopt() in this C library; malloc left as it is")
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
