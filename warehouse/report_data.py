"""What the HTML report and the headline KPIs show, read from the analyst views."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from warehouse.layout import exists, has_flat_files
from warehouse.query import WarehouseMissing, connect_readonly, no_warehouse
from warehouse.storage import Root, storage_for
from warehouse.views import create_views

Row = dict[str, Any]

REPORT_VIEWS = ("policy_segments", "campaign_segments", "b2c_kpis", "b2b_kpis", "customers",
                "customer_ltv", "model_comparison", "model_comparison_by_channel",
                "journey_explorer", "credit_audit", "credit_changes")

B2C_REFERENCE_MODELS = ("linear", "time_decay", "position_based", "last_touch", "first_touch")
B2B_REFERENCE_MODELS = ("w_shaped", "full_path", "linear", "time_decay", "first_touch")
"""The model used where a chart or KPI shows a single model: the first one a policy has."""

TIME_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 day", 1), ("1-3 d", 3), ("3-7 d", 7), ("1-2 wk", 14), ("2-4 wk", 30),
    ("1-2 mo", 60), ("2-3 mo", 90), ("3-6 mo", 182), ("6-12 mo", 365), ("> 1 yr", float("inf")),
)
"""Upper bounds (days, exclusive) of the time-to-conversion histogram's buckets."""


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    segment: str  # 'b2c' | 'b2b'
    conversions: int
    models: tuple[str, ...]

    def reference_model(self) -> str:
        preferred = B2B_REFERENCE_MODELS if self.segment == "b2b" else B2C_REFERENCE_MODELS
        return next((m for m in preferred if m in self.models), self.models[0])


@dataclass
class Totals:
    b2c_revenue: float = 0.0
    b2c_conversions: int = 0
    b2c_cost: float = 0.0
    b2b_won_revenue: float = 0.0
    b2b_won_deals: int = 0
    b2b_pipeline: float = 0.0
    b2b_opportunities: int = 0
    b2b_leads: int = 0
    b2b_leads_won: int = 0
    b2b_cost: float = 0.0
    first_conversion: datetime | None = None
    last_conversion: datetime | None = None
    touches: int = 0
    currencies: tuple[str, ...] = ()


@dataclass
class ReportData:
    root: Root
    policies: list[PolicyInfo]
    totals: Totals
    b2c_kpis: list[Row] = field(default_factory=list)
    b2b_kpis: list[Row] = field(default_factory=list)
    comparison: list[Row] = field(default_factory=list)
    ltv: list[Row] = field(default_factory=list)
    time_to_conversion: dict[str, list[float]] = field(default_factory=dict)
    versions: list[Row] = field(default_factory=list)
    changes: list[Row] = field(default_factory=list)

    def segment(self, segment: str) -> list[PolicyInfo]:
        return [p for p in self.policies if p.segment == segment]

    @property
    def currency(self) -> str:
        """The one currency of all values, '' if none, 'mixed' if several."""
        currencies = self.totals.currencies
        return currencies[0] if len(currencies) == 1 else ("mixed" if currencies else "")


def ensure_report_views(root: Root) -> None:
    """(Re)build the views file when it is missing or older than the analyst views; a
    warehouse of an older layout is left to ``attribution migrate`` (the error says so)."""
    if not exists(root):
        raise no_warehouse(root)
    try:
        connection = connect_readonly(root)
    except WarehouseMissing:
        if has_flat_files(root):
            raise
        create_views(root)
        return
    try:
        views = {row[0] for row in connection.execute(
            "SELECT view_name FROM duckdb_views()").fetchall()}
    finally:
        connection.close()
    if not views.issuperset(REPORT_VIEWS):
        create_views(root)


@contextmanager
def _connection(root: Root) -> Iterator[duckdb.DuckDBPyConnection]:
    ensure_report_views(root)
    connection = connect_readonly(root)
    try:
        yield connection
    finally:
        connection.close()


def fetch(connection: duckdb.DuckDBPyConnection, sql: str,
          parameters: Sequence[Any] = ()) -> list[Row]:
    cursor = connection.execute(sql, list(parameters))
    columns = [d[0] for d in cursor.description or ()]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def _policies(connection: duckdb.DuckDBPyConnection) -> list[PolicyInfo]:
    rows = fetch(connection, """
        SELECT p.policy, p.segment, p.conversions, list(DISTINCT c.model ORDER BY c.model) AS models
        FROM policy_segments AS p JOIN credits AS c USING (policy)
        GROUP BY ALL ORDER BY p.segment DESC, p.conversions DESC, p.policy""")
    return [PolicyInfo(r["policy"], r["segment"], r["conversions"], tuple(r["models"]))
            for r in rows]


