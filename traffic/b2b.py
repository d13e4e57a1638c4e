"""B2B journeys on saas.example.

How SaaS visits arrive and browse, and ``SaasPlanner``, which plans accounts (buying
committees of contacts over months, from first touch through leads, opportunities and
won or lost deals) and self-serve buyers.
"""

from __future__ import annotations

import math
import random
from typing import Any, NamedTuple

from traffic.b2c import _ORGANIC_SEARCH_REF, _PAGES
from traffic.calls import (
    Device,
    Landing,
    Plan,
    _Counters,
    _email_utm,
    _landing,
    _new_device,
    _PageWalk,
    _person,
    _server,
    _unpaid,
)
from traffic.catalogue import (
    B2B_NURTURE,
    B2B_SEARCH,
    COMPANY_WORDS,
    INDUSTRIES,
    LINKEDIN,
    PUBLISHER_REFERRERS,
    SAAS,
    SAAS_FEATURES,
    SAAS_POSTS,
    SELF_SERVE_PLANS,
    TITLES,
    TRADE_SHOWS,
    WEBINARS,
    WHITEPAPERS,
)
from traffic.clock import DAY, HOUR, MINUTE, SECOND, Weighted, _business_time, _hex, _pick

# --- B2B: saas.example ----------------------------------------------------------------------

B2B_FIRST_ARRIVAL = Weighted([("linkedin", 28), ("organic_search", 26), ("publisher", 14),
                              ("direct", 8), ("paid_search", 10), ("organic_social", 4)])
_SELF_SERVE_ARRIVAL = Weighted([("organic_search", 4), ("paid_search", 3), ("direct", 2),
                                ("organic_social", 1)])
B2B_RETURN_ARRIVAL = Weighted([("direct", 22), ("linkedin", 22), ("organic_search", 26),
                               ("publisher", 10), ("paid_search", 10), ("organic_social", 6)])


def _saas_landing(rng: random.Random, kind: str, returning: bool) -> Landing:
    if kind == "linkedin":
        campaign = (LINKEDIN[2] if returning and rng.random() < 0.6 else _pick(rng, LINKEDIN[:2]))
        if campaign is LINKEDIN[1]:
            path = f"/resources/{_pick(rng, WHITEPAPERS)}"
        elif campaign is LINKEDIN[2]:
            path = "/demo"
        else:
            path = f"/product/{_pick(rng, SAAS_FEATURES)}"
        # LinkedIn Insight Tag adds li_fat_id; half of the campaigns are also utm-tagged
        return _landing(rng, campaign, path, tagged=rng.random() < 0.5)
    if kind == "paid_search":
        return _landing(rng, B2B_SEARCH[0], f"/product/{_pick(rng, SAAS_FEATURES)}",
                        tagged=rng.random() < 0.5)
    if kind == "organic_search":
        return _unpaid(f"/blog/{_pick(rng, SAAS_POSTS)}", _ORGANIC_SEARCH_REF.pick(rng))
    if kind == "publisher":
        return _unpaid(_pick(rng, ("/", "/customers", f"/product/{_pick(rng, SAAS_FEATURES)}")),
                       _pick(rng, PUBLISHER_REFERRERS))
    if kind == "organic_social":
        return _unpaid(f"/blog/{_pick(rng, SAAS_POSTS)}", "https://www.linkedin.com/")
    return _unpaid(_pick(rng, ("/", "/pricing", "/login")), "")


def _next_saas_path(rng: random.Random) -> str:
    return _pick(rng, ("/", "/pricing", "/pricing", "/customers", "/integrations", "/security",
                       f"/product/{_pick(rng, SAAS_FEATURES)}",
                       f"/product/{_pick(rng, SAAS_FEATURES)}", f"/blog/{_pick(rng, SAAS_POSTS)}"))


class _Contact(NamedTuple):
    user_id: str
    device: Device
    traits: dict[str, Any]


