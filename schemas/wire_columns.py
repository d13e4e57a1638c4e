"""A batch of wire events validated as columns, with the verdicts of ``parse_event``.

``parse_event`` (pydantic) stays the one definition of the wire format. This module reads
the field names, aliases, length limits and bounds from its models and checks a whole
envelope at once:

1. plain Python pulls the fields out of the dicts, one column at a time, and sends any
   row with an unusual shape (a number where text goes, a non-object context, a field
   spelled by its Python name, ...) to pydantic;
2. the free-form objects (properties, traits, context extras) are checked against the
   payload bounds (`_within_bounds`, the same rules as ``schemas.wire._payload_ok``);
3. polars checks the strings (lengths, control characters, blank ids) and the call
   shapes, numpy parses the times and applies the skew correction in Int64
   microseconds (``schemas.wire_times``);
4. every row these checks do not clearly accept goes through ``parse_event`` itself: a
   rejection keeps its exact fields and reasons, an unusual but valid row (numeric ids,
   other date formats, ...) gets pydantic's values.

``tests/test_wire_columns.py`` shows both paths agree, row by row, on generated traffic
and hostile input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import repeat
from typing import Any, get_args

import numpy as np
import polars as pl
from pydantic import BaseModel

from schemas.wire import (
    _CONTROL,
    EARLIEST,
    LATEST,
    MAX_DEPTH,
    MAX_FUTURE,
    MAX_ID,
    MAX_KEYS,
    MAX_MONEY,
    MAX_NAME,
    MAX_TEXT,
    MONEY_FIELDS,
    Campaign,
    Context,
    EventRejected,
    Page,
    WireEvent,
    _payload_ok,
    parse_event,
)
from schemas.wire_times import Bools, Ints, parse_times

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _us(value: datetime | timedelta) -> int:
    """Epoch microseconds of an aware datetime, or microseconds of a duration."""
    return (value - _EPOCH if isinstance(value, datetime) else value) // _MICROSECOND


# --- what the models say -------------------------------------------------------------------


def _wire_name(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].alias or name


def _other_names(model: type[BaseModel]) -> frozenset[str]:
    """Python names the model also accepts (populate_by_name) where they differ from the
    wire name: a row using one goes to pydantic, which decides which spelling wins."""
    return frozenset(n for n in model.model_fields if _wire_name(model, n) != n)


def _validated_by(validator: str) -> tuple[str, ...]:
    return tuple(WireEvent.__pydantic_decorators__.field_validators[validator].info.fields)


def _max_length(model: type[BaseModel], name: str) -> int | None:
    """The field's `Field(max_length=...)` (pydantic keeps it as a MaxLen constraint)."""
    for item in model.model_fields[name].metadata:
        limit = getattr(item, "max_length", None)
        if isinstance(limit, int):
            return limit
    return None


def _text_fields(model: type[BaseModel], skip: Sequence[str] = ()) -> dict[str, int | None]:
    """Plain `str | None` fields (name -> max_length), in declaration order."""
    return {n: _max_length(model, n) for n, f in model.model_fields.items()
            if n not in skip and f.annotation in (str, str | None)}


EVENT_TYPES: tuple[str, ...] = get_args(WireEvent.model_fields["type"].annotation)
ID_FIELDS = _validated_by("_ids")  # message_id, anonymous_id, ... (WireEvent._ids)
TIME_FIELDS = _validated_by("_naive_is_utc")  # timestamp, sent_at, received_at, ...
PAYLOAD_FIELDS = _validated_by("_payload")  # properties, traits
TEXT_FIELDS = _text_fields(WireEvent, skip=ID_FIELDS)  # event, name
CAMPAIGN_FIELDS = _text_fields(Campaign)
PAGE_FIELDS = _text_fields(Page)
CONTEXT_TEXT_FIELDS = _text_fields(Context)  # user_agent, ip
# Context keys that are fields, not free-form extras (its `_extras` validator bounds those).
CONTEXT_KEYS = frozenset(
    [_wire_name(Context, n) for n in Context.model_fields] + list(Context.model_fields))
# Every WireEvent field the fast path reads; tests check nothing is left out.
HANDLED_FIELDS = frozenset(("type", "context", *ID_FIELDS, *TIME_FIELDS, *PAYLOAD_FIELDS,
                            *TEXT_FIELDS))
