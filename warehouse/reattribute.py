"""`attribution reattribute`: credit the landed history again under a new config, as a new version.

What is re-applied from the new config: routing rules (first match wins, over the conversion's
landed kind, event name, value and properties; `sources` conditions never match, as in batch
replay, since the landed conversion does not record its source), and each policy's journey
unit, windows, models, path cleaning and caps. What stays as landed: the touches (channel
rules and sessions are not re-run), identity links (the graph is rebuilt from all of them)
and each conversion's kind, value and id, since the id is derived from the kind. A
conversion whose event the new config no longer defines keeps its current policy if the new
config has it, and is skipped otherwise.

Versions: a re-credited conversion lands as its current max version + 1 with reason
"reattribution"; nothing is deleted, so `credit_history` keeps every earlier version and
`credits` shows the new one. A conversion whose recomputed credits equal its current
rule-based credits (same policy, journey, models, touches, shares and values) is skipped, so
running the same re-attribution twice adds nothing the second time, and only conversions
the new config really changes get a version. Data-driven rows sit on the version they were
computed for, so they drop out of `credits` for every re-credited conversion: run
`attribution datadriven` again afterwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from attribution.batch import group_by_journey
from attribution.credit import credit_conversion
from attribution.identity import IdentityGraph
from attribution.journeys import account_key, index_touches, person_key
from attribution.normalize import route_policy
from attribution.policy import Config, ConversionRule
from schemas.records import Conversion, Credit, IdentityLink, InteractionKind, LinkKind, Touch
from warehouse.datadriven import DATADRIVEN_REASON
from warehouse.landing import land_batch
from warehouse.layout import TABLES
from warehouse.query import connect_readonly
from warehouse.storage import Root

REATTRIBUTION_REASON = "reattribution"
ROWS_PER_FILE = 1_000_000

Progress = Callable[[int], None]
"""Called with the number of conversions processed since the last call."""

CreditKey = tuple[tuple[str, str, str, str, str, float, float], ...]


@dataclass(frozen=True)
class History:
    """What re-attribution reads from the warehouse."""

    conversions: list[Conversion]  # with their current policy
    touches: list[tuple[Any, ...]]  # touchpoints rows in _TOUCHES_SQL's columns
    links: list[IdentityLink]
    versions: dict[str, int]  # conversion_id -> current max version
    current: dict[str, CreditKey]  # conversion_id -> content of its current rule-based credits


@dataclass
class Outcome:
    credits: list[Credit] = field(default_factory=list)
    considered: int = 0  # conversions at or after `since`
    reattributed: int = 0  # given a new version
    unchanged: int = 0  # recomputed credits equal the current ones
    rerouted: int = 0  # of the re-attributed, those now in another policy
    skipped: list[str] = field(default_factory=list)  # no policy in the new config


@dataclass(frozen=True)
class Summary:
    considered: int
    reattributed: int
    unchanged: int
    rerouted: int
    skipped: int
    credits: int
    files: list[str]  # every file landed: absolute path or s3:// URL


def credit_key(credits: Iterable[Credit]) -> CreditKey:
    """What makes two sets of credits of one conversion the same (order-free, float-rounded)."""
    return tuple(
        sorted(
            (c.policy, c.model, c.journey_key, c.touch_event_id or "", c.channel,
             round(c.credit, 12), round(c.credited_value, 6))
            for c in credits
        )
    )


def reroute(conversion: Conversion, config: Config) -> Conversion | None:
    """The conversion under the new config's routing, or None if no policy of it applies."""
    rule = config.conversion_rule(conversion.event)
    if rule is not None:
        default = rule.policy
    elif conversion.policy in config.policies:
        default = conversion.policy
    else:
        return None
    # The landed kind is kept (the conversion id is built from it), whatever the rule says.
    landed = ConversionRule(event=conversion.event, kind=conversion.kind, policy=default)
    policy = route_policy(
        config, landed, conversion.event, conversion.value, conversion.properties
    )
    return conversion if policy == conversion.policy else conversion.model_copy(
        update={"policy": policy}
    )


