"""Spend through Kafka: `attribution spend import --broker` on the real pipeline.

The rows go onto the stream's landing topic; the worker's sink agent lands them like any
other table's rows, and a corrected import replaces the numbers per (date, channel, campaign).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.analysts import spend_app
from streams.broker import EmbeddedBroker
from tests.streams.pipeline import Pipeline

HEADER = "date,channel,campaign,cost,currency,impressions,clicks\n"


@pytest.fixture
def pipeline(broker: EmbeddedBroker, unique_name: str, tmp_path: Path) -> Iterator[Pipeline]:
    running = Pipeline(broker.bootstrap, unique_name, tmp_path)
    yield running
    running.close()


def import_through_stream(pipeline: Pipeline, csv_text: str) -> str:
    file = pipeline.root / "spend.csv"
    file.write_text(csv_text)
    result = CliRunner().invoke(spend_app, [
        "import", str(file), "--broker", pipeline.bootstrap,
        "--config", str(pipeline.root / "config.toml")])
    pipeline.wait()
    return result.output


def test_spend_import_through_the_stream_lands_and_replaces(pipeline: Pipeline) -> None:
    pipeline.workers.start(1)
    output = import_through_stream(pipeline, HEADER + "".join(
        f"2024-03-{d:02d},Paid Social,fb_{c},{d}.5,USD,{100 * d},{d}\n"
        for d in range(1, 11) for c in "abc") + "2024-03-01,Email,news,oops,USD,1,1\n")
    assert f"sent 30 spend rows (1 rejected) to {pipeline.name}.landing" in output
    assert pipeline.query("SELECT count(*), sum(cost), sum(impressions) FROM spend") == [
        (30, 3 * sum(d + 0.5 for d in range(1, 11)), 3 * 100 * 55)]
    assert pipeline.query("SELECT source, position, reason FROM rejected") == [
        ("spend:spend.csv", "line 32", "cost 'oops' is not a number")]
    import_through_stream(pipeline, HEADER + "2024-03-02,Paid Social,fb_b,99,USD,1000,7\n")
    assert pipeline.query("SELECT cost, impressions, clicks FROM spend WHERE date = "
                          "'2024-03-02' AND campaign = 'fb_b'") == [(99.0, 1000, 7)]
    assert pipeline.query("SELECT count(*) FROM spend") == [(30,)]
    assert pipeline.query("SELECT min(date), max(date) FROM spend") == [
        (date(2024, 3, 1), date(2024, 3, 10))]
