"""Arrays derived from immutable column arrays (contact runs, merged value streams, density),
cached while the arrays they come from are alive.

Table versions never change once published, so a derived array stays right for as long as
its sources exist; entries are keyed by the identity of the source arrays and checked through
weak references, so the cache never keeps a version alive.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np

from core.columns import PathColumn
from core.kernels import runs

CAPACITY = 4096  # entries


class DerivedCache:
    """A bounded LRU of values derived from numpy arrays, valid while those arrays live.

    An entry is dropped soon after any of its source arrays is freed (a weak reference
    callback queues it; the next lookup removes it), so replaced table versions do not keep
    their derived arrays in memory.
    """

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, tuple[list[weakref.ref], Any]] = OrderedDict()
        self._dead: list[Hashable] = []  # appended from weakref callbacks (list.append is atomic)
        self._capacity = capacity

    def __len__(self) -> int:
        with self._lock:
            self._purge()
            return len(self._items)

    def _purge(self) -> None:
        while self._dead:
            self._items.pop(self._dead.pop(), None)

    def get(self, key: Hashable, sources: list[np.ndarray], build: Callable[[], Any]) -> Any:
        """The value of `build()` for `key` over `sources`, computed once while they live."""
        full = (key, tuple(id(s) for s in sources))
        with self._lock:
            self._purge()
            hit = self._items.get(full)
            if hit is not None and all(r() is s for r, s in zip(hit[0], sources)):
                self._items.move_to_end(full)
                return hit[1]
        value = build()
        dead = self._dead
        refs = [weakref.ref(s, lambda _, k=full: dead.append(k)) for s in sources]
        with self._lock:
            self._items[full] = (refs, value)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return value


cache = DerivedCache()


def contact_runs(contact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(run_contact, run_start) of a contact-sorted column (see core.kernels.runs)."""
    return cache.get("runs", [contact], lambda: runs.contact_runs(contact))


def _is_identity(row: np.ndarray, n: int) -> bool:
    if row.shape[0] != n:
        return False
    return n == 0 or bool(row[0] == 0 and row[-1] == n - 1 and np.all(row[1:] != row[:-1]))


def dense(row: np.ndarray, n_rows: int) -> np.ndarray | None:
    """None when entry e is row e (each of the n_rows rows has exactly one entry), else `row`."""
    if row.shape[0] != n_rows:
        return row
    identity = cache.get(("dense", n_rows), [row], lambda: _is_identity(row, n_rows))
    return None if identity else row


def dense_rows(col: PathColumn, n_rows: int) -> np.ndarray | None:
    """`dense(col.row, n_rows)`: None when entry e of `col` is row e."""
    return dense(col.row, n_rows)
