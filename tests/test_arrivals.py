"""Vectorised channel classification: row for row what classify / campaign_signature give."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import astuple

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.arrivals import OUTPUT_COLUMNS, SIGNAL_COLUMNS, classify_arrivals
from attribution.channels import (
    DEFAULT_RULES,
    ChannelRules,
    TrafficSignals,
    campaign_signature,
    classify,
)
from tests.test_channels import CASES
from traffic.calls import _landing
from traffic.catalogue import ALL_CAMPAIGNS, SAAS, SHOP

SITE = "https://shop.example.com/landing"
Row = tuple[str | None, ...]


def frame(signals: Sequence[TrafficSignals]) -> pl.DataFrame:
    return pl.DataFrame([astuple(s) for s in signals], orient="row",
                        schema=dict.fromkeys(SIGNAL_COLUMNS, pl.String))


def one_by_one(signals: Sequence[TrafficSignals], rules: ChannelRules) -> list[Row]:
    rows: list[Row] = []
    for s in signals:
        got, signature = classify(s, rules), campaign_signature(s, rules)
        rows.append((got.channel, got.source, got.medium, got.campaign,
                     *(signature if signature is not None else (None, None, None))))
    return rows


def assert_same(signals: Sequence[TrafficSignals], rules: ChannelRules = DEFAULT_RULES) -> None:
    got = classify_arrivals(frame(signals), rules)
    assert got.columns == list(OUTPUT_COLUMNS)
    assert got.rows() == one_by_one(signals, rules)


def arrival(signals: TrafficSignals, rules: ChannelRules = DEFAULT_RULES) -> Row:
    got: Row = classify_arrivals(frame([signals]), rules).row(0)
    return got


def landing(query: str, referrer: str | None = None) -> TrafficSignals:
    return TrafficSignals(page_url=f"{SITE}?{query}", referrer=referrer)


def as_query(signals: TrafficSignals) -> TrafficSignals:
    """The same utm fields carried in the landing URL's query instead."""
    parts = [f"{k}={v}" for k, v in (("utm_source", signals.utm_source),
                                     ("utm_medium", signals.utm_medium),
                                     ("utm_campaign", signals.utm_campaign)) if v]
    return TrafficSignals(referrer=signals.referrer, explicit_channel=signals.explicit_channel,
                          page_url=signals.page_url if not parts else f"{SITE}?{'&'.join(parts)}")


# --- hand cases: every GA4 channel, in the fields and in the URL -------------------------


@pytest.mark.parametrize(("signals", "channel", "source", "medium", "campaign"), CASES)
def test_every_ga4_case(signals: TrafficSignals, channel: str, source: str, medium: str,
                        campaign: str | None) -> None:
    assert arrival(signals)[:4] == (channel, source, medium, campaign)
    if signals.utm_source or signals.utm_medium:
        assert arrival(as_query(signals))[:4] == (channel, source, medium, campaign)


def test_a_batch_of_every_case_keeps_order_and_length() -> None:
    signals = [s for s, *_ in CASES] + [as_query(s) for s, *_ in CASES]
    signals = signals + signals[::-1]
    got = classify_arrivals(frame(signals))
    assert got.height == len(signals)
    assert got["channel"].to_list()[:len(CASES)] == [c for _, c, *_ in CASES]
    assert_same(signals)


CLICK_IDS = [
    ("gclid", "Paid Search", "google", "cpc"), ("gbraid", "Paid Search", "google", "cpc"),
    ("wbraid", "Paid Search", "google", "cpc"), ("dclid", "Paid Search", "google", "cpc"),
    ("msclkid", "Paid Search", "bing", "cpc"), ("fbclid", "Paid Social", "facebook", "paid"),
    ("li_fat_id", "Paid Social", "linkedin", "paid"), ("ttclid", "Paid Social", "tiktok", "paid"),
    ("twclid", "Paid Social", "twitter", "paid"),
]


@pytest.mark.parametrize(("param", "channel", "source", "medium"), CLICK_IDS)
def test_click_ids(param: str, channel: str, source: str, medium: str) -> None:
    signals = landing(f"a=1&{param}=Cj0KCQ&utm_campaign=Spring", "https://www.google.com/")
    assert arrival(signals) == (channel, source, medium, "Spring", source, medium, "Spring")
    upper = landing(f"{param.upper()}=x")
    assert arrival(upper) == (channel, source, medium, None, source, medium, None)


