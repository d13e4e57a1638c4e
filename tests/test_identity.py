"""Identity resolution: anonymous -> person -> account, alias merges, order independence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from attribution.identity import IdentityGraph
from schemas.records import IdentityLink, LinkKind

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def link(kind: LinkKind, a: str, b: str, minutes: int = 0) -> IdentityLink:
    return IdentityLink(event_id=f"{kind}-{a}-{b}", time=T0 + timedelta(minutes=minutes),
                        kind=kind, from_id=a, to_id=b)


ANON, ALIAS, GROUP = LinkKind.ANONYMOUS_PERSON, LinkKind.ALIAS, LinkKind.PERSON_ACCOUNT


def test_anonymous_ids_resolve_to_the_person_who_identified() -> None:
    graph = IdentityGraph([link(ANON, "anon-phone", "u1"), link(ANON, "anon-laptop", "u1")])
    assert graph.person_of(None, "anon-phone") == "u1"
    assert graph.person_of("anon-laptop") == "u1"
    assert graph.person_of("never-identified") == "never-identified"


def test_account_comes_from_the_latest_group_call_of_any_id_of_the_person() -> None:
    graph = IdentityGraph([
        link(GROUP, "anon-1", "acct-old", minutes=1),  # grouped while still anonymous
        link(ANON, "anon-1", "u1", minutes=2),
        link(GROUP, "u1", "acct-new", minutes=3),
    ])
    resolved = graph.resolve("anon-1", None)
    assert resolved is not None and resolved.account_key == "acct-new"
    # An explicit groupId on the event wins over the person's group.
    assert graph.resolve("anon-1", None, "acct-x").account_key == "acct-x"  # type: ignore[union-attr]


def test_alias_merges_two_user_ids_into_one_person() -> None:
    graph = IdentityGraph([
        link(ANON, "a1", "old-user"),
        link(ANON, "a2", "new-user"),
        link(ALIAS, "old-user", "new-user"),
    ])
    assert graph.person_of("a1") == graph.person_of("a2") == "new-user"


def test_person_key_prefers_a_user_id_even_if_an_anonymous_id_sorts_first() -> None:
    graph = IdentityGraph([link(ANON, "0-anon", "zed")])
    assert graph.person_of("0-anon") == "zed"


def test_alias_from_an_anonymous_id() -> None:
    graph = IdentityGraph([link(ALIAS, "anon-9", "u9")])
    assert graph.person_of("anon-9") == "u9"


ids = st.sampled_from(["a1", "a2", "a3", "u1", "u2", "u3", "c1", "c2"])
links = st.lists(
    st.tuples(st.sampled_from([ANON, ALIAS, GROUP]), ids, ids, st.integers(0, 5)), max_size=12
)


@given(links, st.randoms())
def test_resolution_does_not_depend_on_link_order(raw: list[tuple[LinkKind, str, str, int]],
                                                   rnd: object) -> None:
    made = [link(kind, a, b, m) for kind, a, b, m in raw]
    shuffled = list(made)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    one, two = IdentityGraph(made), IdentityGraph(shuffled)
    for id_ in ["a1", "a2", "a3", "u1", "u2", "u3", "c1", "c2"]:
        assert one.resolve(id_, None) == two.resolve(id_, None)


@given(links)
def test_cluster_lists_exactly_the_ids_with_the_same_person(
        raw: list[tuple[LinkKind, str, str, int]]) -> None:
    graph = IdentityGraph(link(kind, a, b, m) for kind, a, b, m in raw)
    for id_ in graph.known_ids():
        expected = [other for other in graph.known_ids()
                    if graph.person_of(other) == graph.person_of(id_)]
        assert graph.cluster(id_) == expected
