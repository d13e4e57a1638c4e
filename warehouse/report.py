"""The analyst report: one self-contained HTML file, and the headline KPIs the demo prints.

The page needs no network: charts are inline SVG (warehouse.report_svg), the CSS is inline,
there are no scripts, fonts or images to fetch. Everything shown is read from the analyst
views (warehouse.report_data), so the report and an analyst's SQL always agree.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from warehouse.report_data import (
    TIME_BUCKETS,
    PolicyInfo,
    ReportData,
    Row,
    bucket_counts,
    load_report_data,
)
from warehouse.report_svg import PALETTE, Series, column_chart, grouped_bars
from warehouse.storage import Root, display

__all__ = ["headline_kpis", "render_report", "write_report"]

SECTION_TITLES = {
    "revenue": "Credited revenue by channel, per model",
    "roas": "Return on ad spend by channel",
    "funnel": "B2B funnel by channel",
    "time": "Time to conversion",
    "comparison": "Model comparison against last touch",
    "ltv": "Customer lifetime value by first-touch channel",
    "audit": "Credit versions",
}

_NO_SPEND = "– (no spend)"
_FUNNEL_COLORS = ("#97bbf5", "#4269d0", "#1e3a8a")


# --- formatting -----------------------------------------------------------------------

def _money(value: float | None, currency: str) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    unit = f"{currency} " if currency and currency != "mixed" else ""
    return f"{unit}{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.2f}x"


def _percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:,.0f}" if value == int(value) else f"{value:,.{digits}f}"


def _signed_percent(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "new" if value is None else "–"
    return f"{value * 100:+.0f}%"


# --- headline KPIs ----------------------------------------------------------------------

def _top_channel(data: ReportData, policy: PolicyInfo) -> tuple[str, float, float] | None:
    """(channel, value, share of the total) under the policy's reference model."""
    model = policy.reference_model()
    values = _by_channel(data, policy, model)
    values.pop("(none)", None)
    total = sum(values.values())
    if not values or total <= 0:
        return None
    channel = min(values, key=lambda c: (-values[c], c))  # ties: alphabetical
    return channel, values[channel], values[channel] / total


def _kpis(data: ReportData) -> list[tuple[str, str]]:
    t, currency = data.totals, data.currency
    pairs = [
        ("B2C revenue", f"{_money(t.b2c_revenue, currency)} from {t.b2c_conversions:,} "
                        "conversions"),
        ("B2C ad spend", _money(t.b2c_cost, currency)),
        ("B2C ROAS, blended", _ratio(t.b2c_revenue / t.b2c_cost) if t.b2c_cost else _NO_SPEND),
        ("B2B closed-won revenue", f"{_money(t.b2b_won_revenue, currency)} from "
                                   f"{t.b2b_won_deals:,} deals"),
        ("B2B pipeline", f"{_money(t.b2b_pipeline, currency)} in {t.b2b_opportunities:,} "
                         "opportunities"),
        ("B2B leads", f"{t.b2b_leads:,} ({_percent(t.b2b_leads_won / t.b2b_leads)} became "
                      "customers)" if t.b2b_leads else "0"),
        ("B2B ROAS, blended",
         _ratio(t.b2b_won_revenue / t.b2b_cost) if t.b2b_cost else _NO_SPEND),
    ]
    for policy in data.policies:
        top = _top_channel(data, policy)
        what = "won revenue" if policy.segment == "b2b" else "revenue"
        label = f"Top channel, {policy.name} ({policy.reference_model()}, {what})"
        pairs.append((label, "–" if top is None else
                      f"{top[0]}: {_money(top[1], currency)} ({_percent(top[2], 0)})"))
    return pairs


def headline_kpis(root: Root) -> list[tuple[str, str]]:
    """Label/value pairs for the demo to print: revenue, ROAS, leads, top channels..."""
    return _kpis(load_report_data(root))


# --- data shaping -------------------------------------------------------------------------

def _value_column(policy: PolicyInfo) -> str:
    return "won_revenue" if policy.segment == "b2b" else "credited_revenue"


def _kpi_rows(data: ReportData, policy: PolicyInfo) -> list[Row]:
    rows = data.b2b_kpis if policy.segment == "b2b" else data.b2c_kpis
    return [r for r in rows if r["policy"] == policy.name]


