"""Ad spend import: validate a spend CSV and land it, or send it through the stream.

The CSV has the columns ``date, channel, campaign, cost, currency, impressions, clicks``
(header required, any order, extra columns ignored). Every row is checked on its own: bad
rows are reported with their line number and reason (and kept in the ``rejected`` table),
good rows land. Spend is idempotent per (date, channel, campaign): the ``spend`` view keeps
the row landed last, so importing a corrected export replaces the old numbers.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson

from warehouse.landing import LandedBatch, land, land_batch
from warehouse.storage import Root

SPEND_COLUMNS = ("date", "channel", "campaign", "cost", "currency", "impressions", "clicks")
REQUIRED_COLUMNS = ("date", "channel", "cost", "currency")
"""campaign, impressions and clicks may be left out of the header (NULL / 0)."""

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
_INTEGER = re.compile(r"[+]?\d+")

SpendKey = tuple[date, str, str | None]


class SpendFileError(ValueError):
    """The file as a whole cannot be read (not CSV, no header, required columns missing)."""


@dataclass(frozen=True)
class BadRow:
    line: int  # 1-based line of the file where the row ends (the header is line 1)
    reason: str
    raw: str


@dataclass
class ParsedSpend:
    source: str
    rows: list[dict[str, Any]] = field(default_factory=list)  # `spend` table rows, no landed_at
    bad: list[BadRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SpendImport:
    parsed: ParsedSpend
    landed: LandedBatch | None  # the Parquet files of the good rows (None: no good rows)


def parse_spend_csv(text: str, source: str = "spend.csv") -> ParsedSpend:
    """Validate every row of a spend CSV; raises SpendFileError if the header is unusable."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise SpendFileError(f"{source} is empty: expected a header row "
                             f"({', '.join(SPEND_COLUMNS)})") from None
    except csv.Error as error:
        raise SpendFileError(f"{source}: not CSV: {error}") from None
    names = [name.strip().lower() for name in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise SpendFileError(f"{source}: missing column(s) {', '.join(missing)} in the header "
                             f"(found: {', '.join(names) or 'nothing'})")
    duplicated = sorted({name for name in names if names.count(name) > 1 and name})
    if duplicated:
        raise SpendFileError(f"{source}: column(s) {', '.join(duplicated)} appear twice")
    index = {name: position for position, name in enumerate(names)}
    parsed = ParsedSpend(source=source,
                         ignored_columns=[n for n in names if n not in SPEND_COLUMNS])
    first_line: dict[SpendKey, int] = {}
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            parsed.bad.append(BadRow(reader.line_num, f"not CSV: {error}", ""))
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank lines are not rows
        raw = _csv_line(cells)
        if len(cells) != len(names):
            parsed.bad.append(BadRow(line, f"has {len(cells)} fields, the header has "
                                           f"{len(names)}", raw))
            continue
        row, problems = _validate({name: cells[position] for name, position in index.items()})
        if row is not None:
            key: SpendKey = (row["date"], row["channel"], row["campaign"])
            if key in first_line:
                problems.append(f"duplicate of line {first_line[key]} for the same date, "
                                "channel and campaign")
            else:
                first_line[key] = line
        if problems:
            parsed.bad.append(BadRow(line, "; ".join(problems), raw))
        elif row is not None:
            parsed.rows.append(row)
    return parsed


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(cells)
    return buffer.getvalue()


def _validate(cells: Mapping[str, str]) -> tuple[dict[str, Any] | None, list[str]]:
    """A `spend` row, or None with the reasons it is not one."""
    problems: list[str] = []

    def cell(name: str) -> str:
        return cells.get(name, "").strip()

    day: date | None = None
    if not _DATE.fullmatch(cell("date")):
        problems.append(f"date {cell('date')!r} is not YYYY-MM-DD")
    else:
        try:
            day = date.fromisoformat(cell("date"))
        except ValueError:
            problems.append(f"date {cell('date')!r} does not exist")
    channel = cell("channel")
    if not channel:
        problems.append("channel is empty")
    cost = _number(cell("cost"), "cost", problems)
    currency = cell("currency")
    if not _CURRENCY.fullmatch(currency):
        problems.append(f"currency {currency!r} is not a 3-letter code (ISO 4217)")
    impressions = _count(cell("impressions"), "impressions", problems)
    clicks = _count(cell("clicks"), "clicks", problems)
    if impressions and clicks is not None and clicks > impressions:
        problems.append(f"clicks ({clicks}) exceed impressions ({impressions})")
    if problems or day is None or cost is None or impressions is None or clicks is None:
        return None, problems
    row = {"date": day, "channel": channel, "campaign": cell("campaign") or None, "cost": cost,
           "impressions": impressions, "clicks": clicks, "currency": currency.upper()}
    return row, problems


def _number(text: str, name: str, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{name} {text!r} is not a number" if text else f"{name} is empty")
        return None
    if not math.isfinite(value) or value < 0:
        problems.append(f"{name} {text!r} must be a finite number >= 0")
        return None
    return value


def _count(text: str, name: str, problems: list[str]) -> int | None:
    """A non-negative integer; empty means not reported (0)."""
    if not text:
        return 0
    if not _INTEGER.fullmatch(text):
        problems.append(f"{name} {text!r} is not a whole number >= 0")
        return None
    return int(text)


def read_spend_file(path: Path) -> ParsedSpend:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise SpendFileError(f"{path} is not UTF-8 text: {error}") from None
    return parse_spend_csv(text, source=path.name)


def rejected_rows(parsed: ParsedSpend) -> list[dict[str, Any]]:
    """The bad rows as `rejected` table rows (without landed_at)."""
    return [{"source": f"spend:{parsed.source}", "position": f"line {bad.line}",
             "reason": bad.reason, "raw": bad.raw} for bad in parsed.bad]


def _content_name(prefix: str, rows: Iterable[Mapping[str, Any]]) -> str:
    """A batch name from the rows' content: importing the same file again rewrites its file."""
    digest = hashlib.blake2b(digest_size=12)
    for row in rows:
        digest.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str))
    return f"{prefix}-{digest.hexdigest()}"


