"""Wire times of a whole batch parsed at once with numpy, to epoch microseconds.

Only the plain ISO-8601 forms that pydantic and ``WireEvent._naive_is_utc`` read the same
way count: ``YYYY-MM-DDTHH:MM:SS``, then optionally ``.`` and 1-6 digits, then ``Z``,
``+hh:mm``, ``-hh:mm`` or nothing (UTC), a real calendar time within ``WIRE_TIME_MIN`` ..
``WIRE_TIME_MAX``. Everything else (other separators, 7+ fractional digits, ``+hhmm``,
numbers, ...) is "not clearly valid": the caller leaves it to pydantic.

The texts become one fixed-width numpy array of code points, read at fixed positions
(from the end for the zone); every position below a text's length must match the form,
so anything else (a non-ASCII digit, a NUL, ...) fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from operator import is_not

import numpy as np
import numpy.typing as npt

from schemas.wire import WIRE_TIME_MAX, WIRE_TIME_MIN

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MIN_US = (WIRE_TIME_MIN - _EPOCH) // _MICROSECOND
_MAX_US = (WIRE_TIME_MAX - _EPOCH) // _MICROSECOND

_HEAD = 19  # YYYY-MM-DDTHH:MM:SS
_LONGEST = _HEAD + 7 + 6  # .ffffff+hh:mm
_WIDTH = _LONGEST + 1  # one more: a longer text shows as too long, not cut
_FORM = "dddd-dd-ddTdd:dd:dd"
# Per position of the head: the lowest and highest code point allowed.
_LOW = np.array([ord("0") if c == "d" else ord(c) for c in _FORM], dtype=np.uint32)
_HIGH = np.array([ord("9") if c == "d" else ord(c) for c in _FORM], dtype=np.uint32)
_FRACTION_WEIGHTS = np.array([100_000, 10_000, 1_000, 100, 10, 1], dtype=np.int32)
_ZONE_DIGITS_AT = np.array([1, 2, 4, 5])  # within '+hh:mm'


def days_from_civil(year: Ints, month: Ints, day: Ints) -> Ints:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm)."""
    year = year - (month <= 2)
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    result: Ints = era * 146097 + day_of_era - 719468
    return result


# Every calendar date a wire time inside the bounds can name, offsets included (local
# dates one day either side): [year - _FIRST_YEAR, month, day] -> days since 1970-01-01,
# _NO_DATE where there is no such date (February 30th, month 13, day 0, ...).
_FIRST_YEAR, _LAST_YEAR = WIRE_TIME_MIN.year - 1, WIRE_TIME_MAX.year
_NO_DATE = np.iinfo(np.int32).min


def _calendar() -> npt.NDArray[np.int32]:
    years, months, days = np.meshgrid(np.arange(_FIRST_YEAR, _LAST_YEAR + 1), np.arange(13),
                                      np.arange(32), indexing="ij")
    leap = ((years % 4 == 0) & (years % 100 != 0)) | (years % 400 == 0)
    month_days = np.where(months == 2, 28 + leap, np.where(np.isin(months, [4, 6, 9, 11]), 30, 31))
    real = (months >= 1) & (days >= 1) & (days <= month_days)
    table = np.where(real, days_from_civil(years, np.maximum(months, 1), np.maximum(days, 1)),
                     _NO_DATE)
    return table.astype(np.int32)


_DAYS = _calendar()


def _is_digit(values: npt.NDArray[np.int32]) -> Bools:
    result: Bools = (values >= 0) & (values <= 9)
    return result


