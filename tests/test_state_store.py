"""Stream state: the compact encodings round-trip, the stores find idle keys without a scan,
changelog records decode to what was written, and a table rebuilds from its changelog (a
restart) or catches up after another worker wrote it (a rebalance)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.device import DeviceState, Fold, Page
from attribution.journey import CreditedConversion, JourneyState
from schemas.contracts import JourneyConversion, JourneyTouch, Link, RoutedConversion
from streams import state_codec
from streams.state.changelog import decode_record, encode_record
from streams.state.rocks import RocksStore
from streams.state.store import BUCKET_US, MemoryStore, PartitionStore
from streams.state.table import StateTable
from tests.support.harness import MemoryLog

ids = st.text(alphabet="abcdef-0123456789", min_size=1, max_size=12)
names = st.sampled_from(["Direct", "Paid Search", "Sales Meeting", "My Channel", "visit",
                         "click", "offline"])
opt_ids = st.none() | ids
times = st.integers(0, 4_000_000_000_000_000)
touches = st.builds(JourneyTouch, times, ids, names, st.none() | ids, names, opt_ids, opt_ids,
                    opt_ids)
conversions = st.builds(JourneyConversion, ids, ids, times, ids, ids, ids,
                        st.floats(0, 1e12), st.none() | ids, opt_ids, opt_ids, opt_ids,
                        st.just("{}"))
pages = st.builds(Page, times, ids, st.none() | ids, st.booleans(), opt_ids, opt_ids, opt_ids,
                  names, opt_ids, opt_ids, opt_ids, opt_ids, opt_ids)


@given(device=ids, person=ids, account=opt_ids, touched=st.lists(touches, max_size=5),
       pages=st.lists(pages, max_size=4), fold=st.none() | st.builds(Fold, times, ids,
                                                                     opt_ids, ids),
       converted=st.lists(st.tuples(conversions, st.integers(1, 9)), max_size=3))
def test_device_state_round_trips(device: str, person: str, account: str | None,
                                  touched: list[JourneyTouch], pages: list[Page],
                                  fold: Fold | None,
                                  converted: list[tuple[JourneyConversion, int]]) -> None:
    # A device's touches carry its own id mostly: the codec writes that as a marker.
    touched = [t._replace(anonymous_id=device) if i % 2 else t for i, t in enumerate(touched)]
    state = DeviceState(device, person, account, 7, pages, fold, {"x": 9},
                        {t.event_id: t for t in touched},
                        {c.conversion_id: RoutedConversion(c, g) for c, g in converted})
    assert state_codec.decode_device(state_codec.encode_device(state)) == state


@given(key=st.sampled_from(["account:acme", "account:x1"]), touched=st.lists(touches, max_size=5),
       converted=st.lists(st.tuples(conversions, st.integers(1, 9), st.integers(0, 999),
                                    st.none() | st.integers(0, 2**62)), max_size=3))
def test_account_journey_round_trips(key: str, touched: list[JourneyTouch],
                                     converted: list[tuple[JourneyConversion, int, int,
                                                           int | None]]) -> None:
    state = JourneyState(key, {t.event_id: t for t in touched},
                         {c.conversion_id: CreditedConversion(c, g, r, f)
                          for c, g, r, f in converted}, 12)
    assert state_codec.decode_journey(state_codec.encode_journey(state)) == state


def test_person_journey_drops_touch_ids_as_it_is_erased_by_its_key() -> None:
    touch = JourneyTouch(1, "e1", "Paid Search", "spring", "visit", "anon-1", "u-1", None)
    state = JourneyState("person:u-1", {"e1": touch}, {}, 1)
    decoded = state_codec.decode_journey(state_codec.encode_journey(state))
    assert decoded.touches["e1"] == touch._replace(anonymous_id=None, person_id=None)


def test_link_round_trips() -> None:
    link = Link("alias", "old", "new", 5, "e")
    assert state_codec.decode_link(state_codec.encode_link(link)) == link


@given(st.lists(st.tuples(st.text(max_size=20), st.integers(0, 2**62),
                          st.none() | st.binary(max_size=40)), max_size=20))
def test_changelog_records_decode_to_what_was_written(changes: list[tuple[str, int,
                                                                          bytes | None]]) -> None:
    assert list(decode_record(encode_record(changes))) == changes


@pytest.mark.parametrize("data", [b"", b"\x00\xff", b"\x93\x01\x02\x03", b"\x91\x92\x01\x02"])
def test_a_record_that_is_not_a_changelog_record_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a changelog record"):
        list(decode_record(data))


def stores(tmp_path: Path) -> list[PartitionStore]:
    return [MemoryStore(0), RocksStore(tmp_path / "rocks", 0)]


def test_stores_find_idle_keys_by_hour_without_scanning(tmp_path: Path) -> None:
    hour = BUCKET_US
    for store in stores(tmp_path):
        store.put("old", b"o", 1 * hour)
        store.put("moved", b"m", 1 * hour)
        store.put("moved", b"m2", 5 * hour)  # active again later: no longer idle
        store.put("new", b"n", 6 * hour)
        store.put("gone", b"g", 1 * hour)
        store.delete("gone")
        assert store.idle(4 * hour) == ["old"]
        assert store.get("moved") == b"m2" and len(store) == 3
        assert store.active_before("new", 7 * hour) and not store.active_before("new", 6 * hour)
        assert store.idle(8 * hour) == ["moved", "new"]  # "old" was handed out already
        store.close()


def test_rocks_store_keeps_values_offset_and_idleness_across_reopen(tmp_path: Path) -> None:
    store = RocksStore(tmp_path / "r", 3)
    store.put("a", b"va", BUCKET_US)
    store.put("b", b"vb", 9 * BUCKET_US)
    store.mark_applied(41)
    store.close()
    again = RocksStore(tmp_path / "r", 3)
    assert (again.applied, again.get("a"), len(again)) == (41, b"va", 2)
    assert again.idle(2 * BUCKET_US) == ["a"]
    again.close()


def table(log: MemoryLog, topic: str = "t-changelog") -> StateTable:
    async def send(partition: int, data: bytes) -> asyncio.Future[object]:
        return await log.send(topic, partition, data)  # type: ignore[return-value]

    return StateTable("t", topic, log.read, MemoryStore, send)


def test_a_table_rebuilds_from_its_changelog_and_catches_up_after_a_rebalance() -> None:
    async def run() -> None:
        log = MemoryLog()
        first = table(log)
        await first.ensure(1)
        await first.commit(1, {"a": (10, b"1"), "b": (10, b"2")})
        await first.commit(1, {"a": (11, b"3"), "b": (0, None)})
        restarted = table(log)  # a new worker process: memory is empty
        store = await restarted.ensure(1)
        assert (store.get("a"), store.get("b"), store.applied) == (b"3", None, 1)
        # Another worker owned the partition meanwhile and wrote to it; a rebalance hands it
        # back: the table reads only what it has not applied.
        await log.send("t-changelog", 1, encode_record([("c", 12, b"4")]))
        restarted.assigned([1])
        store = await restarted.ensure(1)
        assert (store.get("a"), store.get("c"), store.applied) == (b"3", b"4", 2)
        assert restarted.recovered_records == 3

    asyncio.run(run())


@settings(max_examples=30)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 50 * BUCKET_US),
                          st.booleans()), max_size=40), st.integers(0, 60 * BUCKET_US))
def test_idle_finds_exactly_the_keys_idle_long_enough(ops: list[tuple[str, int, bool]],
                                                      before: int) -> None:
    store = MemoryStore(0)
    latest: dict[str, int] = {}
    for key, active, delete in ops:
        if delete:
            store.delete(key)
            latest.pop(key, None)
        else:
            store.put(key, b"v", active)
            latest[key] = active
    found = set(store.idle(before))
    # Exact hours only: a key idle within the last, partial hour waits for the next pass.
    limit = before // BUCKET_US * BUCKET_US
    assert {k for k, t in latest.items() if t < limit} <= found
    assert found <= {k for k, t in latest.items() if t < before}


def test_a_standby_table_follows_partitions_it_does_not_own() -> None:
    async def run() -> None:
        log = MemoryLog()
        owner = table(log)
        owner.assigned([0])
        await owner.ensure(0)
        await owner.commit(0, {"a": (1, b"1")})
        standby = table(log)
        standby.standby = True
        standby.assigned([1])  # owns partition 1; partition 0 belongs to the other worker
        await standby.follow(range(2))
        kept = standby.store(0)
        assert kept is not None and kept.get("a") == b"1"
        await owner.commit(0, {"a": (2, b"2")})
        standby.assigned([0, 1])  # the other worker left: partition 0 is handed over
        assert (await standby.ensure(0)).get("a") == b"2"
        assert standby.recovered_records == 2  # the tail only, one record each time

    asyncio.run(run())
