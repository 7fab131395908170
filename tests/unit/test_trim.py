"""Returning freed heap pages to the system and freezing long-lived objects (core.trim)."""

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
    baseline = _rss()
    blocks = [np.ones(60_000, np.float64) for _ in range(400)]  # 480 KB each, about 190 MB
    keep = blocks[-1]
    del blocks
    assert trim.release(force=True)
    after = _rss()
    assert keep.sum() == 60_000.0
    # back near where it was before the blocks, wherever glibc had put them
    assert after - baseline < 60 * 2**20, (baseline, after)


def test_release_is_rate_limited_unless_forced() -> None:
    assert trim.release(force=True)
    assert trim.release() is False  # within MIN_INTERVAL_S of the last one
    assert trim.release(force=True)


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_release_collects_new_garbage_and_freezes_the_survivors() -> None:
    import gc
    import weakref

    trim.release(force=True)
    frozen_before = gc.get_freeze_count()
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    dead = weakref.ref(a)
    del a, b
    kept = [_Node() for _ in range(1000)]
    assert trim.release(force=True)
    assert dead() is None  # collected before the freeze, not frozen with the rest
    assert gc.get_freeze_count() >= frozen_before + 1000
    assert all(isinstance(k, _Node) for k in kept)
