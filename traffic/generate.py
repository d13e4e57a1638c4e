"""Synthetic Segment traffic for a B2C shop (shop.example) and a B2B SaaS (saas.example).

Used by the demo, the tests and the benchmarks. The output is deterministic (same
``TrafficSpec``, same bytes) and strictly ordered by true event time, in bounded memory:

- *Planning* turns one actor (a B2C visitor, a considered-purchase shopper, a B2B
  account with its contacts, a self-serve buyer) into compact ``Call`` tuples. Actors
  are planned in order of their first event, so every call of an actor planned later
  happens after that actor's start.
- *Emitting* keeps a heap of planned calls and releases every call earlier than the
  next actor's start, rendering it to a wire dict only then. Memory is the calls of the
  journeys still in progress (B2C journeys last days, so this stays small).
- *Noise* (client retries, pixel + server double sends, invalid lines) is added on the
  way out, each from its own random stream, so changing one rate leaves the rest of the
  output as it was: dropping the rejected lines of a run with ``invalid_rate > 0``
  gives exactly the run with ``invalid_rate = 0``.

Wire times: ``timestamp`` and ``sentAt`` are on the client clock (skewed on some
devices), ``receivedAt`` on the server clock, so ``timestamp + receivedAt - sentAt``
(what ``schemas.wire.parse_event`` computes) is exactly the true time.

Time span: ordinary B2C visitors arrive in the ``days`` before ``end``; considered
purchases (weeks of research) and B2B accounts (months) start earlier, B2B histories up
to ``b2b_history_days`` before ``end``. Nothing is emitted at or after ``end``; journeys
still running then are cut there (open deals, undecided shoppers).
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate, count
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar
from urllib.parse import quote_plus

import orjson

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

SHOP = "shop.example"
SAAS = "saas.example"
CONVERSION_EVENTS = frozenset(
    {"Order Completed", "Lead Created", "Opportunity Created", "Opportunity Won"}
)

# Share of B2C visitors who buy; the brief asks for 2-3%.
B2C_CONVERSION_RATE = 0.025
# One considered shopper (car-like purchase, weeks of research) per this many visitors.
VISITORS_PER_CONSIDERED_BUYER = 700
# B2B contacts' first touches reach back this far before `end` (journeys last 1-9 months).
B2B_HISTORY_DAYS = 365


@dataclass(frozen=True)
class TrafficSpec:
    """What to generate. ``b2c_visitors`` is the main scale knob (about 9 events each)."""

    seed: int = 42
    b2c_visitors: int = 2000
    b2b_accounts: int = 40
    days: int = 60
    end: datetime = datetime(2026, 10, 31, tzinfo=UTC)  # fixed so output is reproducible
    duplicate_rate: float = 0.01  # same messageId sent twice (client retries)
    double_send_rate: float = 0.01  # same conversion sent twice, new messageId (pixel + server)
    invalid_rate: float = 0.0  # share of lines that are invalid on purpose
    b2b_history_days: int = B2B_HISTORY_DAYS

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("end must be timezone-aware")
        if self.b2c_visitors < 0 or self.b2b_accounts < 0:
            raise ValueError("b2c_visitors and b2b_accounts cannot be negative")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if self.b2b_history_days < 60:
            raise ValueError("b2b_history_days must be at least 60 (journeys last months)")
        for name in ("duplicate_rate", "double_send_rate", "invalid_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {rate}")

    @property
    def end_ms(self) -> int:
        return _ms(self.end)

    @property
    def start_ms(self) -> int:
        """Start of the B2C window (B2B histories reach further back)."""
        return self.end_ms - self.days * DAY


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


# --- small helpers ----------------------------------------------------------------------

T = TypeVar("T")


class Weighted(Generic[T]):
    """A fixed weighted choice; one random() and a bisect per pick."""

    def __init__(self, pairs: Sequence[tuple[T, float]]):
        self.items = [item for item, _ in pairs]
        self.cum = list(accumulate(weight for _, weight in pairs))
        self.total = self.cum[-1]

    def pick(self, rng: random.Random) -> T:
        return self.items[bisect_right(self.cum, rng.random() * self.total)]


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID from the seeded generator (uuid4() would not be reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _hex(rng: random.Random, chars: int) -> str:
    return f"{rng.getrandbits(4 * chars):0{chars}x}"


@lru_cache(maxsize=4096)
def _day_prefix(day: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)).strftime("%Y-%m-%dT")


@lru_cache(maxsize=4096)  # output is time-ordered, so the same seconds recur
def _second_text(second: int) -> str:
    day, sec = divmod(second, 86400)
    minute, sec = divmod(sec, 60)
    hour, minute = divmod(minute, 60)
    return f"{_day_prefix(day)}{hour:02d}:{minute:02d}:{sec:02d}"


def iso_ms(t: int) -> str:
    """Epoch milliseconds as ISO-8601 UTC with milliseconds; faster than strftime."""
    second, milli = divmod(t, 1000)
    return f"{_second_text(second)}.{milli:03d}Z"


def _gap(rng: random.Random, mean_ms: float, low: int, high: int) -> int:
    """An exponential wait with a floor and a cap."""
    return min(high, low + int(rng.expovariate(1.0 / mean_ms)))


# Traffic by hour of day (UTC, a mostly-American audience: quiet at 07-12 UTC).
_HOUR_WEIGHTS = Weighted(list(enumerate(
    [6, 5, 4, 3, 2, 1.5, 1.2, 1, 1, 1.2, 1.6, 2.2, 3, 4, 5, 5.5, 6, 6, 6, 6, 6.5, 7, 7, 6.5]
)))
_WEEKDAY_FACTOR = (1.0, 0.98, 0.97, 1.0, 1.05, 1.15, 1.12)  # Monday first


def _time_in_day(rng: random.Random, day_start: int) -> int:
    return day_start + _HOUR_WEIGHTS.pick(rng) * HOUR + int(rng.random() * HOUR)


def _business_time(rng: random.Random, t: int) -> int:
    """The next weekday business hour at or after ``t`` (US hours, 14:00-22:00 UTC)."""
    day_start = t - t % DAY
    if t - day_start > 21 * HOUR:
        day_start += DAY
    while datetime.fromtimestamp(day_start / 1000, UTC).weekday() >= 5:
        day_start += DAY
    return max(t, day_start + 14 * HOUR + int(rng.random() * 7 * HOUR))


# --- the catalogue: campaigns, products, pages, people -----------------------------------


class Campaign(NamedTuple):
    """A paid or owned campaign; its name is the utm_campaign and the spend row's campaign."""

    name: str
    channel: str  # GA4 channel group of its traffic (the spend row's channel)
    source: str
    medium: str
    pricing: str  # "cpc" (cost per click), "cpm" (per thousand impressions), "send" (email)
    rate: float  # dollars per click / per thousand impressions / per email sent
    ctr: float  # clicks per impression (per email sent for email)
    click_id: str | None = None  # parameter the ad platform appends to the landing URL
    referrers: tuple[str, ...] = ("",)
    contents: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


