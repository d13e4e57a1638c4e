"""What a batch of validated wire events tells the core, before sessions and identities.

Columns in, observations out: identity links, page views (classified once per distinct
arrival, see ``attribution.arrivals``), interaction touches and conversions. Page views
become visit touches only through sessionisation (``attribution.sessions``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import polars as pl

from attribution.arrivals import classify_arrivals
from attribution.channels import ChannelRules, TrafficSignals
from attribution.policy import Config, ConversionRule, RoutingRule
from attribution.sessions import SIG_SEPARATOR
from schemas.contracts import JourneyConversion, Link, TouchRow
from schemas.records import LinkKind
from schemas.wire import MAX_MONEY, WireEvent

_SORTED = orjson.OPT_SORT_KEYS
PAGE_TYPES = ("page", "screen")

# Page view columns handed to sessionisation (see ``Observed.pages``).
PAGE_SCHEMA = {
    "device": pl.Utf8, "time": pl.Int64, "event_id": pl.Utf8, "sig": pl.Utf8,
    "anonymous_id": pl.Utf8, "person_id": pl.Utf8, "account_id": pl.Utf8,
    "channel": pl.Utf8, "source": pl.Utf8, "medium": pl.Utf8, "campaign": pl.Utf8,
    "url": pl.Utf8, "referrer": pl.Utf8,
}


@dataclass
class Observed:
    """Observations of one batch, each with the device (anonymousId, else userId) it is of."""

    links: list[Link] = field(default_factory=list)  # first sighting of each link
    link_rows: list[int] = field(default_factory=list)  # the row of each link's sighting
    pages: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=PAGE_SCHEMA))
    touches: list[tuple[str, TouchRow]] = field(default_factory=list)  # interaction touches
    conversions: list[tuple[str, JourneyConversion]] = field(default_factory=list)
    last_times: dict[str, int] = field(default_factory=dict)  # device -> latest event time


def _nonempty(name: str) -> pl.Expr:
    return pl.when(pl.col(name).str.len_bytes() > 0).then(pl.col(name))


def signals_of(event: WireEvent) -> TrafficSignals:
    """One validated event's traffic signals (what ``_signals`` computes as columns):
    context.campaign / context.page, else the same-named properties."""
    campaign, page, props = event.context.campaign, event.context.page, event.properties
    return TrafficSignals(
        utm_source=(campaign.source if campaign else None) or _str(props.get("utm_source")),
        utm_medium=(campaign.medium if campaign else None) or _str(props.get("utm_medium")),
        utm_campaign=(campaign.name if campaign else None) or _str(props.get("utm_campaign")),
        referrer=(page.referrer if page else None) or _str(props.get("referrer")),
        page_url=(page.url if page else None) or _str(props.get("url")),
        explicit_channel=_str(props.get("channel")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _signals(columns: pl.DataFrame) -> pl.DataFrame:
    """An event's traffic signals: context.campaign / context.page, else properties."""
    return columns.select(
        pl.coalesce(_nonempty("campaign_source"), "prop_utm_source").alias("utm_source"),
        pl.coalesce(_nonempty("campaign_medium"), "prop_utm_medium").alias("utm_medium"),
        pl.coalesce(_nonempty("campaign_name"), "prop_utm_campaign").alias("utm_campaign"),
        pl.coalesce(_nonempty("page_referrer"), "prop_referrer").alias("referrer"),
        pl.coalesce(_nonempty("page_url"), "prop_url").alias("page_url"),
        pl.col("prop_channel").alias("explicit_channel"),
    )


Properties = Callable[[int], dict[str, Any]]  # an event's properties, by its row number


def observe(columns: pl.DataFrame, properties: Properties, config: Config,
            rules: ChannelRules) -> Observed:
    """Observations of validated events: wire columns (``schemas`` wire columns) plus a
    ``row`` column numbering each event, by which ``properties`` finds its properties (only
    asked for conversions and interaction touches, whose values live there)."""
    out = Observed()
    if columns.height == 0:
        return out
    cols = columns.with_columns(pl.coalesce("anonymous_id", "user_id").alias("device"))
    # Plain Python where a polars call would cost more than the loop (small envelopes).
    last_times: dict[str, int] = {}
    for device, time in zip(cols["device"].to_list(), cols["time_us"].to_list(), strict=True):
        if time > last_times.get(device, -1):
            last_times[device] = time
    out.last_times = last_times
    out.link_rows, out.links = _links(cols)
    out.pages = _pages(cols.filter(pl.col("type").is_in(PAGE_TYPES)), rules)
    tracks = cols.filter(pl.col("type") == "track")
    if tracks.height:
        _tracks(tracks, properties, config, rules, out)
    return out