# (query, source, medium, campaign) of a landing with no referrer
QUERIES: list[tuple[str, str, str, str | None]] = [
    # the first click id in rule order wins; blank ones (also once decoded) do not count
    ("fbclid=a&gclid=b", "google", "cpc", None),
    ("gclid=&fbclid=a", "facebook", "paid", None),
    ("gclid=", "(direct)", "(none)", None),
    ("gclid=%20&x=1", "(direct)", "(none)", None),
    ("gclid=+", "(direct)", "(none)", None),
    ("gclid=%41", "google", "cpc", None),
    ("gclid=#x", "(direct)", "(none)", None),
    ("x=1&gclid=&gclid=b", "google", "cpc", None),
    # encoded keys and values are decoded, '+' is a space, values are stripped
    ("utm_source=Goo%67le&utm_medium=cp%63", "google", "cpc", None),
    ("utm%5Fsource=bing&utm_medium=cpc", "bing", "cpc", None),
    ("%20utm_source=bing&utm_medium=cpc", "bing", "cpc", None),
    ("utm_source=bing&utm_medium=cpc&utm_campaign=spring+sale", "bing", "cpc", "spring sale"),
    ("utm_source=bing&utm_medium=cpc&utm_campaign=spring%20sale%21", "bing", "cpc",
     "spring sale!"),
    ("utm_source=bing&utm_medium=cpc&utm_campaign=+%20+", "bing", "cpc", None),
    ("utm+source=bing", "(direct)", "(none)", None),
    # blank and duplicate parameters: the first non-blank value
    ("utm_source=&utm_source=bing&utm_medium=cpc", "bing", "cpc", None),
    ("utm_source=%20&utm_source=bing&utm_medium=cpc", "bing", "cpc", None),
    ("utm_source=bing&utm_source=google&utm_medium=cpc&utm_medium=email", "bing", "cpc", None),
    ("utm_source&utm_medium=cpc", "(not set)", "cpc", None),
    ("utm_campaign=a=b", "(direct)", "(none)", "a=b"),
    # upper-case keys; values keep their case only in the campaign
    ("UTM_SOURCE=Newsletter&Utm_Medium=EMAIL&uTm_CaMpAiGn=May", "newsletter", "email", "May"),
    # the fragment is not the query; a second '?' belongs to a value
    ("utm_source=bing&utm_medium=cpc#utm_source=google", "bing", "cpc", None),
    ("utm_medium=cpc#x&utm_source=google", "(not set)", "cpc", None),
    ("a=x?utm_source=bing&utm_medium=cpc", "(not set)", "cpc", None),
    ("utm_source=www.Google.com&utm_medium=cpc", "google", "cpc", None),
]


@pytest.mark.parametrize(("query", "source", "medium", "campaign"), QUERIES)
def test_query_parsing(query: str, source: str, medium: str, campaign: str | None) -> None:
    got = arrival(landing(query))
    assert got[1:4] == (source, medium, campaign)
    assert_same([landing(query), landing(query, "https://www.bing.com/")])