def _c(name: str, channel: str, source: str, medium: str, pricing: str, rate: float, ctr: float,
       click_id: str | None = None, referrers: tuple[str, ...] = ("",),
       contents: tuple[str, ...] = (), terms: tuple[str, ...] = ()) -> Campaign:
    return Campaign(name, channel, source, medium, pricing, rate, ctr, click_id, referrers,
                    contents, terms)


_FB_REF = ("https://l.facebook.com/", "https://m.facebook.com/", "")
_IG_REF = ("https://l.instagram.com/", "")
_TT_REF = ("https://www.tiktok.com/", "")
_LI_REF = ("https://www.linkedin.com/", "")
_PUBLISHERS = ("https://www.weather.com/", "https://www.cnn.com/", "https://www.espn.com/",
               "https://www.allrecipes.com/", "https://www.outsideonline.com/")

# B2C prospecting and retargeting, by arrival kind.
PAID_SOCIAL_PROSPECTING = (
    _c("fb_prospecting_broad", "Paid Social", "facebook", "paid_social", "cpc", 0.95, 0.011,
       "fbclid", _FB_REF, ("video_15s", "carousel_bestsellers", "static_lifestyle")),
    _c("fb_advantage_plus_catalog", "Paid Social", "facebook", "cpc", "cpc", 0.85, 0.013,
       "fbclid", _FB_REF, ("dpa_catalog",)),
    _c("ig_stories_new_arrivals", "Paid Social", "instagram", "paid_social", "cpc", 1.10,
       0.008, "fbclid", _IG_REF, ("story_a", "story_b")),
    _c("ig_reels_creators", "Paid Social", "instagram", "cpc", "cpc", 1.05, 0.009, "fbclid",
       _IG_REF, ("reel_trailrun", "reel_unboxing")),
    _c("tt_spark_creators", "Paid Social", "tiktok", "paid_social", "cpc", 0.70, 0.010,
       "ttclid", _TT_REF, ("spark_ugc_1", "spark_ugc_2")),
)
PAID_SOCIAL_RETARGETING = (
    _c("fb_retargeting_cart", "Paid Social", "facebook", "paid_social", "cpc", 0.65, 0.018,
       "fbclid", _FB_REF, ("dpa_cart",)),
)
PAID_SEARCH = (
    _c("gs_brand_exact", "Paid Search", "google", "cpc", "cpc", 0.40, 0.12, "gclid",
       ("https://www.google.com/",), ("rsa_brand",), ("shop example", "shopexample")),
    _c("gs_nonbrand_running", "Paid Search", "google", "cpc", "cpc", 1.60, 0.045, "gclid",
       ("https://www.google.com/",), ("rsa_running",),
       ("trail running shoes", "waterproof running jacket", "running shoes sale")),
    _c("gs_pmax_catalog", "Paid Search", "google", "cpc", "cpc", 1.20, 0.030, "gclid",
       ("https://www.google.com/",), ("pmax",), ()),
    _c("bing_brand_exact", "Paid Search", "bing", "cpc", "cpc", 0.35, 0.10, "msclkid",
       ("https://www.bing.com/",), ("rsa_brand",), ("shop example",)),
)
DISPLAY_PROSPECTING = (
    _c("dv360_prospecting_outdoor", "Display", "dv360", "display", "cpm", 4.50, 0.0012,
       None, _PUBLISHERS, ("banner_300x250", "banner_728x90")),
)
DISPLAY_RETARGETING = (
    _c("criteo_retargeting", "Display", "criteo", "cpm", "cpm", 6.00, 0.004, None,
       _PUBLISHERS, ("dynamic_product",)),
)
AFFILIATES = (
    _c("aff_awin_cashback", "Affiliates", "awin", "affiliate", "cpc", 0.45, 0.020, None,
       ("https://www.topcashback.com/", "https://www.quidco.com/")),
    _c("aff_impact_coupons", "Affiliates", "impact", "affiliate", "cpc", 0.40, 0.025, None,
       ("https://www.retailmenot.com/", "https://www.honey.com/")),
    _c("aff_cj_reviews", "Affiliates", "cj", "affiliate", "cpc", 0.60, 0.015, None,
       ("https://www.runnersworld.com/gear/", "https://www.gearlab.com/")),
)
B2C_EMAIL_NEWSLETTER = _c("b2c_newsletter_weekly", "Email", "klaviyo", "email", "send", 0.0012,
                          0.020, None, ("", "https://mail.google.com/"))