def _by_channel(data: ReportData, policy: PolicyInfo, model: str,
                column: str | None = None) -> dict[str, float]:
    totals: dict[str, float] = {}
    column = column or _value_column(policy)
    for row in _kpi_rows(data, policy):
        if row["model"] == model:
            totals[row["channel"]] = totals.get(row["channel"], 0.0) + (row[column] or 0.0)
    return totals


def _channel_costs(data: ReportData, policy: PolicyInfo) -> dict[str, float]:
    """Cost per channel (the same under every model, so read from the first one)."""
    model = policy.models[0]
    costs: dict[str, float] = {}
    for row in _kpi_rows(data, policy):
        if row["model"] == model and row["cost"]:
            costs[row["channel"]] = costs.get(row["channel"], 0.0) + row["cost"]
    return costs


def _model_colors(data: ReportData) -> dict[str, str]:
    models = sorted({m for p in data.policies for m in p.models})
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _ordered_channels(values: dict[str, dict[str, float]], reference: str) -> list[str]:
    """Channels with any value, largest under the reference model first."""
    channels = {c for per_model in values.values() for c, v in per_model.items() if v}
    ref = values.get(reference, {})
    return sorted(channels, key=lambda c: (-ref.get(c, 0.0), c))


# --- sections -------------------------------------------------------------------------------

def _card(title: str, body: str, note: str = "", *, wide: bool = False) -> str:
    """A white box of the grid; ``wide`` ones span both columns (tables)."""
    note_html = f'<p class="note">{note}</p>' if note else ""
    css = "card wide" if wide else "card"
    return f'<div class="{css}"><h3>{escape(title)}</h3>{body}{note_html}</div>'


def _empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'


def _policy_label(policy: PolicyInfo) -> str:
    kind = "B2B, account journeys" if policy.segment == "b2b" else "B2C, person journeys"
    return f"{policy.name} ({kind}, {policy.conversions:,} conversions)"


def _side_by_side(data: ReportData) -> list[PolicyInfo]:
    """B2C and B2B policies interleaved, so the two-column grid pairs them up."""
    b2c, b2b = data.segment("b2c"), data.segment("b2b")
    ordered: list[PolicyInfo] = []
    for index in range(max(len(b2c), len(b2b))):
        ordered += b2c[index:index + 1] + b2b[index:index + 1]
    return ordered


def _revenue_section(data: ReportData, colors: dict[str, str]) -> str:
    cards = []
    for policy in _side_by_side(data):
        values = {m: _by_channel(data, policy, m) for m in policy.models}
        channels = _ordered_channels(values, policy.reference_model())
        what = "closed-won revenue" if policy.segment == "b2b" else "revenue"
        if not channels:
            cards.append(_card(_policy_label(policy), _empty(f"No credited {what}.")))
            continue
        series = [Series(m, [values[m].get(c, 0.0) for c in channels], colors[m])
                  for m in policy.models]
        chart = grouped_bars(channels, series, label=f"Credited {what} of {policy.name}")
        cards.append(_card(_policy_label(policy), chart,
                           f"Credited {what} ({escape(data.currency)}) per channel; "
                           "each bar is one model. Hover a bar for its value."))
    return "".join(cards)


def _roas_section(data: ReportData, colors: dict[str, str]) -> str:
    cards = []
    for policy in _side_by_side(data):
        costs = _channel_costs(data, policy)
        if not costs:
            cards.append(_card(_policy_label(policy), _empty(
                "No ad spend for this side of the business: import it with "
                "`attribution spend import`.")))
            continue
        values = {m: _by_channel(data, policy, m) for m in policy.models}
        channels = sorted(costs, key=lambda c: (-costs[c], c))
        series = [Series(m, [values[m].get(c, 0.0) / costs[c] for c in channels], colors[m])
                  for m in policy.models]
        what = "won revenue" if policy.segment == "b2b" else "credited revenue"
        labels = [f"{c} · {_money(costs[c], data.currency)}" for c in channels]
        chart = grouped_bars(labels, series, value_format=lambda v: f"{v:,.1f}x",
                             label=f"ROAS of {policy.name}", cap=_roas_cap(series, costs,
                                                                           channels))
        cards.append(_card(_policy_label(policy), chart,
                           f"ROAS = {what} / cost of the channel's "
                           f"{'B2B' if policy.segment == 'b2b' else 'B2C'} campaigns "
                           "(labels show the cost)."))
    main = next(iter(data.segment("b2c")), None)
    if main is not None:
        cards.append(_campaign_table(data, main))
    return "".join(cards)


