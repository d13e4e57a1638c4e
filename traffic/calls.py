"""Planned Segment calls and their rendering to wire JSON.

The compact records planners produce (``Device``, ``Utm``, ``PageRef``, ``Call``,
``Landing``, ``Plan``), the helpers shared by the B2C and B2B planners (new devices,
campaign landings, the page walk of one visit, server-side calls, id counters, people),
and the rendering of a planned call to a Segment wire event (``render``) together with
the noisy variants added on the way out (server copies, deliberately invalid lines).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from itertools import count
from typing import Any, NamedTuple
from urllib.parse import quote_plus

import orjson

from traffic.catalogue import (
    _IP_FIRST_OCTETS,
    _LOCALES,
    _PRODUCT_BY_PATH,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_NAMES,
    SHOP,
    USER_AGENTS,
    Campaign,
)
from traffic.clock import DAY, MINUTE, SECOND, _gap, _hex, _ms, _pick, _uuid, iso_ms

# --- planned calls ------------------------------------------------------------------------


class Device(NamedTuple):
    """A browser: its anonymousId cookie and, on some devices, a wrong clock."""

    anonymous_id: str
    user_agent: str
    ip: str
    locale: str
    skew_ms: int  # client clock minus true time


class Utm(NamedTuple):
    name: str
    source: str
    medium: str
    term: str | None
    content: str | None


class PageRef(NamedTuple):
    url: str
    path: str
    search: str
    referrer: str
    title: str


class Call(NamedTuple):
    """One planned Segment call, rendered to wire JSON only when it is emitted."""

    t: int  # true time, epoch ms
    type: str
    device: Device | None  # None: sent server-side (CRM, ESP, backend)
    user_id: str | None
    group_id: str | None
    event: str | None
    payload: Any  # properties (track), traits (identify/group), previousId (alias)
    page: PageRef | None
    utm: Utm | None  # what context.campaign shows
    origin: Campaign | None  # the campaign paid for (landings, ad views, email opens)


class Landing(NamedTuple):
    """How a visit arrives: URL query, referrer and the campaign behind it."""

    path: str
    query: str
    referrer: str
    utm: Utm | None
    origin: Campaign | None


Plan = list[Call]


def _new_device(rng: random.Random) -> Device:
    ip = (f"{_IP_FIRST_OCTETS[int(rng.random() * len(_IP_FIRST_OCTETS))]}."
          f"{rng.getrandbits(8)}.{rng.getrandbits(8)}.{1 + int(rng.random() * 254)}")
    r = rng.random()
    if r < 0.85:
        skew = 0
    elif r < 0.97:
        skew = int(rng.uniform(2, 90) * SECOND) * (1 if rng.random() < 0.5 else -1)
    else:
        skew = int(rng.uniform(2, 15) * MINUTE) * (1 if rng.random() < 0.5 else -1)
    return Device(_uuid(rng), USER_AGENTS.pick(rng), ip, _LOCALES.pick(rng), skew)


def _landing(rng: random.Random, campaign: Campaign, path: str, tagged: bool = True,
             click_id: bool = True) -> Landing:
    """A campaign landing: utm parameters (when tagged) plus the platform's click id."""
    params: list[str] = []
    utm = None
    if tagged:
        term = campaign.terms[int(rng.random() * len(campaign.terms))] if campaign.terms else None
        content = (campaign.contents[int(rng.random() * len(campaign.contents))]
                   if campaign.contents else None)
        utm = Utm(campaign.name, campaign.source, campaign.medium, term, content)
        params = [f"utm_source={campaign.source}", f"utm_medium={campaign.medium}",
                  f"utm_campaign={campaign.name}"]
        if term:
            params.append(f"utm_term={quote_plus(term)}")
        if content:
            params.append(f"utm_content={content}")
    if click_id and campaign.click_id:
        params.append(f"{campaign.click_id}={_click_id_value(rng, campaign.click_id)}")
    referrer = campaign.referrers[int(rng.random() * len(campaign.referrers))]
    query = "?" + "&".join(params) if params else ""
    return Landing(path, query, referrer, utm, campaign)


