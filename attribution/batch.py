"""The batch pipeline, pure: wire events in, touches, conversions, identities and credits out.

`attribution replay` feeds it from files; the stream reuses each step (`normalize`,
`sessions.step`, `IdentityGraph`, `credit_conversion`) on the same records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from attribution.channels import ChannelRules
from attribution.credit import credit_conversion
from attribution.identity import IdentityGraph
from attribution.journeys import conversion_key, index_touches
from attribution.normalize import normalize
from attribution.observations import PageHit
from attribution.policy import Config
from attribution.sessions import sessionize
from schemas.records import Conversion, Credit, IdentityLink, Touch
from schemas.wire import EventRejected, parse_event

RawEvent = bytes | str | Mapping[str, Any]


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


@dataclass
class BatchResult:
    touches: list[Touch] = field(default_factory=list)
    conversions: list[Conversion] = field(default_factory=list)
    journey_keys: dict[str, str] = field(default_factory=dict)  # conversion id -> journey key
    links: list[IdentityLink] = field(default_factory=list)
    identities: list[IdentityRow] = field(default_factory=list)
    credits: list[Credit] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    events_read: int = 0
    duplicates: int = 0


@dataclass
class _Collected:
    hits: list[PageHit] = field(default_factory=list)
    touches: dict[str, Touch] = field(default_factory=dict)
    conversions: dict[str, Conversion] = field(default_factory=dict)
    links: dict[tuple[str, str, str], IdentityLink] = field(default_factory=dict)


def _decode(raw: RawEvent) -> Any:
    if isinstance(raw, bytes | str):
        return orjson.loads(raw)
    return raw


def _raw_text(raw: RawEvent) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", errors="replace")
    if isinstance(raw, str):
        return raw
    return orjson.dumps(raw, default=str).decode()


def _earlier(a: Conversion, b: Conversion) -> bool:
    return (a.time, a.event_id) < (b.time, b.event_id)


def collect(events: Iterable[tuple[str, RawEvent]], config: Config, rules: ChannelRules,
            result: BatchResult, now: datetime | None = None) -> _Collected:
    """Parse, dedupe on messageId and normalise every event; rejects are recorded, not raised."""
    seen: set[str] = set()
    out = _Collected()
    for position, raw in events:
        result.events_read += 1
        try:
            event, time = parse_event(_decode(raw), now)
            observations = normalize(event, time, config, rules)
        except orjson.JSONDecodeError as exc:
            result.rejected.append(Rejected(position, f"invalid JSON: {exc}", _raw_text(raw)))
            continue
        except EventRejected as exc:
            result.rejected.append(Rejected(position, str(exc), _raw_text(raw)))
            continue
        except Exception as exc:  # one event's failure must not stop the whole replay
            result.rejected.append(Rejected(position, f"event could not be processed: {exc!r}",
                                            _raw_text(raw)))
            continue
        if event.message_id in seen:
            result.duplicates += 1
            continue
        seen.add(event.message_id)
        for item in observations:
            if isinstance(item, PageHit):
                out.hits.append(item)
            elif isinstance(item, Touch):
                out.touches[item.event_id] = item
            elif isinstance(item, Conversion):
                known = out.conversions.get(item.conversion_id)
                if known is None or _earlier(item, known):
                    out.conversions[item.conversion_id] = item
            else:
                out.links.setdefault((item.kind, item.from_id, item.to_id), item)
    return out


def attribute_events(events: Iterable[tuple[str, RawEvent]], config: Config,
                     rules: ChannelRules, now: datetime | None = None) -> BatchResult:
    """Run the whole core over a finite set of events (any order)."""
    result = BatchResult()
    collected = collect(events, config, rules, result, now)
    touches = {t.event_id: t for t in sessionize(collected.hits, config.session.timeout, rules)}
    touches.update(collected.touches)
    result.touches = sorted(touches.values(), key=lambda t: (t.time, t.event_id))
    result.links = sorted(collected.links.values(), key=lambda k: (k.time, k.event_id, k.kind))
    graph = IdentityGraph(result.links)
    result.identities = identity_rows(graph, result.links)

    result.conversions = sorted(collected.conversions.values(),
                                key=lambda c: (c.time, c.conversion_id))
    by_journey = group_by_journey(result.conversions, config, graph)
    result.journey_keys = {c.conversion_id: key for key, cs in by_journey.items() for c in cs}

    journeys = index_touches(result.touches, graph)
    for key, conversions in by_journey.items():
        journey_touches = journeys.get(key, [])
        for conversion in conversions:
            policy = config.policies[conversion.policy]
            result.credits.extend(
                credit_conversion(conversion, key, journey_touches, conversions, policy)
            )
    return result


def group_by_journey(conversions: Iterable[Conversion], config: Config,
                     graph: IdentityGraph) -> dict[str, list[Conversion]]:
    """Conversions per journey key (person or account, as each one's policy says), in input
    order; shared with re-attribution (warehouse.reattribute)."""
    by_journey: dict[str, list[Conversion]] = defaultdict(list)
    for conversion in conversions:
        by_journey[conversion_key(conversion, config.policies[conversion.policy], graph)].append(
            conversion
        )
    return dict(by_journey)


def identity_rows(graph: IdentityGraph, links: list[IdentityLink]) -> list[IdentityRow]:
    if not links:
        return []
    as_of = max(link.time for link in links)
    rows = []
    for id_ in graph.known_ids():
        resolved = graph.resolve(None, id_)
        if resolved is not None:
            rows.append(IdentityRow(id_, resolved.person_key, resolved.account_key, as_of))
    return rows