def _roas_cap(series: Sequence[Series], costs: dict[str, float],
              channels: Sequence[str]) -> float | None:
    """Where to cut the ROAS axis: a channel with almost no spend has a huge, meaningless
    ROAS; scale to the channels with at least 5% of the spend (None: no such outlier)."""
    total = sum(costs.values())
    material = [i for i, c in enumerate(channels) if costs[c] >= 0.05 * total]
    top = max((s.values[i] for s in series for i in material), default=0.0)
    peak = max((v for s in series for v in s.values), default=0.0)
    return top * 1.15 if top > 0 and peak > 1.5 * top else None


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]],
           numeric_from: int = 1) -> str:
    head = "".join(f'<th class="{"num" if i >= numeric_from else ""}">{escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i >= numeric_from else ""}">{escape(cell)}</td>'
                         for i, cell in enumerate(row)) + "</tr>"
        for row in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _campaign_table(data: ReportData, policy: PolicyInfo) -> str:
    model = policy.reference_model()
    rows = [r for r in _kpi_rows(data, policy) if r["model"] == model
            and (r["cost"] or r["credited_revenue"] or r["sessions"])]
    rows.sort(key=lambda r: (-(r["cost"] or 0), -r["credited_revenue"], r["channel"]))
    currency = data.currency
    table = _table(
        ["Channel", "Campaign", "Sessions", "Impressions", "Clicks", "CTR", "Conversions",
         "Revenue", "Cost", "ROAS", "CPA"],
        ([r["channel"], r["campaign"] or "(untagged)", _number(r["sessions"]),
          _number(r["impressions"]), _number(r["clicks"]), _percent(r["ctr"], 2),
          _number(r["credited_conversions"]), _money(r["credited_revenue"], currency),
          _money(r["cost"], currency), _ratio(r["roas"]), _money(r["cpa"], currency)]
         for r in rows[:25]),
        numeric_from=2)
    return _card(f"B2C campaigns, {policy.name} policy, {model} model", table,
                 "From the b2c_kpis view; the 25 campaigns with the most spend, then revenue.",
                 wide=True)


def _funnel_section(data: ReportData) -> str:
    cards = []
    for policy in data.segment("b2b"):
        model = policy.reference_model()
        rows = sorted((r for r in _kpi_rows(data, policy) if r["model"] == model
                       and (r["leads"] or r["opportunities"] or r["won_deals"])),
                      key=lambda r: (-r["leads"], -r["won_revenue"], r["channel"]))
        if not rows:
            cards.append(_card(_policy_label(policy), _empty("No leads or deals.")))
            continue
        channels = [r["channel"] for r in rows]
        series = [Series(name, [r[column] for r in rows], color) for (name, column), color
                  in zip((("Leads", "leads"), ("Opportunities", "opportunities"),
                          ("Won deals", "won_deals")), _FUNNEL_COLORS, strict=True)]
        chart = grouped_bars(channels, series, value_format=lambda v: _number(v),
                             label=f"Funnel of {policy.name}")
        cards.append(_card(f"{_policy_label(policy)} · {model} model", chart,
                           "Leads, opportunities and won deals credited to each channel "
                           "(fractional credit)."))
        currency = data.currency
        table = _table(
            ["Channel", "Leads", "Lead→opp", "Lead→customer", "Pipeline", "Won revenue",
             "Days to close", "Touches / deal", "Contacts / deal", "Cost / lead", "ROAS"],
            ([r["channel"], _number(r["leads"]), _percent(r["lead_to_opportunity_rate"], 0),
              _percent(r["lead_to_customer_rate"], 0), _money(r["pipeline"], currency),
              _money(r["won_revenue"], currency), _number(r["avg_days_to_close"], 0),
              _number(r["avg_touches_per_won_deal"]), _number(r["avg_contacts_per_won_deal"]),
              _money(r["cost_per_lead"], currency), _ratio(r["roas"])] for r in rows))
        cards.append(_card(f"B2B KPIs, {policy.name} policy, {model} model", table,
                           "Rates are cohort rates: the share of a channel's credited leads "
                           "whose account later opened an opportunity / won a deal. Days, "
                           "touches and contacts are credit-weighted averages over won deals.",
                           wide=True))
    if not cards:
        return _card("B2B", _empty("No B2B (account-journey) policy has conversions."))
    return "".join(cards)


