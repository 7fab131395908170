"""Crash points for testing durability: SEGMENTD_CRASH_AT=<point>[:<n>] kills the process.

The process SIGKILLs itself the n-th time (default: first) execution reaches the named point,
leaving files exactly as a power cut or `kill -9` at that step would. A no-op when the
variable is unset, which is the normal case.
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "SEGMENTD_CRASH_AT"
POINTS = (
    "wal.before_write",
    "wal.after_write_before_sync",
    "wal.after_sync",
    "snapshot.mid_frames",
    "snapshot.before_rename",
    "manifest.before_rename",
    "manifest.after_rename",
    "cleanup.mid",
)

_lock = threading.Lock()
_hits: dict[str, int] = {}


def _target() -> tuple[str, int] | None:
    spec = os.environ.get(ENV, "")
    if not spec:
        return None
    point, _, count = spec.partition(":")
    return point, int(count) if count else 1


def crash_point(name: str) -> None:
    """Kills the process here if SEGMENTD_CRASH_AT names this point and its count is reached."""
    target = _target()
    if target is None or target[0] != name:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        reached = _hits[name] >= target[1]
    if reached:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)  # only if the signal could not be delivered
