"""The fixed catalogue the generated traffic is made of.

The two sites (``SHOP``, ``SAAS``), the paid and owned campaigns with their pricing and
referrers, the shop's products and pages, the SaaS site's features, posts and events,
and the people, companies, user agents, IP ranges and locales that visitors are drawn
from. Plain data: nothing here draws random numbers at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from traffic.clock import Weighted

SHOP = "shop.example"
SAAS = "saas.example"


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
