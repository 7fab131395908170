"""Row blocks: the events of one ingest batch bound for one table, gathered column by column.

A block collects rows in arrival order in plain lists; the table then adds the whole block
to its tail at once (`Table.append_block`), one extend per (path, kind) instead of one
append per value. Strings are not encoded while a batch is gathered: a STR entry holds the
position of its string in the batch's string list, and the batch encodes that list in
order when it commits, so codes are assigned exactly as one-event-at-a-time appends would.
"""

from __future__ import annotations

from typing import Any, Sequence

from core.columns import Kind, kind_of
from core.errors import InvalidArgument

# Kind values as plain ints: block column keys are (path, int), cheap to hash.
NUM, STR, BOOL, NODE = int(Kind.NUM), int(Kind.STR), int(Kind.BOOL), int(Kind.NODE)
KINDS = (Kind.NUM, Kind.STR, Kind.BOOL, Kind.NODE)  # KINDS[k] is the Kind of int k

BlockKey = tuple[str, int]  # (path, kind value)


class BlockColumn:
    """Entries of one (path, kind) in a block: block-local rows (ascending), values aligned
    with them (NUM float, STR position in the batch's strings, BOOL 0/1, none for NODE), and
    (entry index, items) of the entries that lie in array elements."""

    __slots__ = ("rows", "values", "itemized")

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.values: list[Any] = []
        self.itemized: list[tuple[int, tuple[tuple[str, int], ...]]] = []


class RowBlock:
    """Rows bound for one table, in arrival order."""

    __slots__ = ("contact", "ts_ms", "arrival", "columns", "_by_kind")

    def __init__(self) -> None:
        self.contact: list[int] = []
        self.ts_ms: list[int] = []
        self.arrival: list[int] = []  # offsets from the batch's first arrival number
        self.columns: dict[BlockKey, BlockColumn] = {}  # first-seen order
        # the same columns by kind value, then path (lookups without building a key tuple)
        self._by_kind: tuple[dict[str, BlockColumn], ...] = ({}, {}, {}, {})

    def __len__(self) -> int:
        return len(self.contact)

    def _column(self, path: str, kind: int) -> BlockColumn:
        col = self.columns[(path, kind)] = BlockColumn()
        self._by_kind[kind][path] = col
        return col

    def add(self, contact: int, ts_ms: int, arrival: int, leaves: Sequence[Any], strings: list[str]) -> None:
        """Adds one row with its (path, value, items) leaves; strings go to `strings`.

        Raises InvalidArgument (a number out of range) or TypeError (a value of no kind) and
        leaves the block and `strings` as they were.
        """
        row = len(self.contact)
        mark = len(strings)
        nums, strs, bools, nodes = self._by_kind
        path = ""
        try:
            for path, value, items in leaves:
                t = type(value)
                if t is str:
                    col = strs.get(path) or self._column(path, STR)
                    col.values.append(len(strings))
                    strings.append(value)
                elif t is float:
                    col = nums.get(path) or self._column(path, NUM)
                    col.values.append(value)
                elif t is int:
                    col = nums.get(path) or self._column(path, NUM)
                    col.values.append(float(value))
                elif t is bool:
                    col = bools.get(path) or self._column(path, BOOL)
                    col.values.append(1 if value else 0)
                elif value is None:
                    col = nodes.get(path) or self._column(path, NODE)
                else:
                    col = self._other(path, value, strings)
                rows = col.rows
                rows.append(row)
                if items:
                    col.itemized.append((len(rows) - 1, items))
        except OverflowError:
            self._undo(row, strings, mark)
            raise InvalidArgument(f"params.{path}", "number out of range") from None
        except BaseException:
            self._undo(row, strings, mark)
            raise
        self.contact.append(contact)
        self.ts_ms.append(ts_ms)
        self.arrival.append(arrival)

    def _other(self, path: str, value: Any, strings: list[str]) -> BlockColumn:
        """The column of a value of a subclass of a plain kind (numpy scalars, str or int
        subclasses), with its value appended; TypeError for a value of no kind."""
        kind = int(kind_of(value))
        col = self._by_kind[kind].get(path) or self._column(path, kind)
        if kind == NUM:
            col.values.append(float(value))
        elif kind == BOOL:
            col.values.append(int(value))
        elif kind == STR:
            col.values.append(len(strings))
            strings.append(value)
        return col

    def _undo(self, row: int, strings: list[str], mark: int) -> None:
        """Removes the entries of `row` (the row being added) and its strings."""
        del strings[mark:]
        for key in list(self.columns):
            col = self.columns[key]
            rows = col.rows
            while rows and rows[-1] == row:
                if col.itemized and col.itemized[-1][0] == len(rows) - 1:
                    col.itemized.pop()
                rows.pop()
                if key[1] != NODE:
                    col.values.pop()
            if not rows:
                del self.columns[key]
                del self._by_kind[key[1]][key[0]]