def raw_properties(raws: Sequence[Any]) -> Properties:
    """``properties`` over the raw events a batch was validated from (row = input index)."""
    def properties(row: int) -> dict[str, Any]:
        raw = raws[row]
        props = raw.get("properties") if isinstance(raw, dict) else None
        return props if isinstance(props, dict) else {}

    return properties


def _links(cols: pl.DataFrame) -> tuple[list[int], list[Link]]:
    """Each link's first sighting (and its row), in row order: alias, then anonymous id ->
    user id, then member -> account, per event."""
    users = cols["user_id"]
    if users.null_count() == users.len() and cols["group_id"].null_count() == cols.height:
        return [], []  # nobody identified in this batch (no alias is possible either)
    found: dict[tuple[str, str, str], tuple[int, Link]] = {}
    for kind_of, anonymous, user, group, previous, time, event_id, row in zip(
            *(cols[name].to_list() for name in ("type", "anonymous_id", "user_id", "group_id",
                                                "previous_id", "time_us", "message_id",
                                                "row")), strict=True):
        if user is None and group is None:
            continue
        if kind_of == "alias" and previous is not None and user is not None:
            found.setdefault((ALIAS, previous, user),
                             (row, Link(ALIAS, previous, user, time, event_id)))
        if anonymous is not None and user is not None:
            found.setdefault((ANONYMOUS_PERSON, anonymous, user),
                             (row, Link(ANONYMOUS_PERSON, anonymous, user, time, event_id)))
        if group is not None:
            member = user if user is not None else anonymous
            found.setdefault((PERSON_ACCOUNT, member, group),
                             (row, Link(PERSON_ACCOUNT, member, group, time, event_id)))
    ordered = sorted(found.values(), key=lambda pair: pair[0])
    return [row for row, _ in ordered], [link for _, link in ordered]


ALIAS, ANONYMOUS_PERSON, PERSON_ACCOUNT = (LinkKind.ALIAS.value, LinkKind.ANONYMOUS_PERSON.value,
                                           LinkKind.PERSON_ACCOUNT.value)


def _pages(pages: pl.DataFrame, rules: ChannelRules) -> pl.DataFrame:
    if pages.height == 0:
        return pl.DataFrame(schema=PAGE_SCHEMA)
    signals = _signals(pages)
    classified = classify_arrivals(signals, rules)
    sig = pl.when(classified["sig_source"].is_not_null()).then(pl.concat_str(
        [pl.col("sig_source"), pl.col("sig_medium"), pl.col("sig_campaign").fill_null("")],
        separator=SIG_SEPARATOR))
    return pl.DataFrame({
        "device": pages["device"], "time": pages["time_us"], "event_id": pages["message_id"],
        "sig": classified.select(sig.alias("sig"))["sig"],
        "anonymous_id": pages["anonymous_id"], "person_id": pages["user_id"],
        "account_id": pages["group_id"], "channel": classified["channel"],
        "source": classified["source"], "medium": classified["medium"],
        "campaign": classified["campaign"], "url": signals["page_url"],
        "referrer": signals["referrer"],
    }, schema=PAGE_SCHEMA)


def visit_properties(url: str | None, referrer: str | None) -> str:
    """The landed properties of a visit touch: its landing page and referrer."""
    props: dict[str, str] = {}
    if url:
        props["url"] = url
    if referrer:
        props["referrer"] = referrer
    return orjson.dumps(props, option=_SORTED).decode()


