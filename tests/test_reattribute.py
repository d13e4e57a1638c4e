"""`attribution reattribute`: the landed history credited again under a new config, as new
versions, on a hand-built warehouse with answers worked out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from attribution.defaults import load_config
from cli.main import app
from schemas.records import IdentityLink, LinkKind
from tests.test_datadriven_cli import conversion, credit, day, query, touch
from warehouse.datadriven import run_datadriven
from warehouse.landing import land
from warehouse.reattribute import reattribute
from warehouse.views import create_views

# The new config: b2c looks back one day only and keeps two models; big purchases go to
# the `considered` policy (90-day window, its default models). Routing replaces the default
# routing list as a whole.
NEW_CONFIG = """
[policies.b2c]
journey = "person"
lookback = { visit = "1d", click = "1d", email = "1d", offline = "1d", view = "1d" }
models = ["first_touch", "linear"]

[[routing]]
policy = "considered"
kinds = ["purchase"]
min_value = 500
"""
CONFIG = load_config(NEW_CONFIG)


def link(event_id: str, days: float, anonymous: str, person: str) -> dict[str, Any]:
    return IdentityLink(event_id=event_id, time=day(days), kind=LinkKind.ANONYMOUS_PERSON,
                        from_id=anonymous, to_id=person).model_dump()


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """As landed by a replay under the defaults (b2c: 7-day windows, linear + last touch).

    X1 (P1, day 6, 100): a1 visits from C1 at day 5.2 before identifying as P1 at 5.3, then
        P1 opens an Email at 5.5. Old: linear C1/Email, last touch Email.
    X2 (P2, day 1, 40): Paid Search at day 0.5 and Display at day -3 (out of a 1-day window).
        Old: linear 1/2 each, last touch Paid Search.
    X3 (P3, day 10, 700): Organic Search at day 2, Email at day 9.5. Old, in b2c: linear.
    X4 (P4, day 10, 50): Email at day 9.9; its old credits already are what the new config
        gives (first touch and linear both 100% Email), so it gets no new version.
    X5: a conversion of an event and policy the new config does not know: skipped.
    """
    root = tmp_path / "wh"
    t = {
        "a": touch("a", 5.2, "C1", anonymous="a1"),
        "e1": touch("e1", 5.5, "Email", person="P1"),
        "p2": touch("p2", 0.5, "Paid Search", person="P2"),
        "d2": touch("d2", -3, "Display", person="P2"),
        "o3": touch("o3", 2, "Organic Search", person="P3"),
        "e3": touch("e3", 9.5, "Email", person="P3"),
        "e4": touch("e4", 9.9, "Email", person="P4"),
    }
    x1 = conversion("X1", 6, "P1", 100.0)
    x2 = conversion("X2", 1, "P2", 40.0)
    x3 = conversion("X3", 10, "P3", 700.0)
    x4 = conversion("X4", 10, "P4", 50.0)
    x5 = conversion("X5", 10, "P5", 5.0, kind="trial", policy="legacy", event="Trial Started")
    land(root, "touches", list(t.values()), name="touches")
    land(root, "conversions", [x1, x2, x3, x4, x5], name="conversions")
    land(root, "identity_links", [link("l1", 5.3, "a1", "P1")], name="links")
    land(root, "credits", [
        credit(x1, "linear", t["a"], 0.5), credit(x1, "linear", t["e1"], 0.5),
        credit(x1, "last_touch", t["e1"], 1.0),
        credit(x2, "linear", t["d2"], 0.5), credit(x2, "linear", t["p2"], 0.5),
        credit(x2, "last_touch", t["p2"], 1.0),
        credit(x3, "linear", t["o3"], 0.5), credit(x3, "linear", t["e3"], 0.5),
        credit(x4, "first_touch", t["e4"], 1.0), credit(x4, "linear", t["e4"], 1.0),
        credit(x5, "linear", None, 1.0),
    ], name="credits")
    create_views(root)
    return root


def current(root: Path) -> dict[tuple[str, str], list[tuple[Any, ...]]]:
    rows = query(root, """
        SELECT conversion_id, model, channel, credit, credited_value, version, reason, policy,
            journey_key
        FROM credits ORDER BY ALL""")
    out: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault((row[0], row[1]), []).append(row[2:])
    return out


def history_count(root: Path) -> int:
    return int(query(root, "SELECT count(*) FROM credit_history")[0][0])


def test_new_windows_models_and_routing_land_as_a_new_version(history: Path) -> None:
    before = history_count(history)
    summary = reattribute(history, CONFIG, NEW_CONFIG)
    assert (summary.considered, summary.reattributed, summary.unchanged, summary.skipped) == (
        4, 3, 1, 1
    )
    assert summary.rerouted == 1
    now = current(history)
    new = ("reattribution",)
    # X1: the anonymous C1 visit joins P1's journey through the identity link; both touches
    # are inside one day, so first touch is C1 and linear splits evenly.
    assert now[("X1", "first_touch")] == [("C1", 1.0, 100.0, 2, *new, "b2c", "person:P1")]
    assert now[("X1", "linear")] == [
        ("C1", 0.5, 50.0, 2, *new, "b2c", "person:P1"),
        ("Email", 0.5, 50.0, 2, *new, "b2c", "person:P1"),
    ]
    assert ("X1", "last_touch") not in now  # not a model of the new b2c policy
    # X2: Display (4 days old) falls out of the 1-day window.
    assert now[("X2", "first_touch")] == [("Paid Search", 1.0, 40.0, 2, *new, "b2c", "person:P2")]
    # X3 (700 >= 500) is re-routed to `considered`: 90-day window, its five default models.
    x3_models = {model for (cid, model) in now if cid == "X3"}
    assert x3_models == {"first_touch", "last_touch", "linear", "time_decay", "position_based"}
    assert now[("X3", "first_touch")][0][:5] == ("Organic Search", 1.0, 700.0, 2, "reattribution")
    assert now[("X3", "first_touch")][0][5] == "considered"
    assert query(history, "SELECT policy FROM conversions WHERE conversion_id = 'X3'") == [
        ("considered",)
    ]
    # X4 unchanged, X5 skipped: both stay on version 1.
    assert now[("X4", "linear")] == [("Email", 1.0, 50.0, 1, "initial", "b2c", "person:P4")]
    assert now[("X5", "linear")][0][3] == 1
    # Nothing is deleted: the history keeps every old row.
    old = query(history, "SELECT count(*) FROM credit_history WHERE version = 1")[0][0]
    assert old == before
    for (_, _model), rows in now.items():
        assert sum(r[1] for r in rows) == pytest.approx(1.0)


def test_running_the_same_reattribution_again_adds_nothing(history: Path) -> None:
    first = reattribute(history, CONFIG, NEW_CONFIG)
    rows = history_count(history)
    files = sorted((history / "credits").iterdir())
    again = reattribute(history, CONFIG, NEW_CONFIG)
    assert (again.reattributed, again.unchanged, again.credits) == (0, 4, 0)
    assert history_count(history) == rows
    assert sorted((history / "credits").iterdir()) == files
    assert first.files and not again.files


def test_since_limits_the_conversions_and_a_later_full_run_adds_only_the_rest(
    history: Path,
) -> None:
    partial = reattribute(history, CONFIG, NEW_CONFIG, since=day(3))
    assert (partial.considered, partial.reattributed) == (3, 2)  # X1, X3 changed; X4 not
    assert current(history)[("X2", "last_touch")][0][3] == 1  # before `since`: untouched
    full = reattribute(history, CONFIG, NEW_CONFIG)
    assert (full.considered, full.reattributed, full.unchanged) == (4, 1, 3)  # only X2
    versions = dict(query(history, "SELECT conversion_id, max(version) FROM credits GROUP BY 1"))
    assert versions == {"X1": 2, "X2": 2, "X3": 2, "X4": 1, "X5": 1}


def test_datadriven_rows_stay_with_their_version_until_run_again(history: Path) -> None:
    defaults = load_config()
    run_datadriven(history, defaults, "shapley", policies=["b2c"])
    assert query(history, "SELECT count(DISTINCT conversion_id) FROM credits "
                 "WHERE model = 'shapley'") == [(4,)]
    reattribute(history, CONFIG, NEW_CONFIG)
    # X1, X2, X3 moved to version 2: their shapley rows (version 1) are history now.
    assert query(history, "SELECT conversion_id FROM credits WHERE model = 'shapley' "
                 "GROUP BY 1 ORDER BY 1") == [("X4",)]
    run_datadriven(history, CONFIG, "shapley", policies=["b2c", "considered"])
    rows = query(history, "SELECT conversion_id, max(version), fsum(credit) FROM credits "
                 "WHERE model = 'shapley' GROUP BY 1 ORDER BY 1")
    assert [(cid, version) for cid, version, _ in rows] == [
        ("X1", 2), ("X2", 2), ("X3", 2), ("X4", 1)
    ]
    assert all(total == pytest.approx(1.0) for _, _, total in rows)


def test_cli(history: Path, tmp_path: Path) -> None:
    config = tmp_path / "new.toml"
    config.write_text(NEW_CONFIG, encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["reattribute", "--warehouse", str(history), "--config",
                                 str(config), "--since", "2024-03-04"])
    assert result.exit_code == 0, result.output
    assert "3 conversions re-credited: 2 got a new version" in result.output
    assert "attribution datadriven" in result.output
    bad = runner.invoke(app, ["reattribute", "--warehouse", str(history), "--config",
                              str(config), "--since", "yesterday"])
    assert bad.exit_code != 0
    config.write_text("[policies.b2c]\nmodels = ['nope']\n", encoding="utf-8")
    invalid = runner.invoke(app, ["reattribute", "--warehouse", str(history), "--config",
                                  str(config)])
    assert invalid.exit_code == 2
