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
    replicas, min_isr = settings.replication_factor, settings.min_insync_replicas
    return [
        *(TopicSpec(name, settings.partitions, retention_ms, replicas, min_isr)
          for name in partitioned),
        TopicSpec(names.identity, 1, -1, replicas, min_isr),  # the links are the identity graph
        # State changelogs are kept whole: a record holds every key one message changed,
        # so Kafka's per-key compaction does not apply (see streams.state).
        TopicSpec(changelogs.devices, settings.partitions, -1, replicas, min_isr),
        TopicSpec(changelogs.journeys, settings.partitions, -1, replicas, min_isr),
        TopicSpec(changelogs.links, 1, -1, replicas, min_isr),
    ]


def source_topics(settings: StreamSettings) -> list[str]:
    """The topics the agents consume (not the dead letters: operators read those)."""
    names = topic_names(settings)
    return [names.events, names.identity, names.journeys, names.landing]


def is_changelog(settings: StreamSettings, topic: str) -> bool:
    """A changelog topic of one of this app's Faust tables ("<app_id>-<table>-changelog")."""
    return topic.startswith(f"{settings.app_id}-") and topic.endswith("-changelog")
