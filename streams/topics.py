"""Every topic of the pipeline, declared in one place.

    events     collector/loader -> devices   {"v":1,"events":[wire...]} | {"v":1,"updates":[...]}
    identity   devices -> identity (1 partition: the identity graph is global)
    journeys   devices -> journeys           {"v":1,"deltas":[{"key":..., ...}]}
    landing    all stages -> sink            {"v":1,"rows":{"credits":[...], ...}}
    dead       devices -> (operators)        rejected events with their reason

    <app_id>-devices-changelog, -journeys-changelog, -identity-links-changelog:
               each stage's state changes, one record per message (streams.state)

Identity answers go back onto `events`, keyed by the device, so one agent and one
table own a device (no cross-topic co-partitioning to rely on).
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.broker import TopicSpec
from streams.settings import StreamSettings


@dataclass(frozen=True)
class TopicNames:
    events: str
    identity: str
    journeys: str
    landing: str
    dead: str


def topic_names(settings: StreamSettings) -> TopicNames:
    return TopicNames(
        events=settings.topic("events"),
        identity=settings.topic("identity"),
        journeys=settings.topic("journeys"),
        landing=settings.topic("landing"),
        dead=settings.topic("dead-letters"),
    )


@dataclass(frozen=True)
class ChangelogNames:
    devices: str
    journeys: str
    links: str


def changelog_names(settings: StreamSettings) -> ChangelogNames:
    return ChangelogNames(
        devices=f"{settings.app_id}-devices-changelog",
        journeys=f"{settings.app_id}-journeys-changelog",
        links=f"{settings.app_id}-identity-links-changelog",
    )


def topic_specs(settings: StreamSettings) -> list[TopicSpec]:
    names = topic_names(settings)
    changelogs = changelog_names(settings)
    retention_ms = int(settings.retention.total_seconds() * 1000)
    partitioned = (names.events, names.journeys, names.landing, names.dead)
    return [
        *(TopicSpec(name, settings.partitions, retention_ms) for name in partitioned),
        TopicSpec(names.identity, 1, -1),  # the links are the identity graph: keep them
        # State changelogs are kept (a worker rebuilds its state from them); eviction
        # writes tombstones, which a compacting broker uses to drop old records.
        TopicSpec(changelogs.devices, settings.partitions, -1),
        TopicSpec(changelogs.journeys, settings.partitions, -1),
        TopicSpec(changelogs.links, 1, -1),
    ]
