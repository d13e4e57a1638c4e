"""What the stream stages tell each other, in compact form.

Times are integer microseconds since the Unix epoch (UTC), so records are plain tuples:
cheap to build, compare, hold in state and encode between stages. ``schemas.records``
keeps the pydantic records for the warehouse-facing APIs; these are the hot path's.

    device stage --JourneyDelta--> journey stage --credit rows--> landing
    device stage --Link--> identity stage --IdentityUpdate--> device stage
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class Reason(StrEnum):
    """Why a conversion's credits got (another) version."""

    INITIAL = "initial"
    LATE_TOUCH = "late_touch"  # a touch (or a changed session) arrived after the conversion
    IDENTITY_MERGE = "identity_merge"  # history revealed by an identity merge
    REATTRIBUTION = "reattribution"  # `attribution reattribute` under a new config


class JourneyTouch(NamedTuple):
    """What a journey needs of a touch to credit it."""

    time: int  # epoch microseconds
    event_id: str
    channel: str
    campaign: str | None
    kind: str  # InteractionKind value
    # The ids the touch's event carried: erasure finds a person's touches by them.
    anonymous_id: str | None
    person_id: str | None
    account_id: str | None


class TouchRow(NamedTuple):
    """A touch as it is landed (warehouse ``touches`` columns, time in epoch us)."""

    event_id: str
    time: int
    anonymous_id: str | None
    person_id: str | None
    account_id: str | None
    channel: str
    source: str | None
    medium: str | None
    campaign: str | None
    kind: str
    properties: str  # JSON text

    def for_journey(self) -> JourneyTouch:
        return JourneyTouch(self.time, self.event_id, self.channel, self.campaign, self.kind,
                            self.anonymous_id, self.person_id, self.account_id)


class JourneyConversion(NamedTuple):
    """A conversion as the journey stage credits and lands it."""

    conversion_id: str  # "<kind>:<order id or messageId>", the dedupe key
    event_id: str
    time: int  # epoch microseconds
    kind: str
    event: str
    policy: str
    value: float
    currency: str | None
    anonymous_id: str | None
    person_id: str | None
    account_id: str | None
    properties: str  # JSON text, landed as it is


class RoutedConversion(NamedTuple):
    conversion: JourneyConversion
    generation: int  # bumped each time the device re-routes it to another journey


@dataclass(slots=True)
class JourneyDelta:
    """What one journey is told: new, re-sent or withdrawn touches, and conversions."""

    touches: list[JourneyTouch] = field(default_factory=list)
    conversions: list[RoutedConversion] = field(default_factory=list)
    reason: Reason = Reason.INITIAL
    retracted: list[str] = field(default_factory=list)  # touch ids no longer a touch


class Link(NamedTuple):
    """An observed link between two ids: anonymous -> person, person -> account, alias."""

    kind: str  # LinkKind value
    from_id: str
    to_id: str
    time: int  # epoch microseconds
    event_id: str

    @property
    def key(self) -> str:
        """One link is stored once, whatever event observed it."""
        return f"{self.kind}|{self.from_id}|{self.to_id}"


class IdentityUpdate(NamedTuple):
    """The identity stage's answer for one id: its person and account now."""

    id: str
    person: str
    account: str | None


class CreditRow(NamedTuple):
    """One credit: the share of a conversion given to a touch under a model (warehouse
    ``credits`` columns, times in epoch microseconds)."""

    conversion_id: str
    conversion_kind: str
    journey_key: str
    policy: str
    model: str
    touch_event_id: str | None  # None: the conversion had no eligible touch
    touch_time: int | None
    channel: str
    campaign: str | None
    credit: float
    credited_value: float
    currency: str | None
    conversion_time: int
    version: int
    reason: str
