"""Known bots and crawlers, recognised by user agent (patterns come from the settings)."""

from __future__ import annotations

import re
from typing import Any

MEMO_SIZE = 10_000
MEMO_AGENT_CHARS = 512  # longer agents are searched every time: the memo stays small


class BotFilter:
    def __init__(self, pattern: re.Pattern[str]):
        self._pattern = pattern
        # User agents repeat a lot and the alternation of ~60 patterns is slow to search.
        self._memo: dict[str, bool] = {}

    def is_bot(self, user_agent: str | None) -> bool:
        if not user_agent:
            return False
        known = self._memo.get(user_agent)
        if known is None:
            known = self._pattern.search(user_agent) is not None
            if len(user_agent) <= MEMO_AGENT_CHARS:
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()
                self._memo[user_agent] = known
        return known

    def event_is_bot(self, event: dict[str, Any], request_user_agent: str | None) -> bool:
        """The event's own ``context.userAgent`` (browser) wins over the request's (SDK)."""
        context = event.get("context")
        agent = context.get("userAgent") if isinstance(context, dict) else None
        return self.is_bot(agent if isinstance(agent, str) and agent else request_user_agent)
