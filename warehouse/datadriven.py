"""`attribution datadriven`: Markov or Shapley over every journey of the warehouse, landed as
one more model in the `credits` table, so every view shows it beside the rule-based models.

Per policy:
- Converting journeys: one per conversion whose current credits are in the policy; its path
  is the union of the touches its rule-based models credit at the current version, oldest
  first (the path the credit engine windowed and cleaned; a model such as linear credits
  every touch of it). A policy whose only models are single-touch ones (first/last touch)
  therefore gives single-touch paths; add linear or participation to its models to avoid that.
- Non-converting journeys: every person (person policies) or account (account policies)
  with touches and no conversion of the policy's conversion kinds, with the path
  `attribution.datadriven.paths.window_paths` builds (window ending at its last touch).
  A person policy thus also sees the B2B contacts who never bought as non-converting.
- The model gives each channel a weight (removal effect, Shapley value) and totals of
  conversions and value; the rows are fitted to those totals and to each conversion's 1 and
  value at once (attribution.datadriven.allocate). How each channel's landed rows compare
  with the model lands in the `datadriven_fit` table (one file per policy and model, like
  the credits), so SQL users see where the model's totals could not be met.

Landed rows carry model `markov_o<K>` or `shapley`, reason "datadriven" and the conversion's
current version, so the latest-version `credits` view shows them beside the rows they were
derived from. Each (policy, model) lands in one file with a fixed name, so a re-run replaces
the previous rows instead of adding to them. When a newer version of a conversion lands
later (stream re-credit, `attribution reattribute`), its data-driven rows stay with the old
version and drop out of `credits`: run `attribution datadriven` again after re-attribution.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from attribution.datadriven import markov_credits, shapley_credits
from attribution.datadriven.allocate import allocate
from attribution.datadriven.journeys import JOURNEY_SCHEMA
from attribution.datadriven.markov import MAX_ORDER
from attribution.datadriven.paths import window_paths
from attribution.policy import Config, Policy
from schemas.records import NO_TOUCH_CHANNEL
from warehouse.landing import land
from warehouse.layout import TABLES, table_dir
from warehouse.query import connect_readonly

DATADRIVEN_REASON = "datadriven"
MODELS = ("markov", "shapley")
FIT_COLUMNS = [name for name in TABLES["datadriven_fit"].names if name != "landed_at"]
STEPS = ("building journeys", "computing the model", "allocating to touches", "landing")

Step = Callable[[str], None]
"""Called once as each step of a policy finishes, with a description of it."""


def model_name(model: str, order: int = 1) -> str:
    """The name the rows land under: markov_o1 .. markov_o4, shapley."""
    if model == "markov":
        if not 1 <= order <= MAX_ORDER:
            raise ValueError(f"Markov order must be in 1..{MAX_ORDER}, got {order}")
        return f"markov_o{order}"
    if model == "shapley":
        return "shapley"
    raise ValueError(f"unknown data-driven model {model!r}; use one of {', '.join(MODELS)}")


@dataclass(frozen=True)
class PolicyResult:
    policy: str
    model: str
    converting: int  # conversions with touches, each a journey fed to the model
    non_converting: int
    channels: pl.DataFrame  # attribution.datadriven.allocate.FIT_SCHEMA, one row per channel
    rows: int  # credit rows landed
    file: Path | None

    @property
    def fitted(self) -> bool:
        """The landed rows add up to the model's totals for every channel."""
        return bool(self.channels.get_column("fitted").all())


def datadriven_file(root: Path, policy: str, model: str) -> Path:
    return table_dir(root, "credits") / f"{_batch_name(policy, model)}.parquet"



def _batch_name(policy: str, model: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._=-]", "_", policy)
    if safe != policy:  # keep distinct policies in distinct files
        safe += "-" + hashlib.sha256(policy.encode()).hexdigest()[:8]
    return f"datadriven-{safe}-{model}"