def recredit(history: History, config: Config, since: datetime | None = None,
             progress: Progress | None = None) -> Outcome:
    """New-version credits of every conversion at or after `since` whose credits change."""
    outcome = Outcome()
    routed: list[Conversion] = []
    for conversion in history.conversions:
        moved = reroute(conversion, config)
        if moved is None:
            if since is None or conversion.time >= since:
                outcome.skipped.append(conversion.conversion_id)
                if progress is not None:
                    progress(1)
            continue
        routed.append(moved)
    routed.sort(key=lambda c: (c.time, c.conversion_id))
    was_in = {c.conversion_id: c.policy for c in history.conversions}

    graph = IdentityGraph(history.links)
    by_journey = group_by_journey(routed, config, graph)
    journeys = index_touches(touches_of_journeys(history.touches, graph, set(by_journey)), graph)
    for key, conversions in by_journey.items():
        journey_touches = journeys.get(key, [])
        for conversion in conversions:
            if since is not None and conversion.time < since:
                continue
            outcome.considered += 1
            version = history.versions.get(conversion.conversion_id, 0) + 1
            credits = credit_conversion(conversion, key, journey_touches, conversions,
                                        config.policies[conversion.policy], version,
                                        REATTRIBUTION_REASON)
            if credit_key(credits) == history.current.get(conversion.conversion_id):
                outcome.unchanged += 1
            else:
                outcome.reattributed += 1
                outcome.rerouted += conversion.policy != was_in[conversion.conversion_id]
                outcome.credits.extend(credits)
            if progress is not None:
                progress(1)
    return outcome


def touches_of_journeys(rows: Iterable[tuple[Any, ...]], graph: IdentityGraph,
                        keys: set[str]) -> list[Touch]:
    """Touches of the journeys in `keys` only: most visitors never convert, and building a
    Touch costs far more than resolving its ids."""
    touches = []
    for row in rows:
        person, account = touch_keys_of(graph, anonymous_id=row[2], person_id=row[3],
                                        account_id=row[4])
        if person in keys or account in keys:
            touches.append(_touch(row))
    return touches


def touch_keys_of(graph: IdentityGraph, anonymous_id: str | None, person_id: str | None,
                  account_id: str | None) -> tuple[str | None, str | None]:
    """attribution.journeys.touch_keys on a row's ids, before any Touch is built."""
    resolved = graph.resolve(anonymous_id, person_id, account_id)
    if resolved is None:
        return None, None
    account = account_key(resolved.account_key) if resolved.account_key else None
    return person_key(resolved.person_key), account


def reattribute(root: Root, config: Config, config_text: str, since: datetime | None = None,
                progress: Progress | None = None,
                total: Callable[[int], None] | None = None) -> Summary:
    """Read the history, re-credit it under `config` and land the new versions.

    `total` is called once with the number of conversions to process (for a progress bar);
    `config_text` only names the landed files.
    """
    history = read_history(root, since)
    if total is not None:
        total(sum(1 for c in history.conversions if since is None or c.time >= since))
    outcome = recredit(history, config, since, progress)
    files = land_credits(root, outcome.credits, _run_id(config_text, since, outcome.credits))
    return Summary(
        considered=outcome.considered, reattributed=outcome.reattributed,
        unchanged=outcome.unchanged, rerouted=outcome.rerouted, skipped=len(outcome.skipped),
        credits=len(outcome.credits), files=files,
    )


def _run_id(config_text: str, since: datetime | None, credits: Sequence[Credit]) -> str:
    # Names the files after what they hold: a later run that lands other versions never
    # overwrites them, and a retried identical run overwrites its own files.
    digest = hashlib.sha256(config_text.encode())
    digest.update((since.isoformat() if since else "").encode())
    for credit in credits:
        digest.update(f"\0{credit.conversion_id}\0{credit.version}".encode())
    return digest.hexdigest()[:16]


