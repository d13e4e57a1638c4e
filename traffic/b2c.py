"""B2C journeys on shop.example.

How shop visits arrive (first, returning and considered-purchase channel mixes), where
they land and browse, baskets and orders, and ``ShopPlanner``, which plans ordinary
visitors (browsers and buyers across devices) and considered, car-like purchases with
weeks of research.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from traffic.calls import (
    Call,
    Device,
    Landing,
    Plan,
    Utm,
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
    _PRODUCT_BY_PATH,
    AFFILIATES,
    B2C_EMAIL_CART,
    B2C_EMAIL_NEWSLETTER,
    B2C_EMAIL_WINBACK,
    COLLECTIONS,
    CONSIDERED_PRODUCTS,
    DISPLAY_PROSPECTING,
    DISPLAY_RETARGETING,
    PAID_SEARCH,
    PAID_SOCIAL_PROSPECTING,
    PAID_SOCIAL_RETARGETING,
    SHOP,
    SHOP_POSTS,
    SHOP_PRODUCTS,
    Campaign,
    Product,
)
from traffic.clock import DAY, HOUR, MINUTE, SECOND, Weighted, _gap, _hex, _pick

# --- B2C: shop.example --------------------------------------------------------------------

# Share of B2C visitors who buy; the brief asks for 2-3%.
B2C_CONVERSION_RATE = 0.025
# In the touch-heavy mix (TrafficSpec.touch_heavy): bought traffic converts better.
TOUCH_HEAVY_CONVERSION_RATE = 0.06
# Where each page of a touch-heavy visit comes from: always a campaign.
_PAID_ARRIVAL = Weighted([("paid_social", 40), ("paid_search", 30), ("display", 15),
                          ("affiliate", 15)])

FIRST_ARRIVAL = Weighted([("paid_social", 26), ("paid_search", 16), ("organic_search", 20),
                          ("direct", 11), ("organic_social", 7), ("affiliate", 6),
                          ("display", 7), ("referral", 5), ("email", 2)])
RETURN_ARRIVAL = Weighted([("direct", 28), ("paid_search", 16), ("organic_search", 16),
                           ("paid_social", 14), ("email", 12), ("display", 6),
                           ("affiliate", 5), ("organic_social", 3)])
CONSIDERED_ARRIVAL = Weighted([("organic_search", 26), ("paid_search", 20), ("direct", 18),
                               ("paid_social", 12), ("display", 8), ("email", 10),
                               ("referral", 6)])
_REPEAT_ARRIVAL = Weighted([("email", 5), ("direct", 3), ("paid_social", 2)])
_BUYING_ARRIVAL = Weighted([("direct", 4), ("paid_search", 3), ("email", 3)])  # considered
_VISITS_BROWSER = Weighted([(1, 60), (2, 22), (3, 10), (4, 5), (5, 3)])
_VISITS_BUYER = Weighted([(1, 25), (2, 30), (3, 22), (4, 13), (5, 10)])
_PAGES = Weighted([(1, 30), (2, 25), (3, 18), (4, 12), (5, 9), (6, 6)])
_ORGANIC_SEARCH_REF = Weighted([("https://www.google.com/", 85), ("https://www.bing.com/", 9),
                                ("https://duckduckgo.com/", 6)])
_ORGANIC_SOCIAL_REF = ("https://t.co/", "https://www.facebook.com/", "https://www.reddit.com/",
                       "https://www.pinterest.com/", "https://www.instagram.com/")
_SHOP_REFERRALS = ("https://www.runnersworld.com/gear/", "https://www.trailrunnermag.com/",
                   "https://www.outsideonline.com/running/")


def _product_path(rng: random.Random) -> str:
    return f"/products/{_pick(rng, SHOP_PRODUCTS).slug}"


def _shop_landing(rng: random.Random, kind: str, returning: bool) -> Landing:
    if kind == "paid_social":
        campaign = (_pick(rng, PAID_SOCIAL_RETARGETING) if returning and rng.random() < 0.6
                    else _pick(rng, PAID_SOCIAL_PROSPECTING))
        return _landing(rng, campaign, _product_path(rng))
    if kind == "paid_search":
        campaign = (PAID_SEARCH[0] if returning and rng.random() < 0.6
                    else _pick(rng, PAID_SEARCH))
        path = (_product_path(rng) if rng.random() < 0.6
                else f"/collections/{_pick(rng, COLLECTIONS)}")
        if campaign.source == "google" and rng.random() < 0.5:
            # auto-tagging only: the campaign is known to Google Ads, not to the page
            return _landing(rng, campaign, path, tagged=False)
        return _landing(rng, campaign, path, click_id=campaign.source != "google")
    if kind == "display":
        campaign = _pick(rng, DISPLAY_RETARGETING if returning else DISPLAY_PROSPECTING)
        return _landing(rng, campaign, _product_path(rng))
    if kind == "affiliate":
        return _landing(rng, _pick(rng, AFFILIATES), _product_path(rng))
    if kind == "email":
        campaign = B2C_EMAIL_NEWSLETTER if rng.random() < 0.7 else B2C_EMAIL_WINBACK
        return _landing(rng, campaign, f"/collections/{_pick(rng, ('new-arrivals', 'sale'))}")
    if kind == "organic_search":
        r = rng.random()
        path = (_product_path(rng) if r < 0.45 else f"/blogs/{_pick(rng, SHOP_POSTS)}"
                if r < 0.7 else f"/collections/{_pick(rng, COLLECTIONS)}" if r < 0.9 else "/")
        return _unpaid(path, _ORGANIC_SEARCH_REF.pick(rng))
    if kind == "organic_social":
        path = _product_path(rng) if rng.random() < 0.7 else f"/blogs/{_pick(rng, SHOP_POSTS)}"
        return _unpaid(path, _pick(rng, _ORGANIC_SOCIAL_REF))
    if kind == "referral":
        return _unpaid(_product_path(rng), _pick(rng, _SHOP_REFERRALS))
    return _unpaid("/" if rng.random() < 0.7 else _product_path(rng), "")


def _next_shop_path(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.55:
        return _product_path(rng)
    if r < 0.8:
        return f"/collections/{_pick(rng, COLLECTIONS)}"
    if r < 0.9:
        return "/"
    if r < 0.95:
        return f"/blogs/{_pick(rng, SHOP_POSTS)}"
    return "/pages/shipping-returns"


def _product_properties(product: Product) -> dict[str, Any]:
    return {"product_id": product.sku, "sku": product.sku, "name": product.name,
            "category": product.category, "price": product.price, "currency": "USD"}


def _basket(rng: random.Random) -> list[tuple[Product, int]]:
    """1-3 items, 20-300 dollars in all."""
    items: list[tuple[Product, int]] = []
    total = 0.0
    for _ in range(_pick(rng, (1, 1, 1, 2, 2, 3))):
        product = _pick(rng, SHOP_PRODUCTS)
        quantity = 2 if product.price < 40 and rng.random() < 0.3 else 1
        if total + product.price * quantity <= 300:
            items.append((product, quantity))
            total += product.price * quantity
    return items or [(SHOP_PRODUCTS[3], 1)]


@dataclass
class _Shopper:
    """A B2C person across devices: who they are once known, and what they did."""

    user_id: str | None = None
    traits: dict[str, Any] | None = None
    guest: bool = False  # checks out as a guest; a later account replaces the id (alias)
    identified: set[str] = field(default_factory=set)  # anonymousIds identified on
    carted: bool = False

    def knows(self, device: Device) -> bool:
        return device.anonymous_id in self.identified

    def mark(self, device: Device) -> None:
        self.identified.add(device.anonymous_id)


class ShopPlanner:
    """Plans B2C journeys: visitors, considered (car-like) purchases."""

    def __init__(self, rng: random.Random, ids: _Counters, touch_heavy: bool = False):
        self.rng = rng
        self.ids = ids
        self.touch_heavy = touch_heavy

    def _relanding(self, previous: Landing) -> Landing:
        """Touch-heavy mix: the next page arrives from another campaign (a new session)."""
        for _ in range(8):
            landing = _shop_landing(self.rng, _PAID_ARRIVAL.pick(self.rng), returning=True)
            if landing.origin != previous.origin:
                return landing
        return landing

    def _ensure_user(self, who: _Shopper) -> tuple[str, dict[str, Any]]:
        if who.user_id is None or who.traits is None:
            n = self.ids.next("customer")
            first, last, email = _person(self.rng, n)
            who.user_id = f"{'guest' if who.guest else 'cust'}_{n:07d}"
            who.traits = {"email": email, "firstName": first, "lastName": last}
        return who.user_id, who.traits

    def visit(self, out: Plan, t: int, device: Device, who: _Shopper, landing: Landing,
              pages: int, basket: list[tuple[Product, int]] | None = None,
              signup: bool = False, order_value: float | None = None) -> int:
        """One session; returns the time of its last call."""
        rng = self.rng
        user = who.user_id if who.knows(device) else None
        walk = _PageWalk(out, SHOP, device, user, t, landing)
        paths = [landing.path]
        if basket is not None:
            wanted = [f"/products/{p.slug}" for p, _ in basket]
            browse = max(0, pages - len(wanted) - 3)
            paths += [_next_shop_path(rng) for _ in range(browse)]
            paths += [p for p in wanted if p != landing.path]
            paths += ["/cart", "/checkout", "/checkout/thank-you"]
        else:
            paths += [_next_shop_path(rng) for _ in range(pages - 1)]
        signup_at = int(rng.random() * len(paths)) if signup else -1
        in_basket = {f"/products/{p.slug}": (p, q) for p, q in basket} if basket else {}
        last = t
        arrival = landing
        for i, path in enumerate(paths):
            if i:
                walk.wait(rng)
                if self.touch_heavy:
                    arrival = self._relanding(arrival)
                    walk.landing = arrival._replace(path=path)
            last = walk.view(path)
            product = _PRODUCT_BY_PATH.get(path)
            if product is not None:
                last = walk.track(int(rng.uniform(0.3, 1.5) * SECOND), "Product Viewed",
                                  _product_properties(product))
                chosen = in_basket.get(path)
                if chosen is not None or rng.random() < 0.08:
                    props = _product_properties(product)
                    props["quantity"] = chosen[1] if chosen else 1
                    last = walk.track(int(rng.uniform(8, 60) * SECOND), "Product Added", props)
                    who.carted = True
            elif path == "/checkout" and basket is not None:
                last = walk.track(int(rng.uniform(0.3, 1.5) * SECOND), "Checkout Started",
                                  {"value": round(sum(p.price * q for p, q in basket), 2),
                                   "currency": "USD"})
                if not who.knows(device):
                    uid, traits = self._ensure_user(who)
                    last = walk.identify(int(rng.uniform(40, 150) * SECOND), uid, traits)
                    who.mark(device)
            elif path == "/checkout/thank-you" and basket is not None:
                last = walk.track(int(rng.uniform(0.3, 1.5) * SECOND), "Order Completed",
                                  self._order(basket, order_value))
            if i == signup_at:  # creates an account (newsletter, wish list)
                walk.wait(rng)
                walk.view("/account/register")
                uid, traits = self._ensure_user(who)
                last = walk.identify(int(rng.uniform(20, 90) * SECOND), uid, traits,
                                     alias=rng.random() < 0.2)
                who.mark(device)
        return last

    def _order(self, basket: list[tuple[Product, int]], value: float | None) -> dict[str, Any]:
        n = self.ids.next("order")
        revenue = value if value is not None else round(sum(p.price * q for p, q in basket), 2)
        return {
            "order_id": f"ord_{100000 + n}",
            "revenue": revenue,
            "shipping": 0.0 if revenue >= 75 else 6.95,
            "tax": round(revenue * 0.07, 2),
            "currency": "USD",
            "products": [dict(_product_properties(p), quantity=q) for p, q in basket],
        }

    def _ad_views(self, out: Plan, t: int, device: Device, returning: bool) -> int:
        """1-3 display impressions that the ad server reports with our anonymousId."""
        rng = self.rng
        campaign = _pick(rng, DISPLAY_RETARGETING if returning else DISPLAY_PROSPECTING)
        utm = Utm(campaign.name, campaign.source, "display", None, _pick(rng, campaign.contents))
        for _ in range(1 + int(rng.random() * 3)):
            props = {"ad_id": f"ad_{_hex(rng, 8)}", "creative": utm.content,
                     "placement": _pick(rng, ("300x250", "728x90", "320x50")),
                     "publisher": _pick(rng, campaign.referrers)}
            out.append(Call(t, "track", device, None, None, "Ad Viewed", props, None, utm,
                            campaign))
            t += _gap(rng, 3 * HOUR, MINUTE, 20 * HOUR)
        return t

    def _emails(self, out: Plan, t: int, until: int, device: Device, who: _Shopper,
                campaign: Campaign) -> None:
        """Emails to an identified shopper: opens, clicks and the visits they bring."""
        rng = self.rng
        t += int(rng.uniform(1, 4) * DAY)
        while t < until and who.user_id is not None:
            if rng.random() < 0.45:
                opened = t + _gap(rng, 3 * HOUR, MINUTE, 2 * DAY)
                email_id = f"em_{_hex(rng, 10)}"
                props = {"email_id": email_id, "campaign_name": campaign.name,
                         "email_subject": _pick(rng, ("New arrivals are in", "Your weekend run",
                                                      "Still thinking it over?"))}
                utm = _email_utm(campaign)
                out.append(_server(opened, who.user_id, "Email Opened", props, utm=utm,
                                   origin=campaign))
                if rng.random() < 0.3:
                    clicked = opened + int(rng.uniform(5, 120) * SECOND)
                    out.append(_server(clicked, who.user_id, "Email Link Clicked",
                                       dict(props, link_url=f"https://{SHOP}/collections/sale"),
                                       utm=utm))
                    landing = _landing(rng, campaign, "/collections/sale")
                    self.visit(out, clicked + int(rng.uniform(1, 4) * SECOND), device, who,
                               landing, _PAGES.pick(rng))
            t += int(rng.uniform(3, 8) * DAY)
            campaign = B2C_EMAIL_NEWSLETTER

    def visitor(self, start: int) -> Plan:
        """An ordinary shopper: 1-5 visits over 0-10 days; about 2.5% buy."""
        rng = self.rng
        out: Plan = []
        buyer = rng.random() < (TOUCH_HEAVY_CONVERSION_RATE if self.touch_heavy
                                else B2C_CONVERSION_RATE)
        n_visits = (_VISITS_BUYER if buyer else _VISITS_BROWSER).pick(rng)
        device = _new_device(rng)
        who = _Shopper()
        t = start
        if rng.random() < 0.08:  # saw a display ad before the first visit
            t = self._ad_views(out, t, device, returning=False) + _gap(rng, 4 * HOUR, 10 * MINUTE,
                                                                       DAY)
        span = min(10 * DAY, int(rng.expovariate(1 / (2.5 * DAY)))) if n_visits > 1 else 0
        offsets = sorted(int(rng.random() * span) for _ in range(n_visits - 1))
        switch_at = n_visits  # index of the first visit on a second device
        if n_visits > 1 and rng.random() < 0.2:
            switch_at = 1 + int(rng.random() * (n_visits - 1))
        other = _new_device(rng) if switch_at < n_visits else device
        repeat = buyer and rng.random() < 0.15
        who.guest = repeat and switch_at == n_visits and rng.random() < 0.3
        # someone who will buy on another device signs up on the first one (or journeys split)
        signup_visit = (int(rng.random() * switch_at) if buyer and switch_at < n_visits
                        else int(rng.random() * n_visits) if rng.random() < 0.05 else -1)
        last = t
        first_visit = t
        for i in range(n_visits):
            if i:
                t = max(first_visit + offsets[i - 1], last + 45 * MINUTE)
            dev = device if i < switch_at else other
            kind = (FIRST_ARRIVAL if i == 0 else RETURN_ARRIVAL).pick(rng)
            if kind == "email" and not who.knows(dev):
                kind = "direct"
            if i and kind == "display" and rng.random() < 0.5:
                t = self._ad_views(out, t, dev, returning=True) + _gap(rng, HOUR, MINUTE, DAY)
            landing = _shop_landing(rng, kind, returning=i > 0)
            basket = _basket(rng) if buyer and i == n_visits - 1 else None
            pages = max(_PAGES.pick(rng), 4) if basket else _PAGES.pick(rng)
            last = self.visit(out, t, dev, who, landing, pages, basket, signup=i == signup_visit)
        if repeat:
            last = self._repeat_purchase(out, last, other, who)
        if who.user_id is not None:
            campaign = B2C_EMAIL_CART if who.carted and not buyer else B2C_EMAIL_NEWSLETTER
            self._emails(out, last, last + 10 * DAY, other, who, campaign)
        return out

    def _repeat_purchase(self, out: Plan, t: int, device: Device, who: _Shopper) -> int:
        """The same buyer orders again 2-25 days later; some first bought as a guest."""
        rng = self.rng
        t += int(rng.uniform(2, 25) * DAY)
        if who.guest and who.user_id is not None:
            # the first order was a guest checkout; the new account takes it over (alias)
            guest_id = who.user_id
            who.user_id = f"cust_{self.ids.next('customer'):07d}"
            who.guest = False
            out.append(Call(t, "alias", device, who.user_id, None, None, guest_id, None, None,
                            None))
            out.append(Call(t + SECOND, "identify", device, who.user_id, None, None, who.traits,
                            None, None, None))
            t += 2 * SECOND
        kind = _REPEAT_ARRIVAL.pick(rng)
        return self.visit(out, t, device, who, _shop_landing(rng, kind, returning=True),
                          max(4, _PAGES.pick(rng)), _basket(rng))

    def considered(self, start: int, purchase: int) -> Plan:
        """A 5,000-40,000 dollar purchase researched over weeks on two devices."""
        rng = self.rng
        out: Plan = []
        phone, laptop = _new_device(rng), _new_device(rng)
        who = _Shopper()
        product = _pick(rng, CONSIDERED_PRODUCTS)
        product_path = f"/products/{product.slug}"
        n_visits = 5 + int(rng.random() * 10)
        times = sorted([start] + [start + int(rng.random() * (purchase - start))
                                  for _ in range(n_visits - 2)])
        signup_visit = 1 + int(rng.random() * 2)
        last = start - HOUR
        for i, t in enumerate(times):
            t = max(t, last + 45 * MINUTE)
            dev = phone if i < 2 or rng.random() < 0.4 else laptop
            kind = CONSIDERED_ARRIVAL.pick(rng)
            if kind == "email" and not who.knows(dev):
                kind = "organic_search"
            landing = _shop_landing(rng, kind, returning=i > 0)
            landing = landing._replace(path=product_path if rng.random() < 0.6 else landing.path)
            if i == signup_visit:  # brochure request: now they can be emailed
                walk = _PageWalk(out, SHOP, dev, who.user_id if who.knows(dev) else None, t,
                                 landing)
                walk.view(landing.path)
                uid, traits = self._ensure_user(who)
                walk.identify(int(rng.uniform(30, 120) * SECOND), uid, traits,
                              alias=rng.random() < 0.3)
                who.mark(dev)
                last = walk.track(int(rng.uniform(121, 130) * SECOND), "Brochure Requested",
                                  _product_properties(product))
            else:
                last = self.visit(out, t, dev, who, landing, _PAGES.pick(rng))
        t = max(purchase, last + HOUR)
        uid, traits = self._ensure_user(who)
        final = _shop_landing(rng, _BUYING_ARRIVAL.pick(rng), returning=True)
        walk = _PageWalk(out, SHOP, laptop, uid if who.knows(laptop) else None, t,
                         final._replace(path=product_path))
        walk.view(product_path)
        if not who.knows(laptop):
            walk.identify(int(rng.uniform(20, 60) * SECOND), uid, traits)  # logs in
            who.mark(laptop)
        walk.wait(rng)
        walk.view("/checkout")
        walk.wait(rng)
        walk.view("/checkout/thank-you")
        value = round(product.price * rng.uniform(1.0, 1.1), 2)  # options and extras
        order = self._order([(product, 1)], value)
        walk.track(int(rng.uniform(0.3, 1.5) * SECOND), "Order Completed", order)
        return out
