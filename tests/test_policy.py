"""Config: shipped presets, user overrides, and readable errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from attribution.defaults import load_config
from attribution.policy import ConfigError, parse_duration
from schemas.records import InteractionKind


def test_presets_match_the_documented_defaults() -> None:
    config = load_config()
    b2c, b2b = config.policies["b2c"], config.policies["b2b"]
    assert b2c.journey == "person" and b2b.journey == "account"
    assert b2c.lookback[InteractionKind.CLICK] == timedelta(days=7)
    assert b2c.lookback[InteractionKind.VIEW] == timedelta(days=1)
    assert b2c.canonical_models() == [
        "last_touch", "last_non_direct", "linear", "time_decay", "position_based"]
    assert b2c.time_decay_half_life == timedelta(days=7)
    assert all(w == timedelta(days=365) for w in b2b.lookback.values())
    assert b2b.canonical_models() == ["first_touch", "w_shaped", "full_path", "linear",
                                      "time_decay"]
    assert b2b.time_decay_half_life == timedelta(days=30)
    assert config.conversion_rule("Order Completed").policy == "b2c"  # type: ignore[union-attr]
    assert config.conversion_rule("Opportunity Won").kind == "opportunity_won"  # type: ignore[union-attr]


def test_user_config_overrides_one_policy_and_keeps_the_rest() -> None:
    config = load_config(
        """
        [policies.b2c]
        journey = "person"
        lookback = { click = "30d", visit = "30d" }
        models = ["linear", "my_model"]
        custom_models = { my_model = { first = 0.5, last = 0.5 } }
        """
    )
    b2c = config.policies["b2c"]
    assert b2c.lookback[InteractionKind.CLICK] == timedelta(days=30)
    assert b2c.lookback[InteractionKind.VIEW] == timedelta(0)  # left out: explicitly no credit
    assert b2c.custom_models["my_model"].first == 0.5
    assert config.policies["b2b"].journey == "account"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[policies.b2c]\nmodels = ['nonsense']", "unknown model 'nonsense'"),
        ("[policies.b2c]\njourney = 'household'", "policies.b2c.journey"),
        ("[policies.b2c]\nlookback = { click = 'a week' }", "not a duration"),
        ("[policies.b2c]\ncustom_models = { x = { first = 0.7 } }\nmodels=['x']",
         "must sum to 1"),
        ("[[conversions]]\nevent='X'\nkind='x'\npolicy='nope'", "unknown policy 'nope'"),
        ("[policies.b2c]\nwindow = '7d'", "policies.b2c.window"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_bad_config_is_rejected_with_the_field(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30m", timedelta(minutes=30)), ("7d", timedelta(days=7)), ("2w", timedelta(weeks=2)),
     ("12h", timedelta(hours=12)), (90, timedelta(seconds=90)), ("1.5d", timedelta(hours=36))],
)
def test_durations(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected
