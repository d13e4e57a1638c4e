"""The batch pipeline, pure: wire events in, touches, conversions, identities and credits out.

The same columnar steps the stream's stages run, arranged in passes so that large inputs
can be cut into chunks (validation) and device buckets (sessions), with only the identity
links, the conversions and the converting journeys' touches gathered in one place:

1. ``validate_chunk``: decode and validate raw events; every valid event gets its global
   input number (``seq``), its device and, for conversions and interactions, its
   properties as JSON text.
2. ``observe_devices``: for all events of some devices: drop repeated messageIds (the
   first valid send wins), observe (``attribution.normalize``) and sessionise
   (``attribution.sessions``): touches, conversions, identity links.
3. ``identities`` + ``resolve``: the identity graph over every link, each touch's and
   conversion's journey.
4. ``credit_journeys``: every conversion credited in its journey (``attribution.credit``).

``attribute`` runs the passes in memory over one chunk and one bucket and answers in
compact rows; ``attribute_events`` answers in ``schemas.records`` models (tests, small
inputs); ``warehouse.replay`` runs them over files with bounded memory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import polars as pl

from attribution.channels import ChannelRules
from attribution.credit import credit_record, credit_rows, from_micros, to_micros
from attribution.identity import IdentityGraph
from attribution.journeys import conversion_key
from attribution.normalize import observe, visit_properties
from attribution.policy import Config
from attribution.sessions import mark_session_starts
from schemas.contracts import CreditRow, JourneyConversion, Link, TouchRow
from schemas.records import Conversion, Credit, IdentityLink, InteractionKind, LinkKind, Touch
from schemas.wire_columns import validate_batch

RawEvent = bytes | str | Mapping[str, Any]
VISIT = InteractionKind.VISIT.value


@dataclass(frozen=True, slots=True)
class Rejected:
    position: str
    reason: str
    raw: str


@dataclass(frozen=True, slots=True)
class IdentityRow:
    id: str
    person_key: str
    account_key: str | None
    as_of: datetime


# --- pass 1: validate ------------------------------------------------------------------------


@dataclass
class Validated:
    """One chunk, validated: wire columns plus ``seq`` (global input number), ``device``
    and ``properties`` (JSON text, for the track events ``keep_properties`` names)."""

    columns: pl.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    events_read: int = 0


def _raw_text(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    return orjson.dumps(raw, default=str).decode()


def tracked_events(config: Config) -> frozenset[str]:
    """Track events whose properties the core reads: conversions and interactions."""
    return frozenset([r.event for r in config.conversions] + [r.event for r in
                                                              config.interactions])


def validate_chunk(chunk: Sequence[tuple[str, RawEvent]], first_seq: int, config: Config,
                   now_us: int | None = None) -> Validated:
    """Decode and validate one chunk of positioned raw events (JSON text or objects)."""
    result = Validated(pl.DataFrame(), events_read=len(chunk))
    decoded: list[Any] = []
    seqs: list[int] = []
    for i, (position, raw) in enumerate(chunk):
        if isinstance(raw, bytes | str):
            try:
                raw = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                result.rejected.append(Rejected(position, f"invalid JSON: {exc}",
                                                _raw_text(chunk[i][1])))
                continue
        decoded.append(raw)
        seqs.append(first_seq + i)
    batch = validate_batch(decoded, now_us)
    for index, reason in batch.rejected:
        position, raw = chunk[seqs[index] - first_seq]
        result.rejected.append(Rejected(position, reason, _raw_text(raw)))
    keep = tracked_events(config)
    props: list[str | None] = []
    for index, event in zip(batch.index, batch.columns["event"], strict=True):
        if event in keep:
            found = decoded[index].get("properties")
            props.append(orjson.dumps(found if isinstance(found, dict) else {}).decode())
        else:
            props.append(None)
    result.columns = batch.columns.with_columns(
        pl.Series("seq", [seqs[i] for i in batch.index], dtype=pl.Int64),
        pl.coalesce("anonymous_id", "user_id").alias("device"),
        pl.Series("properties", props, dtype=pl.Utf8),
    )
    return result


# --- pass 2: devices -------------------------------------------------------------------------


@dataclass
class DeviceFacts:
    """What some devices' events add up to."""

    touches: list[TouchRow] = field(default_factory=list)
    conversions: list[JourneyConversion] = field(default_factory=list)  # earliest send each
    links: list[tuple[int, Link]] = field(default_factory=list)  # (seq of first sighting, link)
    duplicates: int = 0


def observe_devices(columns: pl.DataFrame, config: Config, rules: ChannelRules) -> DeviceFacts:
    """All validated events of some devices (every event of each): dedupe, observe,
    sessionise."""
    facts = DeviceFacts()
    if columns.height == 0:
        return facts
    ordered = columns.sort("seq")
    unique = ordered.unique(subset="message_id", keep="first", maintain_order=True)
    facts.duplicates = ordered.height - unique.height
    props = dict(zip(unique["seq"], unique["properties"], strict=True))

    def properties(seq: int) -> dict[str, Any]:
        text = props.get(seq)
        return orjson.loads(text) if text else {}

    observed = observe(unique.rename({"seq": "row"}), properties, config, rules)
    facts.links = list(zip(observed.link_rows, observed.links, strict=True))
    touches = {t.event_id: t for t in visit_touches(observed.pages, _timeout_us(config))}
    touches.update((touch.event_id, touch) for _, touch in observed.touches)
    facts.touches = list(touches.values())
    facts.conversions = list(earliest_conversions(c for _, c in observed.conversions).values())
    return facts


