"""Cooperative cancellation of long evaluations.

The server installs a check for the duration of one call (`cancellable(check)`); long
computations call `checkpoint()` between units of work (a shard, a condition). The check
raises to stop the work; without an installed check `checkpoint()` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_check: ContextVar[Callable[[], None] | None] = ContextVar("segmentd_cancel_check", default=None)


def checkpoint() -> None:
    """Raises (whatever the installed check raises) when the current work should stop."""
    check = _check.get()
    if check is not None:
        check()


@contextmanager
def cancellable(check: Callable[[], None]) -> Iterator[None]:
    """Runs the block with `check` as the cancellation check of this thread's context."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)
