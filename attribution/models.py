"""Rule-based attribution models: the credit share of each touch of one conversion.

Pure functions over a ``CreditPath`` (the touches that survived windowing and path
cleaning, oldest first). Every model except ``participation`` returns shares that sum
to 1 (to within 1e-12 under ``math.fsum``); ``participation`` gives every touch 1.0.

Position models are "role weights": each role (first, last, middle/rest and the B2B
stage touches lead / opportunity / won) carries a weight. A touch holding several roles
adds them up; a role no touch holds drops out and the remaining weights are
renormalised. Runs per conversion per model on the stream's hot path, so it sticks to
plain lists and a handful of float operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attribution.policy import BUILTIN_MODELS, MODEL_ALIASES

if TYPE_CHECKING:
    from attribution.policy import CustomWeights

DIRECT_CHANNEL = "Direct"
DEFAULT_HALF_LIFE_SECONDS = 7 * 86400.0

# Role weights of the built-in position models (DOMAIN.md section 2).
U_FIRST, U_MIDDLE, U_LAST = 0.4, 0.2, 0.4
J_FIRST, J_MIDDLE, J_LAST = 0.2, 0.2, 0.6
INVERSE_J_FIRST, INVERSE_J_MIDDLE, INVERSE_J_LAST = 0.6, 0.2, 0.2
W_ROLE, W_REST = 0.3, 0.1  # first, lead, opportunity each; rest
Z_ROLE, Z_REST = 0.225, 0.1  # first, lead, opportunity, won each; rest


@dataclass(frozen=True, slots=True)
class CreditPath:
    """The ordered, already-windowed and cleaned touches of one conversion (oldest first).

    Validated on construction (once per conversion, not once per model).
    """

    channels: tuple[str, ...]
    ages: tuple[float, ...]  # seconds from touch to conversion, >= 0, same length
    lead_index: int | None = None  # index of the lead-creation touch (W, full path)
    opportunity_index: int | None = None  # index of the opportunity-creation touch
    won_index: int | None = None  # index of the closed-won touch (full path)

    def __post_init__(self) -> None:
        n = len(self.channels)
        if len(self.ages) != n:
            raise ValueError(f"path has {n} channels but {len(self.ages)} ages")
        for i, age in enumerate(self.ages):
            # The chained comparison is False for NaN too.
            if not 0.0 <= age < math.inf:
                raise ValueError(f"age of touch {i} must be finite and >= 0, got {age!r}")
        for role, index in (
            ("lead_index", self.lead_index),
            ("opportunity_index", self.opportunity_index),
            ("won_index", self.won_index),
        ):
            if index is not None and not 0 <= index < n:
                raise ValueError(f"{role}={index} is out of range for a path of {n} touches")


def compute_shares(
    model: str,
    path: CreditPath,
    *,
    half_life_seconds: float = DEFAULT_HALF_LIFE_SECONDS,
    custom: CustomWeights | None = None,
) -> list[float]:
    """Credit share of each touch of ``path`` under ``model`` (one share per touch).

    ``model`` is a name from ``BUILTIN_MODELS``, an alias from ``MODEL_ALIASES`` or
    ``"custom"`` (then ``custom`` must be given). Raises ValueError for an unknown model.
    """
    name = MODEL_ALIASES.get(model, model)
    compute = _MODELS.get(name)
    if compute is None:
        known = ", ".join((*BUILTIN_MODELS, "custom"))
        raise ValueError(f"unknown attribution model {model!r}; known: {known}")
    if name == "custom" and custom is None:
        raise ValueError("model 'custom' needs custom weights")
    n = len(path.channels)
    if n <= 1:
        return [1.0] * n
    return compute(path, n, half_life_seconds, custom)


# --- single-touch models ----------------------------------------------------------


def _one_hot(n: int, index: int) -> list[float]:
    shares = [0.0] * n
    shares[index] = 1.0
    return shares


def _first_touch(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    return _one_hot(n, 0)


def _last_touch(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    return _one_hot(n, n - 1)


def _last_non_direct(
    path: CreditPath, n: int, _hl: float, _c: CustomWeights | None
) -> list[float]:
    channels = path.channels
    for i in range(n - 1, -1, -1):
        if channels[i] != DIRECT_CHANNEL:
            return _one_hot(n, i)
    return _one_hot(n, n - 1)  # every touch is Direct: Direct is the only channel


# --- spread models ----------------------------------------------------------------


def _linear(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    return _balanced([1.0 / n] * n)


def _participation(
    path: CreditPath, n: int, _hl: float, _c: CustomWeights | None
) -> list[float]:
    return [1.0] * n


def _time_decay(
    path: CreditPath, n: int, half_life: float, _c: CustomWeights | None
) -> list[float]:
    if not 0.0 < half_life < math.inf:
        raise ValueError(f"half_life_seconds must be finite and > 0, got {half_life!r}")
    ages = path.ages
    # Measure from the most recent touch so its weight is 1 and the total never
    # underflows to 0 on old paths; the common factor cancels in the normalisation.
    newest = min(ages)
    exp2 = math.exp2
    weights = [exp2((newest - age) / half_life) for age in ages]
    total = math.fsum(weights)
    return _balanced([w / total for w in weights])


# --- role-weight (position) models ------------------------------------------------


def _role_weighted(
    n: int,
    roles: tuple[tuple[int | None, float], ...],
    role_holders: set[int],
    rest_weight: float,
) -> list[float]:
    """Add each role's weight to its touch, spread ``rest_weight`` over the touches
    outside ``role_holders``, then renormalise over the roles that exist."""
    shares = [0.0] * n
    total = 0.0
    for index, weight in roles:
        if index is not None:
            shares[index] += weight
            total += weight
    rest = [i for i in range(n) if i not in role_holders]
    if rest and rest_weight > 0.0:
        each = rest_weight / len(rest)
        for i in rest:
            shares[i] += each
        total += rest_weight
    if total <= 0.0:
        # Only a custom model can get here (all its weight on roles this path lacks);
        # equal shares are the neutral answer and keep the sum-to-1 promise.
        return _balanced([1.0 / n] * n)
    return _balanced([s / total for s in shares])


def _first_middle_last(n: int, first: float, middle: float, last: float) -> list[float]:
    # Middle means strictly between first and last (n >= 2 here).
    return _role_weighted(n, ((0, first), (n - 1, last)), {0, n - 1}, middle)


def _position_based(
    path: CreditPath, n: int, _hl: float, _c: CustomWeights | None
) -> list[float]:
    return _first_middle_last(n, U_FIRST, U_MIDDLE, U_LAST)


def _j_shaped(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    return _first_middle_last(n, J_FIRST, J_MIDDLE, J_LAST)


def _inverse_j(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    return _first_middle_last(n, INVERSE_J_FIRST, INVERSE_J_MIDDLE, INVERSE_J_LAST)


def _stage_holders(path: CreditPath, with_won: bool = True) -> set[int]:
    """First touch plus the stage touches: the touches excluded from W/Z "rest"."""
    holders = {0}
    stages = (path.lead_index, path.opportunity_index, path.won_index if with_won else None)
    for index in stages:
        if index is not None:
            holders.add(index)
    return holders


def _w_shaped(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    # W has no won role: the closed-won touch is part of "rest" unless it holds a W role.
    roles = ((0, W_ROLE), (path.lead_index, W_ROLE), (path.opportunity_index, W_ROLE))
    return _role_weighted(n, roles, _stage_holders(path, with_won=False), W_REST)


def _full_path(path: CreditPath, n: int, _hl: float, _c: CustomWeights | None) -> list[float]:
    roles = (
        (0, Z_ROLE),
        (path.lead_index, Z_ROLE),
        (path.opportunity_index, Z_ROLE),
        (path.won_index, Z_ROLE),
    )
    return _role_weighted(n, roles, _stage_holders(path), Z_REST)


def _custom(path: CreditPath, n: int, _hl: float, custom: CustomWeights | None) -> list[float]:
    assert custom is not None  # checked by compute_shares
    roles = (
        (0, custom.first),
        (n - 1, custom.last),
        (path.lead_index, custom.lead),
        (path.opportunity_index, custom.opportunity),
        (path.won_index, custom.won),
    )
    # "Middle" is every touch holding no role with positive weight, so custom weights
    # equal to U, J, W or Z reproduce that model (for W: when won_index is None).
    holders = {index for index, weight in roles if index is not None and weight > 0.0}
    return _role_weighted(n, roles, holders, custom.middle)


# --- exact sum ---------------------------------------------------------------------


def _balanced(shares: list[float]) -> list[float]:
    """Move the floating-point remainder onto the largest share so the sum is 1."""
    remainder = 1.0 - math.fsum(shares)
    if remainder:
        shares[shares.index(max(shares))] += remainder
    return shares


_ModelFunction = Callable[[CreditPath, int, float, "CustomWeights | None"], list[float]]

_MODELS: dict[str, _ModelFunction] = {
    "first_touch": _first_touch,
    "last_touch": _last_touch,
    "last_non_direct": _last_non_direct,
    "linear": _linear,
    "time_decay": _time_decay,
    "position_based": _position_based,
    "w_shaped": _w_shaped,
    "full_path": _full_path,
    "j_shaped": _j_shaped,
    "inverse_j": _inverse_j,
    "participation": _participation,
    "custom": _custom,
}
assert set(_MODELS) == {*BUILTIN_MODELS, "custom"}, "every built-in model needs a function"
