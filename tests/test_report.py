"""The HTML report and the headline KPIs, on the hand-built warehouse of test_views_kpis.

The report is rendered by a real headless Chromium: its DOM text must show every section
and channel, and its screenshot must be a real picture. Without Chromium these tests skip
locally (with the reason) and fail on CI (CI=true), where it must be installed.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.main import app
from tests.test_views_kpis import build_kpi_warehouse
from warehouse.landing import ensure_layout
from warehouse.layout import landed
from warehouse.report import SECTION_TITLES, headline_kpis, render_report, write_report
from warehouse.report_data import bucket_counts, load_report_data
from warehouse.report_svg import Series, column_chart, compact, grouped_bars, nice_ticks

CHANNELS = ("Paid Social", "Email", "Organic Search", "Sales Meeting", "Display")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_kpi_warehouse(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def report(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(warehouse, tmp_path_factory.mktemp("out") / "report.html")


def test_headline_kpis(warehouse: Path) -> None:
    assert headline_kpis(warehouse) == [
        ("B2C revenue", "USD 6,180 from 4 conversions"),  # c1 + c2 + c3 + c4
        ("B2C ad spend", "USD 85"),  # fb_a 50 + news 5 + disp 30; li_x is B2B
        ("B2C ROAS, blended", "72.71x"),  # all B2C revenue / B2C spend
        ("B2B closed-won revenue", "USD 800 from 1 deals"),
        ("B2B pipeline", "USD 1,000 in 1 opportunities"),
        ("B2B leads", "2 (50.0% became customers)"),
        ("B2B ROAS, blended", "4.00x"),
        # linear: fb_a 110 of the 160 credited to channels (c4 had no touch)
        ("Top channel, b2c (linear, revenue)", "Paid Social: USD 110 (69%)"),
        ("Top channel, considered (last_touch, revenue)", "Email: USD 6,000 (100%)"),
        # a three-way tie of 800/3 goes to the first channel alphabetically
        ("Top channel, b2b (linear, won revenue)", "Organic Search: USD 267 (33%)"),
    ]


def test_report_is_self_contained(report: Path) -> None:
    html = report.read_text(encoding="utf-8")
    assert not re.search(r"https?://", html), "nothing may be fetched from the network"
    assert not re.search(r"<(script|link|img|iframe|object)\b|\bsrc=|@import|url\(", html)
    for title in SECTION_TITLES.values():
        assert title in html
    assert html.count("<svg") >= 8
    campaigns = html.split("<h3>B2C campaigns")[1].split("</table>")[0]
    assert "fb_a" in campaigns and "li_x" not in campaigns  # li_x is a B2B campaign


def test_a_copied_warehouse_reports_its_own_files(warehouse: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(warehouse, copy)
    for info in landed(copy, "spend"):  # the copy's views must not read the original's
        (copy / info.key).unlink()
    assert dict(headline_kpis(copy))["B2C ad spend"] == "USD 0"
    assert dict(headline_kpis(warehouse))["B2C ad spend"] == "USD 85"


def test_report_of_an_empty_warehouse(tmp_path: Path) -> None:
    ensure_layout(tmp_path)
    html = render_report(load_report_data(tmp_path), datetime(2024, 1, 1, tzinfo=UTC))
    assert "no conversions yet" in html and "No customers yet." in html


def test_report_command(warehouse: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    result = CliRunner().invoke(app, ["report", "--warehouse", str(warehouse), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("<!DOCTYPE html>")
    result = CliRunner().invoke(app, ["kpis", "--warehouse", str(warehouse)])
    assert result.exit_code == 0 and "72.71x" in result.output
    result = CliRunner().invoke(app, ["report", "--warehouse", str(tmp_path / "missing")])
    assert result.exit_code == 1


def test_chart_helpers() -> None:
    assert nice_ticks(17) == [0, 5, 10, 15, 20]
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(1000) == [0, 250, 500, 750, 1000]
    assert [compact(v) for v in (0, 7, 0.25, 950, 1500, 2_000_000)] == [
        "0", "7", "0.25", "950", "1.5k", "2M"]
    assert bucket_counts([0.2, 0.9, 1.0, 400, 40]) == [2, 1, 0, 0, 0, 1, 0, 0, 0, 1]


@settings(deadline=None)
@given(st.floats(min_value=1e-11, max_value=1e15))
def test_nice_ticks_cover_the_top_in_equal_steps(top: float) -> None:
    ticks = nice_ticks(top)
    assert ticks[0] == 0 and ticks[1] > 0 and 2 <= len(ticks) <= 7
    assert ticks[-1] >= top * (1 - 1e-9) and ticks[-2] < top  # no tick more than needed
    assert {round((b - a) / ticks[1], 6) for a, b in itertools.pairwise(ticks)} == {1.0}


@settings(deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e4)))
def test_every_duration_falls_in_one_bucket(days: list[float]) -> None:
    assert sum(bucket_counts(days)) == len(days)


labels = st.text(min_size=1, max_size=20)
values = st.floats(min_value=0, max_value=1e9) | st.just(float("nan"))


@settings(deadline=None)
@given(st.data(), st.lists(labels, min_size=1, max_size=6), st.lists(labels, min_size=1,
                                                                      max_size=4))
def test_charts_are_well_formed_svg(data: st.DataObject, categories: list[str],
                                    names: list[str]) -> None:
    series = [Series(name, data.draw(st.lists(values, min_size=len(categories),
                                              max_size=len(categories))), "#123456")
              for name in names]
    cap = data.draw(st.none() | st.floats(min_value=1, max_value=1e6))
    for svg in (grouped_bars(categories, series, cap=cap), column_chart(categories, series)):
        root = ElementTree.fromstring(svg)  # raises on broken markup or escaping
        bars = [r for r in root.iter("rect") if r.find("title") is not None]
        assert len(bars) == len(categories) * len(names)
        assert all(float(r.get("width", "0")) >= 0 and float(r.get("height", "0")) >= 0
                   for r in bars)


# --- headless Chromium ----------------------------------------------------------------------

def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail("chromium is required on CI: apt-get install -y --no-install-recommends "
                    "chromium")
    pytest.skip("chromium is not installed (apt-get install chromium); the report is not "
                "rendered")


def _run_chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def _png_size_and_colours(png: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values of the pixel data) without an imaging library."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    data, position = b"", 8
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        if kind == b"IDAT":
            data += png[position + 8:position + 8 + length]
        position += 12 + length
    return width, height, len(set(zlib.decompress(data)))


def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    url = report.resolve().as_uri()
    dom = _run_chromium(tmp_path / "profile", "--dump-dom", url).stdout
    text = re.sub(r"<[^>]+>", " ", dom)
    for title in SECTION_TITLES.values():
        assert title in text
    for channel in CHANNELS:
        assert channel in text
    assert "USD 6,180 from 4 conversions" in text and "w_shaped" not in text
    png = tmp_path / "report.png"
    _run_chromium(tmp_path / "profile", f"--screenshot={png}", "--window-size=1400,2400",
                  "--hide-scrollbars", url)
    width, height, colours = _png_size_and_colours(png.read_bytes())
    assert (width, height) == (1400, 2400)
    assert png.stat().st_size > 50_000 and colours > 100  # charts, not a blank page
