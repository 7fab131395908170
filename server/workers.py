"""Worker threads of the gRPC server: a lean fixed pool and the quick lane that uses it.

grpcio's sync server hands every call to a thread pool. With one large pool, a burst of short
reads wakes many threads that then fight over the GIL (and over the two cores of a small
machine); a few threads drain the same queue with less switching. `QuickLane` sends the
methods named quick (short reads of saved, materialised segments) to a small `LeanPool`, and
leaves every other call (streams, writes, evaluations that may run long) on the server's
main pool, so a slow call never queues in front of them and a long stream never holds a
quick worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from concurrent import futures
from queue import SimpleQueue
from typing import Any

import grpc

# Reads that answer from materialised bitmaps: one probe or one lookup per contact and segment.
QUICK_METHODS = frozenset({"/segmentd.v1.Segmentd/CheckMembership", "/segmentd.v1.Segmentd/GetContactSegments"})


class _Done:
    """The future of one submitted call: only what grpcio uses (`add_done_callback`)."""

    __slots__ = ("_callbacks", "_done", "_lock")

    def __init__(self) -> None:
        self._callbacks: list[Callable[[Any], None]] = []
        self._done = False
        self._lock = threading.Lock()

    def add_done_callback(self, callback: Callable[[Any], None]) -> None:
        with self._lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def finish(self) -> None:
        with self._lock:
            self._done = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)

    def done(self) -> bool:
        return self._done

    def cancel(self) -> bool:
        return False  # a queued call always runs: gRPC cancels it through its own context


class LeanPool(futures.ThreadPoolExecutor):
    """`workers` threads started at once, draining one queue; `submit` returns a minimal future.

    A ThreadPoolExecutor by type (grpcio only takes a per-method pool that is one), but not
    by machinery: no per-call Condition, no thread-count adjustment, no lock around the queue.
    An exception escaping a call is reported on stderr by the thread, as ThreadPoolExecutor
    keeps it in the future (grpcio never reads it: its calls catch their own errors).
    """

    def __init__(self, workers: int, name: str = "segmentd-quick") -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        self._queue: SimpleQueue[tuple[_Done, Callable[..., Any], tuple[Any, ...]] | None] = SimpleQueue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{k}", daemon=True) for k in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def workers(self) -> int:
        return len(self._threads)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if self._closed:
            raise RuntimeError("cannot schedule new calls after shutdown")
        done = _Done()
        call = fn if not kwargs else (lambda *a: fn(*a, **kwargs))
        self._queue.put((done, call, args))
        return done

    def _work(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            done, call, args = item
            try:
                call(*args)
            except BaseException:  # noqa: BLE001 - the thread survives; the traceback is printed
                import traceback

                traceback.print_exc()
            finally:
                done.finish()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stops the threads once the queued calls have run (waits for them when `wait`)."""
        if not self._closed:
            self._closed = True
            for _ in self._threads:
                self._queue.put(None)
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()


class QuickLane(grpc.ServerInterceptor):
    """Outermost interceptor: serves the unary methods of `methods` on `pool`.

    It marks the handler's behaviour with grpcio's per-method pool attribute
    (`experimental_thread_pool`), so it adds one attribute check per call and changes nothing
    else: every inner layer (observer, auth, limits, readiness) still runs.
    """

    def __init__(self, pool: futures.ThreadPoolExecutor, methods: Collection[str] = QUICK_METHODS) -> None:
        self.pool = pool
        self.methods = frozenset(methods)

    def intercept_service(
        self, continuation: Callable[[Any], grpc.RpcMethodHandler | None], details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method not in self.methods:  # type: ignore[attr-defined]
            return handler
        if handler.request_streaming or handler.response_streaming:
            return handler
        behaviour = handler.unary_unary
        if getattr(behaviour, "experimental_thread_pool", None) is not self.pool:
            try:
                behaviour.experimental_thread_pool = self.pool  # type: ignore[union-attr]
            except AttributeError:  # a bound method or builtin: it stays on the main pool
                pass
        return handler
