"""Wire format: the Segment Tracking API (`page`, `screen`, `track`, `identify`, `group`, `alias`).

Accepts camelCase on the wire (as the SDKs send it) and snake_case from Python.
``parse_event`` is the one entry point: it validates, corrects client clock skew
with ``sentAt`` and turns every problem into a ``FieldError`` naming the field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

MAX_ID = 256
MAX_NAME = 512
MAX_TEXT = 8192
MAX_DEPTH = 8
MAX_KEYS = 500
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # event times are in [EARLIEST, LATEST)
MAX_FUTURE = timedelta(days=1)
# Raw wire times (before skew correction) must lie in this range, so that the correction
# (timestamp + receivedAt - sentAt) and the conversion to UTC can never overflow.
WIRE_TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
WIRE_TIME_MAX = datetime(2200, 1, 1, tzinfo=UTC)
# Money fields (revenue, amount, ...) are in [0, MAX_MONEY]: sums of many conversions stay
# finite and exact to the cent in a float64.
MAX_MONEY = 1e12
EVENT_TYPES = ("page", "screen", "track", "identify", "group", "alias")
MONEY_FIELDS = frozenset({"revenue", "total", "value", "amount", "price", "cost", "quantity"})

Id = str  # length and characters are checked by _check_id
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WIRE_NAMES = {"message_id": "messageId", "anonymous_id": "anonymousId", "user_id": "userId",
               "group_id": "groupId", "previous_id": "previousId"}


def _check_id(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{field} must be a string")
    if value == "" or value.strip() == "":
        return None
    if len(value) > MAX_ID:
        raise ValueError(f"{field} is longer than {MAX_ID} characters")
    if _CONTROL.search(value):
        raise ValueError(f"{field} contains control characters")
    return value


def _check_payload(value: Any, path: str, depth: int = 0) -> None:
    """Bound size and depth of free-form JSON and reject NaN/Infinity and negative money."""
    if depth > MAX_DEPTH:
        raise ValueError(f"{path} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if len(value) > MAX_KEYS:
            raise ValueError(f"{path} has more than {MAX_KEYS} keys")
        for key, item in value.items():
            if len(str(key)) > MAX_NAME:
                raise ValueError(f"{path} has a key longer than {MAX_NAME} characters")
            _check_payload(item, f"{path}.{key}", depth + 1)
            if key in MONEY_FIELDS and isinstance(item, int | float) and not isinstance(
                item, bool
            ):
                if item < 0:
                    raise ValueError(f"{path}.{key} is negative ({item})")
                if item > MAX_MONEY:
                    raise ValueError(f"{path}.{key} is larger than {MAX_MONEY:.0e} ({item})")
    elif isinstance(value, list):
        if len(value) > MAX_KEYS:
            raise ValueError(f"{path} has more than {MAX_KEYS} items")
        for i, item in enumerate(value):
            _check_payload(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path} is not a finite number")
    elif isinstance(value, str) and len(value) > MAX_TEXT:
        raise ValueError(f"{path} is longer than {MAX_TEXT} characters")


_SCALARS = (str, int, float, bool, type(None))


def _payload_ok(value: Any, depth: int = 0) -> bool:
    """`_check_payload` without building paths: True when it would pass. Plain JSON types
    only; anything else answers False so the precise check runs and names the problem."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is dict:
        if len(value) > MAX_KEYS or (value and depth >= MAX_DEPTH):  # children too deep
            return False
        for key, item in value.items():
            if type(key) is not str or len(key) > MAX_NAME:
                return False
            if type(item) in _SCALARS:
                if not _scalar_ok(item):
                    return False
                if key in MONEY_FIELDS and type(item) is not bool and type(item) is not str and (
                        item is not None and not 0 <= item <= MAX_MONEY):
                    return False
            elif not _payload_ok(item, depth + 1):
                return False
        return True
    if kind is list:
        if len(value) > MAX_KEYS or (value and depth >= MAX_DEPTH):
            return False
        return all(_scalar_ok(item) if type(item) in _SCALARS else _payload_ok(item, depth + 1)
                   for item in value)
    return kind in _SCALARS and _scalar_ok(value)


def _scalar_ok(value: Any) -> bool:
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    if kind is str:
        return len(value) <= MAX_TEXT
    return True


class _Wire(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True
    )


class Campaign(_Wire):
    name: str | None = Field(default=None, max_length=MAX_NAME)
    source: str | None = Field(default=None, max_length=MAX_NAME)
    medium: str | None = Field(default=None, max_length=MAX_NAME)
    term: str | None = Field(default=None, max_length=MAX_NAME)
    content: str | None = Field(default=None, max_length=MAX_NAME)


class Page(_Wire):
    url: str | None = Field(default=None, max_length=MAX_TEXT)
    referrer: str | None = Field(default=None, max_length=MAX_TEXT)
    path: str | None = Field(default=None, max_length=MAX_TEXT)
    title: str | None = Field(default=None, max_length=MAX_TEXT)
    search: str | None = Field(default=None, max_length=MAX_TEXT)


