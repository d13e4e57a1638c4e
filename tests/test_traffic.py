"""The synthetic traffic generator: wire validity, determinism, realism, noise rates, spend."""

from __future__ import annotations

import csv
import re
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.channels import TrafficSignals, classify
from schemas.wire import EventRejected, parse_event
from traffic.generate import (
    TrafficSpec,
    generate_events,
    generate_spend,
    iso_ms,
    write_jsonl,
    write_spend_csv,
)

QUIET = TrafficSpec(duplicate_rate=0.0, double_send_rate=0.0)  # no retries, no double sends
SMALL = replace(QUIET, seed=7, b2c_visitors=1000, b2b_accounts=8, days=30)
STAGES = ("Lead Created", "Opportunity Created", "Opportunity Won")
CONVERSION_IDS = {"Order Completed": "order_id", "Lead Created": "lead_id",
                  "Opportunity Created": "opportunity_id", "Opportunity Won": "opportunity_id"}


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(generate_events(SMALL))


@pytest.fixture(scope="module")
def parsed(events: list[dict[str, Any]]) -> list[tuple[dict[str, Any], datetime]]:
    return [(event, parse_event(event)[1]) for event in events]


def _lines(spec: TrafficSpec) -> list[bytes]:
    return [orjson.dumps(event) for event in generate_events(spec)]


def _tracks(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "track" and e["event"] == name]


def _site(event: dict[str, Any]) -> str:
    url = event.get("context", {}).get("page", {}).get("url", "")
    return url.split("/")[2] if url.startswith("https://") else ""


# --- determinism -------------------------------------------------------------------------


def test_same_spec_gives_the_same_bytes(tmp_path: Path) -> None:
    spec = TrafficSpec(seed=3, b2c_visitors=300, b2b_accounts=2, days=10, invalid_rate=0.02)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    lines = write_jsonl(spec, first)
    assert write_jsonl(spec, second) == lines > 0
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_bytes().splitlines()) == lines
    assert _lines(TrafficSpec(seed=4, b2c_visitors=300, b2b_accounts=2, days=10)) != \
        first.read_bytes().splitlines()


# --- wire validity and time ----------------------------------------------------------------


def test_every_event_passes_parse_event_in_time_order(
    parsed: list[tuple[dict[str, Any], datetime]],
) -> None:
    times = [when for _, when in parsed]
    assert times == sorted(times)  # ordered by the skew-corrected (true) time
    end = SMALL.end
    assert times[-1] < end
    shop = [t for e, t in parsed if _site(e) == "shop.example"]
    early = sum(t < end - timedelta(days=30) for t in shop)  # weeks-long considered purchases
    assert 0 < early < 0.02 * len(shop)
    assert len({e["messageId"] for e, _ in parsed}) == len(parsed)


