"""Event timestamps: RFC 3339 date-times and epoch milliseconds -> epoch milliseconds UTC.

Realistic streams repeat the parts of their timestamps (the same hours, the same seconds of
the minute, the same zone), so the parts of texts that passed the full check are remembered
and later texts are read through them without the regular expression or datetime.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Any

from core.errors import InvalidArgument

# Epoch milliseconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z (RFC 3339's range).
MIN_TS_MS = -62_135_596_800_000
MAX_TS_MS = 253_402_300_799_999

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_EPOCH_DIGITS = re.compile(r"-?[0-9]{1,16}")
_EPOCH = datetime(1970, 1, 1)
_MS = timedelta(milliseconds=1)
# Parts of RFC 3339 texts that passed the full check, with their share of the epoch ms:
# "YYYY-MM-DD" -> the day's start, "THH" -> ms into the day, ":MM:SS" -> ms into the hour,
# the rest (fraction and zone: ".571Z", "+02:00") -> milliseconds minus the UTC offset.
_DAY_MS: dict[str, int] = {}
_HOUR_MS: dict[str, int] = {}
_SECOND_MS: dict[str, int] = {}
_REST_MS: dict[str, int] = {}
_PART_CACHE_SIZE = 100_000


def parse_timestamp(value: Any, field: str = "timestamp") -> int:
    """An RFC 3339 string, or integer epoch milliseconds (also an all-digit string or an
    integral float) -> epoch milliseconds UTC. Fractions below a millisecond are dropped."""
    if type(value) is int and MIN_TS_MS <= value <= MAX_TS_MS:
        return value  # the common cases first
    if type(value) is str:
        text = value.strip()
        ms = int(text) if len(text) <= 17 and _EPOCH_DIGITS.fullmatch(text) else _parse_rfc3339(text, field)
        if not MIN_TS_MS <= ms <= MAX_TS_MS:
            raise InvalidArgument(field, "is outside years 0001-9999")
        return ms
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be an RFC 3339 string or epoch milliseconds")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise InvalidArgument(field, "epoch milliseconds must be an integer")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if len(text) <= 17 and _EPOCH_DIGITS.fullmatch(text):
            value = int(text)
        else:
            value = _parse_rfc3339(text, field)
    if not isinstance(value, int):
        raise InvalidArgument(field, "must be an RFC 3339 string or epoch milliseconds")
    if not MIN_TS_MS <= value <= MAX_TS_MS:
        raise InvalidArgument(field, "is outside years 0001-9999")
    return value


def _parse_rfc3339(text: str, field: str) -> int:
    # The first 19 characters have fixed places ("YYYY-MM-DDTHH:MM:SS"), so the text is valid
    # exactly when its date, its "THH", its ":MM:SS" and the rest are (a valid date takes any
    # hour 00-23); each part's value is kept once the full check has passed for it.
    if len(text) >= 20:
        day_ms = _DAY_MS.get(text[:10])
        if day_ms is not None:
            hour_ms = _HOUR_MS.get(text[10:13])
            if hour_ms is not None:
                second_ms = _SECOND_MS.get(text[13:19])
                if second_ms is not None:
                    rest_ms = _REST_MS.get(text[19:])
                    if rest_ms is not None:
                        return day_ms + hour_ms + second_ms + rest_ms
    return _parse_rfc3339_checked(text, field)


def _parse_rfc3339_checked(text: str, field: str) -> int:
    """The full conversion with datetime's validation; remembers the parts' values."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        raise InvalidArgument(field, f"{text[:64]!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    leap = second == 60  # a leap second reads as the first millisecond after :59.999
    try:
        moment = datetime(year, month, day, hour, minute, 59 if leap else second)
    except ValueError as exc:
        raise InvalidArgument(field, f"{text[:64]!r} is not a valid date-time ({exc})") from None
    frac = m.group(7) or ""
    millis = int((frac + "000")[:3])
    offset_min = 0
    if m.group(9):
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise InvalidArgument(field, f"{text[:64]!r} has an invalid UTC offset")
        offset_min = (oh * 60 + om) * (1 if m.group(9) == "+" else -1)
    ms = (moment - _EPOCH) // _MS + millis - offset_min * 60_000
    if leap:
        ms += 1000
    _remember(_DAY_MS, text[:10], (datetime(year, month, day) - _EPOCH) // _MS)
    _remember(_HOUR_MS, text[10:13], hour * 3_600_000)
    _remember(_SECOND_MS, text[13:19], minute * 60_000 + second * 1000)
    _remember(_REST_MS, text[19:], millis - offset_min * 60_000)
    return ms


def _remember(cache: dict[str, int], key: str, value: int) -> None:
    if len(cache) >= _PART_CACHE_SIZE:
        cache.clear()
    cache[key] = value