class Context(_Wire):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="allow", frozen=True
    )

    campaign: Campaign | None = None
    page: Page | None = None
    user_agent: str | None = Field(default=None, max_length=MAX_TEXT)
    ip: str | None = Field(default=None, max_length=64)

    @model_validator(mode="after")
    def _extras(self) -> Context:
        # Free-form context fields (library, userAgentData, ...) get the same bounds as
        # properties: nothing unbounded reaches a serialiser or the warehouse.
        extra = self.model_extra or {}
        if extra and not _payload_ok(extra):
            _check_payload(extra, "context")
        return self


class WireEvent(_Wire):
    """One Segment call. `screen` is treated as a page view by the normaliser."""

    type: Literal["page", "screen", "track", "identify", "group", "alias"]
    message_id: str = Field(min_length=1, max_length=MAX_ID)
    anonymous_id: str | None = None
    user_id: str | None = None
    group_id: str | None = None
    previous_id: str | None = None
    event: str | None = Field(default=None, max_length=MAX_NAME)
    name: str | None = Field(default=None, max_length=MAX_NAME)
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: Context = Field(default_factory=Context)
    timestamp: AwareDatetime | None = None
    sent_at: AwareDatetime | None = None
    received_at: AwareDatetime | None = None
    original_timestamp: AwareDatetime | None = None

    @field_validator(
        "message_id", "anonymous_id", "user_id", "group_id", "previous_id", mode="before"
    )
    @classmethod
    def _ids(cls, value: Any, info: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # SDKs allow numeric ids
        return _check_id(value, _WIRE_NAMES[info.field_name])

    @field_validator("timestamp", "sent_at", "received_at", "original_timestamp", mode="before")
    @classmethod
    def _naive_is_utc(cls, value: Any) -> Any:
        if isinstance(value, str) and value and value[-1].isdigit() and "T" in value and (
            "+" not in value[10:] and "-" not in value[10:]
        ):
            return value + "Z"  # ISO-8601 without offset: Segment treats it as UTC
        return value

    @field_validator("timestamp", "sent_at", "received_at", "original_timestamp")
    @classmethod
    def _bounded_time(cls, value: datetime | None) -> datetime | None:
        if value is not None and not WIRE_TIME_MIN <= value < WIRE_TIME_MAX:
            raise ValueError(f"{value.isoformat()} is outside the years "
                             f"{WIRE_TIME_MIN.year}-{WIRE_TIME_MAX.year - 1}")
        return value

    @field_validator("properties", "traits")
    @classmethod
    def _payload(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        if not _payload_ok(value):
            _check_payload(value, info.field_name)
        return value

    @model_validator(mode="after")
    def _shape(self) -> WireEvent:
        if self.anonymous_id is None and self.user_id is None:
            raise ValueError("anonymousId or userId is required")
        if self.type == "track" and not self.event:
            raise ValueError("event is required for track calls")
        if self.type == "group" and self.group_id is None:
            raise ValueError("groupId is required for group calls")
        if self.type == "alias" and (self.previous_id is None or self.user_id is None):
            raise ValueError("previousId and userId are required for alias calls")
        return self

    def corrected_time(self) -> datetime:
        """Event time with the client clock skew (receivedAt - sentAt) removed."""
        base = self.timestamp or self.original_timestamp or self.received_at or self.sent_at
        if base is None:
            raise ValueError("no timestamp")
        if self.sent_at is not None and self.received_at is not None:
            base = base + (self.received_at - self.sent_at)
        return base.astimezone(UTC)


class FieldError(BaseModel):
    field: str
    reason: str


class EventRejected(ValueError):
    """A wire event that cannot be used; `errors` names each bad field."""

    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(f"{e.field}: {e.reason}" for e in errors))


def _field_errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        field = ".".join(to_camel(p) for p in loc) if loc else "(event)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "literal_error" and loc == ["type"]:
            msg = f"unknown type {err.get('input')!r}; expected one of {', '.join(EVENT_TYPES)}"
        out.append(FieldError(field=field, reason=msg))
    return out


def parse_event(raw: Any, now: datetime | None = None) -> tuple[WireEvent, datetime]:
    """Validate one wire event; return it with its skew-corrected UTC time.

    ``now`` is the reference for the "not in the future" check; it defaults to the
    event's ``receivedAt`` and then to the wall clock.
    """
    if not isinstance(raw, dict):
        raise EventRejected([FieldError(field="(event)", reason="an event must be a JSON object")])
    try:
        event = WireEvent.model_validate(raw)
    except ValidationError as exc:
        raise EventRejected(_field_errors(exc)) from None
    try:
        when = event.corrected_time()
    except ValueError:
        raise EventRejected(
            [FieldError(field="timestamp", reason="a timestamp is required")]
        ) from None
    reference = now or event.received_at or datetime.now(UTC)
    if when < EARLIEST:
        raise EventRejected(
            [FieldError(field="timestamp", reason=f"{when.isoformat()} is before 2000")]
        )
    if when >= LATEST:
        raise EventRejected(
            [FieldError(field="timestamp", reason=f"{when.isoformat()} is after 2099")]
        )
    if when > reference + MAX_FUTURE:
        raise EventRejected(
            [FieldError(field="timestamp",
                        reason=f"{when.isoformat()} is more than 1 day in the future")]
        )
    return event, when


def wire_json_schema() -> dict[str, Any]:
    return WireEvent.model_json_schema(by_alias=True)