# (page_url, referrer, channel, source, medium)
URLS: list[tuple[str | None, str | None, str, str, str]] = [
    # internal navigation, with and without "www." on either side
    ("https://shop.example.com/", "https://www.shop.example.com/cart", "Direct", "(direct)",
     "(none)"),
    ("https://www.shop.example.com/", "https://shop.example.com/cart", "Direct", "(direct)",
     "(none)"),
    ("https://shop.example.com.:8443/x", "http://SHOP.example.com/y", "Direct", "(direct)",
     "(none)"),
    ("https://shop.example.com/", "https://blog.example.com/", "Referral", "blog.example.com",
     "referral"),
    ("https://shop.example.com/", "https://www.google.co.uk/search?q=x#top", "Organic Search",
     "google", "organic"),
    # scheme-less, protocol-relative and app referrers
    ("shop.example.com/landing?utm_source=crm&utm_medium=email", None, "Email", "crm", "email"),
    (None, "google.com/search?q=1", "Organic Search", "google", "organic"),
    ("//shop.example.com/?gclid=1", "//www.bing.com/", "Paid Search", "google", "cpc"),
    ("https://shop.example.com/", "android-app://com.google.android.googlequicksearchbox/",
     "Organic Search", "google", "organic"),
    ("?utm_source=bing&utm_medium=cpc", None, "Paid Search", "bing", "cpc"),
    ("localhost:8000/?utm_source=bing&utm_medium=cpc", None, "Paid Search", "bing", "cpc"),
    # ports, user info, IPv6 literals (a broken one parses to nothing)
    ("https://user:pw@shop.example.com:8443/?gclid=1", None, "Paid Search", "google", "cpc"),
    ("http://[::1]:8080/?utm_source=bing&utm_medium=cpc", None, "Paid Search", "bing", "cpc"),
    ("http://[::1/?utm_source=bing&utm_medium=cpc", "http://[bad/", "Direct", "(direct)",
     "(none)"),
    ("https://sh%6Fp.example.com/", "https://sh%6Fp.example.com/", "Direct", "(direct)",
     "(none)"),
    # '&' in the path, odd schemes, whitespace the parsers strip or remove
    ("https://shop.example.com/a&utm_source=x?gclid=1", None, "Paid Search", "google", "cpc"),
    ("HTTPS://shop.example.com/?GCLID=1", None, "Paid Search", "google", "cpc"),
    ("mailto:x://y?utm_source=bing&utm_medium=cpc", None, "Paid Search", "bing", "cpc"),
    ("  https://shop.example.com/?utm_source=bing&utm_medium=cpc  ", None, "Paid Search",
     "bing", "cpc"),
    ("https://shop.example.com/?utm_sou\trce=bing&utm_medium=cpc", None, "Paid Search", "bing",
     "cpc"),
    ("https://shop.example.com/?gclid=\u00a0", None, "Direct", "(direct)", "(none)"),
    ("https://shop.example.com/?gclid=x ", None, "Paid Search", "google", "cpc"),
    ("https://shop.example.com/?gclid=", None, "Direct", "(direct)", "(none)"),
    # unicode: hosts, values, and a key that lower-cases to a click id (Kelvin sign)
    ("https://bücher.de/?utm_source=bücher&utm_medium=cpc", "https://bücher.de/", "Paid Other",
     "bücher", "cpc"),
    ("https://shop.example.com/?mscl\u212aid=1", None, "Paid Search", "bing", "cpc"),
    ("https://ex\u2100ample.com/?gclid=1", None, "Direct", "(direct)", "(none)"),
    ("https://shop.example.com/\u00fc#x&utm_source=bing&utm_medium=cpc", None, "Direct",
     "(direct)", "(none)"),
    ("https://shop.example.com/\u00fc?a=x?utm_source=bing&utm_medium=cpc", None, "Paid Other",
     "(not set)", "cpc"),
    ("", "", "Direct", "(direct)", "(none)"),
    ("   ", " \t ", "Direct", "(direct)", "(none)"),
]


@pytest.mark.parametrize(("page", "referrer", "channel", "source", "medium"), URLS)
def test_urls(page: str | None, referrer: str | None, channel: str, source: str,
              medium: str) -> None:
    signals = TrafficSignals(page_url=page, referrer=referrer)
    assert arrival(signals)[:3] == (channel, source, medium)
    assert_same([signals, signals])


