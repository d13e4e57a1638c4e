"""Journey keys: which person or account a touch or conversion belongs to."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol, TypeVar

from attribution.identity import IdentityGraph
from attribution.policy import Policy


class _HasIds(Protocol):
    """A touch or conversion (record or compact): the ids it was observed with."""

    @property
    def anonymous_id(self) -> str | None: ...
    @property
    def person_id(self) -> str | None: ...
    @property
    def account_id(self) -> str | None: ...
    @property
    def event_id(self) -> str: ...


T = TypeVar("T", bound=_HasIds)

PERSON = "person"
ACCOUNT = "account"


def person_key(person: str) -> str:
    return f"{PERSON}:{person}"


def account_key(account: str) -> str:
    return f"{ACCOUNT}:{account}"


def touch_keys(touch: _HasIds, graph: IdentityGraph) -> tuple[str | None, str | None]:
    """(person journey key, account journey key) of a touch under the current identities."""
    resolved = graph.resolve(touch.anonymous_id, touch.person_id, touch.account_id)
    if resolved is None:
        return None, None
    account = account_key(resolved.account_key) if resolved.account_key else None
    return person_key(resolved.person_key), account


def conversion_key(conversion: _HasIds, policy: Policy, graph: IdentityGraph) -> str:
    """Account policies use the account (from the event's groupId or the person's group);
    a conversion with no known account falls back to the person's journey."""
    resolved = graph.resolve(conversion.anonymous_id, conversion.person_id, conversion.account_id)
    if resolved is None:  # parse_event guarantees an id; keep the type checker honest
        return person_key(conversion.event_id)
    if policy.journey == ACCOUNT and resolved.account_key:
        return account_key(resolved.account_key)
    return person_key(resolved.person_key)


def index_touches(touches: Iterable[T], graph: IdentityGraph) -> dict[str, list[T]]:
    """Every touch under its person key and, when it has one, its account key."""
    index: dict[str, list[T]] = defaultdict(list)
    for touch in touches:
        person, account = touch_keys(touch, graph)
        if person:
            index[person].append(touch)
        if account:
            index[account].append(touch)
    return index
