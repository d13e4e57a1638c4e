"""What one wire event tells the core, before sessions and identities are applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from attribution.channels import TrafficSignals
from schemas.records import Conversion, IdentityLink, Touch


@dataclass(frozen=True, slots=True)
class PageHit:
    """A page or screen view; the first hit of a session becomes a visit touch."""

    event_id: str
    time: datetime
    anonymous_id: str | None
    person_id: str | None
    account_id: str | None
    signals: TrafficSignals
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def device_key(self) -> str:
        """Sessions belong to a browser/device: the anonymous id, else the user id."""
        return self.anonymous_id or self.person_id or ""


Observation = PageHit | Touch | Conversion | IdentityLink