def test_explicit_fields_and_channel() -> None:
    cases = [
        (TrafficSignals(explicit_channel="Sales Meeting"),
         ("Sales Meeting", "(offline)", "offline", None, None, None, None)),
        (TrafficSignals(explicit_channel="Webinar", utm_source="Zoom", utm_medium="webinar",
                        utm_campaign="Q3"),
         ("Webinar", "zoom", "webinar", "Q3", "zoom", "webinar", "Q3")),
        (TrafficSignals(explicit_channel=" Trade Show ", referrer=SITE, page_url=SITE),
         (" Trade Show ", "(offline)", "offline", None, None, None, None)),
        (TrafficSignals(explicit_channel="  ", page_url=f"{SITE}?gclid=1"),
         ("Paid Search", "google", "cpc", None, "google", "cpc", None)),
        # explicit utm fields beat the query; blank ones fall back to it
        (TrafficSignals(utm_source="bing", utm_medium="cpc",
                        page_url=f"{SITE}?utm_source=google&utm_medium=organic&utm_campaign=c"),
         ("Paid Search", "bing", "cpc", "c", "bing", "cpc", "c")),
        (TrafficSignals(utm_source="  ", utm_medium="", utm_campaign=" ",
                        page_url=f"{SITE}?utm_source=bing&utm_medium=cpc&utm_campaign=c"),
         ("Paid Search", "bing", "cpc", "c", "bing", "cpc", "c")),
        (TrafficSignals(utm_campaign="launch"),
         ("Direct", "(direct)", "(none)", "launch", "(direct)", "(none)", "launch")),
    ]
    for signals, expected in cases:
        assert arrival(signals) == expected
    assert_same([s for s, _ in cases])


def test_ignored_referrers_and_custom_click_ids() -> None:
    rules = ChannelRules.from_overrides({
        "ignored_referrers": ["example.com", "paypal.com"],
        "click_ids": {"yclid": {"source": "yandex", "medium": "cpc"},
                      "my id": {"source": "mine", "medium": "paid"}},
    })
    via_blog = TrafficSignals(referrer="https://blog.example.com/post", page_url=SITE)
    assert arrival(via_blog) == ("Referral", "blog.example.com", "referral", None,
                                 "blog.example.com", "referral", None)
    assert arrival(via_blog, rules)[:3] == ("Direct", "(direct)", "(none)")
    assert arrival(TrafficSignals(referrer="https://www.paypal.com/x"), rules)[4] is None
    # a click id the regexes cannot look for ("my id") sends every query to the exact path
    assert arrival(landing("yclid=1"), rules)[:3] == ("Paid Search", "yandex", "cpc")
    assert arrival(landing("my+id=1"), rules)[:3] == ("Paid Other", "mine", "paid")
    assert arrival(landing("my%20id=1&yclid=2"), rules)[:3] == ("Paid Search", "yandex", "cpc")
    assert_same([via_blog, landing("yclid=1"), landing("my+id=1"), landing("gclid=1"),
                 TrafficSignals(page_url=SITE)], rules)


def test_a_replaced_rule_table() -> None:
    rules = ChannelRules.from_overrides({
        "rules": [{"channel": "Paid", "all_of": [{"field": "medium", "matches": "^(cpc|paid)$"}]}],
        "fallback_channel": "Other", "click_ids": {"utm_campaign": {"source": "x", "medium": "y"}},
    })
    assert arrival(landing("utm_source=google&utm_medium=cpc"), rules)[0] == "Paid"
    assert arrival(TrafficSignals(), rules)[0] == "Other"
    # a click id named like a utm key: its value is the campaign, its presence the click
    assert arrival(landing("utm_campaign=c1"), rules) == ("Other", "x", "y", "c1", "x", "y", "c1")
    assert arrival(landing("utm_campaign="), rules)[:3] == ("Other", "(direct)", "(none)")


def test_input_shapes() -> None:
    empty = classify_arrivals(frame([]))
    assert empty.height == 0 and empty.columns == list(OUTPUT_COLUMNS)
    nulls = pl.DataFrame({c: [None, None] for c in SIGNAL_COLUMNS})  # dtype Null
    assert classify_arrivals(nulls).rows() == [("Direct", "(direct)", "(none)", None,
                                                None, None, None)] * 2
    extra = frame([landing("gclid=1")]).with_columns(pl.lit(1).alias("event_id"))
    assert classify_arrivals(extra)["channel"].to_list() == ["Paid Search"]
    with pytest.raises(ValueError, match="needs the columns page_url"):
        classify_arrivals(frame([]).drop("page_url"))
    with pytest.raises(TypeError, match="utm_source must be String"):
        classify_arrivals(frame([]).with_columns(pl.col("utm_source").cast(pl.Int64)))