def land_spend(root: Root, parsed: ParsedSpend) -> SpendImport:
    """Land the good rows in `spend` and the bad ones in `rejected`."""
    landed = land_batch(root, "spend", parsed.rows, name=_content_name("spend", parsed.rows))
    bad = rejected_rows(parsed)
    if bad:
        land(root, "rejected", bad, name=_content_name("spend-rejected", bad))
    return SpendImport(parsed=parsed, landed=landed)


def import_spend(root: Root, path: Path) -> SpendImport:
    """Validate ``path`` and land it in the warehouse at ``root``."""
    return land_spend(root, read_spend_file(path))


def landing_messages(parsed: ParsedSpend, partitions: int, max_rows: int,
                     landed_at: datetime | None = None) -> list[tuple[int, bytes]]:
    """(partition, envelope) pairs for the stream's landing topic.

    Rows carry the import time as landed_at, so the spend view's "last landed wins" follows
    the order of imports even when the sink lands partitions out of order; each key always
    goes to the same partition.
    """
    from streams.routing import group_by_partition

    stamp = (landed_at or datetime.now(UTC)).isoformat()
    keyed: list[tuple[str, tuple[str, dict[str, Any]]]] = []
    for row in parsed.rows:
        key = f"{row['date']}|{row['channel']}|{row['campaign'] or ''}"
        keyed.append((key, ("spend", {**row, "date": row["date"].isoformat(),
                                      "landed_at": stamp})))
    for bad in rejected_rows(parsed):
        keyed.append((bad["position"], ("rejected", {**bad, "landed_at": stamp})))
    messages = []
    for partition, chunk in group_by_partition(keyed, partitions, max_rows):
        tables: dict[str, list[dict[str, Any]]] = {}
        for table, row in chunk:
            tables.setdefault(table, []).append(row)
        messages.append((partition, orjson.dumps({"v": 1, "rows": tables})))
    return messages


async def produce_spend(bootstrap: str, topic: str, parsed: ParsedSpend,
                        max_rows: int = 1000) -> int:
    """Send the rows onto the landing topic (the stream's sink lands them); returns messages."""
    from streams.producer import kafka_producer

    producer = kafka_producer(bootstrap)
    await producer.start()
    try:
        partitions = await producer.partitions_for(topic)
        messages = landing_messages(parsed, len(partitions), max_rows)
        futures = [await producer.send(topic, value=value, partition=partition)
                   for partition, value in messages]
        for future in futures:
            await future
    finally:
        await producer.stop()
    return len(messages)
