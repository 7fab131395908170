"""Handing freed heap memory back to the operating system.

Merging a tail into its base, replacing a snapshot's arrays or dropping a version frees large
arrays. Many of them live in glibc's heap and arenas (its mmap threshold rises to the size of
the largest block freed, up to 32 MiB), and glibc keeps the freed pages for reuse: the resident
size then stays at the high-water mark of every merge. `release()` asks glibc to give back
every free page it holds (`malloc_trim(0)`), at most once every MIN_INTERVAL_S; elsewhere it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time

MIN_INTERVAL_S = 2.0

_lock = threading.Lock()
_last = 0.0


def _load_trim():  # type: ignore[no-untyped-def]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_trim = _load_trim()


def release(force: bool = False) -> bool:
    """Returns free heap pages to the system; True when it did. Skipped (False) within
    MIN_INTERVAL_S of the last call unless `force`, and where glibc's malloc_trim is missing."""
    global _last
    if _trim is None:
        return False
    with _lock:
        now = time.monotonic()
        if not force and now - _last < MIN_INTERVAL_S:
            return False
        _last = now
    _trim(0)  # ctypes lets go of the GIL for the call
    return True


def available() -> bool:
    """Whether `release` can do anything here."""
    return _trim is not None
