"""JSON forms of the stream stages' messages and table values (orjson, plain dicts).

Faust's in-memory store keeps the Python objects; these forms are what goes to the
changelog and between stages, so a restarted worker or another machine rebuilds the
same objects.

Encoding runs on every table write (the whole journey or device each time), so records
are handed to orjson as copies of their field dicts: orjson writes datetimes (RFC 3339)
and enums itself, about 15x cheaper than pydantic's `model_dump(mode="json")`. Decoding
keeps `model_validate` (pydantic-core is faster than building records in Python).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from attribution.device import DeviceState, JourneyDelta, RoutedConversion
from attribution.identity import IdentityUpdate
from attribution.journey import CreditedConversion, JourneyState
from attribution.sessions import SessionState
from schemas.records import Conversion, IdentityLink, Touch, record_row

Json = dict[str, Any]


def dumps(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(data: bytes) -> Any:
    return orjson.loads(data)


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _signature(value: list[Any] | None) -> tuple[str, str, str | None] | None:
    return (value[0], value[1], value[2]) if value else None


def touch_to(touch: Touch) -> Json:
    return record_row(touch)


def touch_from(data: Json) -> Touch:
    return Touch.model_validate(data)


def conversion_to(conversion: Conversion) -> Json:
    return record_row(conversion)


def conversion_from(data: Json) -> Conversion:
    return Conversion.model_validate(data)


def link_to(link: IdentityLink) -> Json:
    return record_row(link)


def link_from(data: Json) -> IdentityLink:
    return IdentityLink.model_validate(data)


def update_to(update: IdentityUpdate) -> Json:
    return {"id": update.id, "person": update.person, "account": update.account}


def update_from(data: Json) -> IdentityUpdate:
    return IdentityUpdate(data["id"], data["person"], data.get("account"))


def routed_to(routed: RoutedConversion) -> Json:
    return {"conversion": conversion_to(routed.conversion), "generation": routed.generation}


def routed_from(data: Json) -> RoutedConversion:
    return RoutedConversion(conversion_from(data["conversion"]), int(data["generation"]))


def delta_to(delta: JourneyDelta) -> Json:
    return {
        "touches": [touch_to(t) for t in delta.touches],
        "conversions": [routed_to(c) for c in delta.conversions],
        "reason": delta.reason,
    }


def delta_from(data: Json) -> JourneyDelta:
    return JourneyDelta(
        touches=[touch_from(t) for t in data.get("touches", [])],
        conversions=[routed_from(c) for c in data.get("conversions", [])],
        reason=data.get("reason", "initial"),
    )


def device_to(state: DeviceState) -> Json:
    session = state.session
    return {
        "device": state.device,
        "person": state.person,
        "account": state.account,
        "session": None if session is None else {
            "last_time": session.last_time.isoformat(),
            "signature": list(session.signature) if session.signature else None,
            "touch_id": session.touch_id,
        },
        "touches": [touch_to(t) for t in state.touches.values()],
        "conversions": [routed_to(c) for c in state.conversions.values()],
        "last_time": state.last_time.isoformat() if state.last_time else None,
        "session_ends": {k: end.isoformat() for k, end in state.session_ends.items()},
    }


def device_from(data: Json) -> DeviceState:
    session = data.get("session")
    touches = [touch_from(t) for t in data.get("touches", [])]
    conversions = [routed_from(c) for c in data.get("conversions", [])]
    return DeviceState(
        device=data["device"],
        person=data["person"],
        account=data.get("account"),
        session=None if session is None else SessionState(
            last_time=datetime.fromisoformat(session["last_time"]),
            signature=_signature(session.get("signature")),
            touch_id=session["touch_id"],
        ),
        touches={t.event_id: t for t in touches},
        conversions={c.conversion.conversion_id: c for c in conversions},
        last_time=_time(data.get("last_time")),
        session_ends={k: datetime.fromisoformat(end)
                      for k, end in data.get("session_ends", {}).items()},
    )


def journey_to(state: JourneyState) -> Json:
    return {
        "key": state.key,
        "touches": [touch_to(t) for t in state.touches.values()],
        "conversions": [
            {"conversion": conversion_to(c.conversion), "generation": c.generation,
             "revision": c.revision, "fingerprint": c.fingerprint}
            for c in state.conversions.values()
        ],
        "watermark": state.watermark.isoformat() if state.watermark else None,
    }


def journey_from(data: Json) -> JourneyState:
    touches = [touch_from(t) for t in data.get("touches", [])]
    conversions = [
        CreditedConversion(conversion_from(c["conversion"]), int(c["generation"]),
                           int(c["revision"]), c.get("fingerprint"))
        for c in data.get("conversions", [])
    ]
    return JourneyState(
        key=data["key"],
        touches={t.event_id: t for t in touches},
        conversions={c.conversion.conversion_id: c for c in conversions},
        watermark=_time(data.get("watermark")),
    )