B2C_EMAIL_CART = _c("b2c_cart_abandon", "Email", "klaviyo", "email", "send", 0.0012, 0.060,
                    None, ("", "https://mail.google.com/"))
B2C_EMAIL_WINBACK = _c("b2c_winback", "Email", "klaviyo", "email", "send", 0.0012, 0.015,
                       None, ("", "https://mail.google.com/"))

LINKEDIN = (
    _c("li_abm_sponsored_content", "Paid Social", "linkedin", "paid_social", "cpc", 7.50,
       0.0055, "li_fat_id", _LI_REF, ("single_image_roi", "document_ad_benchmark")),
    _c("li_lead_gen_whitepaper", "Paid Social", "linkedin", "paid_social", "cpc", 8.20, 0.0060,
       "li_fat_id", _LI_REF, ("lead_gen_form",)),
    _c("li_retargeting_demo", "Paid Social", "linkedin", "paid_social", "cpc", 6.40, 0.0070,
       "li_fat_id", _LI_REF, ("video_demo",)),
)
B2B_SEARCH = (
    _c("gs_b2b_longtail_ap_automation", "Paid Search", "google", "cpc", "cpc", 6.80, 0.035,
       "gclid", ("https://www.google.com/",), ("rsa_ap",),
       ("accounts payable automation software", "three way match automation",
        "invoice approval workflow tool")),
)
B2B_NURTURE = (
    _c("b2b_nurture_welcome", "Email", "hubspot", "email", "send", 0.004, 0.030),
    _c("b2b_nurture_roi_calculator", "Email", "hubspot", "email", "send", 0.004, 0.025),
    _c("b2b_webinar_invite", "Email", "hubspot", "email", "send", 0.004, 0.035),
)
B2B_CUSTOMER_EMAIL = _c("b2b_customer_newsletter", "Email", "hubspot", "email", "send", 0.004,
                        0.020)