def _time_section(data: ReportData) -> str:
    series_days = data.time_to_conversion
    if not series_days:
        return _card("Days from first touch to conversion", _empty("No credited conversions."))
    colors = ("#4269d0", "#efb118", "#ff725c")
    series = []
    for (name, days), color in zip(series_days.items(), colors, strict=False):
        counts = bucket_counts(days)
        series.append(Series(f"{name} ({len(days):,})",
                             [c / len(days) for c in counts], color))
    chart = column_chart([b for b, _ in TIME_BUCKETS], series, width=1180, height=300,
                         value_format=lambda v: _percent(v, 0),
                         label="Time to conversion distribution",
                         axis_title="days from the first eligible touch to the conversion")
    medians = "; ".join(f"{escape(name)}: median {statistics.median(days):,.1f} days"
                        for name, days in series_days.items() if days)
    return _card("Days from first touch to conversion (share of each kind)", chart,
                 f"{medians}. The first eligible touch is the earliest touch inside the "
                 "policy's lookback window.")


def _heat(change: float, peak: float) -> str:
    if peak <= 0 or not math.isfinite(change):
        return ""
    strength = min(abs(change) / peak, 1.0) * 0.55
    rgb = "60, 169, 81" if change > 0 else "255, 114, 92"
    return f' style="background: rgba({rgb}, {strength:.2f})"'


def _breakable(identifier: str) -> str:
    """An escaped model name that may wrap after its underscores (narrow table headers)."""
    return escape(identifier).replace("_", "_<wbr>")