def _click_id_value(rng: random.Random, param: str) -> str:
    if param == "gclid":
        return "Cj0KCQjw" + _hex(rng, 48)
    if param == "fbclid":
        return "IwAR" + _hex(rng, 40)
    if param == "li_fat_id":
        return _uuid(rng)
    return _hex(rng, 32)


def _unpaid(path: str, referrer: str) -> Landing:
    return Landing(path, "", referrer, None, None)


def _title(path: str, site: str) -> str:
    product = _PRODUCT_BY_PATH.get(path)
    suffix = " | Shop Example" if site == SHOP else " | SaaS Example"
    if product is not None:
        return product.name + suffix
    if path == "/":
        return ("Shop Example – Gear for the Outdoors" if site == SHOP
                else "SaaS Example – AP Automation Platform")
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return last.replace("-", " ").capitalize() + suffix


class _PageWalk:
    """Emits the page calls of one visit; pages after the first carry internal referrers."""

    def __init__(self, out: Plan, site: str, device: Device, user: str | None, t: int,
                 landing: Landing):
        self.out = out
        self.site = site
        self.device = device
        self.user = user
        self.t = t
        self.landing: Landing | None = landing
        self.page: PageRef | None = None
        self.utm: Utm | None = None  # campaign on calls fired from the landing page

    def view(self, path: str) -> int:
        base = f"https://{self.site}"
        if self.landing is not None:
            landing, self.landing = self.landing, None
            page = PageRef(base + path + landing.query, path, landing.query, landing.referrer,
                           _title(path, self.site))
            self.utm = landing.utm
            self.out.append(Call(self.t, "page", self.device, self.user, None, None, None, page,
                                 landing.utm, landing.origin))
        else:
            referrer = self.page.url if self.page is not None else ""
            page = PageRef(base + path, path, "", referrer, _title(path, self.site))
            self.utm = None
            self.out.append(Call(self.t, "page", self.device, self.user, None, None, None, page,
                                 None, None))
        self.page = page
        return self.t

    def track(self, after_ms: int, event: str, properties: dict[str, Any],
              group: str | None = None) -> int:
        t = self.t + after_ms
        self.out.append(Call(t, "track", self.device, self.user, group, event, properties,
                             self.page, self.utm, None))
        return t

    def identify(self, after_ms: int, user: str, traits: dict[str, Any],
                 alias: bool = False) -> int:
        t = self.t + after_ms
        if alias:  # Mixpanel-style: tie the anonymous id to the new user id first
            self.out.append(Call(t - SECOND, "alias", self.device, user, None, None,
                                 self.device.anonymous_id, self.page, None, None))
        self.user = user
        self.out.append(Call(t, "identify", self.device, user, None, None, traits, self.page,
                             self.utm, None))
        return t

    def group(self, after_ms: int, group_id: str, traits: dict[str, Any]) -> int:
        t = self.t + after_ms
        self.out.append(Call(t, "group", self.device, self.user, group_id, None, traits,
                             self.page, self.utm, None))
        return t

    def wait(self, rng: random.Random) -> None:
        """Time to the next page: seconds to a few minutes."""
        self.t += _gap(rng, 100 * SECOND, 15 * SECOND, 8 * MINUTE)


def _server(t: int, user: str | None, event: str, properties: dict[str, Any],
            group: str | None = None, utm: Utm | None = None,
            origin: Campaign | None = None) -> Call:
    return Call(t, "track", None, user, group, event, properties, None, utm, origin)


def _email_utm(campaign: Campaign) -> Utm:
    return Utm(campaign.name, campaign.source, campaign.medium, None, None)


class _Counters:
    """Sequential ids (customers, orders, leads...) per stream: unique by construction."""

    def __init__(self) -> None:
        self._next: dict[str, Iterator[int]] = {}

    def next(self, kind: str) -> int:
        if kind not in self._next:
            self._next[kind] = count(1)
        return next(self._next[kind])


def _person(rng: random.Random, n: int, domain: str | None = None) -> tuple[str, str, str]:
    first = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))]
    last = LAST_NAMES[int(rng.random() * len(LAST_NAMES))]
    if domain is None:
        email = f"{first.lower()}.{last.lower()}{n}@{EMAIL_DOMAINS.pick(rng)}"
    else:
        email = f"{first.lower()}.{last.lower()}@{domain}"
    return first, last, email


# --- rendering -----------------------------------------------------------------------------