ALL_CAMPAIGNS: tuple[Campaign, ...] = (
    *PAID_SOCIAL_PROSPECTING, *PAID_SOCIAL_RETARGETING, *PAID_SEARCH, *DISPLAY_PROSPECTING,
    *DISPLAY_RETARGETING, *AFFILIATES, B2C_EMAIL_NEWSLETTER, B2C_EMAIL_CART,
    B2C_EMAIL_WINBACK, *LINKEDIN, *B2B_SEARCH, *B2B_NURTURE, B2B_CUSTOMER_EMAIL,
)


class Product(NamedTuple):
    sku: str
    name: str
    slug: str
    price: float
    category: str


def _products(rows: Sequence[tuple[str, float, str]], prefix: str) -> tuple[Product, ...]:
    return tuple(
        Product(f"{prefix}-{i + 101}", name, name.lower().replace(" ", "-"), price, cat)
        for i, (name, price, cat) in enumerate(rows)
    )


SHOP_PRODUCTS = _products([
    ("Trail Runner 2", 129.0, "Running"), ("Road Racer Lite", 139.0, "Running"),
    ("Everyday Trainer", 89.0, "Running"), ("Merino Running Tee", 48.0, "Apparel"),
    ("Storm Shell Jacket", 119.0, "Apparel"), ("Thermal Base Layer", 59.0, "Apparel"),
    ("Running Shorts 5in", 38.0, "Apparel"), ("Compression Socks", 22.0, "Accessories"),
    ("Hydration Vest 8L", 95.0, "Accessories"), ("Soft Flask 500ml", 24.0, "Accessories"),
    ("Headlamp 400", 49.0, "Accessories"), ("Trail Cap", 28.0, "Accessories"),
    ("Hiking Boot Mid", 149.0, "Hiking"), ("Trekking Poles", 79.0, "Hiking"),
    ("Daypack 22L", 85.0, "Hiking"), ("Insulated Bottle", 32.0, "Accessories"),
    ("Rain Pants", 69.0, "Apparel"), ("Running Gloves", 26.0, "Accessories"),
], "SKU")
CONSIDERED_PRODUCTS = _products([
    ("Cargo E-Bike Pro", 5400.0, "E-Bikes"), ("Carbon Road Bike Ultegra", 6200.0, "Bikes"),
    ("Home Sauna Nordic 4", 8900.0, "Wellness"), ("Outdoor Kitchen Suite", 14500.0, "Home"),
    ("Camper Van Conversion Kit", 24000.0, "Vehicles"), ("Grand Piano Series B", 38000.0, "Music"),
], "BIG")
_PRODUCT_BY_PATH = {f"/products/{p.slug}": p for p in (*SHOP_PRODUCTS, *CONSIDERED_PRODUCTS)}
COLLECTIONS = ("new-arrivals", "running", "hiking", "apparel", "sale", "accessories")
SHOP_POSTS = ("how-to-choose-trail-shoes", "winter-running-layering-guide",
              "first-ultra-training-plan", "hydration-vest-fit-guide")

