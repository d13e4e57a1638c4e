"""Daily ad spend rows that match the generated traffic.

The rows are derived from the same plans as the events (``planned_calls``): every paid
landing is a click the platform bills, every ``Ad Viewed`` an impression it served,
every ``Email Opened`` an email sent. Platform numbers are a little higher than what the
site sees (not every click loads the page, most impressions are never reported to us),
with seeded day-to-day noise.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from traffic.generate import DAY, Campaign, TrafficSpec, planned_calls

SPEND_COLUMNS = ("date", "channel", "campaign", "cost", "currency", "impressions", "clicks")
OPEN_RATE = 0.35  # emails opened per email sent
IMPRESSIONS_PER_REPORTED_VIEW = 25  # the ad server reports a small sample of impressions


class _Tally:
    __slots__ = ("landings", "opens", "views")

    def __init__(self) -> None:
        self.landings = 0
        self.views = 0
        self.opens = 0


def tally_paid_traffic(spec: TrafficSpec) -> dict[tuple[int, Campaign], _Tally]:
    """Landings, ad views and email opens per (day number, campaign)."""
    tallies: dict[tuple[int, Campaign], _Tally] = defaultdict(_Tally)
    for call in planned_calls(spec):
        campaign = call.origin
        if campaign is None:
            continue
        tally = tallies[(call.t // DAY, campaign)]
        if call.type == "page":
            tally.landings += 1
        elif call.event == "Ad Viewed":
            tally.views += 1
        elif call.event == "Email Opened":
            tally.opens += 1
    return tallies


def _row(day: int, campaign: Campaign, tally: _Tally, rng: random.Random) -> dict[str, Any]:
    ctr = campaign.ctr * rng.uniform(0.85, 1.15)
    if campaign.pricing == "send":  # email: sends are the impressions, the ESP bills per send
        clicks = tally.landings
        sends = max(round(tally.opens / OPEN_RATE), round(clicks / ctr), 1)
        impressions = sends
        cost = sends * campaign.rate
    else:
        # some clicks never load the page (bounces before the tag fires)
        clicks = round(tally.landings * rng.uniform(1.1, 1.3))
        impressions = max(round(clicks / ctr) + tally.views * IMPRESSIONS_PER_REPORTED_VIEW,
                          clicks)
        if campaign.pricing == "cpm":
            cost = impressions / 1000 * campaign.rate
        else:
            cost = clicks * campaign.rate * rng.uniform(0.85, 1.15)
    date = datetime.fromtimestamp(day * DAY / 1000, UTC).date().isoformat()
    return {"date": date, "channel": campaign.channel, "campaign": campaign.name,
            "cost": round(cost, 2), "currency": "USD", "impressions": impressions,
            "clicks": clicks}


def spend_rows(spec: TrafficSpec) -> Iterator[dict[str, Any]]:
    """Rows ordered by date, channel, campaign; one per campaign and day with traffic."""
    tallies = tally_paid_traffic(spec)
    rng = random.Random(f"{spec.seed}:spend")
    for day, campaign in sorted(tallies, key=lambda k: (k[0], k[1].channel, k[1].name)):
        yield _row(day, campaign, tallies[(day, campaign)], rng)


def write_spend(spec: TrafficSpec, path: Path) -> int:
    rows = 0
    with Path(path).open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=SPEND_COLUMNS)
        writer.writeheader()
        for row in spend_rows(spec):
            writer.writerow(row)
            rows += 1
    return rows