def _tracks(tracks: pl.DataFrame, properties: Properties, config: Config,
            rules: ChannelRules, out: Observed) -> None:
    """Conversions (per row: their values and ids live in free-form properties) and
    interaction touches (classified in bulk)."""
    names = tracks["event"].unique().to_list()
    conversion_rules = {n: c for n in names if (c := config.conversion_rule(n)) is not None}
    interactions = {n: i for n in names
                    if n not in conversion_rules and (i := config.interaction_rule(n)) is not None}
    if conversion_rules:
        for row in tracks.filter(pl.col("event").is_in(list(conversion_rules))).iter_rows(
                named=True):
            props = properties(row["row"])
            rule = conversion_rules[row["event"]]
            out.conversions.append((row["device"], _conversion(row, props, rule, config)))
    if interactions:
        chosen = tracks.filter(pl.col("event").is_in(list(interactions)))
        defaults = pl.Series("default", [interactions[n].channel for n in chosen["event"]],
                             dtype=pl.Utf8)
        signals = _signals(chosen).with_columns(defaults)
        # An interaction without utm or explicit channel takes its rule's channel
        # (a meeting is "Sales Meeting" wherever the page was).
        use_default = (pl.col("explicit_channel").is_null() & pl.col("default").is_not_null()
                       & pl.col("utm_source").is_null() & pl.col("utm_medium").is_null())
        signals = signals.select(
            "utm_source", "utm_medium", "utm_campaign",
            pl.when(use_default).then(None).otherwise(pl.col("referrer")).alias("referrer"),
            pl.when(use_default).then(None).otherwise(pl.col("page_url")).alias("page_url"),
            pl.when(use_default).then(pl.col("default")).otherwise(
                pl.col("explicit_channel")).alias("explicit_channel"),
        )
        classified = classify_arrivals(signals, rules)
        for row, arrival in zip(chosen.iter_rows(named=True),
                                classified.iter_rows(named=True), strict=True):
            props = {"event": row["event"], **properties(row["row"])}
            touch = TouchRow(row["message_id"], row["time_us"], row["anonymous_id"],
                             row["user_id"], row["group_id"], arrival["channel"],
                             arrival["source"], arrival["medium"], arrival["campaign"],
                             interactions[row["event"]].kind.value,
                             orjson.dumps(props, option=_SORTED).decode())
            out.touches.append((row["device"], touch))


def conversion_value(props: dict[str, Any], rule: ConversionRule) -> float:
    """The first usable value field: a finite number (or numeric text) in [0, MAX_MONEY].
    Configured value fields need not be wire money fields, so the bound is applied here too."""
    for name in rule.value_fields:
        value = props.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value) and 0 <= value <= MAX_MONEY:
            return float(value)
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                continue
            if math.isfinite(number) and 0 <= number <= MAX_MONEY:
                return number
    return 0.0


def _matches(route: RoutingRule, kind: str, event: str, value: float, props: dict[str, Any],
             source: str | None) -> bool:
    if route.kinds and kind not in route.kinds:
        return False
    if route.events and event not in route.events:
        return False
    if route.min_value is not None and value < route.min_value:
        return False
    if route.max_value is not None and value > route.max_value:
        return False
    if route.sources and source not in route.sources:
        return False
    for name, wanted in route.properties.items():
        actual = props.get(name)
        options = wanted if isinstance(wanted, list) else [wanted]
        if actual not in options:
            return False
    return True


def route_policy(config: Config, rule: ConversionRule, event: str, value: float,
                 props: dict[str, Any], source: str | None = None) -> str:
    """The first routing rule that matches wins; otherwise the conversion rule's policy."""
    for route in config.routing:
        if _matches(route, rule.kind, event, value, props, source):
            return route.policy
    return rule.policy


def _conversion(row: dict[str, Any], props: dict[str, Any], rule: ConversionRule,
                config: Config) -> JourneyConversion:
    value = conversion_value(props, rule)
    raw_id = props.get(rule.id_field)
    local_id = str(raw_id) if isinstance(raw_id, str | int) and str(raw_id) else row["message_id"]
    currency = props.get(rule.currency_field)
    event = row["event"] or ""
    return JourneyConversion(
        conversion_id=f"{rule.kind}:{local_id}",
        event_id=row["message_id"],
        time=row["time_us"],
        kind=rule.kind,
        event=event,
        policy=route_policy(config, rule, event, value, props, row["source"]),
        value=value,
        currency=currency.upper() if isinstance(currency, str) and currency else None,
        anonymous_id=row["anonymous_id"],
        person_id=row["user_id"],
        account_id=row["group_id"],
        properties=orjson.dumps(props, option=_SORTED).decode(),
    )
