"""Ad spend import: row validation, idempotent re-import, the CLI and the landing envelopes."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.analysts import spend_app
from streams.sink import land_rows
from warehouse.query import run_query
from warehouse.spend import (
    SpendFileError,
    import_spend,
    landing_messages,
    parse_spend_csv,
)
from warehouse.views import create_views, warehouse_path

HEADER = "date,channel,campaign,cost,currency,impressions,clicks\n"


def spend_view(root: Path) -> list[tuple[Any, ...]]:
    if not warehouse_path(root).exists():  # the views read the files at query time
        create_views(root)
    return run_query(root, "SELECT date, channel, campaign, cost, impressions, clicks, currency "
                           "FROM spend ORDER BY ALL")[1]


def test_valid_rows_parse_to_spend_rows() -> None:
    parsed = parse_spend_csv(
        HEADER
        + "2024-03-01,Paid Social,fb_a,12.5,usd,1000,20\n"
        + "\n"  # blank lines are skipped
        + "2024-03-01,Trade Show,,900,EUR,,\n",  # channel-level spend; counts not reported
        source="x.csv")
    assert parsed.bad == []
    assert parsed.rows == [
        {"date": date(2024, 3, 1), "channel": "Paid Social", "campaign": "fb_a", "cost": 12.5,
         "impressions": 1000, "clicks": 20, "currency": "USD"},
        {"date": date(2024, 3, 1), "channel": "Trade Show", "campaign": None, "cost": 900.0,
         "impressions": 0, "clicks": 0, "currency": "EUR"},
    ]


def test_bad_rows_are_reported_with_line_and_reason() -> None:
    text = (
        "Date, Channel ,campaign,cost,currency,impressions,clicks,notes\n"  # line 1
        "2024-03-01,Email,news,5,USD,200,10,ok\n"  # 2: good
        "2024-02-30,Email,news,5,USD,200,10,x\n"  # 3
        "03/01/2024,Email,news,5,USD,200,10,x\n"  # 4
        "2024-03-02,,news,-1,US,200,10,x\n"  # 5: three problems at once
        "2024-03-02,Email,news,nan,USD,200,10,x\n"  # 6
        "2024-03-02,Email,news,5,USD,10,11,x\n"  # 7
        "2024-03-02,Email,news,5,USD,1.5,1,x\n"  # 8
        "2024-03-01,Email,news,7,USD,200,10,x\n"  # 9: same key as line 2
        "2024-03-03,Email,\"multi\nline\",5,USD,200,10,x\n"  # 10-11: good, ends on line 11
        "2024-03-04,Email,news,5\n"  # 12
    )
    parsed = parse_spend_csv(text, source="bad.csv")
    assert parsed.ignored_columns == ["notes"]
    assert [row["campaign"] for row in parsed.rows] == ["news", "multi\nline"]
    reasons = {bad.line: bad.reason for bad in parsed.bad}
    assert reasons == {
        3: "date '2024-02-30' does not exist",
        4: "date '03/01/2024' is not YYYY-MM-DD",
        5: "channel is empty; cost '-1' must be a finite number >= 0; "
           "currency 'US' is not a 3-letter code (ISO 4217)",
        6: "cost 'nan' must be a finite number >= 0",
        7: "clicks (11) exceed impressions (10)",
        8: "impressions '1.5' is not a whole number >= 0",
        9: "duplicate of line 2 for the same date, channel and campaign",
        12: "has 4 fields, the header has 8",
    }
    assert parsed.bad[0].raw == "2024-02-30,Email,news,5,USD,200,10,x"


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"),
    ("date,channel,campaign,cost\n", "missing column(s) currency"),
    ("date,channel,cost,currency,cost\n", "column(s) cost appear twice"),
])
def test_unusable_files_are_refused_whole(text: str, message: str) -> None:
    with pytest.raises(SpendFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_spend_csv(text)


def test_reimport_replaces_per_date_channel_campaign(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    first = tmp_path / "first.csv"
    first.write_text(HEADER + "2024-03-01,Email,news,5,USD,200,10\n"
                              "2024-03-02,Email,news,6,USD,300,12\n")
    import_spend(root, first)
    import_spend(root, first)  # the same file again changes nothing
    assert spend_view(root) == [
        (date(2024, 3, 1), "Email", "news", 5.0, 200, 10, "USD"),
        (date(2024, 3, 2), "Email", "news", 6.0, 300, 12, "USD"),
    ]
    corrected = tmp_path / "corrected.csv"
    corrected.write_text(HEADER + "2024-03-02,Email,news,6.5,USD,310,13\n"
                                  "2024-03-02,Display,,30,USD,3000,3\n")
    import_spend(root, corrected)
    assert spend_view(root) == [
        (date(2024, 3, 1), "Email", "news", 5.0, 200, 10, "USD"),
        (date(2024, 3, 2), "Display", None, 30.0, 3000, 3, "USD"),
        (date(2024, 3, 2), "Email", "news", 6.5, 310, 13, "USD"),
    ]
    import_spend(root, first)  # importing the old export again makes it current again
    assert (date(2024, 3, 2), "Email", "news", 6.0, 300, 12, "USD") in spend_view(root)


def test_cli_lands_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    root = tmp_path / "wh"
    file = tmp_path / "spend.csv"
    file.write_text(HEADER + "2024-03-01,Email,news,5,USD,200,10\n"
                             "2024-03-01,Email,promo,x,USD,200,10\n")
    result = CliRunner().invoke(spend_app, ["import", str(file), "--warehouse", str(root)])
    assert result.exit_code == 1, result.output
    assert "spend.csv, line 3" in result.output and "cost 'x' is not a number" in result.output
    assert "landed 1 spend rows (1 rejected)" in result.output
    assert spend_view(root) == [(date(2024, 3, 1), "Email", "news", 5.0, 200, 10, "USD")]
    rejected = run_query(root, "SELECT source, position, reason, raw FROM rejected")[1]
    assert rejected == [("spend:spend.csv", "line 3", "cost 'x' is not a number",
                         "2024-03-01,Email,promo,x,USD,200,10")]
    file.write_text(HEADER + "2024-03-01,Email,news,4,USD,200,10\n")
    result = CliRunner().invoke(spend_app, ["import", str(file), "--warehouse", str(root)])
    assert result.exit_code == 0, result.output
    assert spend_view(root) == [(date(2024, 3, 1), "Email", "news", 4.0, 200, 10, "USD")]
    file.write_text("day,cost\n")
    result = CliRunner().invoke(spend_app, ["import", str(file), "--warehouse", str(root)])
    assert result.exit_code == 2
    assert "missing column(s) date, channel, currency in the header" in result.output


def test_landing_messages_land_through_the_sink(tmp_path: Path) -> None:
    parsed = parse_spend_csv(HEADER + "".join(
        f"2024-03-{d:02d},Paid Social,c{c},{d + c},USD,100,{c}\n"
        for d in range(1, 8) for c in range(3)) + "2024-13-01,Email,news,1,USD,1,1\n")
    stamp = datetime(2024, 4, 1, tzinfo=UTC)
    messages = landing_messages(parsed, partitions=4, max_rows=5, landed_at=stamp)
    assert messages == landing_messages(parsed, partitions=4, max_rows=5, landed_at=stamp)
    spend_rows: list[dict[str, Any]] = []
    for partition, value in messages:
        envelope = orjson.loads(value)
        assert envelope["v"] == 1 and 0 <= partition < 4
        assert sum(len(rows) for rows in envelope["rows"].values()) <= 5
        spend_rows += envelope["rows"].get("spend", [])
        land_rows(tmp_path, envelope["rows"])  # what the stream's sink agent does
    assert len(spend_rows) == 21 and {r["landed_at"] for r in spend_rows} == {stamp.isoformat()}
    assert len(spend_view(tmp_path)) == 21
    rejected = run_query(tmp_path, "SELECT position, reason FROM rejected")[1]
    assert rejected == [("line 23", "date '2024-13-01' does not exist")]


def _clicks_within_impressions(row: dict[str, Any]) -> bool:
    return bool(row["impressions"] == 0 or row["clicks"] <= row["impressions"])


spend_rows = st.lists(
    st.fixed_dictionaries({
        "date": st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)),
        "channel": st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Z")),
                           min_size=1, max_size=12),
        "campaign": st.none() | st.text(
            st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Z")),
            min_size=1, max_size=12),
        "cost": st.floats(min_value=0, max_value=1e9, allow_nan=False),
        "impressions": st.integers(min_value=0, max_value=10**9),
        "clicks": st.integers(min_value=0, max_value=10**9),
        "currency": st.sampled_from(["USD", "EUR", "GBP"]),
    }).filter(_clicks_within_impressions),
    max_size=20, unique_by=lambda r: (r["date"], r["channel"], r["campaign"]))


@settings(deadline=None)
@given(spend_rows)
def test_written_rows_parse_back_unchanged(rows: list[dict[str, Any]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["clicks", "impressions", "currency", "cost", "campaign", "channel", "date"])
    for row in rows:
        writer.writerow([row["clicks"], row["impressions"], row["currency"], repr(row["cost"]),
                         row["campaign"] or "", row["channel"], row["date"].isoformat()])
    parsed = parse_spend_csv(buffer.getvalue())
    assert parsed.bad == []
    assert parsed.rows == [{**row, "channel": row["channel"].strip(),
                            "campaign": (row["campaign"] or "").strip() or None}
                           for row in rows]
