"""Per-code truth tables of string tests, cached per dictionary and grown with it.

Codes are dense and never reused, so a table computed for codes [0, k) stays right as the
dictionary grows; only new codes are tested. Tables are kept for the most recent tests.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

from core.columns import StringDictionary

MAX_TABLES = 256  # per dictionary

_lock = threading.Lock()
_tables: "weakref.WeakKeyDictionary[StringDictionary, OrderedDict[Hashable, np.ndarray]]" = weakref.WeakKeyDictionary()


def code_table(dictionary: StringDictionary, key: Hashable, test: Callable[[str, float], bool]) -> np.ndarray:
    """bool per code: test(string, numeric value of the string (NaN: not a number)).

    `key` identifies the test (equal keys must mean equal tests)."""
    total = len(dictionary)
    with _lock:
        per_dict = _tables.setdefault(dictionary, OrderedDict())
        table = per_dict.get(key)
        if table is not None:
            per_dict.move_to_end(key)
            if table.shape[0] >= total:
                return table[:total]
    done = 0 if table is None else table.shape[0]
    numeric = dictionary.numeric()
    fresh = np.fromiter(
        (test(dictionary.decode(c), float(numeric[c])) for c in range(done, total)), dtype=np.bool_, count=total - done
    )
    grown = fresh if table is None else np.concatenate([table, fresh])
    grown.flags.writeable = False
    with _lock:
        per_dict[key] = grown
        per_dict.move_to_end(key)
        while len(per_dict) > MAX_TABLES:
            per_dict.popitem(last=False)
    return grown
