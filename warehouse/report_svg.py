"""Inline SVG charts for the HTML report: plain strings, no plotting library, no network.

Every chart is a self-contained ``<svg>`` element sized in CSS pixels, with a ``<title>`` on
each bar so hovering shows the exact value. Styling (fonts, colours of text and grid) comes
from the report's CSS classes, bar colours from the palette given by the caller.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape as _escape_html

PALETTE = ("#4269d0", "#efb118", "#ff725c", "#6cc5b0", "#3ca951", "#ff8ab7", "#a463f2",
           "#97bbf5", "#9c6b4e", "#9498a0")
"""Observable's 10-colour categorical palette (distinct for the common colour blindnesses)."""

Format = Callable[[float], str]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """Text for SVG markup: HTML-escaped, control characters (not allowed in XML) dropped."""
    return _escape_html(_CONTROL.sub("", text))


_CHAR_WIDTH = 6.6  # average width of a 12px sans-serif character, for label layout
_BAR = 10
_BAR_GAP = 2
_GROUP_GAP = 12
_LEGEND_ROW = 22


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    color: str


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (about ``count`` of them)."""
    if not 1e-12 < top < math.inf:  # nothing (or next to nothing) to show: a unit axis
        return [0.0, 1.0]
    raw = top / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next((m * magnitude for m in (1, 2, 2.5, 5) if m * magnitude >= raw),
                10 * magnitude)
    steps = max(math.ceil(top / step * (1 - 1e-12)), 1)
    # 12 significant digits: 0.1 + 0.2 shows as 0.3, whatever the magnitude
    return [float(f"{i * step:.12g}") for i in range(steps + 1)]


def compact(value: float) -> str:
    """12 -> '12', 12345 -> '12.3k', 2500000 -> '2.5M' (axis ticks and bar labels)."""
    if not math.isfinite(value):
        return "–"
    size = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            text = f"{value / limit:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    if size >= 10 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.2g}"


def _text_width(text: str) -> float:
    return len(text) * _CHAR_WIDTH


def _legend(series: Sequence[Series], x: float, y: float, width: float) -> tuple[str, float]:
    """Legend items wrapped into rows; returns the SVG and the height it takes."""
    parts: list[str] = []
    cx, cy = x, y
    for item in series:
        item_width = 18 + _text_width(item.name) + 16
        if cx + item_width > x + width and cx > x:
            cx, cy = x, cy + _LEGEND_ROW
        parts.append(f'<rect x="{cx:.1f}" y="{cy:.1f}" width="12" height="12" rx="2" '
                     f'fill="{item.color}"/>')
        parts.append(f'<text class="legend" x="{cx + 17:.1f}" y="{cy + 10.5:.1f}">'
                     f"{escape(item.name)}</text>")
        cx += item_width
    return "".join(parts), cy - y + _LEGEND_ROW


def grouped_bars(categories: Sequence[str], series: Sequence[Series], *,
                 value_format: Format = compact, width: int = 600,
                 show_values: bool | None = None, label: str = "",
                 cap: float | None = None) -> str:
    """Horizontal grouped bars: one group per category (row), one bar per series.

    Values must be >= 0 (negative ones are drawn as 0). ``show_values`` writes each value at
    the end of its bar (default: when there are at most three series). Bars longer than
    ``cap`` end at the axis with a break mark and their value written out, so one outlier
    does not flatten every other bar.
    """
    if show_values is None:
        show_values = len(series) <= 3
    label_width = min(max((_text_width(c) for c in categories), default=0) + 12, 190)
    peak = max((v for s in series for v in s.values if math.isfinite(v)), default=0.0)
    clipped = cap is not None and peak > cap
    ticks = nice_ticks(cap if clipped and cap is not None else peak)
    # room for the value labels and for the last tick label, centred on the plot's end
    right = max(60 if show_values or clipped else 0,
                _text_width(value_format(ticks[-1])) / 2 + 6)
    plot_x, plot_width = label_width, width - label_width - right
    legend, legend_height = _legend(series, plot_x, 4, plot_width)
    top = legend_height + 22  # room for the tick labels above the plot
    group_height = len(series) * (_BAR + _BAR_GAP) - _BAR_GAP
    height = top + len(categories) * (group_height + _GROUP_GAP) + 4
    scale = plot_width / ticks[-1]
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" '
             f'height="{height:.0f}" viewBox="0 0 {width} {height:.0f}">', legend]
    for tick in ticks:
        x = plot_x + tick * scale
        parts.append(f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{top - 4}" '
                     f'y2="{height - 4:.0f}"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{top - 8}" text-anchor="middle">'
                     f"{escape(value_format(tick))}</text>")
    for row, category in enumerate(categories):
        y0 = top + row * (group_height + _GROUP_GAP) + _GROUP_GAP / 2
        parts.append(f'<text class="category" x="{plot_x - 8:.1f}" '
                     f'y="{y0 + group_height / 2 + 4:.1f}" text-anchor="end">'
                     f"{escape(category)}</text>")
        for index, item in enumerate(series):
            value = item.values[row]
            shown = max(value, 0.0) if math.isfinite(value) else 0.0
            beyond = shown > ticks[-1]
            shown = min(shown, ticks[-1])
            y = y0 + index * (_BAR + _BAR_GAP)
            parts.append(
                f'<rect x="{plot_x:.1f}" y="{y:.1f}" width="{max(shown * scale, 0.5):.1f}" '
                f'height="{_BAR}" rx="1.5" fill="{item.color}"><title>'
                f"{escape(category)} · {escape(item.name)}: {escape(value_format(value))}"
                f"</title></rect>")
            if beyond:  # a break mark: the bar goes on beyond the axis
                end = plot_x + plot_width
                parts.append(f'<path class="break" d="M{end - 9:.1f},{y + _BAR + 1:.1f} '
                             f'l4,{-_BAR - 2} M{end - 5:.1f},{y + _BAR + 1:.1f} '
                             f'l4,{-_BAR - 2}"/>')
            if (show_values and value) or beyond:
                parts.append(f'<text class="value" x="{plot_x + shown * scale + 4:.1f}" '
                             f'y="{y + _BAR - 1:.1f}">{escape(value_format(value))}</text>')
    parts.append(f'<line class="axis" x1="{plot_x:.1f}" x2="{plot_x:.1f}" y1="{top - 4}" '
                 f'y2="{height - 4:.0f}"/>')
    parts.append("</svg>")
    return "".join(parts)


def column_chart(categories: Sequence[str], series: Sequence[Series], *,
                 value_format: Format = compact, width: int = 600, height: int = 280,
                 label: str = "", axis_title: str = "") -> str:
    """Vertical grouped columns (a histogram when categories are buckets), value labels on top."""
    left, right, bottom = 44, 8, 40
    legend, legend_height = _legend(series, left, 4, width - left - right)
    top = legend_height + 14
    plot_height = height - top - bottom
    plot_width = width - left - right
    peak = max((v for s in series for v in s.values if math.isfinite(v)), default=0.0)
    ticks = nice_ticks(peak * 1.08)
    scale = plot_height / ticks[-1]
    slot = plot_width / max(len(categories), 1)
    bar = min((slot - 10) / max(len(series), 1), 26)
    parts = [f'<svg class="chart" role="img" aria-label="{escape(label)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}">', legend]
    base = top + plot_height
    for tick in ticks:
        y = base - tick * scale
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f"{escape(value_format(tick))}</text>")
    for column, category in enumerate(categories):
        x0 = left + column * slot + (slot - bar * len(series)) / 2
        for index, item in enumerate(series):
            value = item.values[column]
            shown = max(value, 0.0) if math.isfinite(value) else 0.0
            x = x0 + index * bar
            h = shown * scale
            parts.append(f'<rect x="{x + 1:.1f}" y="{base - h:.1f}" width="{bar - 2:.1f}" '
                         f'height="{h:.1f}" rx="1.5" fill="{item.color}"><title>'
                         f"{escape(category)} · {escape(item.name)}: "
                         f"{escape(value_format(value))}</title></rect>")
            if shown > 0:
                parts.append(f'<text class="value small" x="{x + bar / 2:.1f}" '
                             f'y="{base - h - 3:.1f}" text-anchor="middle">'
                             f"{escape(value_format(value))}</text>")
        parts.append(f'<text class="category" x="{left + (column + 0.5) * slot:.1f}" '
                     f'y="{base + 16:.1f}" text-anchor="middle">{escape(category)}</text>')
    parts.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{base:.1f}" '
                 f'y2="{base:.1f}"/>')
    if axis_title:
        parts.append(f'<text class="tick" x="{left + plot_width / 2:.1f}" y="{height - 4}" '
                     f'text-anchor="middle">{escape(axis_title)}</text>')
    parts.append("</svg>")
    return "".join(parts)
