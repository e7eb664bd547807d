"""How a process running detectors hands memory back to the system (glibc; elsewhere a no-op).

A window's arrays are megabytes each and short-lived: a read's parse buffers, a column
reordered by version, a segment's copy. glibc serves blocks of that size from its heaps once
one has been freed (its mmap threshold rises to the largest block freed, up to 32 MB), and
keeps freed heap memory for reuse, per thread arena. The read parses on several threads, the
features are scored on several more, so freed memory piled up in arenas the next allocation
did not use: a ``detect --once`` pass over a 1M-row window peaked at 690-710 MB resident
with 450 MB live. With blocks of 1 MiB and more always mapped on their own, and the heaps
trimmed after each large read, the same pass peaks at about 550 MB.
"""

from __future__ import annotations

import ctypes
from typing import Any

# glibc's mallopt parameter for the mmap threshold (malloc.h).
M_MMAP_THRESHOLD = -3
# Blocks from this size up get their own mapping, returned to the system when freed. A
# million-row column is 8 MB; a 4,000-row backfill window's columns stay below it.
LARGE_BLOCK = 1 << 20


def map_large_blocks() -> None:
    """Serve every block of ``LARGE_BLOCK`` or more from its own mapping, from now on."""
    if _LIBC is not None:
        _LIBC.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK)


def return_freed_memory() -> None:
    """Give the heaps' free memory back to the system (after a large read)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _libc() -> Any:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    except (OSError, AttributeError):  # not Linux, or not glibc
        return None
    return libc


_LIBC = _libc()
