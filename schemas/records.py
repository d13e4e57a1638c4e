"""Normalised internal records: what the attribution core consumes and produces.

Wire events (``schemas.wire``) are turned into these by ``attribution.normalize``.
They are frozen pydantic models so the stream and batch paths share one shape,
and so they serialise to the warehouse columns without a mapping layer.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class InteractionKind(StrEnum):
    """How a touch reached the person; lookback windows are set per kind."""

    VISIT = "visit"
    CLICK = "click"
    VIEW = "view"
    EMAIL = "email"
    OFFLINE = "offline"


class LinkKind(StrEnum):
    ANONYMOUS_PERSON = "anonymous_person"  # identify / any event with both ids
    PERSON_ACCOUNT = "person_account"  # group
    ALIAS = "alias"  # previousId -> userId


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Touch(_Record):
    """One marketing touch: a visit (session start), ad click/view, email or offline touch."""

    event_id: str
    time: datetime
    anonymous_id: str | None = None
    person_id: str | None = None
    account_id: str | None = None
    channel: str
    source: str | None = None
    medium: str | None = None
    campaign: str | None = None
    kind: InteractionKind
    properties: dict[str, Any] = Field(default_factory=dict)


class IdentityLink(_Record):
    """An observed link between two ids (anonymous -> person, person -> account, alias)."""

    event_id: str
    time: datetime
    kind: LinkKind
    from_id: str
    to_id: str


class Conversion(_Record):
    """A conversion (purchase, or a B2B stage) routed to one attribution policy."""

    conversion_id: str  # "<kind>:<order id or messageId>", the dedupe key
    event_id: str
    time: datetime
    kind: str
    event: str
    policy: str
    value: float = 0.0
    currency: str | None = None
    anonymous_id: str | None = None
    person_id: str | None = None
    account_id: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class Spend(_Record):
    date: date
    channel: str
    campaign: str | None = None
    cost: float = Field(ge=0)
    impressions: int = Field(default=0, ge=0)
    clicks: int = Field(default=0, ge=0)
    currency: str = "USD"


class Credit(_Record):
    """The share of one conversion given to one touch under one model."""

    conversion_id: str
    conversion_kind: str
    journey_key: str
    policy: str
    model: str
    touch_event_id: str | None  # None: the conversion had no eligible touch
    touch_time: datetime | None
    channel: str
    campaign: str | None
    credit: float
    credited_value: float
    currency: str | None
    conversion_time: datetime
    version: int = 1
    reason: str = "initial"  # initial | late_touch | identity_merge | reattribution


NO_TOUCH_CHANNEL = "(none)"
"""Channel of the single credit row of a conversion that had no eligible touch."""


def record_row(record: BaseModel) -> dict[str, Any]:
    """A record's fields as a new dict: its warehouse row, and what orjson encodes (it
    writes datetimes and enums itself). Records are flat, so this is ``model_dump()``
    without its cost, which ran once per touch and credit."""
    return dict(record.__dict__)


def conversion_row(conversion: Conversion, journey_key: str) -> dict[str, Any]:
    """A conversion's warehouse row: its fields and the journey it was credited in."""
    return {**conversion.__dict__, "journey_key": journey_key}
