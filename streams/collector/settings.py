"""Collector settings: the `[collector]` section of the TOML config, validated here.

``attribution.policy.Config.collector`` keeps the section as a raw dict (each stage
validates its own settings); ``CollectorSettings.from_section`` turns it into this model.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from attribution.policy import ConfigError, Duration

MIN_SECRET_CHARS = 16

# Case-insensitive regular expressions matched against a user agent. Generic words like
# "bot" are left out on purpose: they also match phone brands ("Cubot") and SDK names.
DEFAULT_BOT_USER_AGENTS: tuple[str, ...] = (
    "googlebot", "adsbot-google", "mediapartners-google", "google-inspectiontool",
    "storebot-google", "bingbot", "bingpreview", "msnbot", "adidxbot", "slurp",
    "duckduckbot", "baiduspider", "yandex(bot|images|metrika)", "sogou", "exabot",
    "seznambot", "petalbot", "applebot", "ahrefsbot", "semrushbot", "mj12bot", "dotbot",
    "rogerbot", "screaming frog", "bytespider", "gptbot", "chatgpt-user", "oai-searchbot",
    "ccbot", "claudebot", "anthropic-ai", "perplexitybot", "amazonbot", "ia_archiver",
    "archive.org_bot", "facebookexternalhit", "facebookbot", "meta-externalagent",
    "twitterbot", "linkedinbot", "slackbot", "discordbot", "telegrambot", "whatsapp",
    "pinterestbot", "embedly", "quora link preview", "skypeuripreview", "uptimerobot",
    "pingdom", "statuscake", "site24x7", "gtmetrix", "lighthouse", "chrome-lighthouse",
    "crawler", "spider", "phantomjs",
)


class RateLimit(BaseModel):
    """Token bucket per write key: refills at ``events_per_second``, holds ``burst`` events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    events_per_second: float = Field(default=2000.0, gt=0)
    burst: int = Field(default=20000, ge=1)


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8088, ge=0, le=65535)
    # Base URL the SDKs reach us at, for the analytics.js settings endpoint; by default
    # taken from each request's Host header and scheme.
    public_url: str | None = None
    write_keys: dict[str, str] = Field(default_factory=dict)  # write key -> source name
    cors_origins: list[str] = Field(default_factory=list)  # exact origins, or "*"
    # Key of the HMAC-SHA-256 that pseudonymises email addresses. Every collector of a
    # deployment needs the same one, for ever: a new key splits every person in two.
    # Give it here, or name the environment variable that holds it (production), see
    # streams.collector.secret for what happens when neither is set.
    email_secret: str | None = Field(default=None, min_length=MIN_SECRET_CHARS)
    email_secret_env: str | None = Field(default=None, min_length=1)
    hash_emails: bool = True
    bot_user_agents: list[str] = Field(default_factory=lambda: list(DEFAULT_BOT_USER_AGENTS))
    extra_bot_user_agents: list[str] = Field(default_factory=list)
    max_batch_bytes: int = Field(default=500 * 1024, ge=1024)
    max_event_bytes: int = Field(default=32 * 1024, ge=256)
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    bootstrap: str = "127.0.0.1:9092"
    topic: str = Field(default="attribution.events", min_length=1)
    # The topic's declared partition count (the commands set it from [stream] partitions);
    # None: whatever the broker reports first, then checked like a declared one.
    partitions: int | None = Field(default=None, ge=1)
    # How often the topic is checked against its declaration besides (re)connects.
    topic_check_interval: Duration = timedelta(seconds=5)
    produce_timeout: Duration = timedelta(seconds=5)
    ready_timeout: Duration = timedelta(seconds=2)
    # How long a failed broker connection is trusted before the next attempt.
    reconnect_backoff: Duration = timedelta(seconds=1)
    retry_after_seconds: int = Field(default=5, ge=1)
    # Behind a reverse proxy: take the client address from X-Forwarded-For.
    trust_forwarded_for: bool = False
    # Slow clients: a connection must deliver a request's headers within header_timeout
    # (of connecting, or of the previous answer on a kept-alive connection; it is also the
    # idle keep-alive limit) and its body within body_timeout (then 408). Beyond
    # max_connections open connections, a new one gets 503 and is closed.
    header_timeout: Duration = timedelta(seconds=10)
    body_timeout: Duration = timedelta(seconds=30)
    max_connections: int = Field(default=1024, ge=1)

    @field_validator("bot_user_agents", "extra_bot_user_agents")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                message = f"bot pattern {pattern!r} is not a regular expression: {exc}"
                raise ValueError(message) from None
        return value

    @field_validator("write_keys")
    @classmethod
    def _keys_not_blank(cls, value: dict[str, str]) -> dict[str, str]:
        for key, source in value.items():
            if not key.strip() or not source.strip():
                raise ValueError("write keys and source names must not be blank")
        return value

    @classmethod
    def from_section(cls, section: dict[str, Any]) -> CollectorSettings:
        """Validate the raw ``[collector]`` dict, with readable errors."""
        try:
            return cls.model_validate(section)
        except ValidationError as exc:
            raise ConfigError.from_validation("[collector] settings", exc, "collector") from None

    @field_validator("header_timeout", "body_timeout", "topic_check_interval")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> CollectorSettings:
        if self.email_secret is not None and self.email_secret_env is not None:
            raise ValueError("give email_secret or email_secret_env, not both")
        return self

    def with_defaults_filled(self, source: str = "default") -> CollectorSettings:
        """A copy with a random write key when none is configured, and a random email secret
        when none is set: for tests and embedding only; the commands resolve the secret
        first (streams.collector.secret), so their pseudonyms are stable."""
        update: dict[str, Any] = {}
        if not self.write_keys:
            update["write_keys"] = {secrets.token_urlsafe(18): source}
        if self.email_secret is None:
            update["email_secret"] = secrets.token_hex(32)
        return self.model_copy(update=update) if update else self

    def bot_patterns(self) -> re.Pattern[str]:
        patterns = [*self.bot_user_agents, *self.extra_bot_user_agents]
        if not patterns:
            return re.compile(r"(?!)")  # matches nothing
        return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
