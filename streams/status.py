"""What `attribution status` reports: per-partition offsets and lag of the stream's consumer
group, its members, dead letters, each topic's replication and the newest landed file; and
whether to alert.

Gathered from the broker (admin API and true end offsets, see streams.broker) and, when
given, the warehouse directory (landed files, announced worker endpoints).
"""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from streams.broker import log_end_offsets
from streams.health import OPS_DIR
from streams.settings import StreamSettings
from streams.topics import is_changelog, topic_names
from warehouse.layout import newest_landed
from warehouse.storage import storage_for


@dataclass(frozen=True)
class PartitionStatus:
    topic: str
    partition: int
    end_offset: int
    committed: int | None  # None: the group never committed here (or does not consume it)
    consumed: bool = True  # False for the dead-letter topic: operators read it, no agent

    @property
    def lag(self) -> int:
        return max(self.end_offset - (self.committed or 0), 0) if self.consumed else 0


@dataclass(frozen=True)
class TopicReplication:
    """The weakest partition of a topic: distinct brokers holding a replica, and in sync.
    Distinct, because a single broker may list itself several times (Tansu does)."""

    topic: str
    replicas: int
    in_sync: int


@dataclass(frozen=True)
class StreamStatus:
    group: str
    partitions: list[PartitionStatus]
    members: list[str] = field(default_factory=list)  # as the broker reports the group
    workers: list[str] = field(default_factory=list)  # endpoints announced and answering
    last_landed: datetime | None = None
    replication: list[TopicReplication] = field(default_factory=list)  # data + changelogs
    replication_factor: int = 1  # configured ([stream])
    min_insync_replicas: int | None = None

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def dead_letters(self) -> int:
        """Records on the dead-letter topic (each an envelope of one or more rejects)."""
        return sum(p.end_offset for p in self.partitions if not p.consumed)

    def problems(self, max_lag: int, max_dead_letters: int | None) -> list[str]:
        """Why an operator should look; empty when all is well."""
        found = []
        if self.lag > max_lag:
            found.append(f"lag {self.lag} > {max_lag}")
        if max_dead_letters is not None and self.dead_letters > max_dead_letters:
            found.append(f"dead letters {self.dead_letters} > {max_dead_letters}")
        return found + self.replication_problems()

    def replication_problems(self) -> list[str]:
        """Topics replicated less than configured (losing a broker may lose data), and
        partitions with fewer in-sync replicas than acks=all writes need (they fail)."""
        found = []
        for topic in self.replication:
            if topic.replicas < self.replication_factor:
                found.append(f"{topic.topic}: replication {topic.replicas} < configured "
                             f"{self.replication_factor}")
            elif self.min_insync_replicas is not None and (
                    topic.in_sync < self.min_insync_replicas):
                found.append(f"{topic.topic}: in-sync replicas {topic.in_sync} < "
                             f"min.insync.replicas {self.min_insync_replicas}")
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group, "lag": self.lag, "dead_letters": self.dead_letters,
            "members": self.members, "workers": self.workers,
            "last_landed": self.last_landed.isoformat() if self.last_landed else None,
            "replication_factor": self.replication_factor,
            "replication": [{"topic": r.topic, "replicas": r.replicas, "in_sync": r.in_sync}
                            for r in self.replication],
            "partitions": [{"topic": p.topic, "partition": p.partition,
                            "end_offset": p.end_offset, "committed": p.committed,
                            "lag": p.lag} for p in self.partitions],
        }


async def gather_status(bootstrap: str, settings: StreamSettings,
                        warehouse: Path | None = None) -> StreamStatus:
    names = topic_names(settings)
    consumed = [names.events, names.identity, names.journeys, names.landing]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        changelogs = sorted(t for t in await admin.list_topics() if is_changelog(settings, t))
        described = await _describe(admin, [*consumed, names.dead, *changelogs])
        counts = {t["topic"]: len(t["partitions"]) for t in described
                  if t["topic"] not in changelogs}
        partitions = [TopicPartition(t, i) for t, n in counts.items() for i in range(n)]
        group_tps = [tp for tp in partitions if tp.topic != names.dead]
        committed = await admin.list_consumer_group_offsets(settings.app_id,
                                                            partitions=group_tps)
        members = await _members(admin, settings.app_id)
    finally:
        await admin.close()
    ends = await log_end_offsets(bootstrap, partitions)
    rows = []
    for tp in partitions:
        meta = committed.get(tp)
        offset = meta.offset if meta is not None and meta.offset >= 0 else None
        rows.append(PartitionStatus(tp.topic, tp.partition, ends[tp], offset,
                                    consumed=tp.topic != names.dead))
    return StreamStatus(settings.app_id, rows, members,
                        announced_workers(warehouse) if warehouse else [],
                        last_landed(warehouse) if warehouse else None,
                        [_replication(t) for t in described],
                        settings.replication_factor, settings.min_insync_replicas)


async def _describe(admin: AIOKafkaAdminClient, topics: list[str]) -> list[dict[str, Any]]:
    """Metadata of the topics that exist (with at least one partition)."""
    described = await admin.describe_topics(topics)
    return [t for t in described if t["error_code"] == 0 and t["partitions"]]


def _replication(topic: dict[str, Any]) -> TopicReplication:
    parts = topic["partitions"]
    return TopicReplication(topic["topic"], min(len(set(p["replicas"])) for p in parts),
                            min(len(set(p["isr"])) for p in parts))


async def _members(admin: AIOKafkaAdminClient, group: str) -> list[str]:
    described = await admin.describe_consumer_groups([group])
    out: list[str] = []
    for response in described:
        for _error, _group, _state, _ptype, _proto, members, *_ in response.groups:
            out.extend(f"{m[2] or '?'} {m[1] or m[0]}".strip() for m in members)
    return out


def last_landed(warehouse: Path) -> datetime | None:
    """Modification time of the newest landed Parquet file (not temp or schema files)."""
    return newest_landed(warehouse)


def announced_workers(warehouse: Path, timeout: float = 2.0) -> list[str]:
    """Endpoints workers announced in the warehouse that answer /healthz now."""
    alive = []
    storage = storage_for(warehouse)  # a directory or object storage
    for info in storage.list_files(f"{OPS_DIR}/"):
        try:
            url = str(orjson.loads(storage.read_bytes(info.key))["url"])
            with urllib.request.urlopen(f"{url}/healthz", timeout=timeout) as resp:
                if resp.status == 200:
                    alive.append(url)
        except (OSError, ValueError, KeyError):
            continue  # a stale file of a worker that died
    return alive