def test_the_same_combination_across_batches_and_rule_tables() -> None:
    custom = ChannelRules.from_overrides({"click_ids": {"fbclid": {"source": "facebook",
                                                                   "medium": "social"}}})
    signals = [landing(f"fbclid=IwAR{i}") for i in range(5)]
    for _ in range(2):  # the second time from the cache of combinations
        assert set(classify_arrivals(frame(signals))["channel"]) == {"Paid Social"}
        assert set(classify_arrivals(frame(signals), custom)["channel"]) == {"Organic Social"}


def test_batches_that_repeat_extend_and_overflow_the_known_combinations() -> None:
    rules = ChannelRules.from_overrides({"fallback_channel": "Other"})  # a table of its own
    tagged = [landing(f"utm_source=s{i % 7}&utm_medium=cpc&utm_campaign=c{i}&gclid=x{i}")
              for i in range(40)]
    odd = [TrafficSignals(page_url=f" {SITE}?gclid={i}", referrer=f"ref{i}.example/")
           for i in range(5)]
    many = [TrafficSignals(utm_source="crm", utm_medium="email", utm_campaign=f"n{i}")
            for i in range(5_000)]  # more combinations than the table keeps
    for batch in (tagged[:20] * 2, tagged + odd, many, tagged[10:] + odd[:2] * 2, tagged):
        assert_same(batch, rules)


# --- properties: hostile strings and URLs ----------------------------------------------

_KEYS = ["utm_source", "utm_medium", "utm_campaign", "UTM_Source", "utm%5Fsource", " utm_medium",
         "gclid", "GCLID", "fbclid", "msclkid", "mscl\u212aid", "li_fat_id", "yclid", "my id",
         "utm+campaign", "x", "", "a=b"]
_VALUES = ["google", "cpc", "Spring Sale", "spring+sale", "%20", "+", "", " ", "%", "%zz",
           "e%CC%81", "IwAR0abc", "a?b", "a#b", "a=b", "ü", "\t", "x\ny", "www.Bing.com."]
_HOSTS = ["shop.example.com", "www.shop.example.com", "www.google.com", "l.facebook.com",
          "t.co", "blog.example.com", "www.paypal.com", "bücher.de", "[::1]", "[::1", "a@b.com",
          "h%41st.com", "host:8080", "ex\u2100ample.com", "", " "]
_SCHEMES = ["https://", "http://", "HTTPS://", "//", "", "android-app://", "mailto:", " https://",
            "ht tp://"]
_text = st.text(max_size=12)
_piece = st.sampled_from(_VALUES) | _text


@st.composite
def _urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(_SCHEMES))
    host = draw(st.sampled_from(_HOSTS) | _text)
    path = draw(st.sampled_from(["/", "/landing", "/a&utm_source=x", "/a?b", "", "/ü", "/#x"])
                | _text)
    pairs = draw(st.lists(st.tuples(st.sampled_from(_KEYS) | _text, _piece), max_size=5))
    query = "&".join(draw(st.sampled_from(["{}={}", "{}", "{}={}&", "&{}={}"])).format(k, v)
                     for k, v in pairs)
    fragment = draw(st.sampled_from(["", "#top", "#x&utm_source=frag", "#?gclid=1"]))
    tail = draw(st.sampled_from(["", "", "=", " ", "\n", "%"]))
    mark = "?" if pairs else draw(st.sampled_from(["?", ""]))
    return f"{scheme}{host}{path}{mark}{query}{fragment}{tail}"


# near-simple URLs: printable ASCII, so most take the vectorised path and the rest show
# exactly where it must step aside
_PRINTABLE = "".join(map(chr, range(33, 127)))
_ascii_key = st.sampled_from(["utm_source", "UTM_SOURCE", "utm_medium", "Utm_Medium",
                              "utm_campaign", "gclid", "GCLID", "fbclid", "msclkid", "ttclid",
                              "yclid", "x", "utm_sourcex", "xutm_source", "utm%5Fsource",
                              "utm_sou\trce", " utm_medium", "gclid\u00a0", "my+id"]) \
    | st.text(alphabet=_PRINTABLE, max_size=6)