BROWSER_LIBRARY = ("analytics.js", "next-1.72.0")
SERVER_LIBRARY = ("analytics-node", "2.1.2")


def render(call: Call, message_id: str, delay_ms: int) -> dict[str, Any]:
    """The Segment wire JSON of one call (camelCase, as analytics.js sends it)."""
    device = call.device
    event: dict[str, Any] = {"type": call.type, "messageId": message_id}
    if device is not None:
        event["anonymousId"] = device.anonymous_id
    if call.user_id is not None:
        event["userId"] = call.user_id
    if call.group_id is not None:
        event["groupId"] = call.group_id
    page = call.page
    if call.type == "track":
        event["event"] = call.event
        event["properties"] = call.payload
    elif call.type == "page" and page is not None:
        event["properties"] = {"path": page.path, "referrer": page.referrer,
                               "search": page.search, "title": page.title, "url": page.url}
    elif call.type in ("identify", "group"):
        event["traits"] = call.payload
    elif call.type == "alias":
        event["previousId"] = call.payload
    library = BROWSER_LIBRARY if device is not None else SERVER_LIBRARY
    context: dict[str, Any] = {"library": {"name": library[0], "version": library[1]}}
    if page is not None:
        context["page"] = {"path": page.path, "referrer": page.referrer, "search": page.search,
                           "title": page.title, "url": page.url}
    utm = call.utm
    if utm is not None:
        campaign = {"name": utm.name, "source": utm.source, "medium": utm.medium}
        if utm.term is not None:
            campaign["term"] = utm.term
        if utm.content is not None:
            campaign["content"] = utm.content
        context["campaign"] = campaign
    skew = 0
    if device is not None:
        context["userAgent"] = device.user_agent
        context["ip"] = device.ip
        context["locale"] = device.locale
        skew = device.skew_ms
    event["context"] = context
    received = iso_ms(call.t + delay_ms)
    event["timestamp"] = iso_ms(call.t + skew)
    event["sentAt"] = iso_ms(call.t + delay_ms + skew) if skew else received
    event["receivedAt"] = received
    return event


def _copy(event: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = orjson.loads(orjson.dumps(event))
    return copied


def _server_copy(event: dict[str, Any], t: int, rng: random.Random) -> dict[str, Any]:
    """The backend's report of a conversion the browser pixel already sent."""
    twin = _copy(event)
    twin["messageId"] = _uuid(rng)
    twin["context"] = {"library": {"name": SERVER_LIBRARY[0], "version": SERVER_LIBRARY[1]}}
    delay = int(rng.uniform(0.2, 3) * SECOND)
    twin["timestamp"] = iso_ms(t)
    twin["sentAt"] = iso_ms(t + delay)
    twin["receivedAt"] = iso_ms(t + delay)
    return twin


_BAD_TIMESTAMPS = ("not-a-date", "2026-13-45T25:61:00.000Z", "31/10/2026 12:00:00", "")


def invalid_variant(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of a valid event broken in one way that ``parse_event`` must reject."""
    bad = _copy(event)
    bad["messageId"] = _uuid(rng)
    kind = int(rng.random() * 8)
    if kind == 0:
        bad["timestamp"] = _pick(rng, _BAD_TIMESTAMPS)
        bad.pop("sentAt", None)
        bad.pop("receivedAt", None)
    elif kind == 1:
        bad.pop("anonymousId", None)
        bad.pop("userId", None)
    elif kind == 2:
        bad["properties"] = dict(bad.get("properties") or {},
                                 revenue=-round(rng.uniform(1, 300), 2))
    elif kind == 3:
        bad["type"] = _pick(rng, ("trak", "pageview", "Identify", ""))
    elif kind == 4:
        bad["type"] = "track"
        bad.pop("event", None)
    elif kind == 5:
        bad.pop("messageId")
    elif kind == 6:
        bad["timestamp"] = iso_ms(_parse_ms(bad["receivedAt"]) + int(rng.uniform(2, 30) * DAY))
    else:
        bad["timestamp"] = "1999-12-31T23:59:59.000Z"
        bad.pop("sentAt", None)
        bad.pop("receivedAt", None)
    return bad


def _parse_ms(text: str) -> int:
    return _ms(datetime.fromisoformat(text))