# What str.strip() removes (str.isspace): an id of only these is blank, so None. Written
# out because finding them takes 0.1 s; the tests recompute it.
PY_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
                 "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                 "\u2028\u2029\u202f\u205f\u3000")
# The property values the normaliser reads (attribution.normalize.signals_of).
PROPERTY_SIGNALS = ("url", "referrer", "utm_source", "utm_medium", "utm_campaign", "channel")

# --- the output ----------------------------------------------------------------------------

SCHEMA: dict[str, pl.DataType] = {
    "type": pl.String(),
    **{n: pl.String() for n in ID_FIELDS},
    **{n: pl.String() for n in TEXT_FIELDS},
    "time_us": pl.Int64(),
    "campaign_source": pl.String(), "campaign_medium": pl.String(),
    "campaign_name": pl.String(),
    "page_url": pl.String(), "page_referrer": pl.String(),
    **{f"prop_{n}": pl.String() for n in PROPERTY_SIGNALS},
    "source": pl.String(),
}
COLUMNS = tuple(SCHEMA)


@dataclass(frozen=True, slots=True)
class WireBatch:
    """Accepted rows as columns (input order), their input positions, and the rejected
    positions with ``str(EventRejected)`` exactly as ``parse_event`` words it."""

    columns: pl.DataFrame
    index: list[int]
    rejected: list[tuple[int, str]]


def validate_batch(raws: Sequence[Any], now_us: int | None = None) -> WireBatch:
    """Validate decoded wire events (any JSON values) at once.

    `now_us` (epoch microseconds) is parse_event's `now`: the reference of the "not more
    than a day in the future" check; None means each event's receivedAt, else the clock.
    """
    now = None if now_us is None else _EPOCH + timedelta(microseconds=now_us)
    try:
        return _batch(raws, now_us, now)
    except Exception:  # e.g. a string polars cannot hold: decide row by row instead
        return _one_by_one(raws, now)


def _batch(raws: Sequence[Any], now_us: int | None, now: datetime | None) -> WireBatch:
    series, when, ok = _fast_checks(raws, now_us)
    return _decided(raws, series, when, ok, now)


def _fast_checks(raws: Sequence[Any],
                 now_us: int | None) -> tuple[dict[str, pl.Series], Ints, Bools]:
    """The output string columns, the corrected times and, per row, whether the fast
    checks accept it (False: parse_event decides)."""
    columns, fast, objects = _pull(raws)
    _check_payloads(objects, fast)
    series, ok = _check_strings(columns, fast)
    when = _check_times(columns, ok, now_us)
    return series, when, ok


# --- 1. pull the fields out of the dicts, column by column ----------------------------------

_TOP_KEYS = {_wire_name(WireEvent, n): n for n in ("type", *ID_FIELDS, *TEXT_FIELDS,
                                                   *TIME_FIELDS)}
_CAMPAIGN_KEYS = {_wire_name(Campaign, n): f"campaign_{n}" for n in CAMPAIGN_FIELDS}
_PAGE_KEYS = {_wire_name(Page, n): f"page_{n}" for n in PAGE_FIELDS}
_CONTEXT_TEXT_KEYS = {_wire_name(Context, n): f"context_{n}" for n in CONTEXT_TEXT_FIELDS}
_OTHER_NAMES = _other_names(WireEvent)
_CONTEXT_OTHER_NAMES = _other_names(Context)
_CAMPAIGN_OTHER_NAMES, _PAGE_OTHER_NAMES = _other_names(Campaign), _other_names(Page)
_PROPERTIES, _TRAITS = (_wire_name(WireEvent, n) for n in PAYLOAD_FIELDS)
_NONE_OR_STR = frozenset({str, type(None)})
_NONE_OR_DICT = frozenset({dict, type(None)})
_DICT = frozenset({dict})
_EMPTY: dict[str, Any] = {}  # stands for an absent or unusable object; never written to
Objects = list[dict[str, Any]]


def _get(rows: Objects, key: str, default: Any = None) -> list[Any]:
    """`row.get(key, default)` of every row, looped in C."""
    return list(map(dict.get, rows, repeat(key), repeat(default)))


