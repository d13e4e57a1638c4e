"""End to end: wire events through `attribution replay` and `attribution datadriven`, then SQL
over `credits` must give every channel exactly the model's totals, computed here
independently: Markov removal effects by a plain dense absorbing-chain solve, and Shapley
values from their closed form over the converting channel sets."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from cli.main import app
from warehouse.query import run_query

# UTM source / medium of each channel (GA4 default channel groups).
CHANNELS = {
    "Paid Search": ("google", "cpc"), "Organic Search": ("google", "organic"),
    "Email": ("newsletter", "email"), "Affiliates": ("partner", "affiliate"),
    "Display": ("adnet", "display"), "Referral": ("blog", "referral"),
    "Paid Social": ("facebook", "paid"),
}  # fmt: skip
POPULARITY = [0.26, 0.22, 0.14, 0.08, 0.12, 0.08, 0.10]
LIFT = [0.08, 0.02, 0.10, 0.05, 0.0, 0.03, 0.01]  # conversion rate added per touch
JOURNEYS = 10_000
T0 = datetime(2024, 5, 1, tzinfo=UTC)

Journey = tuple[list[str], bool, float]


def stamp(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def generate(seed: int = 12) -> tuple[list[Journey], list[dict[str, Any]]]:
    """Journeys of 1-5 touches, a third of them converting, as Segment page and track calls:
    one person each, touches two hours apart (each its own session, all inside b2c's 7-day
    window), the purchase an hour after the last touch."""
    rng = np.random.default_rng(seed)
    names = list(CHANNELS)
    journeys: list[Journey] = []
    events: list[dict[str, Any]] = []
    for i in range(JOURNEYS):
        picks = rng.choice(len(names), size=int(rng.integers(1, 6)), p=POPULARITY)
        path = [names[c] for c in picks]
        converts = bool(rng.random() < 0.08 + sum(LIFT[c] for c in picks))
        value = round(float(rng.lognormal(4.0, 0.7)), 2) if converts else 0.0
        journeys.append((path, converts, value))
        start = T0 + timedelta(minutes=int(rng.integers(0, 60 * 24 * 20)))
        for k, channel in enumerate(path):
            source, medium = CHANNELS[channel]
            events.append({
                "type": "page", "messageId": f"p{i}-{k}", "anonymousId": f"anon-{i}",
                "timestamp": stamp(start + timedelta(hours=2 * k)),
                "properties": {"url": "https://shop.example/", "path": "/"},
                "context": {"campaign": {"source": source, "medium": medium, "name": "c"},
                            "page": {"url": "https://shop.example/", "path": "/"}},
            })
        if converts:
            events.append({
                "type": "track", "event": "Order Completed", "messageId": f"o{i}",
                "anonymousId": f"anon-{i}",
                "timestamp": stamp(start + timedelta(hours=2 * len(path) - 1)),
                "properties": {"order_id": f"order-{i}", "revenue": value, "currency": "USD"},
            })
    return journeys, events


def removal_effect_totals(journeys: list[Journey]) -> tuple[dict[str, float], dict[str, float]]:
    """Order-1 Markov credits, solved densely: transient states start + channels, one walk
    per journey; x = (I - Q)^-1 r is the chance (or the expected value) of converting from
    each state; removing a channel sends every transition into it to null."""
    names = sorted({c for path, _, _ in journeys for c in path})
    index = {c: i + 1 for i, c in enumerate(names)}  # 0 is the start
    size = len(names) + 1
    counts = np.zeros((size, size))
    converted = np.zeros(size)
    value = np.zeros(size)
    out = np.zeros(size)
    for path, converts, amount in journeys:
        states = [0] + [index[c] for c in path]
        for a, b in pairwise(states):
            counts[a, b] += 1
            out[a] += 1
        out[states[-1]] += 1
        converted[states[-1]] += converts
        value[states[-1]] += amount
    q = counts / out[:, None]
    rewards = np.column_stack([converted, value]) / out[:, None]

    def start_values(removed: int | None) -> np.ndarray:
        kept = [s for s in range(size) if s != removed]
        system = np.eye(len(kept)) - q[np.ix_(kept, kept)]
        solved: np.ndarray = np.linalg.solve(system, rewards[kept])[0]
        return solved

    base = start_values(None)
    effects = np.array([1 - start_values(index[c]) / base for c in names])
    conversions = sum(converts for _, converts, _ in journeys)
    total_value = sum(amount for _, _, amount in journeys)
    shares = effects / effects.sum(axis=0)
    return (dict(zip(names, shares[:, 0] * conversions, strict=True)),
            dict(zip(names, shares[:, 1] * total_value, strict=True)))


def shapley_totals(journeys: list[Journey]) -> tuple[dict[str, float], dict[str, float]]:
    """Shapley values of v(S) = conversions (value) of journeys whose channel set is inside S:
    a sum of unanimity games, so each converting set gives each member 1/|set|."""
    conversions: dict[str, float] = defaultdict(float)
    value: dict[str, float] = defaultdict(float)
    for path, converts, amount in journeys:
        if converts:
            members = set(path)
            for channel in members:
                conversions[channel] += 1 / len(members)
                value[channel] += amount / len(members)
    return dict(conversions), dict(value)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Journey]]:
    journeys, events = generate()
    folder = tmp_path_factory.mktemp("e2e")
    source = folder / "events.jsonl"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    root = folder / "wh"
    replayed = CliRunner().invoke(app, ["replay", str(source), "--warehouse", str(root)])
    assert replayed.exit_code == 0, replayed.output
    return root, journeys


def landed_totals(root: Path, model: str) -> tuple[dict[str, float], dict[str, float]]:
    rows = run_query(root, f"""
        SELECT channel, fsum(credit), fsum(credited_value) FROM credits
        WHERE model = '{model}' GROUP BY channel""")[1]
    return {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}


def test_the_generated_journeys_are_what_the_warehouse_holds(
    warehouse: tuple[Path, list[Journey]],
) -> None:
    root, journeys = warehouse
    converting = [j for j in journeys if j[1]]
    assert len(CHANNELS) >= 6 and len(journeys) >= 10_000
    assert 0 < len(converting) < len(journeys)
    assert {len(path) for path, _, _ in journeys} == {1, 2, 3, 4, 5}
    touches = dict(run_query(root, "SELECT channel, count(*) FROM touchpoints GROUP BY ALL")[1])
    assert touches == Counter(c for path, _, _ in journeys for c in path)
    assert run_query(root, "SELECT count(*), fsum(value) FROM conversions")[1] == [
        (len(converting), pytest.approx(sum(v for _, _, v in converting)))]


def test_markov_credits_in_sql_are_the_absorbing_chain_totals(
    warehouse: tuple[Path, list[Journey]],
) -> None:
    root, journeys = warehouse
    result = CliRunner().invoke(app, ["datadriven", "--warehouse", str(root), "--model",
                                      "markov", "--order", "1", "--policy", "b2c"])
    assert result.exit_code == 0, result.output
    converting = sum(1 for j in journeys if j[1])
    assert (f"b2c / markov_o1: {converting} converting and {len(journeys) - converting} "
            "non-converting journeys") in result.output
    conversions, value = removal_effect_totals(journeys)
    landed_conversions, landed_value = landed_totals(root, "markov_o1")
    assert landed_conversions == pytest.approx(conversions, rel=1e-6)
    assert landed_value == pytest.approx(value, rel=1e-6)
    assert "closest fit" not in result.output
    fit = run_query(root, """
        SELECT channel, model_conversions, credit, model_value, credited_value, fitted
        FROM datadriven_fit WHERE model = 'markov_o1' ORDER BY channel""")[1]
    assert [r[0] for r in fit] == sorted(conversions)
    for channel, model_conversions, credit, model_value, credited_value, fitted in fit:
        assert (model_conversions, credit) == pytest.approx(
            (conversions[channel], conversions[channel]), rel=1e-6)
        assert (model_value, credited_value) == pytest.approx(
            (value[channel], value[channel]), rel=1e-6)
        assert fitted


def test_shapley_credits_in_sql_are_the_shapley_values(
    warehouse: tuple[Path, list[Journey]],
) -> None:
    root, journeys = warehouse
    result = CliRunner().invoke(app, ["datadriven", "--warehouse", str(root), "--model",
                                      "shapley", "--policy", "b2c"])
    assert result.exit_code == 0, result.output
    conversions, value = shapley_totals(journeys)
    landed_conversions, landed_value = landed_totals(root, "shapley")
    assert landed_conversions == pytest.approx(conversions, rel=1e-6)
    assert landed_value == pytest.approx(value, rel=1e-6)
    # and every conversion still sums to 1 and to its value
    per_conversion = run_query(root, """
        SELECT count(*), max(abs(s - 1)), max(abs(v - value)) FROM (
            SELECT c.conversion_id, fsum(c.credit) AS s, fsum(c.credited_value) AS v,
                any_value(k.value) AS value
            FROM credits AS c JOIN conversions AS k USING (conversion_id)
            WHERE c.model = 'shapley' GROUP BY c.conversion_id)""")[1]
    count, credit_error, value_error = per_conversion[0]
    assert count == sum(1 for j in journeys if j[1])
    assert credit_error < 1e-12 and value_error < 1e-9