def run_datadriven(
    root: Path,
    config: Config,
    model: str,
    order: int = 1,
    policies: Sequence[str] | None = None,
    step: Step | None = None,
    total: Callable[[int], None] | None = None,
) -> list[PolicyResult]:
    """Compute and land `model` for `policies` (default: every policy with current credits).

    `total` is called once with the number of steps `step` will report (for a progress bar).
    """
    name = model_name(model, order)
    connection = connect_readonly(root)
    try:
        chosen = list(policies) if policies is not None else current_policies(connection)
        for policy in chosen:
            if policy not in config.policies:
                raise ValueError(
                    f"policy {policy!r} is not in the config; pass the config the warehouse "
                    "was built with (--config)"
                )
        if total is not None:
            total(len(chosen) * len(STEPS))
        history = read_journeys(connection)
    finally:
        connection.close()
    return [
        _run_policy(root, config.policies[policy], history, model, order, name, step)
        for policy in chosen
    ]


def current_policies(connection: duckdb.DuckDBPyConnection) -> list[str]:
    rows = connection.execute(
        "SELECT DISTINCT policy FROM credits WHERE reason <> $reason ORDER BY policy",
        {"reason": DATADRIVEN_REASON},
    ).fetchall()
    return [row[0] for row in rows]


def _run_policy(
    root: Path,
    policy: Policy,
    history: Journeys,
    model: str,
    order: int,
    name: str,
    step: Step | None,
) -> PolicyResult:
    def done(what: str) -> None:
        if step is not None:
            step(f"{policy.name}: {what}")

    touches = history.path_touches.filter(pl.col("policy") == policy.name).drop("policy")
    nulls = non_converting_paths(history, touches, policy)
    converting = (
        touches.filter(pl.col("touch_event_id").is_not_null())
        .group_by("conversion_id")
        .agg(pl.col("channel").sort_by("position").alias("path"), pl.col("value").first())
        .sort("conversion_id")  # a fixed journey order keeps every float sum reproducible
    )
    # Built column-wise: a Python list per path would cost seconds per 100k journeys.
    journeys = pl.concat([
        converting.select("path", pl.lit(1.0).alias("conversions"), "value"),
        nulls.select("path", pl.lit(0.0).alias("conversions"), pl.lit(0.0).alias("value")),
    ]).cast(JOURNEY_SCHEMA)  # type: ignore[arg-type]
    done(STEPS[0])

    if model == "markov":
        scored = markov_credits(journeys, order).select(
            "channel",
            pl.col("removal_effect").alias("weight"),
            pl.col("value_removal_effect").alias("value_weight"),
            "conversions",
            "value",
        )
    else:
        scored = shapley_credits(journeys).select(
            "channel",
            pl.col("shapley").alias("weight"),
            pl.col("value").alias("value_weight"),
            pl.col("shapley").alias("conversions"),
            "value",
        )
    done(STEPS[1])

    allocation = allocate(touches, scored)
    rows = credit_rows(allocation.rows, policy.name, name)
    done(STEPS[2])

    target = datadriven_file(root, policy.name, name)
    # replace: rows of an earlier run on days (or with nothing) this run has none for go too
    landed = land(root, "credits", rows.to_arrow(), name=target.stem, replace=True)
    fit = allocation.channels.with_columns(pl.lit(policy.name).alias("policy"),
                                           pl.lit(name).alias("model"))
    land(root, "datadriven_fit", fit.select(FIT_COLUMNS).to_arrow(), name=target.stem,
         replace=True)
    done(STEPS[3])

    return PolicyResult(
        policy=policy.name,
        model=name,
        converting=converting.height,
        non_converting=nulls.height,
        channels=allocation.channels,
        rows=rows.height,
        file=landed,
    )


@dataclass(frozen=True)
class Journeys:
    """What the models read from the warehouse, once for every policy."""

    path_touches: pl.DataFrame  # see _PATH_TOUCHES_SQL, sorted by conversion and position
    conversion_keys: pl.DataFrame  # conversion kind and its person and account journey keys
    touches: pl.DataFrame  # every touch with its person and account journey keys


