"""Keeping the process lean: freed heap pages go back to the system, and long-lived objects
leave the cyclic garbage collector's sight.

Merging a tail into its base, replacing a snapshot's arrays or dropping a version frees large
arrays. Many of them live in glibc's heap and arenas (its mmap threshold rises to the size of
the largest block freed, up to 32 MiB), and glibc keeps the freed pages for reuse: the resident
size then stays at the high-water mark of every merge. `release()` asks glibc to give back
every free page it holds (`malloc_trim(0)`); elsewhere that step does nothing.

A full collection walks every tracked object: with the contact book and the string
dictionary of a million contacts that is about 0.4 s of held GIL, every time the collector
decides to look at its oldest generation. `release()` therefore also collects what the
objects made since the last call left as garbage and freezes the survivors (`gc.freeze`):
later collections skip them. Frozen objects are still freed by reference counting; only a
cycle among them that becomes garbage would stay. `freeze()` alone is for state known to be
live (a restore just built).

Both run at most once every MIN_INTERVAL_S unless forced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
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
    """Collects the garbage of objects made since the last call, freezes the survivors and
    returns free heap pages to the system; True when it ran. Skipped (False) within
    MIN_INTERVAL_S of the last call unless `force`."""
    global _last
    with _lock:
        now = time.monotonic()
        if not force and now - _last < MIN_INTERVAL_S:
            return False
        _last = now
    gc.collect()  # walks only what is not frozen yet
    gc.freeze()
    if _trim is not None:
        _trim(0)  # ctypes lets go of the GIL for the call
    return True


def freeze() -> None:
    """Moves every object tracked now out of the collector's sight, without collecting first
    (for state just built and known to be live)."""
    gc.freeze()


def available() -> bool:
    """Whether `release` can return heap pages here (glibc's malloc_trim)."""
    return _trim is not None
