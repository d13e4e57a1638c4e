"""Identity resolution: anonymous visitor -> person -> account.

Ids joined by `identify` (anonymousId + userId on one event) or `alias` form one
person (union-find). The person's key is the smallest user id of the cluster (or the
smallest anonymous id if it never identified): the answer depends only on the set of
links, never on their order, so batch and stream agree. A person's account is the
one named by its latest `group` link (ties: the larger account id).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas.contracts import IdentityUpdate, Link
from schemas.records import IdentityLink, LinkKind

__all__ = ["IdentityGraph", "IdentityUpdate", "Resolved", "apply_links", "compact_link"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def compact_link(link: Link | IdentityLink) -> Link:
    """A link with its time in epoch microseconds (records are converted)."""
    if isinstance(link, Link):
        return link
    return Link(link.kind.value, link.from_id, link.to_id,
                (link.time - _EPOCH) // timedelta(microseconds=1), link.event_id)


@dataclass(frozen=True, slots=True)
class Resolved:
    person_key: str
    account_key: str | None


class IdentityGraph:
    def __init__(self, links: Iterable[Link | IdentityLink] = ()) -> None:
        self._parent: dict[str, str] = {}
        self._users: set[str] = set()
        self._groups: dict[str, tuple[int, str]] = {}  # root -> (time, account)
        self._members: dict[str, list[str]] = {}  # root -> every id of its cluster
        self.latest_link_time: int | None = None  # epoch microseconds
        self._answered_as_of: int | None = None
        for link in links:
            self.add(link)

    def _find(self, node: str) -> str:
        parent = self._parent.get(node)
        if parent is None:
            self._parent[node] = node
            self._members[node] = [node]
            return node
        if parent == node:
            return node
        root = self._find(parent)
        self._parent[node] = root
        return root

    def _rank(self, node: str) -> tuple[int, str]:
        # Root choice: user ids beat anonymous ids, then the smaller id.
        return (0 if node in self._users else 1, node)

    def _union(self, a: str, b: str) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if self._rank(rb) < self._rank(ra):
            ra, rb = rb, ra
        self._parent[rb] = ra
        self._members[ra].extend(self._members.pop(rb))
        group = self._groups.pop(rb, None)
        if group is not None:
            self._merge_group(ra, group)

    def _merge_group(self, root: str, group: tuple[int, str]) -> None:
        current = self._groups.get(root)
        if current is None or group > current:
            self._groups[root] = group

    def add(self, link: Link | IdentityLink) -> None:
        link = compact_link(link)
        if self.latest_link_time is None or link.time > self.latest_link_time:
            self.latest_link_time = link.time
        if link.kind == LinkKind.PERSON_ACCOUNT:
            self._merge_group(self._find(link.from_id), (link.time, link.to_id))
            return
        # The target of identify/alias is a user id; an alias source may be either kind.
        self._mark_user(link.to_id)
        self._union(link.from_id, link.to_id)

    def _mark_user(self, user_id: str) -> None:
        if user_id in self._users:
            return
        self._users.add(user_id)
        root = self._find(user_id)
        if root != user_id and self._rank(user_id) < self._rank(root):
            # A new user id may now outrank the cluster's root: re-root deterministically.
            self._parent[root] = user_id
            self._parent[user_id] = user_id
            self._members[user_id] = self._members.pop(root)
            group = self._groups.pop(root, None)
            if group is not None:
                self._merge_group(user_id, group)

    def next_as_of(self) -> int | None:
        """A strictly increasing stamp (epoch us) for each round of answers: the latest link
        time, nudged by a microsecond when links arrive with older event times."""
        stamp = self.latest_link_time
        if stamp is not None and self._answered_as_of is not None and (
                stamp <= self._answered_as_of):
            stamp = self._answered_as_of + 1
        self._answered_as_of = stamp
        return stamp

    def person_of(self, *ids: str | None) -> str | None:
        """Person key of the first id given that is not None."""
        for id_ in ids:
            if id_:
                return self._find(id_)
        return None

    def account_of_person(self, person_key: str) -> str | None:
        group = self._groups.get(self._find(person_key))
        return group[1] if group else None

    def resolve(self, anonymous_id: str | None, person_id: str | None,
                account_id: str | None = None) -> Resolved | None:
        person = self.person_of(person_id, anonymous_id)
        if person is None:
            return None
        return Resolved(person, account_id or self.account_of_person(person))

    def known_ids(self) -> list[str]:
        return sorted(self._parent)

    def cluster(self, id_: str) -> list[str]:
        """Every id resolving to the same person as ``id_`` (sorted)."""
        return sorted(self._members[self._find(id_)])


def apply_links(graph: IdentityGraph, links: Iterable[Link | IdentityLink]
                ) -> list[IdentityUpdate]:
    """Stream identity stage: add links, answer the current identity of every id they touch.

    Every id of each affected cluster is answered (devices ignore answers that change
    nothing), in sorted order so output is deterministic.
    """
    touched: set[str] = set()
    for link in links:
        link = compact_link(link)
        graph.add(link)
        touched.add(link.from_id)
        if link.kind != LinkKind.PERSON_ACCOUNT:  # an account id is not a person's id
            touched.add(link.to_id)
    ids = sorted({member for id_ in touched for member in graph.cluster(id_)})
    updates = []
    for id_ in ids:
        resolved = graph.resolve(None, id_)
        assert resolved is not None
        updates.append(IdentityUpdate(id_, resolved.person_key, resolved.account_key))
    return updates