SAAS_FEATURES = ("invoice-automation", "spend-analytics", "approval-workflows",
                 "vendor-management", "three-way-match")
SAAS_POSTS = (  # long-tail search landing pages
    "how-to-reconcile-intercompany-invoices", "three-way-match-explained-for-controllers",
    "vendor-risk-questionnaire-template", "ap-automation-roi-for-mid-market",
    "month-end-close-checklist-for-saas-companies", "purchase-order-approval-matrix-examples",
    "duplicate-invoice-detection-rules", "netsuite-ap-workflow-best-practices",
)
WHITEPAPERS = ("state-of-procurement-2026", "roi-of-ap-automation", "vendor-risk-playbook")
WEBINARS = ("ap-automation-masterclass", "closing-the-books-faster", "procurement-benchmark-live")
TRADE_SHOWS = ("ProcureCon East", "CFO Tech Forum", "Finance Transformation Expo")
PUBLISHER_REFERRERS = (
    "https://www.g2.com/products/saas-example/reviews", "https://www.capterra.com/p/98765/",
    "https://www.cfodive.com/news/ap-automation-trends/", "https://www.procurementmag.com/",
    "https://www.accountingtoday.com/list/top-ap-tools", "https://news.ycombinator.com/",
)

FIRST_NAMES = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda",
               "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph",
               "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Wei", "Priya", "Ahmed", "Olga",
               "Kenji", "Fatima", "Lucas", "Amara", "Noah", "Sofia", "Mateo", "Chloe")
LAST_NAMES = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
              "Rodriguez", "Martinez", "Hernandez", "Lopez", "Wilson", "Anderson", "Thomas",
              "Taylor", "Moore", "Jackson", "Martin", "Lee", "Chen", "Patel", "Kim", "Nguyen",
              "Okafor", "Schmidt", "Rossi", "Novak", "Silva", "Tanaka")
EMAIL_DOMAINS = Weighted([("gmail.example", 45), ("yahoo.example", 12), ("outlook.example", 18),
                          ("icloud.example", 15), ("proton.example", 3), ("fastmail.example", 2)])
COMPANY_WORDS = (("Northwind", "Blue Ridge", "Granite", "Silverline", "Harbor", "Summit",
                  "Redwood", "Ironclad", "Lakeside", "Meridian", "Crescent", "Evergreen",
                  "Pioneer", "Keystone", "Atlas", "Beacon"),
                 ("Logistics", "Foods", "Health", "Manufacturing", "Retail Group", "Systems",
                  "Energy", "Partners", "Labs", "Industries", "Freight", "Clinics"))
INDUSTRIES = ("Manufacturing", "Retail", "Healthcare", "Logistics", "Financial Services",
              "Software", "Education", "Construction", "Energy", "Food & Beverage")
TITLES = Weighted([("CFO", 6), ("VP Finance", 8), ("Controller", 12), ("AP Manager", 14),
                   ("Head of Procurement", 8), ("Procurement Specialist", 10),
                   ("IT Director", 6), ("Finance Analyst", 14), ("COO", 4),
                   ("Director of Operations", 6), ("Accounts Payable Clerk", 12)])
SELF_SERVE_PLANS = (("starter_annual", 348.0), ("starter_plus_annual", 588.0),
                    ("team_annual", 948.0), ("team_plus_annual", 1188.0))

USER_AGENTS = Weighted([
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 30),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Mobile Safari/537.36", 22),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 22),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 13),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/18.1 Safari/605.1.15", 8),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", 5),
])
_IP_FIRST_OCTETS = (24, 45, 50, 64, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 96, 97, 98,
                    99, 104, 107, 108, 142, 162, 173, 174, 184, 198, 204, 208)
