"""What every request of one collector shares: settings, producer, topic watch, counters."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from streams.collector.bots import BotFilter
from streams.collector.producer import EnvelopeSink
from streams.collector.ratelimit import RateLimiter
from streams.collector.settings import CollectorSettings
from streams.collector.stats import CollectorStats
from streams.topic_guard import TopicWatch

log = logging.getLogger(__name__)


class CollectorState:
    """Everything a request needs; ``reload`` swaps settings without a restart."""

    def __init__(self, settings: CollectorSettings, producer: EnvelopeSink):
        self.producer = producer
        self.stats = CollectorStats()
        self.settings = settings.with_defaults_filled()
        self.bots = BotFilter(self.settings.bot_patterns())
        self.limiter = RateLimiter(self.settings.rate_limit)
        self.topics = TopicWatch({self.settings.topic: self.settings.partitions},
                                 producer.describe, self.stats.topics_checked)
        producer.on_connect(self.topics.invalidate)

    def reload(self, settings: CollectorSettings) -> None:
        """Apply new settings. The email secret is kept whatever the new settings say (a new
        one would give every address a new pseudonym); an empty key list keeps the keys."""
        keep: dict[str, Any] = {"email_secret": self.settings.email_secret,
                                "email_secret_env": self.settings.email_secret_env}
        if settings.email_secret not in (None, self.settings.email_secret):
            log.warning("collector settings reloaded without the new email secret: the "
                        "secret only changes with a restart, and then every pseudonym changes")
        if not settings.write_keys:
            keep["write_keys"] = self.settings.write_keys
        new = settings.model_copy(update=keep)
        if new.rate_limit != self.settings.rate_limit:
            self.limiter = RateLimiter(new.rate_limit)
        self.bots = BotFilter(new.bot_patterns())
        self.settings = new

    def source_of(self, write_key: str | None) -> str | None:
        return self.settings.write_keys.get(write_key) if write_key else None

    def origin_allowed(self, origin: str) -> bool:
        origins = self.settings.cors_origins
        return "*" in origins or origin in origins

    @property
    def email_secret(self) -> str | None:
        return self.settings.email_secret if self.settings.hash_emails else None


STATE = web.AppKey("collector_state", CollectorState)
