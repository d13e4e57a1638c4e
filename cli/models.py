"""Commands of this area (see cli/main.py for how they are registered)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

COMMANDS: list[Callable[..., Any]] = []