def _objects(values: list[Any], fast: list[bool], none_ok: bool) -> Objects:
    """The column as dicts (`_EMPTY` for none); anything else needs pydantic."""
    kinds = set(map(type, values))
    if kinds <= _DICT:
        return values
    if none_ok and kinds <= _NONE_OR_DICT:
        return [value or _EMPTY for value in values]
    out = []
    for i, value in enumerate(values):
        if type(value) is not dict:
            if not (none_ok and value is None):
                fast[i] = False
            value = _EMPTY
        out.append(value)
    return out


def _keys_of(objects: Objects) -> set[Any]:
    return set().union(*objects)


def _without(objects: Objects, names: frozenset[str], keys: set[Any], fast: list[bool]) -> None:
    """Rows spelling a field by its Python name go to pydantic (it picks the spelling)."""
    if names and not names.isdisjoint(keys):
        for i, value in enumerate(objects):
            if not names.isdisjoint(value):
                fast[i] = False


def _gather(objects: Objects, keys: dict[str, str], present: set[Any],
            into: dict[str, list[Any] | None]) -> None:
    """The named values of every object; None for a key no object has."""
    for key, column in keys.items():
        into[column] = _get(objects, key) if key in present else None


def _pull(raws: Sequence[Any]) -> tuple[dict[str, list[Any] | None], list[bool], list[Objects]]:
    """The string columns (None: absent from every row); per row, whether the fast path
    may decide it (False: only pydantic can say); and the properties, traits and
    contexts for `_check_payloads`."""
    fast = [type(raw) is dict for raw in raws]
    rows: Objects = [raw if ok else _EMPTY for raw, ok in zip(raws, fast, strict=True)]
    keys = _keys_of(rows)
    _without(rows, _OTHER_NAMES, keys, fast)
    columns: dict[str, list[Any] | None] = {}
    _gather(rows, _TOP_KEYS, keys, columns)
    contexts = _objects(_get(rows, "context", _EMPTY), fast, none_ok=False)
    context_keys = _keys_of(contexts)
    _without(contexts, _CONTEXT_OTHER_NAMES, context_keys, fast)
    _gather(contexts, _CONTEXT_TEXT_KEYS, context_keys, columns)
    for name, keys_of_model, other_names in (("campaign", _CAMPAIGN_KEYS, _CAMPAIGN_OTHER_NAMES),
                                             ("page", _PAGE_KEYS, _PAGE_OTHER_NAMES)):
        objects = _objects(_get(contexts, name), fast, none_ok=True)
        if name not in context_keys:
            present: set[Any] = set()
        else:  # every field (the keys are not worth collecting just to skip a few)
            present = set(keys_of_model)
            _without(objects, other_names, _keys_of(objects) if other_names else present, fast)
        _gather(objects, keys_of_model, present, columns)
    properties = _objects(_get(rows, _PROPERTIES, _EMPTY), fast, none_ok=False)
    traits = _objects(_get(rows, _TRAITS, _EMPTY), fast, none_ok=False)
    signals = _keys_of(properties)
    for name in PROPERTY_SIGNALS:  # ("" becomes None in _check_strings)
        values = _get(properties, name) if name in signals else None
        if values is not None and not _NONE_OR_STR.issuperset(map(type, values)):
            values = [_text(value) for value in values]
        columns[f"prop_{name}"] = values
    sources = _get(rows, "source") if "source" in keys else None
    if sources is not None and not _NONE_OR_STR.issuperset(map(type, sources)):
        sources = [s if isinstance(s, str) else None for s in sources]
    columns["source"] = sources
    return columns, fast, [properties, traits, contexts]


def _text(value: Any) -> str | None:
    """The normaliser's `_str`: a property it reads counts if it is a non-empty string."""
    return value if isinstance(value, str) and value else None


# --- 2. the free-form objects ---------------------------------------------------------------


def _check_payloads(objects: list[Objects], fast: list[bool]) -> None:
    """properties, traits and the context's free-form extras within the payload bounds
    (WireEvent._payload, Context._extras). `_within_bounds` first; where it says no,
    `_payload_ok` (for the context: on the extras alone) has the last word."""
    properties, traits, contexts = objects
    for i, (props, trait, context) in enumerate(zip(properties, traits, contexts, strict=True)):
        if fast[i] and not (
                (props is _EMPTY or _within_bounds(props) or _payload_ok(props))
                and (trait is _EMPTY or _within_bounds(trait) or _payload_ok(trait))
                and (context is _EMPTY or _within_bounds(context, 0, CONTEXT_KEYS)
                     or _payload_ok({k: v for k, v in context.items()
                                     if k not in CONTEXT_KEYS}))):
            fast[i] = False


