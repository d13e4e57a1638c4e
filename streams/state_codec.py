"""Compact encodings of the stages' state: what a store holds and a changelog carries.

Each state is one MessagePack array of plain values, positional rather than named, so a
B2C journey with two touches is about 250 bytes. MessagePack rather than JSON: integers
and times take a few bytes, and its output is allocated to size (orjson's output keeps a
buffer of kilobytes behind every value, which a store holding millions of them cannot
afford). Decoding builds the compact tuples of ``schemas.contracts`` back.
"""

from __future__ import annotations

from typing import Any

import msgpack

from attribution.device import DeviceState, Fold, Page
from attribution.journey import CreditedConversion, JourneyState
from attribution.journeys import PERSON
from schemas.contracts import JourneyConversion, JourneyTouch, Link, RoutedConversion

PERSON_PREFIX = f"{PERSON}:"
_touch = JourneyTouch._make
_conversion = JourneyConversion._make
_page = Page._make
_packer = msgpack.Packer(autoreset=True, use_bin_type=True)


def _pack(value: Any) -> bytes:
    data: bytes = _packer.pack(value)
    return data


def _unpack(data: bytes) -> Any:
    value = msgpack.unpackb(data, use_list=True, strict_map_key=False)
    if not isinstance(value, list):
        raise ValueError("a state value must be an array")
    return value


# Channel and kind names a state holds thousands of times are written as small numbers.
# The list is append-only: stored state written with it must keep decoding. A name not
# in it is written as it is.
NAMES = (
    "visit", "click", "view", "email", "offline",  # InteractionKind values
    "Direct", "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video",
    "Display", "Paid Other", "Organic Shopping", "Organic Social", "Organic Video",
    "Organic Search", "Referral", "Email", "Affiliates", "Audio", "SMS",
    "Mobile Push Notifications", "Unassigned", "(none)", "Webinar", "Sales Meeting",
    "Trade Show",
)
_CODE = {name: code for code, name in enumerate(NAMES, start=2)}  # 0, 1: not codes
_NAME = dict(enumerate(NAMES, start=2))
_CHANNEL, _KIND = 2, 4  # positions in a JourneyTouch


def _coded(touch: list[Any]) -> list[Any]:
    touch[_CHANNEL] = _CODE.get(touch[_CHANNEL], touch[_CHANNEL])
    touch[_KIND] = _CODE.get(touch[_KIND], touch[_KIND])
    return touch


def _named(touch: list[Any]) -> list[Any]:
    for at in (_CHANNEL, _KIND):
        if isinstance(touch[at], int):
            touch[at] = _NAME[touch[at]]
    return touch


# Where a device's own id recurs in its touches and pages (their anonymousId, mostly), it
# is written as this marker: a device holds many of them, for up to a year.
_SELF = 1
_TOUCH_IDS = slice(5, 8)  # anonymous_id, person_id, account_id of a JourneyTouch
_PAGE_IDS = slice(4, 7)  # the same of a Page


def _mark(values: tuple[Any, ...], ids: slice, device: str) -> list[Any]:
    out = list(values)
    out[ids] = [_SELF if value == device else value for value in out[ids]]
    return out


def _unmark(values: list[Any], ids: slice, device: str) -> list[Any]:
    values[ids] = [device if value == _SELF else value for value in values[ids]]
    return values


def encode_device(state: DeviceState) -> bytes:
    device = state.device
    return _pack([
        device, state.person, state.account, state.last_time,
        [_mark(p, _PAGE_IDS, device) for p in state.pages], state.fold, state.spans,
        [_coded(_mark(t, _TOUCH_IDS, device)) for t in state.touches.values()],
        [[*routed.conversion, routed.generation] for routed in state.conversions.values()],
        state.flips,
    ])


def decode_device(data: bytes) -> DeviceState:
    (device, person, account, last_time, pages, fold, spans, touches, conversions,
     flips) = _unpack(data)
    return DeviceState(
        device=device, person=person, account=account, last_time=last_time,
        pages=[_page(_unmark(p, _PAGE_IDS, device)) for p in pages],
        fold=None if fold is None else Fold._make(fold),
        spans=spans,
        touches={t[1]: _touch(_named(_unmark(t, _TOUCH_IDS, device))) for t in touches},
        conversions={c[0]: RoutedConversion(_conversion(c[:-1]), c[-1])
                     for c in conversions},
        flips=flips,
    )


def encode_journey(state: JourneyState) -> bytes:
    # A person's journey is erased whole (by its key), so its touches need not say whose
    # they are; an account's touches keep their ids, as erasing one contact must find them.
    touches: list[Any] = [_coded(list(t)) for t in state.touches.values()]
    if state.key.startswith(PERSON_PREFIX):
        touches = [t[:5] for t in touches]
    return _pack([
        state.key, touches,
        [[*c.conversion, c.generation, c.revision, c.fingerprint]
         for c in state.conversions.values()],
        state.watermark,
    ])


def decode_journey(data: bytes) -> JourneyState:
    key, touches, conversions, watermark = _unpack(data)
    return JourneyState(
        key=key,
        touches={t[1]: _touch(_named(t if len(t) == 8 else [*t, None, None, None]))
                 for t in touches},
        conversions={c[0]: CreditedConversion(_conversion(c[:-3]), c[-3], c[-2], c[-1])
                     for c in conversions},
        watermark=watermark,
    )


def encode_link(link: Link) -> bytes:
    return _pack(link)


def decode_link(data: bytes) -> Link:
    return Link._make(_unpack(data))