class SaasPlanner:
    """Plans B2B accounts (buying committees over months) and self-serve buyers."""

    def __init__(self, rng: random.Random, ids: _Counters, end_ms: int):
        self.rng = rng
        self.ids = ids
        self.end_ms = end_ms

    def _browse(self, out: Plan, t: int, device: Device, user: str | None, landing: Landing,
                pages: int) -> _PageWalk:
        walk = _PageWalk(out, SAAS, device, user, t, landing)
        walk.view(landing.path)
        for _ in range(pages - 1):
            walk.wait(self.rng)
            walk.view(_next_saas_path(self.rng))
        return walk

    def _company(self, n: int) -> dict[str, Any]:
        rng = self.rng
        name = f"{_pick(rng, COMPANY_WORDS[0])} {_pick(rng, COMPANY_WORDS[1])}"
        domain = name.lower().replace(" ", "") + f"{n}.example"
        return {"name": name, "industry": _pick(rng, INDUSTRIES),
                "employees": int(math.exp(rng.uniform(math.log(50), math.log(5000)))),
                "website": f"https://www.{domain}"}

    def account(self, index: int, start: int) -> Plan:
        """A buying committee of 3-10 contacts; lead, opportunity, won or lost, renewal."""
        rng = self.rng
        out: Plan = []
        group_id = f"acct_{index:04d}"
        company = self._company(index)
        domain = company["website"].removeprefix("https://www.")
        duration = int(rng.uniform(30, 270) * DAY)
        close = start + duration
        reaches_opp = rng.random() < 0.6
        won = reaches_opp and rng.random() < 0.55
        contacts: list[tuple[_Contact, int]] = []  # with the time each one identified
        emails: set[str] = set()
        n_contacts = 3 + int(rng.random() * 8)
        latest_identify = min(close, self.end_ms - HOUR)
        for c in range(n_contacts):
            first_touch = start if c == 0 else start + int(rng.random() * 0.8 * duration)
            first_touch = min(first_touch, latest_identify - DAY)
            contact = self._new_contact(domain)
            while contact.traits["email"] in emails:
                contact = self._new_contact(domain)
            emails.add(contact.traits["email"])
            identified = self._anonymous_then_identify(out, contact, first_touch,
                                                       latest_identify, group_id, company)
            contacts.append((contact, identified))
            self._engaged(out, contact, identified, close if won else close + 30 * DAY)
        contacts.sort(key=lambda pair: pair[1])
        champion, lead_time = contacts[0][0], contacts[0][1] + int(rng.uniform(2, 30) * MINUTE)
        out.append(_server(lead_time, champion.user_id, "Lead Created",
                           {"lead_id": f"lead_{self.ids.next('lead'):05d}",
                            "lead_source": "Inbound"}, group=group_id))
        if not reaches_opp:
            return out
        opp_time = lead_time + int(rng.uniform(0.3, 0.7) * max(close - lead_time, DAY))
        attendees = [c for c, _ in contacts[: 1 + int(rng.random() * 3)]]
        self._meetings(out, attendees, lead_time, opp_time, group_id, "discovery")
        opportunity = f"opp_{self.ids.next('opportunity'):05d}"
        amount = round(math.exp(rng.uniform(math.log(5000), math.log(200000))), -2)
        out.append(_server(opp_time, champion.user_id, "Opportunity Created",
                           {"opportunity_id": opportunity, "amount": amount, "currency": "USD",
                            "stage": "Discovery"}, group=group_id))
        self._meetings(out, attendees, opp_time, close, group_id, "demo")
        if not won:
            return out  # lost: the deal goes quiet
        signer = max((c for c, _ in contacts), key=lambda c: c.traits["title"] in ("CFO",
                                                                                   "VP Finance"))
        close_time = _business_time(rng, max(close, opp_time + DAY))
        out.append(_server(close_time, signer.user_id, "Opportunity Won",
                           {"opportunity_id": opportunity, "amount": amount, "currency": "USD",
                            "stage": "Closed Won"}, group=group_id))
        if rng.random() < 0.6:  # a renewal 3-6 months on (pilot or half-year contract)
            renewal_time = close_time + int(rng.uniform(90, 190) * DAY)
            self._meetings(out, attendees[:1], renewal_time - 20 * DAY, renewal_time, group_id,
                           "renewal")
            out.append(_server(_business_time(rng, renewal_time), signer.user_id,
                               "Opportunity Won",
                               {"opportunity_id": f"opp_{self.ids.next('opportunity'):05d}",
                                "amount": round(amount * rng.uniform(0.9, 1.4), -2),
                                "currency": "USD", "stage": "Closed Won", "renewal": True},
                               group=group_id))
        return out

    def _new_contact(self, domain: str) -> _Contact:
        rng = self.rng
        first, last, email = _person(rng, 0, domain)
        n = self.ids.next("contact")
        traits = {"email": email, "firstName": first, "lastName": last,
                  "title": TITLES.pick(rng)}
        return _Contact(f"usr_{n:06d}", _new_device(rng), traits)

    def _anonymous_then_identify(self, out: Plan, contact: _Contact, first_touch: int,
                                 latest: int, group_id: str, company: dict[str, Any]) -> int:
        """1-3 anonymous visits, then a form (whitepaper, webinar, demo): identify + group."""
        rng = self.rng
        t = first_touch
        identify_by = min(latest, first_touch + int(rng.uniform(1, 60) * DAY))
        visits = 1 + int(rng.random() * 3)
        for v in range(visits):
            landing = _saas_landing(rng, (B2B_FIRST_ARRIVAL if v == 0 else
                                          B2B_RETURN_ARRIVAL).pick(rng), returning=v > 0)
            walk = self._browse(out, t, contact.device, None, landing, _PAGES.pick(rng))
            if v == visits - 1:
                break
            t = max(walk.t + 45 * MINUTE,
                    t + int(rng.random() * max(identify_by - t, HOUR) / (visits - v)))
        walk.wait(rng)
        form = _pick(rng, ("whitepaper", "webinar", "demo"))
        path = {"whitepaper": f"/resources/{_pick(rng, WHITEPAPERS)}",
                "webinar": f"/webinars/{_pick(rng, WEBINARS)}", "demo": "/demo"}[form]
        walk.view(path)
        identified = walk.identify(int(rng.uniform(30, 120) * SECOND), contact.user_id,
                                   contact.traits)
        walk.group(int(rng.uniform(121, 125) * SECOND), group_id, company)
        if form == "whitepaper":
            walk.track(int(rng.uniform(126, 130) * SECOND), "Whitepaper Downloaded",
                       {"whitepaper": path.rsplit("/", 1)[-1], "format": "pdf"})
        elif form == "webinar":
            walk.track(int(rng.uniform(126, 130) * SECOND), "Webinar Registered",
                       {"webinar_id": path.rsplit("/", 1)[-1]})
        else:
            walk.track(int(rng.uniform(126, 130) * SECOND), "Demo Requested",
                       {"employees": company["employees"]})
        return identified

    def _engaged(self, out: Plan, contact: _Contact, since: int, until: int) -> None:
        """After identifying: nurture emails, return visits, webinars, a trade show."""
        rng = self.rng
        uid = contact.user_id
        t = since + int(rng.uniform(1, 5) * DAY)
        campaigns = B2B_NURTURE
        while t < until:
            campaign = _pick(rng, campaigns)
            if rng.random() < 0.35:
                opened = _business_time(rng, t)
                props = {"email_id": f"em_{_hex(rng, 10)}", "campaign_name": campaign.name}
                utm = _email_utm(campaign)
                out.append(_server(opened, uid, "Email Opened", props, utm=utm, origin=campaign))
                if rng.random() < 0.25:
                    clicked = opened + int(rng.uniform(5, 300) * SECOND)
                    out.append(_server(clicked, uid, "Email Link Clicked", dict(props), utm=utm))
                    landing = _landing(rng, campaign, _next_saas_path(rng))
                    self._browse(out, clicked + 2 * SECOND, contact.device, uid, landing,
                                 _PAGES.pick(rng))
            if rng.random() < 0.2:  # comes back on their own
                visit = t + int(rng.uniform(0, 10) * DAY)
                landing = _saas_landing(rng, B2B_RETURN_ARRIVAL.pick(rng), returning=True)
                self._browse(out, visit, contact.device, uid, landing, _PAGES.pick(rng))
            t += int(rng.uniform(10, 25) * DAY)
        if rng.random() < 0.3:
            webinar = _business_time(rng, since + int(rng.random() * max(until - since, DAY)))
            out.append(_server(webinar, uid, "Webinar Attended",
                               {"webinar_id": _pick(rng, WEBINARS), "channel": "Webinar",
                                "minutes_watched": 10 + int(rng.random() * 50)}))
        if rng.random() < 0.12:
            show = _business_time(rng, since + int(rng.random() * max(until - since, DAY)))
            out.append(_server(show, uid, "Trade Show Visited",
                               {"event_name": _pick(rng, TRADE_SHOWS), "channel": "Trade Show",
                                "badge_scan_id": f"scan_{_hex(rng, 8)}"}))

    def _meetings(self, out: Plan, attendees: list[_Contact], after: int, before: int,
                  group_id: str, kind: str) -> None:
        rng = self.rng
        for _ in range(1 + int(rng.random() * 2)):
            t = _business_time(rng, after + int(rng.random() * max(before - after - DAY, HOUR)))
            meeting_id = f"mtg_{_hex(rng, 8)}"
            for contact in attendees:
                out.append(_server(t, contact.user_id, "Meeting Held",
                                   {"meeting_id": meeting_id, "meeting_type": kind,
                                    "channel": "Sales Meeting", "duration_minutes": 30},
                                   group=group_id))

    def self_serve(self, index: int, start: int) -> Plan:
        """A small team's plan bought by one person within a day, on a card."""
        rng = self.rng
        out: Plan = []
        device = _new_device(rng)
        kind = _SELF_SERVE_ARRIVAL.pick(rng)
        walk = self._browse(out, start, device, None, _saas_landing(rng, kind, False),
                            _PAGES.pick(rng))
        walk.t += int(rng.uniform(0.5, 8) * HOUR)  # comes back later the same day
        walk.landing = _unpaid("/pricing", "")
        walk.view("/pricing")
        walk.wait(rng)
        walk.view("/signup")
        company = self._company(index)
        company["employees"] = 1 + int(rng.random() * 15)
        contact = self._new_contact(company["website"].removeprefix("https://www."))
        contact.traits["title"] = _pick(rng, ("Founder", "Office Manager", "Bookkeeper"))
        group_id = f"acct_{index:04d}"
        walk.identify(int(rng.uniform(30, 90) * SECOND), contact.user_id, contact.traits)
        walk.group(int(rng.uniform(91, 95) * SECOND), group_id, company)
        plan, amount = _pick(rng, SELF_SERVE_PLANS)
        paid = walk.t + int(rng.uniform(3, 20) * MINUTE)
        out.append(_server(paid, contact.user_id, "Opportunity Won",
                           {"opportunity_id": f"opp_{self.ids.next('opportunity'):05d}",
                            "amount": amount, "currency": "USD", "plan": plan,
                            "self_serve": True}, group=group_id))
        return out
