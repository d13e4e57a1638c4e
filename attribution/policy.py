"""Attribution configuration: policies, conversion definitions, routing and interaction rules.

One TOML file, validated here. ``attribution/defaults.toml`` ships the two presets
(``b2c`` short person-level, ``b2b`` long account-level); a user file replaces
whole sections of it (see ``merge_config``).
"""

from __future__ import annotations

import re
import tomllib
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.records import InteractionKind

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> timedelta:
    """Parse "30m", "7d", "12h", "2w", "90s" or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration is a string like '7d' or a number of seconds")
    seconds: float | None = None
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        seconds = value
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds is not None:
        try:
            return timedelta(seconds=seconds)
        except OverflowError:  # timedelta ends at 999,999,999 days; found by fuzzing
            raise ValueError(f"{value!r} is too long a duration") from None
    raise ValueError(f"{value!r} is not a duration; use e.g. '30m', '7d', '12h', '2w'")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CustomWeights(_Strict):
    """Weights of a custom position model; roles missing from a path are renormalised away."""

    first: float = Field(default=0.0, ge=0)
    middle: float = Field(default=0.0, ge=0)
    last: float = Field(default=0.0, ge=0)
    lead: float = Field(default=0.0, ge=0)
    opportunity: float = Field(default=0.0, ge=0)
    won: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> CustomWeights:
        total = self.first + self.middle + self.last + self.lead + self.opportunity + self.won
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"custom weights must sum to 1, got {total:g}")
        return self


BUILTIN_MODELS = (
    "first_touch",
    "last_touch",
    "last_non_direct",
    "linear",
    "time_decay",
    "position_based",
    "w_shaped",
    "full_path",
    "j_shaped",
    "inverse_j",
    "participation",
)
MODEL_ALIASES = {"u_shaped": "position_based", "z_shaped": "full_path", "first": "first_touch",
                 "last": "last_touch"}


class StageKinds(_Strict):
    """Conversion kinds that mark the B2B stages used by W-shaped and full-path models."""

    lead: str = "lead_created"
    opportunity: str = "opportunity_created"
    won: str = "opportunity_won"


class Policy(_Strict):
    """How conversions routed here are credited: journey unit, windows, models, path cleaning."""

    name: str = ""
    journey: Literal["person", "account"] = "person"
    lookback: dict[InteractionKind, Duration] = Field(
        default_factory=lambda: {kind: timedelta(days=30) for kind in InteractionKind}
    )
    models: list[str] = Field(default_factory=lambda: ["last_touch"], min_length=1)
    time_decay_half_life: Duration = timedelta(days=7)
    custom_models: dict[str, CustomWeights] = Field(default_factory=dict)
    stages: StageKinds = Field(default_factory=StageKinds)
    drop_direct: bool = False
    collapse_repeats: bool = False
    allowed_lateness: Duration = timedelta(days=1)
    max_touches: int = Field(default=500, ge=2)

    @field_validator("lookback")
    @classmethod
    def _every_kind_has_a_window(
        cls, value: dict[InteractionKind, timedelta]
    ) -> dict[InteractionKind, timedelta]:
        # A kind left out gets no credit at all; make that explicit rather than silent.
        return {kind: value.get(kind, timedelta(0)) for kind in InteractionKind}

    @model_validator(mode="after")
    def _models_are_known(self) -> Policy:
        for model in self.models:
            canonical = MODEL_ALIASES.get(model, model)
            if canonical not in BUILTIN_MODELS and model not in self.custom_models:
                known = ", ".join(BUILTIN_MODELS + tuple(self.custom_models))
                raise ValueError(f"unknown model {model!r}; known: {known}")
        return self

    @property
    def longest_lookback(self) -> timedelta:
        return max(self.lookback.values())

    def canonical_models(self) -> list[str]:
        return [MODEL_ALIASES.get(m, m) for m in self.models]


class ConversionRule(_Strict):
    """Maps a `track` event to a conversion kind and its default policy."""

    event: str
    kind: str
    policy: str
    value_fields: list[str] = Field(default_factory=lambda: ["revenue", "total", "value"])
    currency_field: str = "currency"
    id_field: str = "order_id"


class RoutingRule(_Strict):
    """Sends matching conversions to another policy; the first matching rule wins."""

    policy: str
    kinds: list[str] = Field(default_factory=list)
    events: list[str] = Field(default_factory=list)
    min_value: float | None = None
    max_value: float | None = None
    properties: dict[str, str | float | bool | list[str | float | bool]] = Field(
        default_factory=dict
    )
    sources: list[str] = Field(default_factory=list)


class InteractionRule(_Strict):
    """A `track` event that is itself a marketing touch (ad click, email open, meeting)."""

    event: str
    kind: InteractionKind
    channel: str | None = None  # default channel when properties/UTM do not say


class SessionSettings(_Strict):
    timeout: Duration = timedelta(minutes=30)
    # A device keeps its page views this long behind its latest one, so pages arriving late
    # or out of order within it re-cut its sessions exactly as sorted batch replay does.
    reorder_window: Duration = timedelta(days=1)


class Config(_Strict):
    policies: dict[str, Policy]
    conversions: list[ConversionRule]
    routing: list[RoutingRule] = Field(default_factory=list)
    interactions: list[InteractionRule] = Field(default_factory=list)
    session: SessionSettings = Field(default_factory=SessionSettings)
    channels: dict[str, Any] = Field(default_factory=dict)  # overrides of the channel rule table
    # Sections owned and validated by other stages (dlt-style: each stage its own settings).
    collector: dict[str, Any] = Field(default_factory=dict)
    stream: dict[str, Any] = Field(default_factory=dict)
    warehouse: dict[str, Any] = Field(default_factory=dict)  # warehouse.settings

    @model_validator(mode="before")
    @classmethod
    def _name_policies(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("policies"), dict):
            data = dict(data)
            data["policies"] = {
                name: ({**body, "name": name} if isinstance(body, dict) else body)
                for name, body in data["policies"].items()
            }
        return data

    @model_validator(mode="after")
    def _references_exist(self) -> Config:
        for rule in self.conversions:
            if rule.policy not in self.policies:
                raise ValueError(f"conversion {rule.event!r} names unknown policy {rule.policy!r}")
        for i, route in enumerate(self.routing):
            if route.policy not in self.policies:
                raise ValueError(f"routing rule {i} names unknown policy {route.policy!r}")
        return self

    def conversion_rule(self, event: str) -> ConversionRule | None:
        for rule in self.conversions:
            if rule.event == event:
                return rule
        return None

    def interaction_rule(self, event: str) -> InteractionRule | None:
        for rule in self.interactions:
            if rule.event == event:
                return rule
        return None


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names each bad field."""

    @classmethod
    def from_validation(cls, what: str, exc: ValidationError, prefix: str = "") -> ConfigError:
        """One line per bad field, e.g. ``invalid [stream] settings:\n  stream.partitions: ...``."""
        lines = []
        for err in exc.errors():
            where = ".".join([*([prefix] if prefix else []), *(str(p) for p in err["loc"])])
            lines.append(f"  {where or '(top level)'}: {err['msg'].removeprefix('Value error, ')}")
        return cls(f"invalid {what}:\n" + "\n".join(lines))


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Override top-level sections; `policies`, `channels`, `collector`, `stream` merge per key."""
    merged = dict(base)
    for key, value in override.items():
        if key in ("policies", "channels", "collector", "stream", "warehouse") and isinstance(
                value, dict):
            merged[key] = {**base.get(key, {}), **value}
        else:
            merged[key] = value
    return merged


def parse_config(text: str, base: dict[str, Any] | None = None) -> Config:
    """Validate TOML text (merged over ``base``) into a Config, with readable errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config is not valid TOML: {exc}") from None
    return config_from_dict(merge_config(base or {}, data))


def config_from_dict(data: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError.from_validation("config", exc) from None
