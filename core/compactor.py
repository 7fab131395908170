"""The compactor: one daemon thread that merges due table tails into their bases.

A store's tables never merge in the appending thread: when a tail becomes due the table is
handed here (`submit`), at most once until it has been compacted, so the queue holds
distinct tables and is bounded by their number (and by `max_pending`: a full queue makes
`submit` wait, which slows writers down rather than letting tails grow without limit).
After each round of merges the freed heap pages go back to the system (`core.trim`).
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from core import trim

log = logging.getLogger(__name__)

MAX_PENDING = 4096  # tables waiting for a merge
IDLE_EXIT_S = 30.0  # an idle thread ends (a store dropped without close leaves no thread behind)


class Compactable(Protocol):
    def compact_due(self) -> None: ...


class Compactor:
    """Merges submitted tables' tails in one background thread, started on first use."""

    def __init__(self, max_pending: int = MAX_PENDING, name: str = "compactor") -> None:
        self._queue: queue.Queue[Compactable | None] = queue.Queue(maxsize=max_pending)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._name = name
        self._stopped = False
        self.merges = 0  # tables compacted (or found no longer due)
        self.failures = 0

    def submit(self, table: Compactable) -> None:
        """Queues a table whose tail is due (the table guarantees it is not queued already)."""
        with self._lock:
            if not self._stopped:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                    self._thread.start()
                # under the lock: the thread only leaves, on an empty queue, holding it too
                self._queue.put(table)
                return
        table.compact_due()  # stopped: no thread any more, merge here

    def _run(self) -> None:
        while True:
            try:
                table = self._queue.get(timeout=IDLE_EXIT_S)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None  # the next submit starts a new thread
                        return
                continue
            try:
                if table is None:
                    return
                table.compact_due()
                self.merges += 1
                if self._queue.empty():  # a round of merges done: what they freed goes back
                    trim.release()
            except Exception:  # the thread must outlive one failed merge
                self.failures += 1
                log.exception("compaction failed")
            finally:
                self._queue.task_done()

    def wait(self) -> None:
        """Returns once every table queued so far has been handled."""
        self._queue.join()

    def stop(self, timeout: float = 10.0) -> None:
        """Finishes the queued merges and ends the thread; later submissions merge inline."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(None)
            thread.join(timeout)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()
