"""The shipped default configuration and the one way to build a Config from user TOML.

Reads only this package's own `defaults.toml` (static package data), never user files:
callers read the user's file and pass its text.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any

from attribution.channels import ChannelRules
from attribution.policy import Config, parse_config


@cache
def default_text() -> str:
    return files("attribution").joinpath("defaults.toml").read_text(encoding="utf-8")


def default_dict() -> dict[str, Any]:
    return tomllib.loads(default_text())


def load_config(user_text: str | None = None) -> Config:
    """Defaults, with the user's TOML (if any) replacing sections or policies."""
    if user_text is None:
        return parse_config(default_text())
    return parse_config(user_text, base=default_dict())


def channel_rules(config: Config) -> ChannelRules:
    return ChannelRules.from_overrides(config.channels)