def visit_touches(pages: pl.DataFrame, timeout_us: int) -> list[TouchRow]:
    """Sessionise every device's pages at once: the session starts, as visit touches."""
    if pages.height == 0:
        return []
    starts = mark_session_starts(pages, timeout_us).filter(pl.col("start"))
    return [TouchRow(event_id, time, anonymous_id, person_id, account_id, channel, source, medium,
                     campaign, VISIT, visit_properties(url, referrer))
            for (event_id, time, anonymous_id, person_id, account_id, channel, source, medium,
                 campaign, url, referrer) in starts.select(
                "event_id", "time", "anonymous_id", "person_id", "account_id", "channel",
                "source", "medium", "campaign", "url", "referrer").iter_rows()]


def earliest_conversions(conversions: Iterable[JourneyConversion]
                         ) -> dict[str, JourneyConversion]:
    """One conversion per id: the earliest send (pixel + server, retries)."""
    found: dict[str, JourneyConversion] = {}
    for conversion in conversions:
        known = found.get(conversion.conversion_id)
        if known is None or (conversion.time, conversion.event_id) < (known.time,
                                                                      known.event_id):
            found[conversion.conversion_id] = conversion
    return found


def _timeout_us(config: Config) -> int:
    return config.session.timeout // timedelta(microseconds=1)


# --- pass 3: identities and journeys ---------------------------------------------------------


def first_links(links: Iterable[tuple[int, Link]]) -> list[Link]:
    """One link per (kind, from, to): its first sighting in input order; by time."""
    first: dict[tuple[str, str, str], tuple[int, Link]] = {}
    for seq, link in links:
        key = (link.kind, link.from_id, link.to_id)
        if key not in first or seq < first[key][0]:
            first[key] = (seq, link)
    return sorted((link for _, link in first.values()), key=lambda k: (k.time, k.event_id,
                                                                        k.kind))


def identity_rows(graph: IdentityGraph, links: Sequence[Link]) -> list[IdentityRow]:
    if not links:
        return []
    as_of = from_micros(max(link.time for link in links))
    rows = []
    for id_ in graph.known_ids():
        resolved = graph.resolve(None, id_)
        if resolved is not None:
            rows.append(IdentityRow(id_, resolved.person_key, resolved.account_key, as_of))
    return rows


def group_by_journey(conversions: Iterable[Any], config: Config, graph: IdentityGraph
                     ) -> dict[str, list[Any]]:
    """Conversions (records or compact) per journey key, person or account as each one's
    policy says, in input order; shared with re-attribution (warehouse.reattribute)."""
    by_journey: dict[str, list[Any]] = defaultdict(list)
    for conversion in conversions:
        by_journey[conversion_key(conversion, config.policies[conversion.policy], graph)].append(
            conversion)
    return dict(by_journey)


def touch_journeys(touches: pl.DataFrame, identities: pl.DataFrame) -> pl.DataFrame:
    """Each touch (columns of ``TouchRow``) under its person journey and, when it has an
    account, its account journey: columns key + the touch's. As ``IdentityGraph.resolve``:
    an id the graph does not know is a person of its own."""
    if touches.height == 0:
        return touches.with_columns(pl.lit(None, pl.Utf8).alias("key"))
    resolved = touches.with_columns(
        pl.coalesce("person_id", "anonymous_id").alias("_id")).join(
        identities.select("id", "person_key", "account_key"), left_on="_id", right_on="id",
        how="left").with_columns(
        pl.coalesce("person_key", "_id").alias("person_key"),
        pl.coalesce("account_id", "account_key").alias("account_key"))
    person = resolved.with_columns(("person:" + pl.col("person_key")).alias("key"))
    account = resolved.filter(pl.col("account_key").is_not_null()).with_columns(
        ("account:" + pl.col("account_key")).alias("key"))
    return pl.concat([person, account]).drop("_id", "person_key", "account_key")


def identity_frame(rows: Sequence[IdentityRow]) -> pl.DataFrame:
    return pl.DataFrame([(r.id, r.person_key, r.account_key) for r in rows],
                        schema={"id": pl.Utf8, "person_key": pl.Utf8, "account_key": pl.Utf8},
                        orient="row")


# --- pass 4: credits -----------------------------------------------------------------------


def credit_journeys(by_journey: Mapping[str, Sequence[JourneyConversion]],
                    touches: Mapping[str, Sequence[TouchRow]], config: Config
                    ) -> Iterator[CreditRow]:
    for key, journey_conversions in by_journey.items():
        journey_touches = [t.for_journey() for t in touches.get(key, ())]
        for conversion in journey_conversions:
            policy = config.policies[conversion.policy]
            yield from credit_rows(conversion, key, journey_touches, journey_conversions,
                                   policy)