_TOTALS_SQL = """
WITH conversion_segments AS (
    SELECT c.*, coalesce(p.segment, 'b2c') AS segment
    FROM conversions AS c LEFT JOIN policy_segments AS p USING (policy)
),
leads AS (
    SELECT l.conversion_id, bool_or(w.conversion_id IS NOT NULL) AS won
    FROM conversion_segments AS l
    LEFT JOIN conversions AS w
        ON w.journey_key = l.journey_key AND w.time >= l.time AND w.kind = 'opportunity_won'
    WHERE l.segment = 'b2b' AND l.kind = 'lead_created'
    GROUP BY l.conversion_id
),
segment_spend AS (
    SELECT g.segment, fsum(s.cost) AS cost
    FROM spend AS s
    JOIN campaign_segments AS g
        ON g.channel = s.channel AND g.campaign IS NOT DISTINCT FROM s.campaign
    GROUP BY g.segment
)
SELECT
    coalesce(fsum(value) FILTER (WHERE segment = 'b2c'
        AND kind NOT IN ('lead_created', 'opportunity_created')), 0) AS b2c_revenue,
    count(*) FILTER (WHERE segment = 'b2c'
        AND kind NOT IN ('lead_created', 'opportunity_created')) AS b2c_conversions,
    coalesce(fsum(value) FILTER (WHERE segment = 'b2b' AND kind = 'opportunity_won'), 0)
        AS b2b_won_revenue,
    count(*) FILTER (WHERE segment = 'b2b' AND kind = 'opportunity_won') AS b2b_won_deals,
    coalesce(fsum(value) FILTER (WHERE segment = 'b2b' AND kind = 'opportunity_created'), 0)
        AS b2b_pipeline,
    count(*) FILTER (WHERE segment = 'b2b' AND kind = 'opportunity_created')
        AS b2b_opportunities,
    (SELECT count(*) FROM leads) AS b2b_leads,
    (SELECT count(*) FILTER (WHERE won) FROM leads) AS b2b_leads_won,
    coalesce((SELECT cost FROM segment_spend WHERE segment = 'b2c'), 0) AS b2c_cost,
    coalesce((SELECT cost FROM segment_spend WHERE segment = 'b2b'), 0) AS b2b_cost,
    min(time) AS first_conversion,
    max(time) AS last_conversion,
    (SELECT count(*) FROM touchpoints) AS touches,
    (SELECT list(DISTINCT currency ORDER BY currency) FROM (
        SELECT currency FROM conversions WHERE currency IS NOT NULL
        UNION SELECT currency FROM spend)) AS currencies
FROM conversion_segments
"""


def _totals(connection: duckdb.DuckDBPyConnection) -> Totals:
    row = fetch(connection, _TOTALS_SQL)[0]
    row["currencies"] = tuple(row["currencies"] or ())
    return Totals(**row)


def _time_to_conversion(connection: duckdb.DuckDBPyConnection) -> dict[str, list[float]]:
    """Days from a conversion's first eligible touch to the conversion, per kind of outcome."""
    rows = fetch(connection, """
        WITH firsts AS (
            SELECT c.conversion_id, min(c.conversion_kind) AS kind, min(p.segment) AS segment,
                epoch(min(c.conversion_time) - min(c.touch_time)) / 86400.0 AS days
            FROM credits AS c JOIN policy_segments AS p USING (policy)
            WHERE c.touch_time IS NOT NULL
            GROUP BY c.conversion_id
        )
        SELECT CASE
                WHEN segment = 'b2c' THEN 'B2C purchases'
                WHEN kind = 'lead_created' THEN 'B2B leads'
                WHEN kind = 'opportunity_won' THEN 'B2B won deals'
            END AS series,
            list(days ORDER BY days) AS days
        FROM firsts
        WHERE segment = 'b2c' OR kind IN ('lead_created', 'opportunity_won')
        GROUP BY series ORDER BY series DESC""")
    return {r["series"]: list(r["days"]) for r in rows}


def bucket_counts(days: Sequence[float]) -> list[int]:
    """How many values fall in each of TIME_BUCKETS."""
    counts = [0] * len(TIME_BUCKETS)
    for value in days:
        index = next(i for i, (_, upper) in enumerate(TIME_BUCKETS) if value < upper)
        counts[index] += 1
    return counts


def load_report_data(root: Root) -> ReportData:
    with _connection(root) as connection:
        return ReportData(
            root=storage_for(root).url,
            policies=_policies(connection),
            totals=_totals(connection),
            b2c_kpis=fetch(connection, "SELECT * FROM b2c_kpis"),
            b2b_kpis=fetch(connection, "SELECT * FROM b2b_kpis"),
            comparison=fetch(connection, "SELECT * FROM model_comparison_by_channel"),
            ltv=fetch(connection, "SELECT * FROM customer_ltv"),
            time_to_conversion=_time_to_conversion(connection),
            versions=fetch(connection, """
                SELECT reason, count(DISTINCT (conversion_id, version)) AS versions,
                    count(DISTINCT conversion_id) AS conversions
                FROM credit_audit GROUP BY reason ORDER BY min(version), reason"""),
            changes=fetch(connection, "SELECT * FROM credit_changes"),
        )