_NO_KEYS: frozenset[str] = frozenset()


def _within_bounds(value: Any, depth: int = 0, skip: frozenset[str] = _NO_KEYS) -> bool:
    """`_payload_ok(value, depth)` for a dict or list, as one tight loop with no call per
    item: several times faster (the tests check the two agree). With `skip`, the dict's
    entries under those keys are left out (a context's model fields: the extras are the
    rest); then it may say False where the extras alone pass, never the reverse."""
    if len(value) > MAX_KEYS or (value and depth >= MAX_DEPTH):
        return False
    if type(value) is dict:
        for key, item in value.items():
            if skip and key in skip:  # a model field (its own checks apply), not an extra
                continue
            if type(key) is not str or len(key) > MAX_NAME:
                return False
            kind = type(item)
            if kind is str:
                if len(item) > MAX_TEXT:
                    return False
            elif kind is dict or kind is list:
                if not _within_bounds(item, depth + 1):
                    return False
            elif kind is int or kind is float:
                if key in MONEY_FIELDS:
                    if not 0 <= item <= MAX_MONEY:  # NaN fails too
                        return False
                elif kind is float and item - item != 0.0:  # infinite or NaN
                    return False
            elif item is not None and kind is not bool:
                return False
        return True
    if type(value) is not list:
        return False
    for item in value:
        kind = type(item)
        if kind is str:
            if len(item) > MAX_TEXT:
                return False
        elif kind is dict or kind is list:
            if not _within_bounds(item, depth + 1):
                return False
        elif kind is float:
            if item - item != 0.0:
                return False
        elif item is not None and kind is not bool and kind is not int:
            return False
    return True


# --- 3. strings, times and the event rules ------------------------------------------------
#
# Strings are checked with C-level reductions over a whole column (max(map(len, ...)),
# str.isspace, a byte-level scan of the joined column for control characters); a column
# is walked row by row only when one of them fails. At 1,000 rows this beats polars
# string expressions, which cost about as much per call as these do per column, and
# Python knows a string's length without counting. polars checks the types as it builds
# the output columns; numpy parses the times (schemas.wire_times).

_EARLIEST_US, _LATEST_US, _MAX_FUTURE_US = _us(EARLIEST), _us(LATEST), _us(MAX_FUTURE)
_LIMITS = {**TEXT_FIELDS,
           **{f"campaign_{n}": limit for n, limit in CAMPAIGN_FIELDS.items()},
           **{f"page_{n}": limit for n, limit in PAGE_FIELDS.items()},
           **{f"context_{n}": limit for n, limit in CONTEXT_TEXT_FIELDS.items()}}
_OUTPUT_STRINGS = tuple(n for n in COLUMNS if SCHEMA[n] == pl.String())
_CHECKED_ONLY = (*TIME_FIELDS, *(n for n in _LIMITS if n not in SCHEMA))
_EMPTY_IS_NULL = frozenset(f"prop_{n}" for n in PROPERTY_SIGNALS)
_EVENT_TYPES = frozenset(EVENT_TYPES)


def _series(name: str, columns: dict[str, list[Any] | None], fast: list[bool]) -> pl.Series:
    """A String column (polars checks the types as it builds it); a row holding anything
    else there needs pydantic, and its value becomes None in `columns` too."""
    values = columns[name]
    if values is None:  # (new_from_index: the cheapest all-null column polars makes)
        empty = pl.Series(name, [None], pl.String)
        return empty.new_from_index(0, len(fast)) if fast else empty.clear()
    try:
        return pl.Series(name, values, pl.String, strict=True)
    except TypeError:
        columns[name] = values = _strings(values, fast)
        return pl.Series(name, values, pl.String, strict=True)


def _strings(values: list[Any], fast: list[bool]) -> list[Any]:
    """The column with anything but str/None replaced by None, its row marked for
    pydantic."""
    if _NONE_OR_STR.issuperset(map(type, values)):
        return values
    cleaned = []
    for i, value in enumerate(values):
        if value is not None and type(value) is not str:
            fast[i] = False
            value = None
        cleaned.append(value)
    return cleaned


