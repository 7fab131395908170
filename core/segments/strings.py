"""Per-code truth tables of string tests, cached per dictionary and grown with it.

Codes are dense and never reused, so a code's entry, once tested, stays right as the
dictionary grows. Only the codes a column asks about are tested (a dictionary holds every
string of every column: ids and emails too). Tables are kept for the most recent tests.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Callable, Hashable

import numpy as np

from core.dictionary import StringDictionary, missing_codes

MAX_TABLES = 256  # per dictionary

_lock = threading.Lock()
_tables: "weakref.WeakKeyDictionary[StringDictionary, OrderedDict[Hashable, np.ndarray]]" = weakref.WeakKeyDictionary()


def code_table(
    dictionary: StringDictionary, key: Hashable, test: Callable[[str, float], bool], codes: np.ndarray
) -> np.ndarray:
    """bool per code: test(string, numeric value of the string (NaN: not a number)), read only
    for the codes in `codes` (others may be False): only strings some column uses are tested.

    `key` identifies the test (equal keys must mean equal tests)."""
    total = len(dictionary)
    with _lock:
        per_dict = _tables.setdefault(dictionary, OrderedDict())
        entry = per_dict.get(key)
        if entry is None or entry[0].shape[0] < total:
            table, known = np.zeros(total, dtype=np.bool_), np.zeros(total, dtype=np.bool_)
            if entry is not None:
                k = entry[0].shape[0]
                table[:k], known[:k] = entry
            entry = per_dict[key] = (table, known)
        per_dict.move_to_end(key)
        while len(per_dict) > MAX_TABLES:
            per_dict.popitem(last=False)
        table, known = entry
        todo = missing_codes(codes, known[:total])
        if todo.shape[0]:
            # under the lock: a table is only ever grown from a state whose marks are all true
            numeric = dictionary.numeric_of(todo)
            decode = dictionary.decode
            table[todo] = np.fromiter((test(decode(c), float(numeric[c])) for c in todo.tolist()),
                                      dtype=np.bool_, count=todo.shape[0])
            known[todo] = True
    return table[:total]