def parse_times(texts: Sequence[str | None]) -> tuple[Bools, Bools, Ints]:
    """(present, ok, epoch microseconds) per text. `ok` is True for an absent (None) time
    and for a clearly valid one; the microseconds are 0 where not ok."""
    count = len(texts)
    if None in texts:
        present: Bools = np.fromiter(map(is_not, texts, repeat(None)), np.bool_, count)
    else:
        present = np.ones(count, np.bool_)
    strings = [text or "" for text in texts]
    # One row of code points per text, padded with 0 (numpy cuts a longer text: its
    # length shows as _WIDTH, too long). Counting code points gives the lengths unless
    # a text holds a NUL itself.
    codes = np.array(strings, dtype=f"U{_WIDTH}").view(np.uint32).reshape(count, _WIDTH)
    if "\x00" in "".join(strings):  # (a length past _WIDTH is as invalid as _WIDTH)
        lengths = np.minimum(np.fromiter(map(len, strings), np.int64, count), _WIDTH)
    else:
        lengths = np.count_nonzero(codes, axis=1)
    head = codes[:, :_HEAD]
    ok = present & (lengths >= _HEAD) & (lengths <= _LONGEST)
    ok &= ((head >= _LOW) & (head <= _HIGH)).all(axis=1)
    digit = head.astype(np.int32) - ord("0")
    year = digit[:, 0] * 1000 + digit[:, 1] * 100 + digit[:, 2] * 10 + digit[:, 3]
    month, day, hour, minute, second = (digit[:, at] * 10 + digit[:, at + 1]
                                        for at in (5, 8, 11, 14, 17))

    # The tail: optional '.' + 1-6 digits, then 'Z', '+hh:mm', '-hh:mm' or nothing.
    zone = np.take_along_axis(codes, np.maximum(lengths - 6, 0)[:, None] + np.arange(6), axis=1)
    sign = zone[:, 0]
    utc = zone[:, 5] == ord("Z")
    offset = (~utc & (lengths >= _HEAD + 6) & ((sign == ord("+")) | (sign == ord("-")))
              & (zone[:, 3] == ord(":")))
    fraction_length = lengths - _HEAD - np.where(utc, 1, np.where(offset, 6, 0))
    ok &= (fraction_length == 0) | ((fraction_length >= 2) & (fraction_length <= 7)
                                    & (codes[:, _HEAD] == ord(".")))
    fraction_digits = codes[:, _HEAD + 1:_HEAD + 7].astype(np.int32) - ord("0")
    used = np.arange(6) < (fraction_length - 1)[:, None]
    ok &= (~used | _is_digit(fraction_digits)).all(axis=1)
    fraction = (np.where(used, fraction_digits, 0) * _FRACTION_WEIGHTS).sum(axis=1)
    zone_digits = zone[:, _ZONE_DIGITS_AT].astype(np.int32) - ord("0")
    zone_hours = zone_digits[:, 0] * 10 + zone_digits[:, 1]
    zone_minutes = zone_digits[:, 2] * 10 + zone_digits[:, 3]
    ok &= ~offset | (_is_digit(zone_digits).all(axis=1) & (zone_hours <= 23)
                     & (zone_minutes <= 59))
    offset_minutes = np.where(offset, np.where(sign == ord("-"), -1, 1)
                              * (zone_hours * 60 + zone_minutes), 0)

    # A year outside the table is outside the bounds whatever the offset.
    in_table = ((year >= _FIRST_YEAR) & (year <= _LAST_YEAR) & (month >= 0) & (month <= 12)
                & (day >= 0) & (day <= 31))  # (digits of a text that is not a time: garbage)
    days = _DAYS[np.where(in_table, year - _FIRST_YEAR, 0), np.where(in_table, month, 0),
                 np.where(in_table, day, 0)]
    ok &= in_table & (days != _NO_DATE) & (hour <= 23) & (minute <= 59) & (second <= 59)
    seconds = ((days.astype(np.int64) * 24 + hour) * 60 + minute - offset_minutes) * 60 + second
    micros = seconds * 1_000_000 + fraction
    ok &= (micros >= _MIN_US) & (micros < _MAX_US)
    micros = np.where(ok, micros, 0)
    return present, ok | ~present, micros