def test_skewed_client_clocks_are_recovered_by_sent_at(
    parsed: list[tuple[dict[str, Any], datetime]],
) -> None:
    skewed = 0
    for event, when in parsed:
        stamp = datetime.fromisoformat(event["timestamp"])
        received = datetime.fromisoformat(event["receivedAt"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["timestamp"])
        assert timedelta(0) <= received - when < timedelta(seconds=30)  # network / batching
        if abs(stamp - when) >= timedelta(seconds=2):
            skewed += 1
    assert 0.05 < skewed / len(parsed) < 0.30


def test_utm_parameters_are_in_the_context_and_in_the_url(events: list[dict[str, Any]]) -> None:
    tagged = [e for e in events if e["type"] == "page" and "campaign" in e["context"]]
    assert tagged
    for event in tagged:
        campaign, page = event["context"]["campaign"], event["context"]["page"]
        assert f"utm_campaign={campaign['name']}" in page["url"]
        assert f"utm_medium={campaign['medium']}" in page["search"]
    urls = [e["context"]["page"]["url"] for e in events if e["type"] == "page"]
    assert any("gclid=" in u and "utm_" not in u for u in urls)  # auto-tagged Google Ads
    assert any("li_fat_id=" in u for u in urls)
    ad_views = _tracks(events, "Ad Viewed")
    assert ad_views
    assert all(e["context"]["campaign"]["medium"] == "display" for e in ad_views)
    assert all("channel" not in e["properties"] for e in ad_views)


def test_landings_classify_into_the_channels_their_spend_is_booked_under(
    events: list[dict[str, Any]],
) -> None:
    booked = {(row["campaign"], row["channel"]) for row in generate_spend(SMALL)}
    channels: Counter[str] = Counter()
    for event in events:
        page = event.get("context", {}).get("page")
        if event["type"] != "page" or page["referrer"].startswith("https://" + _site(event)):
            continue  # not a landing
        campaign = event["context"].get("campaign", {})
        got = classify(TrafficSignals(utm_source=campaign.get("source"),
                                      utm_medium=campaign.get("medium"),
                                      utm_campaign=campaign.get("name"),
                                      referrer=page["referrer"], page_url=page["url"]))
        channels[got.channel] += 1
        if campaign:
            assert (campaign["name"], got.channel) in booked
    for channel in ("Paid Social", "Paid Search", "Display", "Affiliates", "Email",
                    "Organic Search", "Organic Social", "Referral", "Direct"):
        assert channels[channel] > 0, channel


# --- B2C realism ------------------------------------------------------------------------------


def test_two_to_three_percent_of_shop_visitors_buy(events: list[dict[str, Any]]) -> None:
    visitors = {e["anonymousId"] for e in events if _site(e) == "shop.example"}
    orders = _tracks(events, "Order Completed")
    buyers = {e["anonymousId"] for e in orders}
    assert 0.01 <= len(buyers) / len(visitors) <= 0.05
    for order in orders:
        props = order["properties"]
        assert order["userId"] and props["currency"] == "USD" and props["products"]
        assert 20 <= props["revenue"] <= 300 or 5000 <= props["revenue"] <= 44000
    assert any(o["properties"]["revenue"] >= 5000 for o in orders)  # a considered purchase
    by_user = Counter(o["userId"] for o in orders)
    aliased = {e["userId"] for e in events if e["type"] == "alias"}
    assert any(n > 1 or user in aliased for user, n in by_user.items())  # repeat buyers


def test_shoppers_identify_across_devices(events: list[dict[str, Any]]) -> None:
    devices: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["type"] == "identify" and e["userId"].startswith(("cust_", "guest_")):
            assert e["traits"]["email"]
            devices[e["userId"]].add(e["anonymousId"])
    assert any(len(ids) > 1 for ids in devices.values())
    identified = set(devices)
    email_events = _tracks(events, "Email Opened") + _tracks(events, "Email Link Clicked")
    assert email_events and all(e["userId"] for e in email_events)
    assert {e["userId"] for e in email_events if e["userId"].startswith("cust_")} <= identified


def test_alias_calls_link_an_older_id_to_the_user(events: list[dict[str, Any]]) -> None:
    aliases = [e for e in events if e["type"] == "alias"]
    assert aliases
    assert all(e["previousId"] != e["userId"] for e in aliases)
    assert any(e["previousId"] == e.get("anonymousId") for e in aliases)


# --- B2B realism -----------------------------------------------------------------------------


def test_accounts_have_three_to_ten_contacts_who_browse_anonymously_first(
    events: list[dict[str, Any]],
) -> None:
    members: defaultdict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["type"] == "group":
            assert {"name", "industry", "employees"} <= set(e["traits"])
            members[e["groupId"]].add(e["userId"])
    committees = {g: m for g, m in members.items() if int(g.removeprefix("acct_")) <= 8}
    assert len(committees) == SMALL.b2b_accounts
    assert all(3 <= len(m) <= 10 for m in committees.values())
    first_seen: dict[str, dict[str, Any]] = {}
    for e in events:
        first_seen.setdefault(e.get("anonymousId") or "", e)
    for e in events:
        if e["type"] == "identify" and e["userId"].startswith("usr_"):
            assert "userId" not in first_seen[e["anonymousId"]]  # anonymous before the form


def test_stage_events_carry_the_account(events: list[dict[str, Any]]) -> None:
    stages = [e for e in events if e["type"] == "track" and e["event"] in STAGES]
    assert {e["event"] for e in stages} == set(STAGES)
    assert all(e["groupId"].startswith("acct_") and e["userId"] for e in stages)
    created = {e["properties"]["opportunity_id"]: e for e in _tracks(events, "Opportunity Created")}
    for won in _tracks(events, "Opportunity Won"):
        props = won["properties"]
        if props.get("self_serve"):
            assert props["amount"] < 1200
        elif not props.get("renewal"):
            opportunity = created[props["opportunity_id"]]
            assert props["amount"] == opportunity["properties"]["amount"]
            assert 5000 <= props["amount"] <= 200_000
            assert won["groupId"] == opportunity["groupId"]
    offline = _tracks(events, "Meeting Held") + _tracks(events, "Webinar Attended")
    assert {e["properties"]["channel"] for e in offline} == {"Sales Meeting", "Webinar"}


def test_b2b_journeys_last_months() -> None:
    events = list(generate_events(replace(QUIET, seed=11, b2c_visitors=0, b2b_accounts=30)))
    account_of = {e["anonymousId"]: e["groupId"] for e in events if e["type"] == "group"}
    first: dict[str, datetime] = {}
    for e in events:
        group = account_of.get(e.get("anonymousId", ""))
        if group is not None:
            first.setdefault(group, parse_event(e)[1])
    spans = [parse_event(e)[1] - first[e["groupId"]] for e in _tracks(events, "Opportunity Won")
             if not e["properties"].get("self_serve") and e["groupId"] in first]
    assert spans and min(spans) >= timedelta(days=28)
    assert any(e["properties"].get("renewal") for e in _tracks(events, "Opportunity Won"))


# --- noise: retries, double sends, invalid lines -----------------------------------------------


def test_duplicate_and_double_send_rates_are_honoured() -> None:
    lines = _lines(replace(SMALL, duplicate_rate=0.05, double_send_rate=0.25))
    events = [orjson.loads(line) for line in lines]
    copies = Counter(e["messageId"] for e in events)
    assert set(copies.values()) <= {1, 2}
    assert 0.04 <= sum(n == 2 for n in copies.values()) / len(copies) <= 0.06
    by_id: defaultdict[str, list[bytes]] = defaultdict(list)
    for event, line in zip(events, lines, strict=True):
        by_id[event["messageId"]].append(line)
    assert all(len(set(same)) == 1 for same in by_id.values())  # a retry is byte-identical
    sends: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for e in events:
        if e["type"] == "track" and e["event"] in CONVERSION_IDS:
            sends[(e["event"], e["properties"][CONVERSION_IDS[e["event"]]])].add(e["messageId"])
    twice = sum(len(ids) == 2 for ids in sends.values()) / len(sends)
    assert set(map(len, sends.values())) <= {1, 2}
    assert 0.15 <= twice <= 0.35


def test_invalid_lines_are_rejected_and_leave_the_valid_ones_unchanged(
    events: list[dict[str, Any]],
) -> None:
    clean = [orjson.dumps(event) for event in events]
    noisy = _lines(replace(SMALL, invalid_rate=0.05))
    kept, rejected = [], 0
    for line in noisy:
        try:
            parse_event(orjson.loads(line))
        except EventRejected:
            rejected += 1
        else:
            kept.append(line)
    assert kept == clean
    assert 0.04 <= rejected / len(noisy) <= 0.06


# --- spend -------------------------------------------------------------------------------------


def test_spend_rows_match_the_traffic(parsed: list[tuple[dict[str, Any], datetime]]) -> None:
    rows = list(generate_spend(SMALL))
    assert rows
    landings: Counter[tuple[str, str]] = Counter()
    names = set()  # every utm_campaign in the traffic: landings, ad views, email opens
    for event, when in parsed:
        campaign = event.get("context", {}).get("campaign")
        if campaign:
            names.add(campaign["name"])
            if event["type"] == "page":
                landings[(when.date().isoformat(), campaign["name"])] += 1
    seen = set()
    for row in rows:
        assert row["cost"] >= 0 and row["impressions"] >= row["clicks"] >= 0
        assert row["currency"] == "USD"
        assert row["channel"] in {"Paid Social", "Paid Search", "Display", "Affiliates", "Email"}
        assert row["campaign"] in names
        key = (row["date"], row["campaign"])
        seen.add(key)
        if row["channel"] == "Email":
            assert row["clicks"] == landings[key]
        else:
            assert row["clicks"] >= landings[key]  # click-id-only landings count too
    assert set(landings) <= seen
    linkedin = [r for r in rows if r["campaign"].startswith("li_")]
    assert linkedin and all(r["channel"] == "Paid Social" for r in linkedin)


def test_spend_csv_has_one_line_per_row(tmp_path: Path) -> None:
    spec = TrafficSpec(seed=5, b2c_visitors=200, b2b_accounts=1, days=7)
    path = tmp_path / "spend.csv"
    rows = write_spend_csv(spec, path)
    with path.open(newline="") as f:
        read = list(csv.DictReader(f))
    assert rows == len(read) > 0
    assert list(read[0]) == ["date", "channel", "campaign", "cost", "currency", "impressions",
                             "clicks"]


# --- spec and helpers -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [{"duplicate_rate": -0.1}, {"invalid_rate": 0.7},
                                 {"days": 0}, {"b2c_visitors": -1},
                                 {"end": datetime(2026, 10, 31)}])