_LOCALES = Weighted([("en-US", 88), ("es-US", 6), ("en-GB", 3), ("fr-CA", 3)])

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


# --- B2C: shop.example --------------------------------------------------------------------

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


def _pick(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


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

    def __init__(self, rng: random.Random, ids: _Counters):
        self.rng = rng
        self.ids = ids

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
        for i, path in enumerate(paths):
            if i:
                walk.wait(rng)
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
        buyer = rng.random() < B2C_CONVERSION_RATE
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


# --- actors in order of their first event --------------------------------------------------

Actor = tuple[tuple[int, int, int], Callable[[], Plan]]  # ((start, stream, index), plan)


def _spread(total: int, days: int, rng: random.Random, start_ms: int) -> list[int]:
    """How many B2C arrivals each day gets: weekday pattern, slight growth, exact total."""
    weights = []
    for d in range(days):
        weekday = datetime.fromtimestamp((start_ms + d * DAY) / 1000, UTC).weekday()
        weights.append(_WEEKDAY_FACTOR[weekday] * (1 + 0.2 * d / days) * rng.uniform(0.9, 1.1))
    cum = list(accumulate(weights))
    bounds = [round(total * c / cum[-1]) for c in cum]
    return [b - a for a, b in zip([0, *bounds[:-1]], bounds, strict=True)]


def _b2c_actors(spec: TrafficSpec, planner: ShopPlanner, rng: random.Random) -> Iterator[Actor]:
    ordinary = spec.b2c_visitors - _considered_count(spec)
    for d, n in enumerate(_spread(ordinary, spec.days, rng, spec.start_ms)):
        day_start = spec.start_ms + d * DAY
        for i, start in enumerate(sorted(_time_in_day(rng, day_start) for _ in range(n))):
            yield (start, 0, d * 10_000_000 + i), _bind(planner.visitor, start)


def _considered_count(spec: TrafficSpec) -> int:
    return min(spec.b2c_visitors, spec.b2c_visitors // VISITORS_PER_CONSIDERED_BUYER
               + (1 if spec.b2c_visitors >= 200 else 0))


def _bind(plan: Callable[..., Plan], *args: int) -> Callable[[], Plan]:
    return lambda: plan(*args)


def _special_actors(spec: TrafficSpec, shop: ShopPlanner, saas: SaasPlanner,
                    rng: random.Random) -> list[Actor]:
    """Considered buyers, B2B accounts and self-serve buyers: few, so drawn up front."""
    actors: list[Actor] = []
    window = spec.days * DAY
    for i in range(_considered_count(spec)):
        purchase = spec.start_ms + int(rng.random() * window)
        start = purchase - int(rng.uniform(21, 56) * DAY)
        actors.append(((start, 1, i), _bind(shop.considered, start, purchase)))
    history = spec.b2b_history_days * DAY
    for i in range(spec.b2b_accounts):
        start = spec.end_ms - history + int(rng.random() * (history - 45 * DAY))
        actors.append(((start, 2, i), _bind(saas.account, i + 1, start)))
    for i in range(max(1, spec.b2b_accounts // 2) if spec.b2b_accounts else 0):
        start = _time_in_day(rng, spec.start_ms + int(rng.random() * spec.days) * DAY)
        actors.append(((start, 3, i), _bind(saas.self_serve, spec.b2b_accounts + i + 1, start)))
    actors.sort(key=lambda actor: actor[0])
    return actors


def _streams(seed: int) -> dict[str, random.Random]:
    # one generator per concern, so e.g. invalid lines do not shift the valid ones
    names = ("arrivals", "shop", "special", "saas", "render", "duplicate", "double", "invalid")
    return {name: random.Random(f"{seed}:{name}") for name in names}


def _actors(spec: TrafficSpec, rngs: dict[str, random.Random]) -> Iterator[Actor]:
    ids = _Counters()
    shop = ShopPlanner(rngs["shop"], ids)
    special_shop = ShopPlanner(rngs["special"], ids)
    saas = SaasPlanner(rngs["saas"], ids, spec.end_ms)
    special = _special_actors(spec, special_shop, saas, rngs["special"])
    return heapq.merge(_b2c_actors(spec, shop, rngs["arrivals"]), special,
                       key=lambda actor: actor[0])


def planned_calls(spec: TrafficSpec) -> Iterator[Call]:
    """Every planned call up to ``end``, actor by actor (not time-sorted, not rendered)."""
    end = spec.end_ms
    for _, plan in _actors(spec, _streams(spec.seed)):
        for call in plan():
            if call.t < end:
                yield call


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


# --- emitting -------------------------------------------------------------------------------


class _Emitter:
    """Time-orders planned calls across actors and adds the noise of real collection."""

    def __init__(self, spec: TrafficSpec, rngs: dict[str, random.Random]):
        self.spec = spec
        self.rngs = rngs
        self.pending: list[tuple[int, int, Call | dict[str, Any]]] = []
        self.seq = count()
        r = spec.invalid_rate
        self.invalid_odds = r / (1 - r)  # per valid line, so that invalid lines are r of all

    def push(self, plan: Plan) -> None:
        end = self.spec.end_ms
        pending, seq = self.pending, self.seq
        for call in plan:
            if call.t < end:
                heapq.heappush(pending, (call.t, next(seq), call))

    def flush(self, before: int) -> Iterator[dict[str, Any]]:
        pending = self.pending
        render_rng = self.rngs["render"]
        dup_rng, double_rng, invalid_rng = (self.rngs["duplicate"], self.rngs["double"],
                                            self.rngs["invalid"])
        spec = self.spec
        while pending and pending[0][0] < before:
            t, _, item = heapq.heappop(pending)
            if isinstance(item, dict):  # a retry or a server copy, already rendered
                yield item
                continue
            if item.device is not None:
                delay = 20 + int(render_rng.expovariate(1 / 150))
            else:
                delay = int(render_rng.uniform(0.1, 4) * SECOND)
            event = render(item, _uuid(render_rng), delay)
            yield event
            if spec.duplicate_rate and dup_rng.random() < spec.duplicate_rate:
                retry = t + int(dup_rng.uniform(1, 60) * SECOND)
                heapq.heappush(pending, (retry, next(self.seq), _copy(event)))
            if (spec.double_send_rate and item.event in CONVERSION_EVENTS
                    and double_rng.random() < spec.double_send_rate):
                later = t + int(double_rng.uniform(0.5, 5) * SECOND)
                heapq.heappush(pending, (later, next(self.seq),
                                         _server_copy(event, later, double_rng)))
            if self.invalid_odds and invalid_rng.random() < self.invalid_odds:
                yield invalid_variant(event, invalid_rng)


_FOREVER = 1 << 62


def generate_events(spec: TrafficSpec) -> Iterator[dict[str, Any]]:
    """Segment wire events (camelCase dicts), ordered by true event time."""
    rngs = _streams(spec.seed)
    emitter = _Emitter(spec, rngs)
    for (start, _, _), plan in _actors(spec, rngs):
        yield from emitter.flush(start)
        emitter.push(plan())
    yield from emitter.flush(_FOREVER)


def write_jsonl(spec: TrafficSpec, path: Path) -> int:
    """Write the events as JSON Lines; returns the number of lines."""
    lines = 0
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    with Path(path).open("wb", buffering=1 << 20) as out:
        for event in generate_events(spec):
            out.write(dumps(event, option=newline))
            lines += 1
    return lines


def generate_spend(spec: TrafficSpec) -> Iterator[dict[str, Any]]:
    """Daily ad spend per campaign, consistent with the generated traffic."""
    from traffic.spend import spend_rows  # spend.py builds on this module

    return spend_rows(spec)


def write_spend_csv(spec: TrafficSpec, path: Path) -> int:
    """Write the spend rows as CSV; returns the number of rows."""
    from traffic.spend import write_spend

    return write_spend(spec, path)