def _mark(ok: Bools, values: list[Any], bad: Callable[[str], object]) -> None:
    for i, value in enumerate(values):
        if value is not None and bad(value):
            ok[i] = False


# The ASCII characters _CONTROL matches, as bytes to delete: for ASCII text a C loop
# over bytes answers "any control character?" much faster than the regex.
_CONTROL_BYTES = bytes(c for c in range(128) if _CONTROL.match(chr(c)))


def _has_control(text: str) -> bool:
    if text.isascii():
        data = text.encode("ascii")
        return len(data.translate(None, _CONTROL_BYTES)) != len(data)
    return _CONTROL.search(text) is not None


def _longer(value: str, limit: int) -> bool:
    return len(value) > limit


def _blank(value: str) -> bool:
    return not value or value.isspace()  # what _check_id's `value.strip() == ""` means


def _check_ids(columns: dict[str, list[Any] | None], series: dict[str, pl.Series],
               ok: Bools) -> None:
    """WireEvent._ids: blank -> None, then at most MAX_ID characters, no control ones."""
    for name in ID_FIELDS:
        values = columns[name]
        if values is None:
            continue
        texts = list(filter(None, values))
        if "" in values or any(map(str.isspace, texts)):
            columns[name] = values = [None if v is not None and _blank(v) else v
                                      for v in values]
            series[name] = pl.Series(name, values, pl.String)
            texts = list(filter(None, values))
        if texts and max(map(len, texts)) > MAX_ID:
            _mark(ok, values, partial(_longer, limit=MAX_ID))
        if texts and _has_control(" ".join(texts)):
            _mark(ok, values, _CONTROL.search)


def _present(column: pl.Series) -> Bools | bool:
    """Per row, whether the column has a value (a plain bool when all rows agree)."""
    nulls = column.null_count()
    if nulls in (0, len(column)):
        return nulls == 0
    present: Bools = column.is_not_null().to_numpy()
    return present


def _is(kinds: list[Any], kind: str) -> Bools:
    result: Bools = np.array(kinds, dtype=object) == kind
    return result


def _check_strings(columns: dict[str, list[Any] | None],
                   fast: list[bool]) -> tuple[dict[str, pl.Series], Bools]:
    """The output string columns, and per row whether its strings (types, lengths, ids),
    its type and its call shape (WireEvent._shape) are clearly fine."""
    for name in _EMPTY_IS_NULL:
        values = columns[name]
        if values is not None and "" in values:
            columns[name] = [value or None for value in values]  # the normaliser's `_str`
    series = {n: _series(n, columns, fast) for n in _OUTPUT_STRINGS}
    for name in _CHECKED_ONLY:
        values = columns[name]
        if values is not None:
            columns[name] = _strings(values, fast)
    ok = np.array(fast, dtype=np.bool_)
    for name, limit in _LIMITS.items():
        values = columns[name]
        if limit is not None and values is not None and max(
                map(len, filter(None, values)), default=0) > limit:
            _mark(ok, values, partial(_longer, limit=limit))
    _check_ids(columns, series, ok)

    count = len(fast)
    kinds = columns["type"] or [None] * count
    if not _EVENT_TYPES.issuperset(kinds):
        ok &= np.array([kind in _EVENT_TYPES for kind in kinds], dtype=np.bool_)
    # WireEvent._shape; a column without nulls (or only nulls) needs no per-row mask.
    anonymous, user, group, previous, message = (_present(series[n]) for n in (
        "anonymous_id", "user_id", "group_id", "previous_id", "message_id"))
    ok &= message & (anonymous | user)
    shapes = set(kinds)
    if "track" in shapes:
        events = columns["event"]
        named = _present(series["event"]) if events is None or "" not in events else np.array(
            [bool(e) for e in events], dtype=np.bool_)
        ok &= _is(kinds, "track") <= named
    if "group" in shapes:
        ok &= _is(kinds, "group") <= group
    if "alias" in shapes:
        ok &= _is(kinds, "alias") <= (previous & user)
    return series, ok