TOUCH_SCHEMA = {"event_id": pl.Utf8, "time": pl.Int64, "anonymous_id": pl.Utf8,
                "person_id": pl.Utf8, "account_id": pl.Utf8, "channel": pl.Utf8,
                "source": pl.Utf8, "medium": pl.Utf8, "campaign": pl.Utf8, "kind": pl.Utf8,
                "properties": pl.Utf8}


def touches_of_journeys(touches: Sequence[TouchRow], identities: pl.DataFrame,
                        keys: set[str]) -> dict[str, list[TouchRow]]:
    """The touches of each of these journeys."""
    frame = pl.DataFrame(touches, schema=TOUCH_SCHEMA, orient="row")
    found: dict[str, list[TouchRow]] = defaultdict(list)
    wanted = touch_journeys(frame, identities).filter(pl.col("key").is_in(list(keys)))
    for key, *touch in wanted.select("key", *TOUCH_SCHEMA).iter_rows():
        found[key].append(TouchRow(*touch))
    return found


# --- all passes in memory --------------------------------------------------------------------


@dataclass
class Attributed:
    """What batch attribution produced, in compact form (times in epoch microseconds)."""

    touches: list[TouchRow] = field(default_factory=list)
    conversions: list[JourneyConversion] = field(default_factory=list)
    journey_keys: dict[str, str] = field(default_factory=dict)  # conversion id -> journey key
    links: list[Link] = field(default_factory=list)
    identities: list[IdentityRow] = field(default_factory=list)
    credits: list[CreditRow] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    events_read: int = 0
    duplicates: int = 0


def attribute(events: Iterable[tuple[str, RawEvent]], config: Config, rules: ChannelRules,
              now: datetime | None = None) -> Attributed:
    """Run the whole core over a finite set of events (any order), in memory."""
    listed = list(events)
    now_us = None if now is None else to_micros(now)
    validated = validate_chunk(listed, 0, config, now_us)
    facts = observe_devices(validated.columns, config, rules)
    result = Attributed(rejected=validated.rejected, events_read=validated.events_read,
                        duplicates=facts.duplicates)
    result.touches = sorted(facts.touches, key=lambda t: (t.time, t.event_id))
    result.links = first_links(facts.links)
    graph = IdentityGraph(result.links)
    result.identities = identity_rows(graph, result.links)
    result.conversions = sorted(facts.conversions, key=lambda c: (c.time, c.conversion_id))
    by_journey = group_by_journey(result.conversions, config, graph)
    result.journey_keys = {c.conversion_id: key for key, cs in by_journey.items() for c in cs}
    touches = touches_of_journeys(result.touches, identity_frame(result.identities),
                                  set(by_journey))
    result.credits = list(credit_journeys(by_journey, touches, config))
    return result


# --- the record form ---------------------------------------------------------------------------


@dataclass
class BatchResult:
    """``Attributed`` as ``schemas.records`` models."""

    touches: list[Touch] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    journey_keys: dict[str, str] = field(default_factory=dict)
    links: list[IdentityLink] = field(default_factory=list)
    identities: list[IdentityRow] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    events_read: int = 0
    duplicates: int = 0


def touch_record(row: TouchRow) -> Touch:
    return Touch(event_id=row.event_id, time=from_micros(row.time), anonymous_id=row.anonymous_id,
                 person_id=row.person_id, account_id=row.account_id, channel=row.channel,
                 source=row.source, medium=row.medium, campaign=row.campaign,
                 kind=InteractionKind(row.kind), properties=orjson.loads(row.properties))


def conversion_record(row: JourneyConversion) -> Conversion:
    return Conversion(conversion_id=row.conversion_id, event_id=row.event_id,
                      time=from_micros(row.time), kind=row.kind, event=row.event,
                      policy=row.policy, value=row.value, currency=row.currency,
                      anonymous_id=row.anonymous_id, person_id=row.person_id,
                      account_id=row.account_id, properties=orjson.loads(row.properties))


def link_record(link: Link) -> IdentityLink:
    return IdentityLink(event_id=link.event_id, time=from_micros(link.time),
                        kind=LinkKind(link.kind), from_id=link.from_id, to_id=link.to_id)


def attribute_events(events: Iterable[tuple[str, RawEvent]], config: Config,
                     rules: ChannelRules, now: datetime | None = None) -> BatchResult:
    """``attribute`` answering in ``schemas.records`` models."""
    done = attribute(events, config, rules, now)
    return BatchResult(
        touches=[touch_record(t) for t in done.touches],
        conversions=[conversion_record(c) for c in done.conversions],
        journey_keys=done.journey_keys,
        links=[link_record(link) for link in done.links],
        identities=done.identities,
        credits=[credit_record(c) for c in done.credits],
        rejected=done.rejected,
        events_read=done.events_read,
        duplicates=done.duplicates,
    )
