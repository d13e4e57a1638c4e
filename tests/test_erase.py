"""`attribution erase` on a real warehouse (real Parquet, real DuckDB, the real CLI process),
the warehouse rewrite as a property, and the pure scrubbing of live stream state."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.batch import attribute_events
from attribution.credit import to_micros
from attribution.defaults import channel_rules, load_config
from attribution.device import DeviceState
from attribution.journey import CreditedConversion, JourneyState
from schemas.contracts import JourneyConversion, JourneyTouch, Link, RoutedConversion
from schemas.records import LinkKind
from streams.erase import marker_ids, scrub_device, scrub_journey, scrub_link
from tests.test_batch import B2C_JOURNEY, T0, group, identify, page, track
from warehouse.erase import erase_warehouse
from warehouse.landing import land
from warehouse.layout import TABLES, ensure_layout, landed_files
from warehouse.lock import LOCK_FILE
from warehouse.query import run_query
from warehouse.replay import land_result
from warehouse.views import create_views

CONFIG = load_config()
RULES = channel_rules(CONFIG)
PERSON = ("u-1", "anon-1", "anon-2")  # u-1 signed in on anon-2 and identified anon-1
OTHER = [
    page("q1", 0, "anon-9", "https://shop.example/?utm_source=google&utm_medium=cpc"),
    track("q2", 30, "Order Completed", {"order_id": "B-1", "revenue": 20.0}, anon="anon-9"),
]
B2B = [
    page("a1", 0, "anon-a", "https://saas.example/?utm_source=linkedin&utm_medium=paid_social"),
    identify("a2", 1, "anon-a", "alice"),
    group("a3", 2, "alice", "acme"),
    track("a4", 60, "Opportunity Won", {"opportunity_id": "O-1", "amount": 1000},
          user="alice", group="acme"),
]
# A rejected event that names the person (negative revenue).
REJECTED = [track("bad", 40, "Order Completed", {"order_id": "X", "revenue": -1}, user="u-1")]


def build(root: Path, *batches: list[dict[str, Any]]) -> None:
    """Each batch of events replayed and landed as its own files (as separate runs would)."""
    ensure_layout(root)
    for index, events in enumerate(batches):
        result = attribute_events(((str(i), e) for i, e in enumerate(events)), CONFIG, RULES,
                                  now=T0 + timedelta(days=400))
        land_result(root, result, f"run{index}")
    create_views(root)


def all_rows(root: Path) -> dict[str, list[str]]:
    """Every landed row of every table (erasures aside) as JSON text."""
    create_views(root)
    return {table: [orjson.dumps(r, default=str).decode() for r in
                    run_query(root, f"SELECT * EXCLUDE (landed_at) FROM raw_{table}"
                              if "landed_at" in TABLES[table].names
                              else f"SELECT * FROM raw_{table}")[1]]
            for table in TABLES if table != "erasures"}


def mentions(text: str, ids: tuple[str, ...]) -> bool:
    return any(f'"{i}"' in text or f'\\"{i}\\"' in text or f"person:{i}" in text
               or f"account:{i}" in text for i in ids)


def erase_cli(root: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "cli.main", "erase", *args, "--warehouse",
                           str(root)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_erase_user_removes_the_person_everywhere_and_nothing_else(tmp_path: Path) -> None:
    build(tmp_path, B2C_JOURNEY + REJECTED, OTHER)
    before = all_rows(tmp_path)
    assert sum(mentions(r, PERSON) for rows in before.values() for r in rows) >= 20
    other_files = {p: p.read_bytes() for p in landed_files(tmp_path, "touches")
                   if b"anon-9" in p.read_bytes() and b"anon-1" not in p.read_bytes()}
    assert other_files

    report = erase_cli(tmp_path, "--user-id", "u-1")

    after = all_rows(tmp_path)
    leftover = [r for rows in after.values() for r in rows if mentions(r, PERSON)]
    assert leftover == []
    # Everything that did not mention the person is still there, row for row.
    for table, rows in before.items():
        assert sorted(after[table]) == sorted(r for r in rows if not mentions(r, PERSON)), table
    assert run_query(tmp_path, "SELECT conversion_id FROM conversions")[1] == [("purchase:B-1",)]
    assert report["ids_erased"] == 3 and report["stream_state"] is False
    assert report["rows_removed"]["touches"] == 3 and report["rows_removed"]["rejected"] == 1
    # Files without the person were not rewritten; no temp file is left behind.
    assert all(p.read_bytes() == content for p, content in other_files.items())
    assert not [p for p in tmp_path.rglob(".*") if p.is_file() and p.name != LOCK_FILE]
    # The audit row: counts, never the ids.
    columns, audit = run_query(tmp_path, "SELECT * FROM erasures")
    assert len(audit) == 1
    row = dict(zip(columns, audit[0], strict=True))
    assert (row["subject"], row["ids_erased"], row["stream_state"]) == ("user_id", 3, False)
    assert json.loads(row["rows_removed"]) == report["rows_removed"]
    assert not mentions(orjson.dumps(audit, default=str).decode(), PERSON)


def test_erase_by_anonymous_id_erases_the_whole_person(tmp_path: Path) -> None:
    build(tmp_path, B2C_JOURNEY, OTHER)
    report = erase_cli(tmp_path, "--anonymous-id", "anon-1")
    assert report["ids_erased"] == 3
    assert not [r for rows in all_rows(tmp_path).values() for r in rows if mentions(r, PERSON)]


def test_erase_account_keeps_its_contacts_b2c_history(tmp_path: Path) -> None:
    b2c_alice = [page("c1", 0, "anon-a", "https://shop.example/", "https://www.bing.com/"),
                 track("c2", 10, "Order Completed", {"order_id": "C-1", "revenue": 5.0},
                       anon="anon-a")]
    build(tmp_path, B2B + b2c_alice)
    erase_cli(tmp_path, "--account-id", "acme")
    rows = all_rows(tmp_path)
    assert not [r for rs in rows.values() for r in rs if mentions(r, ("acme",))]
    assert run_query(tmp_path, "SELECT DISTINCT journey_key FROM credits")[1] == [("person:alice",)]
    assert ("anonymous_person",) in run_query(tmp_path, "SELECT kind FROM raw_identity_links")[1]


def test_erase_needs_exactly_one_subject(tmp_path: Path) -> None:
    ensure_layout(tmp_path)
    done = subprocess.run([sys.executable, "-m", "cli.main", "erase", "--user-id", "a",
                           "--account-id", "b", "--warehouse", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "exactly one of" in done.stderr


# --- the rewrite as a property ------------------------------------------------------------

IDS = ["a", "b", "c", "d"]
id_or_none = st.one_of(st.none(), st.sampled_from(IDS))


@st.composite
def touch_files(draw: st.DrawFn) -> list[list[dict[str, Any]]]:
    files = draw(st.lists(st.lists(st.tuples(id_or_none, id_or_none, id_or_none), min_size=1,
                                   max_size=6), min_size=1, max_size=4))
    time = datetime(2026, 1, 1, tzinfo=UTC)
    return [[{"event_id": f"e{f}-{n}", "time": time, "anonymous_id": anon, "person_id": person,
              "account_id": account, "channel": "Direct", "source": None, "medium": None,
              "campaign": None, "kind": "visit", "properties": "{}"}
             for n, (anon, person, account) in enumerate(rows)] for f, rows in enumerate(files)]


@settings(max_examples=40)
@given(files=touch_files(), erased=st.frozensets(st.sampled_from(IDS), min_size=1))
def test_erase_removes_exactly_the_rows_that_mention_the_ids(
        files: list[list[dict[str, Any]]], erased: frozenset[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        ensure_layout(root)
        for index, rows in enumerate(files):
            land(root, "touches", rows, name=f"f{index}")
        report = erase_warehouse(root, erased)
        left = sorted(row["event_id"] for path in landed_files(root, "touches")
                      for row in pq.read_table(path).to_pylist())
        expected = sorted(row["event_id"] for rows in files for row in rows
                          if not {row["anonymous_id"], row["person_id"], row["account_id"]}
                          & erased)
        assert left == expected
        removed = sum(len(rows) for rows in files) - len(expected)
        assert report.rows_removed.get("touches", 0) == removed
        # a file is rewritten only if it held an erased row; emptied files are gone
        assert report.files_rewritten == sum(
            any({r["anonymous_id"], r["person_id"], r["account_id"]} & erased for r in rows)
            for rows in files)
        assert all(pq.read_table(p).num_rows for p in landed_files(root, "touches"))


# --- live state, pure ---------------------------------------------------------------------

T = datetime(2026, 1, 1, tzinfo=UTC)


def touch(event_id: str, anon: str | None, person: str | None = None,
          account: str | None = None) -> JourneyTouch:
    return JourneyTouch(to_micros(T), event_id, "Direct", None, "visit", anon, person, account)


def conversion(cid: str, anon: str | None, account: str | None = None) -> JourneyConversion:
    return JourneyConversion(cid, cid, to_micros(T), "purchase", "Order Completed", "b2c", 1.0,
                             None, anon, None, account, "{}")


def test_scrub_device_deletes_the_persons_devices_and_strips_mentions() -> None:
    ids = frozenset({"u-1", "anon-1"})
    assert scrub_device("anon-1", DeviceState("anon-1", "anon-1"), ids) is None
    assert scrub_device("anon-7", DeviceState("anon-7", "u-1"), ids) is None  # u-1's device
    untouched = DeviceState("anon-8", "anon-8", touches={"t": touch("t", "anon-8")})
    assert scrub_device("anon-8", untouched, ids) is untouched
    shared = DeviceState("anon-8", "anon-8", account="acme",
                         touches={"t1": touch("t1", "anon-8"), "t2": touch("t2", "anon-8", "u-1")},
                         conversions={"c": RoutedConversion(conversion("c", "anon-1"), 1)})
    scrubbed = scrub_device("anon-8", shared, ids)
    assert scrubbed is not None and list(scrubbed.touches) == ["t1"] and not scrubbed.conversions
    assert scrub_device("anon-8", shared, frozenset({"acme"})).account is None  # type: ignore[union-attr]


def test_scrub_journey_deletes_the_persons_journeys_and_their_touches_in_accounts() -> None:
    ids = frozenset({"u-1", "anon-1"})
    assert scrub_journey("person:u-1", JourneyState("person:u-1"), ids) is None
    account = JourneyState("account:acme", touches={"t1": touch("t1", "anon-1"),
                                                    "t2": touch("t2", "anon-5", "bob")},
                           conversions={"c": CreditedConversion(conversion("c", "anon-5"), 1)})
    scrubbed = scrub_journey("account:acme", account, ids)
    assert scrubbed is not None and list(scrubbed.touches) == ["t2"] and "c" in scrubbed.conversions
    only_theirs = JourneyState("account:x", touches={"t1": touch("t1", "anon-1")})
    assert scrub_journey("account:x", only_theirs, ids) is None
    assert scrub_journey("account:acme", account, frozenset({"acme"})) is None


def test_scrub_link_and_marker_validation() -> None:
    link = Link(LinkKind.ALIAS.value, "old", "u-1", to_micros(T), "e")
    assert scrub_link("k", link, frozenset({"u-1"})) is None
    assert scrub_link("k", link, frozenset({"u-2"})) is link
    assert marker_ids({"erase": {"id": "x", "ids": ["a", "b"]}}) == frozenset({"a", "b"})
    bad: dict[str, Any]
    for bad in ({"erase": {}}, {"erase": {"ids": []}}, {"erase": {"ids": [1]}}, {"erase": "a"}):
        try:
            marker_ids(bad)
        except ValueError as exc:
            assert "erase marker" in str(exc)
        else:
            raise AssertionError(f"accepted {bad}")
