"""Channel classification: GA4 default channel groups, click ids, referrers, overrides."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.channels import (
    DEFAULT_RULES,
    ChannelRules,
    Classified,
    TrafficSignals,
    campaign_signature,
    classify,
)
from attribution.policy import ConfigError

SITE = "https://shop.example.com/landing"


def utm(source: str | None, medium: str | None, campaign: str | None = None) -> TrafficSignals:
    return TrafficSignals(utm_source=source, utm_medium=medium, utm_campaign=campaign)


def via(referrer: str) -> TrafficSignals:
    return TrafficSignals(referrer=referrer, page_url=SITE)


def landing(query: str) -> TrafficSignals:
    return TrafficSignals(page_url=f"{SITE}?{query}")


# (signals, channel, source, medium, campaign)
CASES: list[tuple[TrafficSignals, str, str, str, str | None]] = [
    # Direct: nothing, internal navigation, a referrer that is no URL
    (TrafficSignals(), "Direct", "(direct)", "(none)", None),
    (TrafficSignals(referrer="https://www.shop.example.com/cart", page_url=SITE),
     "Direct", "(direct)", "(none)", None),
    (via("not a url"), "Direct", "(direct)", "(none)", None),
    # Cross-network: campaign name contains "cross-network", before any paid rule
    (utm("google", "cpc", "pmax_cross-network_q3"), "Cross-network", "google", "cpc",
     "pmax_cross-network_q3"),
    (utm("google", "paid", "Cross-Network Spring"), "Cross-network", "google", "paid",
     "Cross-Network Spring"),
    # Paid Shopping: shopping source, or a shopping campaign, with a paid medium
    (utm("google", "cpc", "shopping_spring"), "Paid Shopping", "google", "cpc",
     "shopping_spring"),
    (utm("amazon", "ppc"), "Paid Shopping", "amazon", "ppc", None),
    (utm("ebay", "paid_listing"), "Paid Shopping", "ebay", "paid_listing", None),
    # Paid Search
    (utm("google", "cpc", "brand"), "Paid Search", "google", "cpc", "brand"),
    (landing("utm_source=bing&utm_medium=ppc"), "Paid Search", "bing", "ppc", None),
    (utm("www.google.com", "retargeting"), "Paid Search", "google", "retargeting", None),
    (utm("google", "cpm"), "Paid Search", "google", "cpm", None),  # .*cp.* wins over Display
    # Paid Social
    (utm("facebook", "paid_social"), "Paid Social", "facebook", "paid_social", None),
    (utm("LinkedIn", "CPC"), "Paid Social", "linkedin", "cpc", None),
    # Paid Video (".*cp.*" matches "cpv")
    (utm("youtube", "cpv"), "Paid Video", "youtube", "cpv", None),
    (utm("vimeo", "paid"), "Paid Video", "vimeo", "paid", None),
    # Display
    (utm("adroll", "display"), "Display", "adroll", "display", None),
    (utm("criteo", "banner"), "Display", "criteo", "banner", None),
    (utm("gdn", "interstitial"), "Display", "gdn", "interstitial", None),
    # Paid Other
    (utm("outbrain", "cpc"), "Paid Other", "outbrain", "cpc", None),
    (utm("partner-network", "paid"), "Paid Other", "partner-network", "paid", None),
    # Organic Shopping: shopping source, or a shopping campaign name
    (via("https://www.amazon.de/dp/B000"), "Organic Shopping", "amazon", "referral", None),
    (via("https://www.etsy.com/listing/1"), "Organic Shopping", "etsy", "referral", None),
    # GA4 quirk: a "-shop" campaign beats the Email rule, which comes later
    (utm("newsletter", "email", "summer-shop"), "Organic Shopping", "newsletter", "email",
     "summer-shop"),
    # Organic Social
    (via("https://l.facebook.com/l.php?u=x"), "Organic Social", "facebook", "referral", None),
    (via("https://lnkd.in/abc"), "Organic Social", "linkedin", "referral", None),
    (via("https://t.co/xyz"), "Organic Social", "twitter", "referral", None),
    (via("https://x.com/someone/status/1"), "Organic Social", "twitter", "referral", None),
    (via("https://old.reddit.com/r/x"), "Organic Social", "reddit", "referral", None),
    (utm("mastodon-instance", "social"), "Organic Social", "mastodon-instance", "social", None),
    # Organic Video
    (via("https://m.youtube.com/watch?v=1"), "Organic Video", "youtube", "referral", None),
    (via("https://youtu.be/abc"), "Organic Video", "youtube", "referral", None),
    (utm("partner", "video-embed"), "Organic Video", "partner", "video-embed", None),
    # Organic Search: search-engine referrers get medium "organic"
    (via("https://www.google.co.uk/search?q=x"), "Organic Search", "google", "organic", None),
    (via("https://duckduckgo.com/"), "Organic Search", "duckduckgo", "organic", None),
    (via("https://www.bing.com/search?q=x"), "Organic Search", "bing", "organic", None),
    (via("https://uk.search.yahoo.com/search?p=x"), "Organic Search", "yahoo", "organic",
     None),
    (via("https://www.ecosia.org/search?q=x"), "Organic Search", "ecosia", "organic", None),
    (via("https://yandex.ru/search/?text=x"), "Organic Search", "yandex", "organic", None),
    (via("android-app://com.google.android.googlequicksearchbox/"), "Organic Search",
     "google", "organic", None),
    (utm("some-engine", "organic"), "Organic Search", "some-engine", "organic", None),
    # Referral: any other external host, source = host without "www."
    (via("https://blog.partner.io/post"), "Referral", "blog.partner.io", "referral", None),
    (via("https://www.example.org/links"), "Referral", "example.org", "referral", None),
    (via("https://mail.google.com/mail/u/0"), "Referral", "mail.google.com", "referral", None),
    (utm("partner", "link"), "Referral", "partner", "link", None),
    # Email
    (landing("UTM_SOURCE=Newsletter&utm_medium=Email&utm_campaign=May"), "Email",
     "newsletter", "email", "May"),
    (utm("e-mail", None), "Email", "e-mail", "(not set)", None),
    (utm("crm", "e_mail"), "Email", "crm", "e_mail", None),
    # Affiliates
    (utm("awin", "affiliate"), "Affiliates", "awin", "affiliate", None),
    (utm("shareasale", "Affiliate", "q1"), "Affiliates", "shareasale", "affiliate", "q1"),
    # Audio
    (utm("spotify", "audio"), "Audio", "spotify", "audio", None),
    (utm("podcast-network", "audio", "ep12"), "Audio", "podcast-network", "audio", "ep12"),
    # SMS
    (utm("sms", "text"), "SMS", "sms", "text", None),
    (utm("twilio", "sms"), "SMS", "twilio", "sms", None),
    # Mobile Push Notifications
    (utm("braze", "web-push"), "Mobile Push Notifications", "braze", "web-push", None),
    (utm("onesignal", "mobile"), "Mobile Push Notifications", "onesignal", "mobile", None),
    (utm("app", "notification"), "Mobile Push Notifications", "app", "notification", None),
    (utm("firebase", "inapp"), "Mobile Push Notifications", "firebase", "inapp", None),
    # Unassigned
    (utm(None, "podcast"), "Unassigned", "(not set)", "podcast", None),
    (utm("someone", "blast", "workshop"), "Unassigned", "someone", "blast", "workshop"),
]


@pytest.mark.parametrize(("signals", "channel", "source", "medium", "campaign"), CASES)
def test_hand_written_cases(signals: TrafficSignals, channel: str, source: str, medium: str,
                            campaign: str | None) -> None:
    assert classify(signals) == Classified(channel, source, medium, campaign)


def test_every_channel_group_has_two_cases() -> None:
    counts: dict[str, int] = {}
    for _, channel, *_rest in CASES:
        counts[channel] = counts.get(channel, 0) + 1
    assert set(counts) == set(DEFAULT_RULES.channel_names)
    assert min(counts.values()) >= 2, counts


def test_rule_order_is_ga4s() -> None:
    assert DEFAULT_RULES.channel_names == (
        "Direct", "Cross-network", "Paid Shopping", "Paid Search", "Paid Social", "Paid Video",
        "Display", "Paid Other", "Organic Shopping", "Organic Social", "Organic Video",
        "Organic Search", "Referral", "Email", "Affiliates", "Audio", "SMS",
        "Mobile Push Notifications", "Unassigned",
    )


# --- click ids --------------------------------------------------------------------------


@pytest.mark.parametrize(("param", "channel", "source", "medium"), [
    ("gclid", "Paid Search", "google", "cpc"),
    ("gbraid", "Paid Search", "google", "cpc"),
    ("wbraid", "Paid Search", "google", "cpc"),
    ("dclid", "Paid Search", "google", "cpc"),
    ("msclkid", "Paid Search", "bing", "cpc"),
    ("fbclid", "Paid Social", "facebook", "paid"),
    ("li_fat_id", "Paid Social", "linkedin", "paid"),
    ("ttclid", "Paid Social", "tiktok", "paid"),
    ("twclid", "Paid Social", "twitter", "paid"),
])
def test_click_ids(param: str, channel: str, source: str, medium: str) -> None:
    signals = TrafficSignals(page_url=f"{SITE}?a=1&{param}=Cj0KCQ&utm_campaign=Spring",
                             referrer="https://www.google.com/")
    assert classify(signals) == Classified(channel, source, medium, "Spring")
    assert campaign_signature(signals) == (source, medium, "Spring")


def test_utm_beats_click_id_and_referrer() -> None:
    signals = TrafficSignals(page_url=f"{SITE}?gclid=x&utm_source=newsletter&utm_medium=email",
                             referrer="https://www.google.com/")
    assert classify(signals).channel == "Email"


def test_explicit_utm_fields_beat_the_url_query() -> None:
    signals = TrafficSignals(utm_source="bing", utm_medium="cpc",
                             page_url=f"{SITE}?utm_source=google&utm_medium=organic&utm_campaign=c")
    assert classify(signals) == Classified("Paid Search", "bing", "cpc", "c")


def test_first_click_id_in_map_order_wins_and_blank_ids_are_ignored() -> None:
    assert classify(landing("fbclid=a&gclid=b")).source == "google"
    assert classify(landing("gclid=&fbclid=a")).source == "facebook"
    assert classify(landing("gclid=")).channel == "Direct"


# --- referrers, internal navigation, normalisation ------------------------------------


@pytest.mark.parametrize(("host", "source"), [
    ("www.google.co.uk", "google"), ("google.com.au", "google"), ("images.google.de", "google"),
    ("l.facebook.com", "facebook"), ("lm.facebook.com", "facebook"), ("lnkd.in", "linkedin"),
    ("t.co", "twitter"), ("WWW.LinkedIn.COM", "linkedin"), ("amazon.co.uk", "amazon"),
    ("mail.google.com", "mail.google.com"), ("google.example.com", "google.example.com"),
    ("www.example.org", "example.org"), ("bücher.de", "bücher.de"),
])
def test_host_to_source(host: str, source: str) -> None:
    assert DEFAULT_RULES.source_of_host(host) == source


def test_internal_navigation_is_direct_and_carries_no_signature() -> None:
    signals = TrafficSignals(referrer="https://shop.example.com/a", page_url=f"{SITE}?x=1")
    assert classify(signals).channel == "Direct"
    assert campaign_signature(signals) is None


def test_other_subdomain_of_own_site_is_a_referral_unless_ignored() -> None:
    signals = TrafficSignals(referrer="https://blog.example.com/post", page_url=SITE)
    assert classify(signals).channel == "Referral"
    rules = ChannelRules.from_overrides({"ignored_referrers": ["example.com", "paypal.com"]})
    assert classify(signals, rules).channel == "Direct"
    assert classify(via("https://www.paypal.com/checkout"), rules).channel == "Direct"
    assert campaign_signature(signals, rules) is None


def test_scheme_less_referrer_and_missing_landing_url() -> None:
    assert classify(TrafficSignals(referrer="google.com/search?q=1")).channel == "Organic Search"
    assert classify(TrafficSignals(referrer="https://t.co/x")).channel == "Organic Social"


def test_campaign_signature() -> None:
    assert campaign_signature(TrafficSignals()) is None
    assert campaign_signature(utm("Google", "CPC", "Brand")) == ("google", "cpc", "Brand")
    assert campaign_signature(via("https://www.bing.com/")) == ("bing", "organic", None)
    assert campaign_signature(landing("utm_campaign=launch")) == ("(direct)", "(none)", "launch")


@pytest.mark.parametrize("signals", [
    TrafficSignals(referrer="http://[::1", page_url="http://[bad/?utm_source=x"),
    TrafficSignals(referrer="://", page_url="?"),
    TrafficSignals(referrer="https://exa mple.com/", page_url="https://%zz/?%zz=%zz"),
    TrafficSignals(utm_source="   ", utm_medium="", utm_campaign=" ", explicit_channel="  "),
    TrafficSignals(referrer="https://ÉXAMPLE.com/ü", page_url="https://shop.example.com/ü?ü=ü"),
])
def test_malformed_input_is_direct_or_referral_and_never_raises(signals: TrafficSignals) -> None:
    assert classify(signals).channel in ("Direct", "Referral")


# --- explicit channel -------------------------------------------------------------------


def test_explicit_channel_without_other_signals_is_offline() -> None:
    got = classify(TrafficSignals(explicit_channel="Sales Meeting"))
    assert got == Classified("Sales Meeting", "(offline)", "offline", None)


def test_explicit_channel_keeps_source_and_medium_of_other_signals() -> None:
    got = classify(TrafficSignals(explicit_channel="Webinar", utm_source="Zoom",
                                  utm_medium="webinar", utm_campaign="Q3 launch"))
    assert got == Classified("Webinar", "zoom", "webinar", "Q3 launch")
    internal = TrafficSignals(explicit_channel="Trade Show", referrer=SITE, page_url=SITE)
    assert classify(internal) == Classified("Trade Show", "(offline)", "offline", None)


# --- config overrides -------------------------------------------------------------------


def test_no_overrides_is_the_default_table() -> None:
    assert ChannelRules.from_overrides({}) is DEFAULT_RULES
    assert ChannelRules.from_overrides({"fallback_channel": "Unassigned"}) == DEFAULT_RULES


def test_adding_an_email_source() -> None:
    signals = utm("newsletter-tool", "blast")
    assert classify(signals).channel == "Unassigned"
    rules = ChannelRules.from_overrides({"extra_sources": {"email": ["Newsletter-Tool"]}})
    assert classify(signals, rules).channel == "Email"
    assert "e-mail" in rules.source_lists["email"]


def test_custom_rule_podcast_is_audio() -> None:
    signals = utm("acast", "podcast")
    rule = {"channel": "Audio", "all_of": [{"field": "medium", "one_of": "podcast"}]}
    rules = ChannelRules.from_overrides({"extra_rules": [rule]})
    assert classify(signals, rules) == Classified("Audio", "acast", "podcast", None)
    assert rules.rules[0].channel == "Audio"  # extra rules go first by default


def test_extra_rule_before_a_channel_keeps_earlier_rules_first() -> None:
    rule = {"channel": "Partners", "before": "Referral",
            "any_of": [{"field": "source", "in_list": "partners"}]}
    rules = ChannelRules.from_overrides({
        "source_lists": {"partners": ["partner.io", "reseller"]},
        "extra_rules": [rule],
    })
    names = rules.channel_names
    assert names.index("Partners") == names.index("Referral") - 1
    assert classify(via("https://partner.io/x"), rules).channel == "Partners"
    assert classify(utm("reseller", "cpc"), rules).channel == "Paid Other"  # earlier rule wins


def test_overrides_from_toml() -> None:
    config = tomllib.loads("""
        [channels]
        extra_sources = { email = ["newsletter-tool"], video = ["peertube"] }
        host_sources = { "mail.google.com" = "email", "tube.example" = "peertube" }
        click_ids = { fbclid = { source = "facebook", medium = "social" } }

        [[channels.extra_rules]]
        channel = "Audio"
        any_of = [{ field = "medium", one_of = ["podcast", "radio"] }]
    """)
    rules = ChannelRules.from_overrides(config["channels"])
    assert classify(utm("x", "radio"), rules).channel == "Audio"
    # the host is renamed, but GA4's Referral rule (medium "referral") precedes Email
    assert classify(via("https://mail.google.com/mail/u/0"), rules) == Classified(
        "Referral", "email", "referral", None)
    assert classify(via("https://tube.example/w/1"), rules).channel == "Organic Video"
    assert classify(landing("fbclid=1"), rules).channel == "Organic Social"
    assert classify(landing("fbclid=1")).channel == "Paid Social"  # defaults untouched


def test_replacing_the_whole_rule_table() -> None:
    rules = ChannelRules.from_overrides({
        "rules": [{"channel": "Paid", "all_of": [{"field": "medium", "matches": "^(cpc|paid)$"}]}],
        "fallback_channel": "Other",
    })
    assert rules.channel_names == ("Paid", "Other")
    assert classify(utm("google", "cpc"), rules).channel == "Paid"
    assert classify(TrafficSignals(), rules).channel == "Other"


@pytest.mark.parametrize(("overrides", "message"), [
    ({"colour": "red"}, "unknown key(s) in [channels]: colour"),
    ({"rules": [{"channel": "X", "all_of": [{"field": "medium", "matches": "(("}]}]},
     "invalid regex"),
    ({"rules": [{"channel": "X", "all_of": [{"field": "medium", "one_of": ["a"],
                                             "contains": "b"}]}]}, "exactly one of"),
    ({"rules": [{"channel": "X", "all_of": [{"field": "medium"}]}]}, "exactly one of"),
    ({"rules": [{"channel": "X", "all_of": [{"field": "referrer", "one_of": ["a"]}]}]},
     "channels.rules.0.all_of.0.field"),
    ({"rules": [{"channel": "X"}]}, "has no condition"),
    ({"rules": []}, "rules is empty"),
    ({"extra_rules": [{"channel": "X", "any_of": [{"field": "source", "in_list": "nope"}]}]},
     "unknown source list 'nope'"),
    ({"extra_rules": [{"channel": "X", "before": "Nowhere",
                       "any_of": [{"field": "source", "one_of": ["a"]}]}]},
     "before names no rule's channel"),
    ({"extra_sources": {"email": "newsletter-tool"}}, "must be a list"),
    ({"host_sources": ["google.*"]}, "must be a table"),
    ({"click_ids": {"yclid": {"source": "yandex"}}}, "channels.click_ids.yclid.medium"),
    ({"source_lists": {"search": None}}, "channels.source_lists.search"),
])
def test_bad_overrides_raise_clear_config_errors(overrides: dict[str, object],
                                                 message: str) -> None:
    with pytest.raises(ConfigError) as info:
        ChannelRules.from_overrides(overrides)
    assert message in str(info.value)


# --- properties -------------------------------------------------------------------------

_text = st.none() | st.text(max_size=40)
_HOSTS = ["www.google.com", "l.facebook.com", "lnkd.in", "t.co", "www.youtube.com",
          "amazon.de", "shop.example.com", "blog.partner.io", "bücher.de", "[::1", "%zz", ""]
_KEYS = ["utm_source", "utm_medium", "utm_campaign", "gclid", "fbclid", "msclkid", "x"]


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https://", "http://", "//", "", "android-app://"]))
    host = draw(st.sampled_from(_HOSTS) | st.text(max_size=12))
    pairs = draw(st.lists(st.tuples(st.sampled_from(_KEYS), st.text(max_size=12)), max_size=4))
    query = "&".join(f"{k}={v}" for k, v in pairs)
    return f"{scheme}{host}/{draw(st.text(max_size=8))}?{query}"


_url_or_text = _text | _urls()
_signals = st.builds(TrafficSignals, utm_source=_text, utm_medium=_text, utm_campaign=_text,
                     referrer=_url_or_text, page_url=_url_or_text, explicit_channel=_text)
_CUSTOM = ChannelRules.from_overrides({
    "extra_sources": {"email": ["newsletter-tool"]},
    "extra_rules": [
        {"channel": "Podcasts", "any_of": [{"field": "medium", "one_of": ["podcast"]}]}],
    "fallback_channel": "Other",
})


@settings(deadline=None, max_examples=300)
@given(signals=_signals, rules=st.sampled_from([DEFAULT_RULES, _CUSTOM]))
def test_classify_never_raises_and_names_a_known_channel(signals: TrafficSignals,
                                                         rules: ChannelRules) -> None:
    got = classify(signals, rules)
    explicit = signals.explicit_channel
    if explicit is not None and explicit.strip():
        assert got.channel == explicit
    else:
        assert got.channel in rules.channel_names
    assert got.source and got.medium
    assert got.source == got.source.lower() or got.source.startswith("(")
    assert got.medium == got.medium.lower()


@settings(deadline=None, max_examples=300)
@given(signals=_signals)
def test_signature_agrees_with_classification(signals: TrafficSignals) -> None:
    signature = campaign_signature(signals)
    got = classify(TrafficSignals(signals.utm_source, signals.utm_medium, signals.utm_campaign,
                                  signals.referrer, signals.page_url))
    if signature is None:
        assert got == Classified("Direct", "(direct)", "(none)", None)
    else:
        assert signature == (got.source, got.medium, got.campaign)