def test_spec_rejects_nonsense(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TrafficSpec(**bad)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=4_102_444_800_000))
def test_iso_ms_matches_datetime(t: int) -> None:
    expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=t)
    assert iso_ms(t) == expected.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 2**32), visitors=st.integers(0, 80), accounts=st.integers(0, 1),
       days=st.integers(1, 5), invalid=st.sampled_from([0.0, 0.1]))
def test_any_small_spec_gives_ordered_valid_events(seed: int, visitors: int, accounts: int,
                                                   days: int, invalid: float) -> None:
    spec = replace(QUIET, seed=seed, b2c_visitors=visitors, b2b_accounts=accounts, days=days,
                   invalid_rate=invalid)
    times = []
    for event in generate_events(spec):
        try:
            times.append(parse_event(event)[1])
        except EventRejected:
            assert invalid
    assert times == sorted(times)
    assert not times or times[-1] < spec.end


def test_touch_heavy_mix_makes_every_b2c_page_a_new_session_touch() -> None:
    from attribution.batch import attribute_events
    from attribution.defaults import channel_rules, load_config

    config = load_config()
    spec = TrafficSpec(seed=3, b2c_visitors=400, b2b_accounts=0, touch_heavy=True)
    events = list(generate_events(spec))
    result = attribute_events(((str(i), e) for i, e in enumerate(events)), config,
                              channel_rules(config))
    pages = {e["messageId"] for e in events if e["type"] == "page"}
    visits = {t.event_id for t in result.touches if t.kind == "visit"}
    assert len(visits) >= 0.97 * len(pages)  # a retried page is the same touch
    buyers = {c.person_id or c.anonymous_id for c in result.conversions if c.kind == "purchase"}
    assert 0.03 * 400 <= len(buyers) <= 0.10 * 400