_PATH_TOUCHES_SQL = """
WITH path_touches AS (
    -- the union of the touches the rule-based models credit, one row per touch; a
    -- conversion without touches has one row with a null touch_event_id
    SELECT DISTINCT policy, conversion_id, conversion_kind, journey_key, version, currency,
        conversion_time, touch_event_id, touch_time, channel, campaign
    FROM credits
    WHERE reason <> $reason
)
SELECT p.*, coalesce(c.value, 0.0) AS value,
    row_number() OVER (
        PARTITION BY p.conversion_id ORDER BY p.touch_time, p.touch_event_id
    ) AS position
FROM path_touches AS p
LEFT JOIN (SELECT conversion_id, value FROM conversions) AS c USING (conversion_id)
"""

# Journey keys as the core derives them: the person from the identity map, the account from
# the event's own groupId, else the person's account.
_CONVERSION_KEYS_SQL = """
SELECT c.kind,
    'person:' || coalesce(i.person_key, c.person_id, c.anonymous_id) AS person,
    'account:' || coalesce(c.account_id, i.account_key) AS account
FROM conversions AS c
LEFT JOIN identities AS i ON i.id = coalesce(c.person_id, c.anonymous_id)
"""

_KEYED_TOUCHES_SQL = """
SELECT 'person:' || person_key AS person,
    'account:' || coalesce(account_id, account_key) AS account,
    event_id, time, channel, kind
FROM touchpoints
"""


def read_journeys(connection: duckdb.DuckDBPyConnection) -> Journeys:
    return Journeys(
        path_touches=query_frame(connection, _PATH_TOUCHES_SQL, {"reason": DATADRIVEN_REASON})
        .sort("conversion_id", "position"),
        conversion_keys=query_frame(connection, _CONVERSION_KEYS_SQL, {}),
        touches=query_frame(connection, _KEYED_TOUCHES_SQL, {}),
    )


def non_converting_paths(history: Journeys, path_touches: pl.DataFrame,
                         policy: Policy) -> pl.DataFrame:
    """journey_key and path of every journey of the policy's unit (person or account) that
    has touches and no conversion of the policy's kinds (the kinds of the conversions in
    `path_touches`, the policy's current ones)."""
    kinds = path_touches.get_column("conversion_kind").unique()
    converted = pl.concat([
        path_touches.select(pl.col("journey_key").alias("key")),
        history.conversion_keys.filter(pl.col("kind").is_in(kinds.implode())).select(
            pl.col(policy.journey).alias("key")
        ),
    ]).drop_nulls()
    quiet = (
        history.touches.select(
            pl.col(policy.journey).alias("journey_key"), "event_id", "time", "channel", "kind"
        )
        .drop_nulls("journey_key")
        .join(converted.unique(), left_on="journey_key", right_on="key", how="anti")
    )
    return window_paths(
        quiet,
        {str(kind): window.total_seconds() for kind, window in policy.lookback.items()},
        drop_direct=policy.drop_direct,
        collapse_repeats=policy.collapse_repeats,
        max_touches=policy.max_touches,
    )


def query_frame(
    connection: duckdb.DuckDBPyConnection, sql: str, parameters: dict[str, object]
) -> pl.DataFrame:
    frame = connection.sql(sql, params=parameters).pl()
    if not isinstance(frame, pl.DataFrame):
        raise RuntimeError("the query returned no result set")
    return frame


def credit_rows(allocated: pl.DataFrame, policy: str, model: str) -> pl.DataFrame:
    """Allocated touches as `credits` rows, in the table's column order."""
    columns = TABLES["credits"].names
    return (
        allocated.with_columns(
            pl.lit(policy).alias("policy"),
            pl.lit(model).alias("model"),
            pl.lit(DATADRIVEN_REASON).alias("reason"),
            pl.when(pl.col("touch_event_id").is_null())
            .then(pl.lit(NO_TOUCH_CHANNEL))
            .otherwise(pl.col("channel"))
            .alias("channel"),
            pl.col("version").cast(pl.Int64()),
        )
        .select(columns)
        .sort("conversion_id", "touch_time", "touch_event_id", nulls_last=True)
    )
