"""Returning freed heap pages to the system (core.trim)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from core import trim


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_release_gives_freed_heap_pages_back() -> None:
    assert trim.available()
    # freeing a mapped 8 MB block raises glibc's mmap threshold to 8 MB; the blocks after it
    # then live in the heap, and freeing them (all but the last, which pins the heap's top)
    # leaves their pages resident until trimmed
    big = np.ones(1_000_000, np.float64)
    del big
    blocks = [np.ones(60_000, np.float64) for _ in range(400)]  # 480 KB each, about 190 MB
    keep = blocks[-1]
    del blocks
    before = _rss()
    assert trim.release(force=True)
    after = _rss()
    assert keep.sum() == 60_000.0
    assert before - after > 100 * 2**20, (before, after)


def test_release_is_rate_limited_unless_forced() -> None:
    if not trim.available():
        assert trim.release(force=True) is False
        return
    assert trim.release(force=True)
    assert trim.release() is False  # within MIN_INTERVAL_S of the last one
    assert trim.release(force=True)
