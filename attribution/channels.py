"""Channel classification: GA4's default channel groups as a rule table that is data.

A landing's (source, medium, campaign) is resolved from, in order: utm_* parameters
(explicit fields, else the landing URL's query), an ad click id in the landing URL,
the referrer (search engine -> "organic", other external host -> "referral"), else
"(direct)" / "(none)". The channel is then the first rule of ``ChannelRules.rules``
that matches, as in GA4's default channel group (support.google.com/analytics/answer/
9756891): Direct, Cross-network, Paid Shopping, Paid Search, Paid Social, Paid Video,
Display, Paid Other, Organic Shopping, Organic Social, Organic Video, Organic Search,
Referral, Email, Affiliates, Audio, SMS, Mobile Push Notifications, else Unassigned.

Deviations from GA4, all of them data a ``[channels]`` config section can change:
- GA4's source lists are long spreadsheets of names *and* host names; here hosts are
  first mapped to a name (``host_sources``: "l.facebook.com" -> "facebook",
  "www.google.co.uk" -> "google") so the lists hold names only and stay short.
- Google Ads auto-tagging rules (campaign type from the Ads account) are not
  available; a gclid is plain google / cpc, i.e. Paid Search.
- ``fbclid`` is mapped to facebook / paid (Paid Social), but Meta also appends it to
  organic links shared on Facebook and Instagram; map it to medium "social" if most of
  your Meta traffic is organic.
- Matching is case-insensitive (source and medium are lower-cased first).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from attribution.policy import ConfigError

DIRECT_SOURCE = "(direct)"
DIRECT_MEDIUM = "(none)"
NOT_SET = "(not set)"
OFFLINE_SOURCE = "(offline)"
OFFLINE_MEDIUM = "offline"
ORGANIC_MEDIUM = "organic"
REFERRAL_MEDIUM = "referral"
SEARCH_LIST = "search"  # the source list whose referrers get medium "organic"

PAID_MEDIUM = r"^(.*cp.*|ppc|retargeting|paid.*)$"
SHOPPING_CAMPAIGN = r"^(.*(([^a-df-z]|^)shop|shopping).*)$"

SignalField = Literal["source", "medium", "campaign"]
_FIELD_INDEX: dict[str, int] = {"source": 0, "medium": 1, "campaign": 2}


@dataclass(frozen=True, slots=True)
class TrafficSignals:
    """What a page view or interaction event says about where the visitor came from."""

    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    referrer: str | None = None  # full URL of the referring page
    page_url: str | None = None  # landing page URL; its query may carry utm_* and click ids
    explicit_channel: str | None = None  # properties.channel: overrides every rule


@dataclass(frozen=True, slots=True)
class Classified:
    channel: str
    source: str
    medium: str
    campaign: str | None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _lower(value: str) -> str:
    return value.strip().lower()


class Condition(_Frozen):
    """One test on a resolved field; set exactly one operator."""

    field: SignalField
    one_of: tuple[str, ...] | None = None  # equals one of these
    in_list: str | None = None  # equals a member of ``ChannelRules.source_lists[in_list]``
    matches: str | None = None  # regex, searched (anchor it with ^...$ for a full match)
    contains: str | None = None
    ends_with: str | None = None

    @field_validator("one_of", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("one_of")
    @classmethod
    def _lower_values(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(_lower(v) for v in value)

    @field_validator("contains", "ends_with")
    @classmethod
    def _lower_text(cls, value: str | None) -> str | None:
        return None if value is None else _lower(value)

    @field_validator("matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex {value!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _exactly_one_operator(self) -> Condition:
        ops = [name for name in _OPERATORS if getattr(self, name) is not None]
        if len(ops) != 1:
            raise ValueError(
                f"a condition needs exactly one of {', '.join(_OPERATORS)}; got {ops or 'none'}"
            )
        return self


_OPERATORS = ("one_of", "in_list", "matches", "contains", "ends_with")


class ChannelRule(_Frozen):
    """``channel`` if every ``all_of`` condition holds and (when given) any ``any_of`` one."""

    channel: str = Field(min_length=1)
    all_of: tuple[Condition, ...] = ()
    any_of: tuple[Condition, ...] = ()

    @model_validator(mode="after")
    def _has_a_condition(self) -> ChannelRule:
        if not self.all_of and not self.any_of:
            raise ValueError(f"rule for {self.channel!r} has no condition (all_of / any_of)")
        return self


class ClickId(_Frozen):
    """The source / medium an ad platform's click id in the landing URL stands for."""

    source: str = Field(min_length=1)
    medium: str = Field(min_length=1)

    @field_validator("source", "medium")
    @classmethod
    def _lowered(cls, value: str) -> str:
        return _lower(value)