def land_credits(root: Root, credits: Sequence[Credit], run_id: str) -> list[str]:
    files: list[str] = []
    for index, start in enumerate(range(0, len(credits), ROWS_PER_FILE)):
        table = credits_table(credits[start:start + ROWS_PER_FILE])
        landed = land_batch(root, "credits", table,
                            name=f"reattribution-{run_id}-{index:05d}")
        if landed is not None:
            files.extend(landed.files)
    return files


def credits_table(credits: Sequence[Credit]) -> pa.Table:
    """Credits as an Arrow table of the `credits` schema, built column by column (fast)."""
    schema = TABLES["credits"]
    return pa.Table.from_arrays(
        [pa.array([getattr(c, name) for c in credits], type=schema.field(name).type)
         for name in schema.names],
        schema=schema,
    )


# --- reading -------------------------------------------------------------------------------

_CONVERSIONS_SQL = """
SELECT conversion_id, event_id, time, kind, event, policy, value, currency, anonymous_id,
    person_id, account_id, properties
FROM conversions
ORDER BY time, conversion_id
"""

_TOUCHES_SQL = """
SELECT event_id, time, anonymous_id, person_id, account_id, channel, source, medium,
    campaign, kind
FROM touchpoints
ORDER BY time, event_id
"""

_LINKS_SQL = """
SELECT DISTINCT event_id, time, kind, from_id, to_id
FROM raw_identity_links
ORDER BY time, event_id, kind, from_id, to_id
"""

_VERSIONS_SQL = "SELECT conversion_id, max(version) FROM credit_history GROUP BY conversion_id"

_CURRENT_SQL = """
SELECT conversion_id, policy, model, journey_key, touch_event_id, channel, credit,
    credited_value
FROM credits
WHERE reason <> $reason
    AND ($since::TIMESTAMPTZ IS NULL OR conversion_time >= $since::TIMESTAMPTZ)
"""


def read_history(root: Root, since: datetime | None = None) -> History:
    connection = connect_readonly(root)
    try:
        return History(
            conversions=[_conversion(row) for row in _rows(connection, _CONVERSIONS_SQL)],
            touches=_rows(connection, _TOUCHES_SQL),
            links=[
                IdentityLink(event_id=r[0], time=r[1], kind=LinkKind(r[2]), from_id=r[3],
                             to_id=r[4])
                for r in _rows(connection, _LINKS_SQL)
            ],
            versions={r[0]: int(r[1]) for r in _rows(connection, _VERSIONS_SQL)},
            current=_current(
                _rows(connection, _CURRENT_SQL, {"reason": DATADRIVEN_REASON, "since": since})
            ),
        )
    finally:
        connection.close()


def _rows(connection: duckdb.DuckDBPyConnection, sql: str,
          parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
    return connection.execute(sql, dict(parameters or {})).fetchall()


def _conversion(row: tuple[Any, ...]) -> Conversion:
    (conversion_id, event_id, time, kind, event, policy, value, currency, anonymous_id,
     person_id, account_id, properties) = row
    return Conversion(
        conversion_id=conversion_id, event_id=event_id, time=time, kind=kind, event=event,
        policy=policy, value=value, currency=currency, anonymous_id=anonymous_id,
        person_id=person_id, account_id=account_id, properties=orjson.loads(properties),
    )


def _touch(row: tuple[Any, ...]) -> Touch:
    (event_id, time, anonymous_id, person_id, account_id, channel, source, medium, campaign,
     kind) = row
    # properties are not needed to credit, so they are not read
    return Touch(
        event_id=event_id, time=time, anonymous_id=anonymous_id, person_id=person_id,
        account_id=account_id, channel=channel, source=source, medium=medium,
        campaign=campaign, kind=InteractionKind(kind),
    )


def _current(rows: Iterable[tuple[Any, ...]]) -> dict[str, CreditKey]:
    grouped: dict[str, list[tuple[str, str, str, str, str, float, float]]] = {}
    for conversion_id, policy, model, journey_key, touch_id, channel, credit, value in rows:
        grouped.setdefault(conversion_id, []).append(
            (policy, model, journey_key, touch_id or "", channel, round(credit, 12),
             round(value, 6))
        )
    return {key: tuple(sorted(items)) for key, items in grouped.items()}
