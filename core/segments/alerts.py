"""Alert rules per segment: size, or entries / exits over a window, kept within bounds.

A rule is written as a tag of the segment, so it travels with the definition (the wire API,
the journal and snapshots carry it unchanged):

    alert:size>=100            members must stay at 100 or more
    alert:size<50000           ... below 50,000
    alert:entries/10m<=500     at most 500 entries in any trailing 10 minutes
    alert:exits/1h<1000        fewer than 1,000 exits in the trailing hour

Windows are a whole number of s, m, h or d (default 1h). A rule fires when its value leaves
the bounds and resolves when it is back; each transition is one `Alert`. The book keeps the
recent alerts (bounded), numbered, for watchers, and counts firings per segment and rule.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from core.errors import InvalidArgument
from core.segments.history import SegmentHistory

PREFIX = "alert:"
DEFAULT_WINDOW_MS = 3_600_000
MAX_RECENT = 10_000
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_RULE = re.compile(r"(size|entries|exits)(?:/([1-9][0-9]{0,6})([smhd]))?(<=|>=|<|>)(-?[0-9]+(?:\.[0-9]+)?)")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": lambda v, b: v <= b, ">=": lambda v, b: v >= b, "<": lambda v, b: v < b, ">": lambda v, b: v > b,
}


@dataclass(frozen=True, slots=True)
class AlertRule:
    text: str  # the tag, e.g. "alert:entries/10m<=500"
    metric: str  # size | entries | exits
    op: str  # the bound the value must keep: <= >= < >
    bound: float
    window_ms: int = 0  # entries / exits only

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.bound)


@dataclass(frozen=True, slots=True)
class Alert:
    """One transition of a rule; attribute names are those of the Alert message (plus `firing`)."""

    segment: str
    rule: str
    message: str
    at_ms: int
    value: float
    firing: bool  # False: the value is back within bounds


def parse_rule(text: str, field: str) -> AlertRule:
    """The rule of an `alert:` tag; InvalidArgument(field) when it does not read as one."""
    found = _RULE.fullmatch(text[len(PREFIX):]) if text.startswith(PREFIX) else None
    if found is None:
        raise InvalidArgument(
            field, f"{text!r} is not an alert rule: alert:size>=N, alert:entries/10m<=N or alert:exits/1h<N"
        )
    metric, amount, unit, op, bound = found.groups()
    if metric == "size" and amount:
        raise InvalidArgument(field, f"{text!r}: a size rule takes no window")
    window = int(amount) * _UNIT_MS[unit] if amount else (0 if metric == "size" else DEFAULT_WINDOW_MS)
    return AlertRule(text, metric, op, float(bound), window)


def rules_of(tags: Iterable[str]) -> tuple[AlertRule, ...]:
    """The alert rules among a definition's tags (InvalidArgument names the tag's index)."""
    return tuple(parse_rule(tag, f"tags[{i}]") for i, tag in enumerate(tags) if tag.startswith(PREFIX))


def _describe(rule: AlertRule, value: float, firing: bool) -> str:
    what = "size" if rule.metric == "size" else f"{rule.metric} in the last {rule.window_ms // 1000}s"
    shown = int(value) if float(value).is_integer() else value
    if firing:
        return f"{what} is {shown}, outside {rule.metric} {rule.op} {rule.bound:g}"
    return f"{what} is {shown}, back within {rule.metric} {rule.op} {rule.bound:g}"


class AlertBook:
    """Which rules fire, the recent alerts (numbered from 1) and firing counts."""

    def __init__(self, notify: Callable[[], None] | None = None, max_recent: int = MAX_RECENT) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._firing: dict[tuple[str, str], bool] = {}
        self._recent: deque[tuple[int, Alert]] = deque(maxlen=max_recent)
        self._last = 0
        self.fired: dict[tuple[str, str], int] = {}  # (segment, rule text) -> times it started firing

    @property
    def last_id(self) -> int:
        return self._last

    def check(
        self, segment: str, rules: Iterable[AlertRule], at_ms: int, size: int, history: SegmentHistory | None
    ) -> list[Alert]:
        """Judges `segment`'s rules at `at_ms`; returns (and keeps) the transitions."""
        out: list[Alert] = []
        for rule in rules:
            if rule.metric == "size":
                value = float(size)
            else:
                entered, exited = history.totals(at_ms - rule.window_ms + 1, at_ms) if history else (0, 0)
                value = float(entered if rule.metric == "entries" else exited)
            key = (segment, rule.text)
            firing = not rule.holds(value)
            if firing == self._firing.get(key, False):
                continue
            self._firing[key] = firing
            if firing:
                self.fired[key] = self.fired.get(key, 0) + 1
            out.append(Alert(segment, rule.text, _describe(rule, value, firing), at_ms, value, firing))
        if out:
            with self._lock:
                for alert in out:
                    self._last += 1
                    self._recent.append((self._last, alert))
            if self._notify is not None:
                self._notify()
        return out

    def firing(self) -> list[tuple[str, str]]:
        """(segment, rule text) of every rule outside its bounds now."""
        return sorted(key for key, on in self._firing.items() if on)

    def forget(self, segment: str) -> None:
        """Drops a deleted (or redefined) segment's rule states."""
        for key in [k for k in self._firing if k[0] == segment]:
            del self._firing[key]

    def since(self, after_id: int) -> list[tuple[int, Alert]]:
        """The retained alerts numbered after `after_id`, oldest first."""
        with self._lock:
            return [(i, a) for i, a in self._recent if i > after_id]