# A resolved landing: (source, medium, lower-cased campaign or "").
_Values = tuple[str, str, str]
_Test = Callable[[_Values], bool]


@dataclass(frozen=True, slots=True)
class _Compiled:
    channel_of: Callable[[_Values], str]  # first matching rule's channel, else the fallback
    search_sources: frozenset[str]
    click_ids: tuple[tuple[str, str, str], ...]
    ignored_referrers: tuple[str, ...]
    source_of_host: Callable[[str], str]


class ChannelRules(_Frozen):
    """The whole classification table: source lists, host names, click ids, ordered rules."""

    source_lists: dict[str, tuple[str, ...]]
    # host (matches itself and its sub-domains) or "brand.*" (brand with any TLD) -> name
    host_sources: dict[str, str]
    # sub-domains that do not change the site ("m.", "l.") when matching "brand.*" hosts
    host_prefixes: tuple[str, ...] = ()
    click_ids: dict[str, ClickId]
    # referrers treated as internal navigation (payment pages, your other domains)
    ignored_referrers: tuple[str, ...] = ()
    rules: tuple[ChannelRule, ...]
    fallback_channel: str = Field(default="Unassigned", min_length=1)

    @field_validator("source_lists")
    @classmethod
    def _lower_lists(cls, value: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        return {name: tuple(dict.fromkeys(_lower(s) for s in names)) for name, names in
                value.items()}

    @field_validator("host_sources")
    @classmethod
    def _lower_hosts(cls, value: dict[str, str]) -> dict[str, str]:
        return {_lower(host): _lower(name) for host, name in value.items()}

    @field_validator("host_prefixes", "ignored_referrers")
    @classmethod
    def _lower_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_lower(v) for v in value)

    @field_validator("click_ids")
    @classmethod
    def _lower_params(cls, value: dict[str, ClickId]) -> dict[str, ClickId]:
        return {_lower(param): click for param, click in value.items()}

    @model_validator(mode="after")
    def _lists_exist(self) -> ChannelRules:
        if not self.rules:
            raise ValueError("rules is empty; give at least one rule")
        if SEARCH_LIST not in self.source_lists:
            raise ValueError(f"source_lists needs a {SEARCH_LIST!r} list (organic referrers)")
        known = ", ".join(sorted(self.source_lists))
        for i, rule in enumerate(self.rules):
            for cond in (*rule.all_of, *rule.any_of):
                if cond.in_list is not None and cond.in_list not in self.source_lists:
                    raise ValueError(f"rules[{i}] ({rule.channel}) names unknown source list "
                                     f"{cond.in_list!r}; known: {known}")
        _ = self._compiled  # compile now, so a bad table fails at config time
        return self

    @cached_property
    def _compiled(self) -> _Compiled:
        # cached_property, not PrivateAttr: pydantic compares private attrs in __eq__,
        # and private attribute reads go through a slow __getattr__.
        return _compile(self)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Every channel classify() can return without an explicit channel."""
        return tuple(dict.fromkeys([*(r.channel for r in self.rules), self.fallback_channel]))

    def source_of_host(self, host: str) -> str:
        """The source name of a host: "www.google.co.uk" -> "google", else the bare host."""
        return self._compiled.source_of_host(_clean_host(host))

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any],
                       base: ChannelRules | None = None) -> ChannelRules:
        """Apply a config ``[channels]`` section to ``base`` (default: the GA4 table)."""
        base = DEFAULT_RULES if base is None else base
        if not overrides:
            return base
        if not isinstance(overrides, Mapping):
            raise ConfigError("[channels] must be a table")
        unknown = sorted(set(overrides) - set(OVERRIDE_KEYS))
        if unknown:
            raise ConfigError(f"unknown key(s) in [channels]: {', '.join(unknown)}; "
                              f"known: {', '.join(OVERRIDE_KEYS)}")
        data = base.model_dump(exclude_none=True)
        for key, value in overrides.items():
            _apply_override(data, key, value)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError.from_validation("[channels] config", exc, "channels") from None


OVERRIDE_KEYS = (
    "source_lists",  # {name: [sources]}: replace these lists (new names allowed)
    "extra_sources",  # {name: [sources]}: append to these lists
    "host_sources",  # {host or "brand.*": name}: merged into the host map
    "host_prefixes",  # [labels]: replaces the list
    "click_ids",  # {param: {source, medium}}: merged into the map
    "ignored_referrers",  # [hosts]: replaces the list
    "rules",  # [rule]: replaces the whole ordered table
    "extra_rules",  # [rule (+ before = "Channel")]: inserted first, or before that channel
    "fallback_channel",  # name when no rule matches
)


def _apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    if key in ("source_lists", "host_sources", "click_ids", "extra_sources"):
        if not isinstance(value, Mapping):
            raise ConfigError(f"channels.{key} must be a table")
    elif key in ("host_prefixes", "ignored_referrers", "rules", "extra_rules") and not (
        isinstance(value, list | tuple)
    ):
        raise ConfigError(f"channels.{key} must be a list")
    if key == "extra_sources":
        lists = data["source_lists"]
        for name, names in value.items():
            if not isinstance(names, list | tuple):
                raise ConfigError(f"channels.extra_sources.{name} must be a list of sources")
            lists[name] = [*lists.get(name, ()), *names]
    elif key == "extra_rules":
        data["rules"] = _insert_rules(list(data["rules"]), value)
    elif key in ("source_lists", "host_sources", "click_ids"):
        data[key] = {**data[key], **value}
    else:
        data[key] = value


def _insert_rules(rules: list[Any], extra: list[Any] | tuple[Any, ...]) -> list[Any]:
    """Insert each extra rule first, or before the first rule of its ``before`` channel."""
    placed = 0
    for i, rule in enumerate(extra):
        if not isinstance(rule, Mapping):
            raise ConfigError(f"channels.extra_rules[{i}] must be a table")
        rule = dict(rule)
        before = rule.pop("before", None)
        if before is None:
            rules.insert(placed, rule)
            placed += 1
            continue
        at = next((j for j, r in enumerate(rules) if r.get("channel") == before), None)
        if at is None:
            raise ConfigError(f"channels.extra_rules[{i}].before names no rule's channel: "
                              f"{before!r}")
        rules.insert(at, rule)
    return rules


# --- compilation: rules become closures, host lookup gets a per-table cache ------------


def _compile_condition(cond: Condition, lists: Mapping[str, frozenset[str]]) -> _Test:
    i = _FIELD_INDEX[cond.field]
    if cond.one_of is not None:
        values = frozenset(cond.one_of)
        return lambda v: v[i] in values
    if cond.in_list is not None:
        members = lists[cond.in_list]
        return lambda v: v[i] in members
    if cond.matches is not None:
        search = re.compile(cond.matches, re.IGNORECASE).search
        return lambda v: search(v[i]) is not None
    if cond.contains is not None:
        needle = cond.contains
        return lambda v: needle in v[i]
    suffix = cond.ends_with or ""
    return lambda v: v[i].endswith(suffix)


def _compile(rules: ChannelRules) -> _Compiled:
    lists = {name: frozenset(names) for name, names in rules.source_lists.items()}
    table = tuple(
        (r.channel, tuple(_compile_condition(c, lists) for c in r.all_of),
         tuple(_compile_condition(c, lists) for c in r.any_of))
        for r in rules.rules
    )
    fallback = rules.fallback_channel

    @lru_cache(maxsize=65536)  # few distinct (source, medium, campaign) in real traffic
    def channel_of(values: _Values) -> str:
        return _first_match(table, values, fallback)
    domains = {h: s for h, s in rules.host_sources.items() if not h.endswith(".*")}
    brands = {h[:-2]: s for h, s in rules.host_sources.items() if h.endswith(".*")}
    prefixes = frozenset(rules.host_prefixes)

    @lru_cache(maxsize=16384)
    def source_of_host(host: str) -> str:
        return _host_to_source(host, domains, brands, prefixes)

    return _Compiled(
        channel_of=channel_of,
        search_sources=lists[SEARCH_LIST],
        click_ids=tuple((p, c.source, c.medium) for p, c in rules.click_ids.items()),
        ignored_referrers=rules.ignored_referrers,
        source_of_host=source_of_host,
    )


def _first_match(table: tuple[tuple[str, tuple[_Test, ...], tuple[_Test, ...]], ...],
                 values: _Values, fallback: str) -> str:
    for channel, all_of, any_of in table:  # plain loops: this is the hot path
        for test in all_of:
            if not test(values):
                break
        else:
            if not any_of:
                return channel
            for test in any_of:
                if test(values):
                    return channel
    return fallback


def _host_to_source(host: str, domains: Mapping[str, str], brands: Mapping[str, str],
                    prefixes: frozenset[str]) -> str:
    labels = host.split(".")
    for i in range(len(labels)):  # longest suffix first: "search.yahoo.com" before "yahoo.com"
        name = domains.get(".".join(labels[i:]))
        if name is not None:
            return name
    j = 0
    while j < len(labels) - 1 and labels[j] in prefixes:
        j += 1
    brand = brands.get(labels[j])
    if brand is not None and _is_public_suffix_like(labels[j + 1:]):
        return brand
    return host


def _is_public_suffix_like(labels: list[str]) -> bool:
    """"com", "de", "co.uk", "com.au": what follows a brand on its own sites (no PSL here)."""
    if len(labels) == 1:
        return 2 <= len(labels[0]) <= 6 and labels[0].isalpha()
    if len(labels) == 2:
        first, country = labels
        return 2 <= len(first) <= 3 and first.isalpha() and len(country) == 2 and country.isalpha()
    return False


# --- URL parsing (cached: the same landing pages and referrers recur) -------------------


@dataclass(frozen=True, slots=True)
class _Url:
    host: str
    params: Mapping[str, str]  # lower-cased keys, first non-blank value; never mutated


_NO_URL = _Url("", {})
_NOT_A_HOST = re.compile(r"[\s%]")


def _clean_host(host: str) -> str:
    host = host.strip().rstrip(".").lower()
    return host[4:] if host.startswith("www.") else host


@lru_cache(maxsize=16384)
def _parse_url(url: str) -> _Url:
    text = url.strip()
    if "://" not in text and not text.startswith("//"):
        head = text.split("/", 1)[0].split("?", 1)[0]
        if "." not in head or ":" in head:
            return _url_from_query_only(text)
        text = "//" + text  # scheme-less "google.com/search?q=x"
    try:
        parts = urlsplit(text)
        host = _clean_host(parts.hostname or "")
        query = parts.query
    except ValueError:  # e.g. "http://[::1" (bad IPv6 literal)
        return _NO_URL
    if _NOT_A_HOST.search(host):
        host = ""
    return _Url(host, _query_params(query))


def _url_from_query_only(text: str) -> _Url:
    _, sep, query = text.partition("?")
    return _Url("", _query_params(query)) if sep else _NO_URL


def _query_params(query: str) -> dict[str, str]:
    params: dict[str, str] = {}
    if not query:
        return params
    try:
        pairs = parse_qsl(query, keep_blank_values=False)
    except ValueError:
        return params
    for key, value in pairs:
        value = value.strip()
        if value:
            params.setdefault(key.strip().lower(), value)
    return params


def _text(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


# --- the default table: GA4's default channel group -------------------------------------

_SEARCH_SOURCES = (
    "google", "bing", "yahoo", "duckduckgo", "baidu", "yandex", "ecosia", "naver", "daum",
    "seznam", "qwant", "startpage", "brave", "ask", "aol", "sogou",
)
_SOCIAL_SOURCES = (
    "facebook", "fb", "meta", "instagram", "ig", "linkedin", "twitter", "x", "tiktok",
    "pinterest", "reddit", "snapchat", "tumblr", "quora", "vk", "threads", "mastodon",
    "discord", "whatsapp", "telegram", "messenger", "wechat", "weibo", "line", "xing",
    "medium", "hacker news", "slack", "bluesky",
)
_VIDEO_SOURCES = ("youtube", "vimeo", "twitch", "dailymotion", "wistia", "bilibili", "ted")
_SHOPPING_SOURCES = (
    "amazon", "ebay", "etsy", "walmart", "shopify", "aliexpress", "alibaba", "mercadolibre",
    "rakuten", "target", "bestbuy", "zalando", "google shopping", "igshopping", "shop.app",
)
_EMAIL_SOURCES = ("email", "e-mail", "e_mail", "e mail")

_HOST_SOURCES = {
    # brands on any TLD ("google.de", "amazon.co.uk")
    **{f"{b}.*": b for b in (
        "google", "bing", "yahoo", "yandex", "baidu", "naver", "daum", "seznam", "qwant",
        "startpage", "ecosia", "ask", "aol", "sogou", "amazon", "ebay", "etsy", "walmart",
        "rakuten", "mercadolibre", "zalando", "bestbuy", "pinterest", "duckduckgo",
    )},
    # hosts, matching their sub-domains too
    "search.yahoo.com": "yahoo", "search.brave.com": "brave",
    "com.google.android.googlequicksearchbox": "google",  # android-app:// referrer
    "shopping.google.com": "google shopping",
    "facebook.com": "facebook", "fb.com": "facebook", "fb.me": "facebook",
    "messenger.com": "messenger", "instagram.com": "instagram",
    "linkedin.com": "linkedin", "lnkd.in": "linkedin",
    "twitter.com": "twitter", "t.co": "twitter", "x.com": "twitter",
    "reddit.com": "reddit", "redd.it": "reddit", "tiktok.com": "tiktok",
    "snapchat.com": "snapchat", "tumblr.com": "tumblr", "quora.com": "quora", "vk.com": "vk",
    "threads.net": "threads", "threads.com": "threads", "mastodon.social": "mastodon",
    "discord.com": "discord", "whatsapp.com": "whatsapp", "wa.me": "whatsapp",
    "t.me": "telegram", "telegram.org": "telegram", "weibo.com": "weibo", "line.me": "line",
    "xing.com": "xing", "medium.com": "medium", "news.ycombinator.com": "hacker news",
    "bsky.app": "bluesky", "slack.com": "slack",
    "youtube.com": "youtube", "youtu.be": "youtube", "vimeo.com": "vimeo",
    "twitch.tv": "twitch", "dailymotion.com": "dailymotion", "wistia.com": "wistia",
    "bilibili.com": "bilibili", "ted.com": "ted",
    "aliexpress.com": "aliexpress", "alibaba.com": "alibaba", "shopify.com": "shopify",
    "target.com": "target",
}

_CLICK_IDS = {
    "gclid": {"source": "google", "medium": "cpc"},
    "gbraid": {"source": "google", "medium": "cpc"},
    "wbraid": {"source": "google", "medium": "cpc"},
    "dclid": {"source": "google", "medium": "cpc"},
    "msclkid": {"source": "bing", "medium": "cpc"},
    "fbclid": {"source": "facebook", "medium": "paid"},  # also on organic Meta links
    "li_fat_id": {"source": "linkedin", "medium": "paid"},
    "ttclid": {"source": "tiktok", "medium": "paid"},
    "twclid": {"source": "twitter", "medium": "paid"},
}


def _paid(list_name: str, channel: str) -> dict[str, Any]:
    return {"channel": channel, "all_of": [
        {"field": "source", "in_list": list_name}, {"field": "medium", "matches": PAID_MEDIUM}]}


_GA4_RULES: list[dict[str, Any]] = [
    {"channel": "Direct", "all_of": [
        {"field": "source", "one_of": [DIRECT_SOURCE]},
        {"field": "medium", "one_of": [NOT_SET, DIRECT_MEDIUM]}]},
    {"channel": "Cross-network", "all_of": [{"field": "campaign", "contains": "cross-network"}]},
    {"channel": "Paid Shopping",
     "any_of": [{"field": "source", "in_list": "shopping"},
                {"field": "campaign", "matches": SHOPPING_CAMPAIGN}],
     "all_of": [{"field": "medium", "matches": PAID_MEDIUM}]},
    _paid("search", "Paid Search"),
    _paid("social", "Paid Social"),
    _paid("video", "Paid Video"),
    {"channel": "Display", "all_of": [
        {"field": "medium", "one_of": ["display", "banner", "expandable", "interstitial", "cpm"]}]},
    {"channel": "Paid Other", "all_of": [{"field": "medium", "matches": PAID_MEDIUM}]},
    {"channel": "Organic Shopping", "any_of": [
        {"field": "source", "in_list": "shopping"},
        {"field": "campaign", "matches": SHOPPING_CAMPAIGN}]},
    {"channel": "Organic Social", "any_of": [
        {"field": "source", "in_list": "social"},
        {"field": "medium", "one_of": ["social", "social-network", "social-media", "sm",
                                       "social network", "social media"]}]},
    {"channel": "Organic Video", "any_of": [
        {"field": "source", "in_list": "video"},
        {"field": "medium", "matches": r"^(.*video.*)$"}]},
    {"channel": "Organic Search", "any_of": [
        {"field": "source", "in_list": "search"},
        {"field": "medium", "one_of": [ORGANIC_MEDIUM]}]},
    {"channel": "Referral", "all_of": [
        {"field": "medium", "one_of": [REFERRAL_MEDIUM, "app", "link"]}]},
    {"channel": "Email", "any_of": [
        {"field": "source", "in_list": "email"}, {"field": "medium", "in_list": "email"}]},
    {"channel": "Affiliates", "all_of": [{"field": "medium", "one_of": ["affiliate"]}]},
    {"channel": "Audio", "all_of": [{"field": "medium", "one_of": ["audio"]}]},
    {"channel": "SMS", "any_of": [
        {"field": "source", "one_of": ["sms"]}, {"field": "medium", "one_of": ["sms"]}]},
    {"channel": "Mobile Push Notifications", "any_of": [
        {"field": "medium", "ends_with": "push"},
        {"field": "medium", "contains": "mobile"},
        {"field": "medium", "contains": "notification"},
        {"field": "source", "one_of": ["firebase"]}]},
]

DEFAULT_RULES: ChannelRules = ChannelRules.model_validate({
    "source_lists": {"search": _SEARCH_SOURCES, "social": _SOCIAL_SOURCES,
                     "video": _VIDEO_SOURCES, "shopping": _SHOPPING_SOURCES,
                     "email": _EMAIL_SOURCES},
    "host_sources": _HOST_SOURCES,
    "host_prefixes": ("www", "m", "l", "lm", "mobile", "search", "images", "touch"),
    "click_ids": _CLICK_IDS,
    "rules": _GA4_RULES,
    "fallback_channel": "Unassigned",
})


# --- resolution and classification ------------------------------------------------------
# ``_resolve`` works from parsed parts (query parameters, hosts), so a vectorised caller
# (attribution.arrivals) can parse URLs its own way and share everything after parsing.

Signature = tuple[str, str, str | None]


class Landing(NamedTuple):
    """A touch with its URLs parsed: everything classification reads."""

    utm_source: str | None  # the explicit utm fields as given (blank counts as absent)
    utm_medium: str | None
    utm_campaign: str | None
    params: Mapping[str, str]  # landing URL query: lower-cased keys, first non-blank value
    page_host: str  # cleaned landing host ("" if none)
    referrer_host: str  # cleaned referrer host ("" if none)
    explicit_channel: str | None


def click_id_params(rules: ChannelRules) -> tuple[str, ...]:
    """The click-id query parameters, first to last in the order that decides which wins."""
    return tuple(param for param, _, _ in rules._compiled.click_ids)


def page_parts(url: str | None) -> tuple[Mapping[str, str], str]:
    """(query parameters, cleaned host) of a landing URL, as classify reads them."""
    raw = _text(url)
    page = _parse_url(raw) if raw else _NO_URL
    return page.params, page.host


def host_of(url: str | None) -> str:
    """The cleaned host of a URL ("" if none), as classify reads a referrer."""
    raw = _text(url)
    return _parse_url(raw).host if raw else ""


def query_params(query: str) -> Mapping[str, str]:
    """A query string's parameters as classify reads them (lower-cased keys, first
    non-blank value)."""
    return _query_params(query)


def _resolve(utm_source: str | None, utm_medium: str | None, utm_campaign: str | None,
             params: Mapping[str, str], page_host: str, referrer: str | None,
             referrer_url: str | None, c: _Compiled) -> tuple[str, str, str | None, bool]:
    """(source, medium, campaign, is_marketing_arrival) of one landing.

    ``referrer`` is the referrer's host, or None to parse ``referrer_url`` only if it is
    needed (a tagged landing never reads it)."""
    source_raw = _text(utm_source) or params.get("utm_source")
    medium_raw = _text(utm_medium) or params.get("utm_medium")
    campaign = _text(utm_campaign) or params.get("utm_campaign")
    if source_raw or medium_raw:
        source = c.source_of_host(_clean_host(source_raw)) if source_raw else NOT_SET
        medium = _lower(medium_raw) if medium_raw else NOT_SET
        return source or NOT_SET, medium or NOT_SET, campaign, True
    if params:
        for param, source, medium in c.click_ids:
            if param in params:
                return source, medium, campaign, True
    host = host_of(referrer_url) if referrer is None else referrer
    if host and not _is_internal(host, page_host, c.ignored_referrers):
        source = c.source_of_host(host)
        medium = ORGANIC_MEDIUM if source in c.search_sources else REFERRAL_MEDIUM
        return source, medium, campaign, True
    return DIRECT_SOURCE, DIRECT_MEDIUM, campaign, campaign is not None


def _resolve_signals(signals: TrafficSignals, c: _Compiled) -> tuple[str, str, str | None, bool]:
    raw = _text(signals.page_url)
    page = _parse_url(raw) if raw else _NO_URL
    return _resolve(signals.utm_source, signals.utm_medium, signals.utm_campaign, page.params,
                    page.host, None, signals.referrer, c)


def _is_internal(host: str, page_host: str, ignored: tuple[str, ...]) -> bool:
    if host == page_host:
        return True
    return any(host == h or host.endswith("." + h) for h in ignored)


def _classified(resolved: tuple[str, str, str | None, bool], explicit: object,
                c: _Compiled) -> Classified:
    source, medium, campaign, marketing = resolved
    if isinstance(explicit, str) and explicit.strip():
        if not marketing or source == DIRECT_SOURCE:
            source, medium = OFFLINE_SOURCE, OFFLINE_MEDIUM
        return Classified(explicit, source, medium, campaign)
    values = (source, medium, campaign.lower() if campaign else "")
    return Classified(c.channel_of(values), source, medium, campaign)


def classify(signals: TrafficSignals, rules: ChannelRules = DEFAULT_RULES) -> Classified:
    """The channel group, source, medium and campaign of one touch. Never raises."""
    compiled = rules._compiled
    return _classified(_resolve_signals(signals, compiled), signals.explicit_channel, compiled)


def campaign_signature(signals: TrafficSignals,
                       rules: ChannelRules = DEFAULT_RULES) -> Signature | None:
    """(source, medium, campaign) of a marketing arrival (utm, click id or external
    referrer); None for internal navigation or no information. A different signature
    starts a new session."""
    source, medium, campaign, marketing = _resolve_signals(signals, rules._compiled)
    return (source, medium, campaign) if marketing else None


def classify_landing(landing: Landing, rules: ChannelRules = DEFAULT_RULES
                     ) -> tuple[Classified, Signature | None]:
    """``classify`` and ``campaign_signature`` of a touch whose URLs are already parsed."""
    compiled = rules._compiled
    resolved = _resolve(landing.utm_source, landing.utm_medium, landing.utm_campaign,
                        landing.params, landing.page_host, landing.referrer_host, None, compiled)
    source, medium, campaign, marketing = resolved
    signature = (source, medium, campaign) if marketing else None
    return _classified(resolved, landing.explicit_channel, compiled), signature
