"""The one jit configuration every kernel uses.

`cache=True` keeps compiled code across processes, `nogil=True` lets shards run in parallel
threads, and fastmath stays off so float sums and comparisons are exact IEEE operations.
Nothing else in the code base calls `numba.njit`.
"""

from __future__ import annotations

import numba

jit = numba.njit(cache=True, nogil=True)