def _check_times(columns: dict[str, list[Any] | None], ok: Bools, now_us: int | None) -> Ints:
    """WireEvent's time fields, corrected_time and parse_event's range checks (ok is
    narrowed in place); returns the skew-corrected times."""
    count = len(ok)
    given = [n for n in TIME_FIELDS if columns[n] is not None]
    times = {n: (np.zeros(count, np.bool_), np.zeros(count, np.int64)) for n in TIME_FIELDS}
    if given:
        present, valid, micros = (a.reshape(len(given), count) for a in parse_times(
            [value for name in given for value in columns[name] or ()]))
        ok &= valid.all(axis=0)
        times.update(zip(given, zip(present, micros, strict=True), strict=True))
    (stamp_set, stamp), (sent_set, sent), (received_set, received), (original_set, original) = (
        times[n] for n in ("timestamp", "sent_at", "received_at", "original_timestamp"))
    base = np.where(stamp_set, stamp, np.where(original_set, original,
                                               np.where(received_set, received, sent)))
    ok &= stamp_set | original_set | received_set | sent_set
    when = base + np.where(sent_set & received_set, received - sent, 0)
    if now_us is None:
        reference = np.where(received_set, received, time.time_ns() // 1000)
    else:
        reference = np.full(count, now_us, np.int64)
    ok &= (when >= _EARLIEST_US) & (when < _LATEST_US) & (when <= reference + _MAX_FUTURE_US)
    return when


# --- 4. the verdicts --------------------------------------------------------------------------


def _decided(raws: Sequence[Any], series: dict[str, pl.Series], when: Ints, ok: Bools,
             now: datetime | None) -> WireBatch:
    """The rows the fast checks accept, plus parse_event's verdict on every other row."""
    series["time_us"] = pl.Series("time_us", when, pl.Int64)
    frame = pl.DataFrame([series[n] for n in COLUMNS])
    index: list[int] = np.flatnonzero(ok).tolist()
    if len(index) == len(raws):
        return WireBatch(frame, index, [])
    frame = frame.filter(pl.Series(ok))
    slow_rows, slow_index, rejected = [], [], []
    for position in np.flatnonzero(~ok).tolist():
        verdict = _verdict(raws[position], now)
        if isinstance(verdict, str):
            rejected.append((position, verdict))
        else:
            slow_rows.append(verdict)
            slow_index.append(position)
    if not slow_rows:
        return WireBatch(frame, index, rejected)
    order = pl.Series("_i", index + slow_index, pl.Int64)
    merged = pl.concat([frame, _frame(slow_rows)]).with_columns(order).sort("_i")
    return WireBatch(merged.drop("_i"), merged["_i"].to_list(), rejected)


def _row_of(event: WireEvent, when: datetime, raw: dict[str, Any]) -> tuple[Any, ...]:
    campaign, page, props = event.context.campaign, event.context.page, event.properties
    source = raw.get("source")
    return (
        event.type, *(getattr(event, n) for n in ID_FIELDS),
        *(getattr(event, n) for n in TEXT_FIELDS), _us(when),
        *((campaign.source, campaign.medium, campaign.name) if campaign else (None,) * 3),
        *((page.url, page.referrer) if page else (None,) * 2),
        *(_text(props.get(n)) for n in PROPERTY_SIGNALS),
        source if isinstance(source, str) else None,
    )


def _verdict(raw: Any, now: datetime | None) -> tuple[Any, ...] | str:
    """The output row of an accepted event, or the reason it is rejected."""
    try:
        event, when = parse_event(raw, now)
        row = _row_of(event, when, raw)
        for value in row:
            if isinstance(value, str):
                value.encode()  # lone surrogates cannot become columns: say so, per row
    except EventRejected as exc:
        return str(exc)
    except Exception as exc:  # one event's failure is its own rejection
        return f"event could not be processed: {exc!r}"
    return row


def _frame(rows: list[tuple[Any, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA, orient="row")


def _one_by_one(raws: Sequence[Any], now: datetime | None) -> WireBatch:
    """Every row through parse_event: the fallback when the batch path fails as a whole."""
    rows, index, rejected = [], [], []
    for position, raw in enumerate(raws):
        verdict = _verdict(raw, now)
        if isinstance(verdict, str):
            rejected.append((position, verdict))
        else:
            rows.append(verdict)
            index.append(position)
    return WireBatch(_frame(rows), index, rejected)