_ascii_value = st.sampled_from(["google", "cpc", "Spring", "www.Bing.com", "a%20b", "a+b", "%41",
                                "", "", "%20", "+", "=", "a=b", "?", "\u00a0", " x"]) \
    | st.text(alphabet=_PRINTABLE, max_size=8)


@st.composite
def _ascii_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["https://", "http://", "//", "HTTP://", "a+b.c-d://"]))
    host = draw(st.sampled_from(["shop.example.com", "www.google.com", "t.co", "[::1]",
                                 "user@host.com", "h:1"]) | st.text(alphabet=_PRINTABLE,
                                                                    max_size=8))
    path = draw(st.text(alphabet=_PRINTABLE, max_size=8))
    pairs = draw(st.lists(st.tuples(_ascii_key, _ascii_value), max_size=5))
    bare = draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    query = "&".join(k if alone and k else f"{k}={v}"
                     for (k, v), alone in zip(pairs, bare, strict=True))
    return f"{scheme}{host}/{path}?{query}{draw(st.sampled_from(['', '#f', '#&gclid=1']))}"


_value = st.none() | st.sampled_from(["", " ", "google", "Bing", "cpc", "EMAIL", "Sales Call"]) \
    | st.text(max_size=20)
_url = st.none() | _urls() | _ascii_urls() | _ascii_urls() | st.text(max_size=40) \
    | st.text(min_size=300, max_size=2000) | st.text(alphabet="%+&=?#/: .", max_size=30)
_hostile = st.builds(TrafficSignals, utm_source=_value, utm_medium=_value, utm_campaign=_value,
                     referrer=_url, page_url=_url,
                     explicit_channel=st.none() | st.sampled_from(["", " ", "Webinar"]))

# landing URLs whose query decides the classification: the keys that matter in any case,
# spelled and encoded every way parse_qsl reads, with blank, encoded and odd values
_TARGETS = ["utm_source", "utm_medium", "utm_campaign", "gclid", "fbclid", "msclkid", "yclid"]
_SPELLINGS = ["utm_sourcex", "%75tm_source", "utm%5Fsource", "utm+source", "%20utm_medium",
              " utm_source", "utm_sou\trce", "gclid\u00a0", "mscl\u212aid", "a?utm_source",
              "gcl%69d", "x", ""]
_SOME_VALUES = ["google", "Bing", "www.google.com", "cpc", "email", "Spring", "IwAR0b", "a=b",
                "a?b", "Goo%67le", "spring+sale", "%zz", "a%", "%41", "\u00fc", "x y"]
_BLANKS = ["", "%20", "+", " ", "+%20", "%09", "\u00a0"]


@st.composite
def _key(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) < 3:
        return draw(st.sampled_from(_SPELLINGS))
    key = draw(st.sampled_from(_TARGETS))
    case = draw(st.sampled_from([str.lower, str.upper, str.title, str.swapcase]))
    return str(case(key))


@st.composite
def _queried(draw: st.DrawFn) -> TrafficSignals:
    params = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(_key())
        value = draw(st.sampled_from(_SOME_VALUES) | st.sampled_from(_BLANKS))
        params.append(draw(st.sampled_from([f"{key}={value}"] * 4 + [key, ""])))
    path = draw(st.sampled_from(["/p", "/", "/a&utm_source=zz", "/p#h", "", "/\u00fc"]))
    end = draw(st.sampled_from(["", "", "#frag", "#&gclid=1", "#?utm_source=f", "=", "&"]))
    page = f"https://shop.example.com{path}?{'&'.join(params)}{end}"
    referrer = draw(st.sampled_from([None, "https://www.google.com/", "https://shop.example.com/",
                                     "https://blog.example.com/x"]))
    fields = draw(st.sampled_from([(None, None, None), ("", " ", None), (None, None, "c")]))
    return TrafficSignals(*fields, referrer=referrer, page_url=page)


CUSTOM = ChannelRules.from_overrides({
    "extra_sources": {"email": ["newsletter-tool"]},
    "extra_rules": [{"channel": "Podcasts", "any_of": [{"field": "medium",
                                                        "one_of": ["podcast"]}]}],
    "click_ids": {"yclid": {"source": "yandex", "medium": "cpc"},
                  "fbclid": {"source": "facebook", "medium": "social"}},
    "ignored_referrers": ["example.com"],
    "fallback_channel": "Other",
})
UNLOOKABLE = ChannelRules.from_overrides({"click_ids": {"my id": {"source": "m", "medium": "p"}}})
_rules = st.sampled_from([DEFAULT_RULES, CUSTOM, UNLOOKABLE])


