"""Rule-based attribution models: hand-computed cases and hypothesis properties."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from attribution.models import CreditPath, compute_shares
from attribution.policy import BUILTIN_MODELS, MODEL_ALIASES, CustomWeights

DAY = 86400.0
WEEK = 7 * DAY


def make_path(
    channels: list[str],
    ages: list[float] | None = None,
    lead: int | None = None,
    opportunity: int | None = None,
    won: int | None = None,
) -> CreditPath:
    if ages is None:
        ages = [float(len(channels) - i) * DAY for i in range(len(channels))]
    return CreditPath(tuple(channels), tuple(ages), lead, opportunity, won)


def touches(n: int) -> list[str]:
    return [f"C{i}" for i in range(n)]


def assert_shares(actual: list[float], expected: list[float]) -> None:
    assert actual == pytest.approx(expected, abs=1e-12)


# --- hand-computed cases ------------------------------------------------------------


@pytest.mark.parametrize("model", [*BUILTIN_MODELS, *MODEL_ALIASES])
def test_empty_path_has_no_shares(model: str) -> None:
    assert compute_shares(model, make_path([])) == []


@pytest.mark.parametrize("model", BUILTIN_MODELS)
def test_single_touch_gets_everything(model: str) -> None:
    assert compute_shares(model, make_path(["Email"])) == [1.0]
    staged = make_path(["Email"], lead=0, opportunity=0, won=0)
    assert compute_shares(model, staged) == [1.0]


def test_single_touch_custom_gets_everything() -> None:
    weights = CustomWeights(middle=1.0)
    assert compute_shares("custom", make_path(["Email"]), custom=weights) == [1.0]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", [1.0, 0.0]),
        ("last_touch", [0.0, 1.0]),
        ("last_non_direct", [0.0, 1.0]),
        ("linear", [0.5, 0.5]),
        ("position_based", [0.5, 0.5]),
        ("j_shaped", [0.25, 0.75]),
        ("inverse_j", [0.75, 0.25]),
        ("w_shaped", [0.75, 0.25]),  # first .3, rest .1
        ("full_path", [9 / 13, 4 / 13]),  # first .225, rest .1
        ("participation", [1.0, 1.0]),
    ],
)
def test_two_touches(model: str, expected: list[float]) -> None:
    assert_shares(compute_shares(model, make_path(["Email", "Paid Search"])), expected)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first_touch", [1.0, 0.0, 0.0]),
        ("last_touch", [0.0, 0.0, 1.0]),
        ("linear", [1 / 3, 1 / 3, 1 / 3]),
        ("position_based", [0.4, 0.2, 0.4]),
        ("j_shaped", [0.2, 0.2, 0.6]),
        ("inverse_j", [0.6, 0.2, 0.2]),
        ("w_shaped", [0.75, 0.125, 0.125]),  # no stages: first .3, rest .1 over two
        ("participation", [1.0, 1.0, 1.0]),
    ],
)
def test_three_touches(model: str, expected: list[float]) -> None:
    assert_shares(compute_shares(model, make_path(touches(3))), expected)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("linear", [0.2] * 5),
        ("position_based", [0.4, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.4]),
        ("j_shaped", [0.2, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.6]),
        ("inverse_j", [0.6, 0.2 / 3, 0.2 / 3, 0.2 / 3, 0.2]),
        ("first_touch", [1.0, 0, 0, 0, 0]),
        ("last_touch", [0, 0, 0, 0, 1.0]),
    ],
)
def test_five_touches(model: str, expected: list[float]) -> None:
    assert_shares(compute_shares(model, make_path(touches(5))), expected)


def test_w_shaped_five_touches_with_all_stages() -> None:
    path = make_path(touches(5), lead=1, opportunity=3)
    # first .3, lead .3, opportunity .3; touches 2 and 4 (the last is no W role) share .1
    assert_shares(compute_shares("w_shaped", path), [0.3, 0.3, 0.05, 0.3, 0.05])


def test_w_shaped_three_touches_with_stages_on_the_middle_and_last() -> None:
    path = make_path(touches(3), lead=1, opportunity=2)
    assert_shares(compute_shares("w_shaped", path), [1 / 3, 1 / 3, 1 / 3])


def test_w_shaped_missing_opportunity_renormalises() -> None:
    path = make_path(touches(5), lead=4)
    # first .3, lead .3 (the last touch), rest .1 over 1..3; total .7
    assert_shares(compute_shares("w_shaped", path), [3 / 7, 1 / 21, 1 / 21, 1 / 21, 3 / 7])


def test_w_shaped_lead_on_the_first_touch_adds_up() -> None:
    path = make_path(touches(4), lead=0, opportunity=2)
    # touch 0: first .3 + lead .3; touch 2: .3; touches 1 and 3 share .1
    assert_shares(compute_shares("w_shaped", path), [0.6, 0.05, 0.3, 0.05])


def test_w_shaped_counts_the_won_touch_as_rest() -> None:
    # W has no won role: touches 3 and 4 share the 10% rest.
    path = make_path(touches(5), lead=1, opportunity=2, won=4)
    assert_shares(compute_shares("w_shaped", path), [0.3, 0.3, 0.3, 0.05, 0.05])


def test_full_path_five_touches_with_all_stages() -> None:
    path = make_path(touches(5), lead=1, opportunity=2, won=4)
    assert_shares(compute_shares("full_path", path), [0.225, 0.225, 0.225, 0.1, 0.225])


def test_full_path_stages_coinciding_with_first_and_last() -> None:
    path = make_path(touches(3), lead=0, opportunity=1, won=2)
    # touch 0: first + lead = .45; .225 each for 1 and 2; no rest; total .9
    assert_shares(compute_shares("full_path", path), [0.5, 0.25, 0.25])


def test_full_path_missing_opportunity_renormalises() -> None:
    path = make_path(touches(5), lead=1, won=4)
    total = 0.775  # three roles of .225 plus rest .1
    expected = [0.225 / total, 0.225 / total, 0.05 / total, 0.05 / total, 0.225 / total]
    assert_shares(compute_shares("full_path", path), expected)


def test_full_path_all_stages_on_one_touch() -> None:
    path = make_path(touches(4), lead=3, opportunity=3, won=3)
    # touch 3: .675; first .225; touches 1 and 2 share .1; total 1
    assert_shares(compute_shares("full_path", path), [0.225, 0.05, 0.05, 0.675])


@pytest.mark.parametrize(
    ("channels", "winner"),
    [
        (["Email", "Direct", "Direct"], 0),
        (["Paid Search", "Direct", "Email"], 2),
        (["Direct", "Email", "Direct"], 1),
        (["Direct", "Direct"], 1),  # all Direct: the last touch
        (["Direct", "Direct", "Direct", "Direct", "Direct"], 4),
        (["Email", "Organic Search", "Direct", "Direct", "Paid Social"], 4),
    ],
)
def test_last_non_direct(channels: list[str], winner: int) -> None:
    expected = [0.0] * len(channels)
    expected[winner] = 1.0
    assert compute_shares("last_non_direct", make_path(channels)) == expected


def test_time_decay_halves_per_half_life() -> None:
    path = make_path(touches(3), ages=[2 * WEEK, WEEK, 0.0])
    # weights .25, .5, 1 -> /1.75
    assert_shares(compute_shares("time_decay", path), [1 / 7, 2 / 7, 4 / 7])


def test_time_decay_two_touches_and_custom_half_life() -> None:
    path = make_path(touches(2), ages=[DAY, 0.0])
    older = 2 ** (-1 / 7)  # one day at the default 7-day half-life
    assert_shares(compute_shares("time_decay", path), [older / (1 + older), 1 / (1 + older)])
    assert_shares(compute_shares("time_decay", path, half_life_seconds=DAY), [1 / 3, 2 / 3])


def test_time_decay_equal_ages_get_equal_weight() -> None:
    path = make_path(touches(3), ages=[WEEK, WEEK, 0.0])
    assert_shares(compute_shares("time_decay", path), [0.25, 0.25, 0.5])


def test_time_decay_survives_very_old_paths() -> None:
    # 2^(-age/half_life) underflows to 0 for these ages; shares must still sum to 1.
    path = make_path(touches(3), ages=[1e12, 1e12, 1e12])
    assert_shares(compute_shares("time_decay", path, half_life_seconds=1.0), [1 / 3] * 3)


def test_custom_weights() -> None:
    path = make_path(touches(3))
    ends = CustomWeights(first=0.5, last=0.5)
    assert_shares(compute_shares("custom", path, custom=ends), [0.5, 0.0, 0.5])
    skewed = CustomWeights(first=0.1, middle=0.3, last=0.6)
    assert_shares(compute_shares("custom", make_path(touches(4)), custom=skewed),
                  [0.1, 0.15, 0.15, 0.6])


def test_custom_stage_weights_add_up_with_position_weights() -> None:
    weights = CustomWeights(first=0.2, last=0.2, lead=0.3, opportunity=0.2, middle=0.1)
    path = make_path(touches(5), lead=0, opportunity=2)
    # touch 0: first .2 + lead .3; touch 2: .2; touch 4: .2; touches 1 and 3 share .1
    assert_shares(compute_shares("custom", path, custom=weights), [0.5, 0.05, 0.2, 0.05, 0.2])


def test_custom_unweighted_last_touch_counts_as_middle() -> None:
    weights = CustomWeights(first=0.5, middle=0.5)
    assert_shares(compute_shares("custom", make_path(touches(2)), custom=weights), [0.5, 0.5])


def test_custom_weight_only_on_missing_roles_falls_back_to_equal_shares() -> None:
    weights = CustomWeights(lead=0.5, won=0.5)
    assert_shares(compute_shares("custom", make_path(touches(4)), custom=weights), [0.25] * 4)


@pytest.mark.parametrize(("alias", "canonical"), MODEL_ALIASES.items())
def test_aliases(alias: str, canonical: str) -> None:
    path = make_path(touches(5), lead=1, opportunity=2, won=3)
    assert compute_shares(alias, path) == compute_shares(canonical, path)


# --- errors --------------------------------------------------------------------------


def test_unknown_model_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown attribution model 'markov'"):
        compute_shares("markov", make_path(touches(2)))


def test_custom_without_weights_is_rejected() -> None:
    with pytest.raises(ValueError, match="custom weights"):
        compute_shares("custom", make_path(touches(2)))


@pytest.mark.parametrize("age", [-1.0, math.nan, math.inf])
def test_bad_ages_are_rejected(age: float) -> None:
    with pytest.raises(ValueError, match="age of touch 1"):
        make_path(touches(2), ages=[0.0, age])


def test_length_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="2 channels but 3 ages"):
        make_path(touches(2), ages=[0.0, 1.0, 2.0])


@pytest.mark.parametrize(
    "indexes", [{"lead": 3}, {"opportunity": -1}, {"won": 5}, {"lead": 0, "won": 99}]
)
def test_stage_index_out_of_range_is_rejected(indexes: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="out of range for a path of 3 touches"):
        make_path(touches(3), **indexes)  # type: ignore[arg-type]


def test_stage_index_on_empty_path_is_rejected() -> None:
    with pytest.raises(ValueError, match="out of range"):
        make_path([], lead=0)


@pytest.mark.parametrize("half_life", [0.0, -1.0, math.nan, math.inf])
def test_bad_half_life_is_rejected(half_life: float) -> None:
    with pytest.raises(ValueError, match="half_life_seconds"):
        compute_shares("time_decay", make_path(touches(2)), half_life_seconds=half_life)


# --- properties ----------------------------------------------------------------------

CHANNELS = st.sampled_from(["Direct", "Email", "Paid Search", "Organic Search", "Paid Social"])
AGES = st.floats(min_value=0.0, max_value=1e9, allow_nan=False, allow_infinity=False)
HALF_LIVES = st.floats(min_value=1.0, max_value=1e8, allow_nan=False, allow_infinity=False)


@st.composite
def credit_paths(draw: st.DrawFn, min_size: int = 0, max_size: int = 12) -> CreditPath:
    n = draw(st.integers(min_value=min_size, max_value=max_size))
    channels = draw(st.lists(CHANNELS, min_size=n, max_size=n))
    ages = draw(st.lists(AGES, min_size=n, max_size=n))
    index = st.none() | st.integers(min_value=0, max_value=n - 1) if n else st.none()
    return CreditPath(tuple(channels), tuple(ages), draw(index), draw(index), draw(index))


@st.composite
def custom_weights(draw: st.DrawFn) -> CustomWeights:
    raw = draw(st.lists(st.floats(min_value=0.0, max_value=10.0), min_size=6, max_size=6))
    total = sum(raw)
    assume(total > 1e-6)
    first, middle, last, lead, opportunity, won = (w / total for w in raw)
    return CustomWeights(
        first=first, middle=middle, last=last, lead=lead, opportunity=opportunity, won=won
    )


def all_shares(
    path: CreditPath, half_life: float, custom: CustomWeights
) -> dict[str, list[float]]:
    results = {
        model: compute_shares(model, path, half_life_seconds=half_life)
        for model in BUILTIN_MODELS
    }
    results["custom"] = compute_shares("custom", path, custom=custom)
    return results


@settings(deadline=None)
@given(credit_paths(), HALF_LIVES, custom_weights())
def test_shares_have_one_non_negative_entry_per_touch(
    path: CreditPath, half_life: float, custom: CustomWeights
) -> None:
    for model, shares in all_shares(path, half_life, custom).items():
        assert len(shares) == len(path.channels), model
        assert all(share >= 0.0 for share in shares), model


@settings(deadline=None)
@given(credit_paths(min_size=1), HALF_LIVES, custom_weights())
def test_shares_sum_to_one(path: CreditPath, half_life: float, custom: CustomWeights) -> None:
    for model, shares in all_shares(path, half_life, custom).items():
        if model == "participation":
            assert shares == [1.0] * len(path.channels)
        else:
            assert abs(math.fsum(shares) - 1.0) <= 1e-12, model


@settings(deadline=None)
@given(credit_paths(min_size=1), HALF_LIVES)
def test_time_decay_never_favours_an_older_touch(path: CreditPath, half_life: float) -> None:
    shares = compute_shares("time_decay", path, half_life_seconds=half_life)
    # The sum fix-up may move the largest share by one rounding step; allow that.
    for i, (age_i, share_i) in enumerate(zip(path.ages, shares, strict=True)):
        for age_j, share_j in zip(path.ages[i + 1 :], shares[i + 1 :], strict=True):
            if age_i < age_j:
                assert share_i >= share_j - 1e-15
            elif age_i > age_j:
                assert share_j >= share_i - 1e-15
            else:
                assert share_i == pytest.approx(share_j, abs=1e-15)


@settings(deadline=None)
@given(credit_paths(min_size=1), st.randoms(use_true_random=False))
def test_linear_ignores_touch_order(path: CreditPath, rng: random.Random) -> None:
    order = list(range(len(path.channels)))
    rng.shuffle(order)
    shuffled = CreditPath(
        tuple(path.channels[i] for i in order), tuple(path.ages[i] for i in order)
    )
    assert compute_shares("linear", shuffled) == compute_shares("linear", path)


def expected_role_shares(
    n: int, roles: list[tuple[int | None, float]], holders: set[int], rest_weight: float
) -> list[float]:
    """The renormalisation rule, restated: weights of roles present, divided by their sum."""
    raw = [0.0] * n
    for index, weight in roles:
        if index is not None:
            raw[index] += weight
    rest = [i for i in range(n) if i not in holders]
    present_rest = rest_weight if rest else 0.0
    for i in rest:
        raw[i] += rest_weight / len(rest)
    total = sum(w for i, w in roles if i is not None) + present_rest
    return [w / total for w in raw]


@settings(deadline=None)
@given(credit_paths(min_size=2))
def test_position_models_follow_the_renormalisation_rule(path: CreditPath) -> None:
    n = len(path.channels)
    lead, opp, won = path.lead_index, path.opportunity_index, path.won_index
    stage_holders = {0} | {i for i in (lead, opp, won) if i is not None}
    expectations = {
        "position_based": expected_role_shares(n, [(0, 0.4), (n - 1, 0.4)], {0, n - 1}, 0.2),
        "j_shaped": expected_role_shares(n, [(0, 0.2), (n - 1, 0.6)], {0, n - 1}, 0.2),
        "inverse_j": expected_role_shares(n, [(0, 0.6), (n - 1, 0.2)], {0, n - 1}, 0.2),
        "w_shaped": expected_role_shares(
            n, [(0, 0.3), (lead, 0.3), (opp, 0.3)],
            {0} | {i for i in (lead, opp) if i is not None}, 0.1
        ),
        "full_path": expected_role_shares(
            n, [(0, 0.225), (lead, 0.225), (opp, 0.225), (won, 0.225)], stage_holders, 0.1
        ),
    }
    for model, expected in expectations.items():
        assert compute_shares(model, path) == pytest.approx(expected, abs=1e-12), model


@settings(deadline=None)
@given(credit_paths())
def test_custom_with_builtin_weights_reproduces_the_builtin(path: CreditPath) -> None:
    equivalents = {
        "position_based": CustomWeights(first=0.4, middle=0.2, last=0.4),
        "j_shaped": CustomWeights(first=0.2, middle=0.2, last=0.6),
        "inverse_j": CustomWeights(first=0.6, middle=0.2, last=0.2),
        "full_path": CustomWeights(
            first=0.225, lead=0.225, opportunity=0.225, won=0.225, middle=0.1
        ),
    }
    for model, weights in equivalents.items():
        custom = compute_shares("custom", path, custom=weights)
        assert custom == pytest.approx(compute_shares(model, path), abs=1e-12), model


@settings(deadline=None)
@given(credit_paths())
def test_single_touch_models_are_one_hot(path: CreditPath) -> None:
    n = len(path.channels)
    for model in ("first_touch", "last_touch", "last_non_direct"):
        shares = compute_shares(model, path)
        assert sorted(shares) == ([0.0] * (n - 1) + [1.0] if n else []), model
    if n:
        winner = compute_shares("last_non_direct", path).index(1.0)
        later = path.channels[winner + 1 :]
        assert all(channel == "Direct" for channel in later)
        if any(channel != "Direct" for channel in path.channels):
            assert path.channels[winner] != "Direct"