def _comparison_section(data: ReportData) -> str:
    cards = []
    for policy in _side_by_side(data):
        rows = [r for r in data.comparison if r["policy"] == policy.name]
        if not rows:
            continue
        cell = {(r["model"], r["channel"]): r for r in rows}
        baseline: dict[str, float] = {}
        for r in rows:
            baseline[r["channel"]] = max(baseline.get(r["channel"], 0.0), r["last_touch_value"])
        reference = policy.reference_model()
        channels = sorted({r["channel"] for r in rows},
                          key=lambda c: (-baseline.get(c, 0.0), c))
        peak = max((abs(r["value_change"]) for r in rows if r["model"] != "participation"),
                   default=0.0)
        head = "".join(f'<th class="num">{_breakable(m)}</th>' for m in policy.models)
        body = []
        for channel in channels:
            cells = []
            for model in policy.models:
                found = cell.get((model, channel))
                if found is None:
                    cells.append('<td class="num">–</td>')
                    continue
                pct = found["value_change_pct"] if found["last_touch_value"] else None
                moved = found["credited_value"] or found["last_touch_value"]
                change = _signed_percent(pct) if moved else ""
                heat = "" if model == "participation" else _heat(found["value_change"], peak)
                cells.append(f'<td class="num"{heat}>{_money(found["credited_value"], "")}'
                             f'<span class="delta">{escape(change)}</span></td>')
            body.append(f"<tr><td>{escape(channel)}</td>"
                        f'<td class="num base">{_money(baseline.get(channel, 0.0), "")}</td>'
                        + "".join(cells) + "</tr>")
        table = (f'<table class="heat"><thead><tr><th>Channel</th><th class="num">last touch'
                 f"</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
        cards.append(_card(_policy_label(policy), table,
                           f"Credited value ({escape(data.currency)}) per model and the change "
                           "against a last-touch baseline (100% to the latest eligible touch); "
                           f"green gains, red loses. Reference model: {escape(reference)}."))
    return "".join(cards) or _card("Models", _empty("No credits."))


def _ltv_section(data: ReportData) -> str:
    cards = []
    for segment, title in (("b2c", "B2C customers (persons)"), ("b2b", "B2B customers (accounts)")):
        rows = sorted((r for r in data.ltv if r["segment"] == segment),
                      key=lambda r: (-r["avg_lifetime_value"], r["first_touch_channel"]))
        if not rows:
            cards.append(_card(title, _empty("No customers yet.")))
            continue
        chart = grouped_bars(
            [f"{r['first_touch_channel']} ({r['customers']})" for r in rows],
            [Series("Average lifetime value", [r["avg_lifetime_value"] for r in rows],
                    "#6cc5b0")], label=f"{title} lifetime value")
        table = _table(
            ["First-touch channel", "Customers", "Lifetime value", "Median", "Orders / customer",
             "Days to first revenue"],
            ([r["first_touch_channel"], _number(r["customers"]),
              _money(r["lifetime_value"], data.currency),
              _money(r["median_lifetime_value"], data.currency),
              _number(r["avg_revenue_conversions"], 2),
              _number(r["avg_days_to_first_revenue"], 1)] for r in rows))
        cards.append(_card(title, chart + table,
                           "Average lifetime value by the channel of the customer's first touch "
                           "(number of customers in brackets)."))
    return "".join(cards)


def _audit_section(data: ReportData) -> str:
    versions = _table(["Reason", "Credit versions", "Conversions"],
                      ([r["reason"], _number(r["versions"]), _number(r["conversions"])]
                       for r in data.versions))
    reference = {p.name: p.reference_model() for p in data.policies}
    moved = [r for r in data.changes if reference.get(r["policy"]) == r["model"]
             and abs(r["value_change"]) > 1e-9]
    moved.sort(key=lambda r: (r["reason"], r["policy"], r["value_change"]))
    if moved:
        changes = _table(["Reason", "Policy · model", "Channel", "Conversions", "Value moved"],
                         ([r["reason"], f"{r['policy']} · {r['model']}", r["channel"],
                           _number(r["conversions"]), f"{r['value_change']:+,.0f}"]
                          for r in moved[:30]), numeric_from=3)
    else:
        changes = _empty("No conversion has been re-credited yet: every credit is version 1.")
    return (_card("Versions by reason", versions,
                  "Every re-credit writes a new version; nothing is overwritten. "
                  "See the credit_audit view.")
            + _card("Value moved between channels by re-credits (reference models)", changes))


_CSS = """
:root { --ink: #1f2430; --muted: #5f6b7a; --line: #e3e7ee; --bg: #f5f7fa; --card: #fff;
        --accent: #4269d0; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       sans-serif; }
header { background: linear-gradient(120deg, #1e3a8a, #4269d0); color: #fff;
         padding: 28px 40px 24px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header p { margin: 0; opacity: 0.85; }
main { max-width: 1320px; margin: 0 auto; padding: 20px 32px 40px; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(230px, 1fr)); gap: 12px;
        margin: -38px 0 8px; }
.kpi { background: var(--card); border-radius: 10px; padding: 12px 16px;
       box-shadow: 0 1px 3px rgba(20, 30, 60, 0.12); }
.kpi .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
              letter-spacing: 0.04em; }
.kpi .value { font-size: 17px; font-weight: 600; margin-top: 2px; }
section { margin-top: 28px; }
section > h2 { font-size: 19px; margin: 0 0 4px; }
section > p.lead { margin: 0 0 12px; color: var(--muted); max-width: 980px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(600px, 1fr)); gap: 16px;
        align-items: start; }
.card { background: var(--card); border-radius: 10px; padding: 14px 18px 12px;
        box-shadow: 0 1px 3px rgba(20, 30, 60, 0.1); overflow-x: auto; }
.card.wide, .grid > .card:only-child { grid-column: 1 / -1; }
.card h3 { font-size: 14px; margin: 0 0 10px; font-weight: 600; }
.note { color: var(--muted); font-size: 12px; margin: 8px 0 0; }
.empty { color: var(--muted); font-style: italic; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg text { fill: var(--ink); font-size: 12px; }
svg text.tick, svg text.small { fill: var(--muted); font-size: 11px; }
svg text.value { fill: var(--muted); font-size: 11px; }
svg text.legend { font-size: 12px; }
svg line.grid { stroke: var(--line); }
svg line.axis { stroke: #9aa4b2; }
svg path.break { stroke: #fff; stroke-width: 2.5; fill: none; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; margin-top: 4px;
        font-variant-numeric: tabular-nums; }
th, td { padding: 5px 8px; border-bottom: 1px solid var(--line); text-align: left;
         white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: 11.5px; white-space: normal;
     vertical-align: bottom; }
td.num, th.num { text-align: right; }
table.heat td.base { color: var(--muted); background: #f7f8fb; }
table.heat .delta { display: block; font-size: 11px; color: var(--muted); }
footer { color: var(--muted); font-size: 12px; max-width: 1320px; margin: 0 auto;
         padding: 0 32px 32px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px;
       background: #eef1f6; padding: 1px 4px; border-radius: 4px; }
"""


def _section(key: str, lead: str, body: str, grid: bool = True) -> str:
    inner = f'<div class="grid">{body}</div>' if grid else body
    return (f'<section id="{key}"><h2>{escape(SECTION_TITLES[key])}</h2>'
            f'<p class="lead">{lead}</p>{inner}</section>')


def render_report(data: ReportData, generated: datetime | None = None) -> str:
    """The whole report as one HTML string."""
    generated = generated or datetime.now(UTC)
    name = _short_name(data.root)
    colors = _model_colors(data)
    t = data.totals
    period = (f"{t.first_conversion:%Y-%m-%d} to {t.last_conversion:%Y-%m-%d}"
              if t.first_conversion and t.last_conversion else "no conversions yet")
    kpis = "".join(f'<div class="kpi"><div class="label">{escape(label)}</div>'
                   f'<div class="value">{escape(value)}</div></div>'
                   for label, value in _kpis(data))
    sections: list[tuple[str, str, str]] = [
        ("revenue", "Who earns the sales: each policy's conversions credited to channels under "
                    "every model of the policy. B2C policies on the left, B2B on the right.",
         _revenue_section(data, colors)),
        ("roas", "Credited revenue per unit of ad spend, for channels with imported spend "
                 "(<code>attribution spend import</code>).", _roas_section(data, colors)),
        ("funnel", "Leads, opportunities and closed-won deals credited to the channels of the "
                   "whole account (every contact's touches).", _funnel_section(data)),
        ("time", "How long journeys take: B2C purchases within days, B2B deals over months.",
         _time_section(data)),
        ("comparison", "The same conversions under every model of their policy, next to a "
                       "last-touch baseline: what each model moves between channels.",
         _comparison_section(data)),
        ("ltv", "Lifetime value of customers by the channel that first brought them: purchases "
                "of a person (B2C), won deals and renewals of an account (B2B).",
         _ltv_section(data)),
        ("audit", "Credits are versioned: late touches, identity merges and re-attribution "
                  "write new versions; every view above shows the latest.", _audit_section(data)),
    ]
    body = "".join(_section(key, lead, html) for key, lead, html in sections)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Attribution report</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>Attribution report</h1>
<p>Conversions {escape(period)} · {t.touches:,} touches · warehouse {escape(name)}
 · generated {generated:%Y-%m-%d %H:%M} UTC</p>
</header>
<main>
<div class="kpis">{kpis}</div>
{body}
</main>
<footer>Every number comes from the warehouse views: <code>b2c_kpis</code>,
<code>b2b_kpis</code>, <code>model_comparison</code>, <code>customer_ltv</code>,
<code>credit_audit</code>... Explore them with
<code>attribution sql --warehouse {escape(display(data.root))} "SELECT * FROM b2c_kpis"</code>.
</footer>
</body>
</html>
"""


def _short_name(root: Root) -> str:
    """The warehouse's last path component (its directory or prefix name)."""
    return display(root).rstrip("/").rsplit("/", 1)[-1]


def write_report(root: Root, out: Path) -> Path:
    """Write the report of the warehouse at ``root`` to ``out`` (atomically); returns ``out``."""
    html = render_report(load_report_data(root))
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = out.with_name(f".{out.name}.tmp")
    temp.write_text(html, encoding="utf-8")
    temp.replace(out)
    return out