@settings(deadline=None, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(signals=st.lists(_hostile, min_size=1, max_size=12), rules=_rules)
def test_hostile_signals_classify_as_one_by_one(signals: list[TrafficSignals],
                                                rules: ChannelRules) -> None:
    assert_same(signals + signals[:3], rules)


@settings(deadline=None, max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(signals=st.lists(_queried(), min_size=1, max_size=12), rules=_rules)
def test_tricky_queries_classify_as_one_by_one(signals: list[TrafficSignals],
                                               rules: ChannelRules) -> None:
    assert_same(signals, rules)


# --- properties: realistic landings built like the traffic generator's ------------------


@st.composite
def _campaign_landings(draw: st.DrawFn) -> TrafficSignals:
    campaign = draw(st.sampled_from(ALL_CAMPAIGNS))
    rng = random.Random(draw(st.integers(0, 2**32)))
    tagged, click_id = draw(st.booleans()), draw(st.booleans())
    got = _landing(rng, campaign, draw(st.sampled_from(["/", "/products/trail-runner-2",
                                                        "/pricing", "/blog/a"])),
                   tagged=tagged, click_id=click_id)
    site = draw(st.sampled_from([SHOP, SAAS, f"www.{SHOP}"]))
    query = got.query
    if query and draw(st.booleans()):  # how real URLs vary: case, order, extra parameters
        params = query[1:].split("&")
        params = draw(st.permutations(params))
        extra = draw(st.lists(st.sampled_from(["_gl=1*abc", "ref=nav", "utm_source=dup",
                                               "gclid=", "mc_eid=9f2%20a", "q=a+b"]),
                              max_size=2))
        if draw(st.booleans()):
            params = [p.upper() if p.startswith("utm_") else p for p in params]
        query = "?" + "&".join([*params, *extra])
    fragment = draw(st.sampled_from(["", "", "#reviews"]))
    page = f"https://{site}{got.path}{query}{fragment}"
    utm = got.utm if draw(st.booleans()) else None  # context.campaign, when the SDK sent it
    return TrafficSignals(
        utm_source=utm.source if utm else None, utm_medium=utm.medium if utm else None,
        utm_campaign=utm.name if utm else None, referrer=got.referrer or None, page_url=page,
        explicit_channel=None)


@st.composite
def _internal_pages(draw: st.DrawFn) -> TrafficSignals:
    landed = draw(_campaign_landings())
    site = draw(st.sampled_from([SHOP, SAAS]))
    return TrafficSignals(referrer=landed.page_url, page_url=f"https://{site}/cart")


@settings(deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(signals=st.lists(_campaign_landings() | _internal_pages(), min_size=1, max_size=40),
       rules=_rules)
def test_realistic_landings_classify_as_one_by_one(signals: list[TrafficSignals],
                                                   rules: ChannelRules) -> None:
    assert_same(signals, rules)


# --- the repository's generated traffic -------------------------------------------------


def test_generated_touch_heavy_traffic() -> None:
    from attribution.normalize import signals_of
    from schemas.wire import parse_event
    from traffic.generate import TrafficSpec, generate_events

    signals = [signals_of(parse_event(raw)[0]) for raw in
               generate_events(TrafficSpec(touch_heavy=True, b2c_visitors=2000))
               if raw.get("type") == "page"]
    assert len(signals) > 10_000
    got = classify_arrivals(frame(signals))
    assert got.rows() == one_by_one(signals, DEFAULT_RULES)
    channels = set(got["channel"])
    assert {"Paid Search", "Paid Social", "Display", "Affiliates", "Email",
            "Organic Search", "Direct"} <= channels
    for size in (1_000, 333):  # in stream-envelope sized batches as well
        parts = [classify_arrivals(frame(signals[i:i + size]))
                 for i in range(0, len(signals), size)]
        assert pl.concat(parts).equals(got)
