"""Official SDKs -> collector -> Kafka -> stream workers -> warehouse views.

One pipeline (a worker process on the session's Tansu) and one collector serve the whole
module; each test uses its own ids and reads back only its own rows.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from attribution.defaults import load_config
from streams.broker import EmbeddedBroker
from streams.collector import CollectorSettings, RunningCollector, producer_for, start
from tests.streams.pipeline import Pipeline
from warehouse.query import run_query
from warehouse.views import create_views

pytestmark = pytest.mark.asyncio(loop_scope="session")

SEGMENT_KEY = "wk-segment"
RUDDER_KEY = "wk-rudder"
B2C_MODELS = sorted(load_config().policies["b2c"].models)


@dataclass(frozen=True)
class Landed:
    touches: list[tuple[Any, ...]]  # (event_id, channel, source, medium, campaign)
    conversions: list[tuple[Any, ...]]  # (conversion_id, kind, value, currency, journey_key)
    credits: list[tuple[Any, ...]]  # (model, touch_event_id, channel, credit, credited_value)


def landed(warehouse: Path, anonymous_id: str, order_id: str) -> Landed:
    """What the warehouse views hold for one visitor and one order (ids are test literals)."""
    create_views(warehouse)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        return run_query(warehouse, sql)[1]

    conversion = f"purchase:{order_id}"
    return Landed(
        touches=rows("SELECT event_id, channel, source, medium, campaign FROM touchpoints "
                     f"WHERE anonymous_id = '{anonymous_id}' ORDER BY time"),
        conversions=rows("SELECT conversion_id, kind, value, currency, journey_key "
                         f"FROM conversions WHERE conversion_id = '{conversion}'"),
        credits=rows("SELECT model, touch_event_id, channel, round(credit, 9), "
                     f"round(credited_value, 6) FROM credits WHERE conversion_id = '{conversion}' "
                     "ORDER BY model"),
    )


def assert_credited_journey(result: Landed, *, channel: str, campaign: str | None,
                            order_id: str, value: float, currency: str, person: str) -> None:
    """One touch with the channel; the order is a conversion of the identified person,
    credited in full to that touch under every B2C model."""
    assert len(result.touches) == 1, result.touches
    touch_id, touch_channel, _source, _medium, touch_campaign = result.touches[0]
    assert (touch_channel, touch_campaign) == (channel, campaign)
    assert result.conversions == [(f"purchase:{order_id}", "purchase", value, currency,
                                   f"person:{person}")]
    assert result.credits == [(model, touch_id, channel, 1.0, value) for model in B2C_MODELS]


@pytest.fixture(scope="module")
def pipeline(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Pipeline]:
    name = f"collector-e2e-{uuid.uuid4().hex[:8]}"
    running = Pipeline(broker.bootstrap, name, tmp_path_factory.mktemp("collector-e2e"))
    running.workers.start(1)  # joins the group while the first test sends
    yield running
    running.close()


@pytest.fixture(scope="module")
async def collector(pipeline: Pipeline) -> AsyncIterator[RunningCollector]:
    settings = CollectorSettings(
        port=0, bootstrap=pipeline.bootstrap, topic=pipeline.settings.topic("events"),
        write_keys={SEGMENT_KEY: "web", RUDDER_KEY: "server"}, email_secret="e2e-email-secret-0123",
    )
    producer = producer_for(settings)
    await producer.start()
    running = await start(settings, producer)
    yield running
    await running.stop()
    await producer.stop()


def shop_journey(client: Any, anonymous_id: str, user_id: str, order_id: str,
                 campaign: dict[str, str]) -> None:
    """What a shop backend sends: a landing from a campaign, a sign-up, an order."""
    client.page(anonymous_id=anonymous_id, name="Landing", context={"campaign": campaign},
                properties={"url": "https://shop.example/landing"})
    client.identify(user_id=user_id, anonymous_id=anonymous_id,
                    traits={"email": f"{user_id}@example.com"})
    client.track(user_id=user_id, anonymous_id=anonymous_id, event="Order Completed",
                 properties={"order_id": order_id, "revenue": 42.5, "currency": "EUR"})


def send_with(client: Any, anonymous_id: str, user_id: str, order_id: str,
              campaign: dict[str, str]) -> None:
    shop_journey(client, anonymous_id, user_id, order_id, campaign)
    client.flush()
    client.shutdown()


async def test_segment_sdk_journey_lands_as_a_credited_conversion(
    collector: RunningCollector, pipeline: Pipeline
) -> None:
    segment = pytest.importorskip("segment.analytics")
    errors: list[Exception] = []
    client = segment.Client(write_key=SEGMENT_KEY, host=collector.url, gzip=True, max_retries=1,
                            upload_interval=0.05, on_error=lambda e, _b: errors.append(e))
    campaign = {"source": "newsletter", "medium": "email", "name": "spring"}
    await asyncio.to_thread(send_with, client, "seg-visitor", "seg-user", "seg-o-1",
                            campaign=campaign)
    assert errors == []
    await asyncio.to_thread(pipeline.wait)
    assert_credited_journey(landed(pipeline.warehouse, "seg-visitor", "seg-o-1"),
                            channel="Email", campaign="spring", order_id="seg-o-1", value=42.5,
                            currency="EUR", person="seg-user")


async def test_rudder_sdk_journey_lands_as_a_credited_conversion(
    collector: RunningCollector, pipeline: Pipeline
) -> None:
    rudder = pytest.importorskip("rudderstack.analytics")
    errors: list[Exception] = []
    client = rudder.Client(write_key=RUDDER_KEY, host=collector.url, max_retries=1,
                           upload_interval=0.05, on_error=lambda e, _b: errors.append(e))
    campaign = {"source": "facebook", "medium": "paid_social", "name": "summer"}
    await asyncio.to_thread(send_with, client, "rudder-visitor", "rudder-user", "rudder-o-1",
                            campaign=campaign)
    assert errors == []
    await asyncio.to_thread(pipeline.wait)
    assert_credited_journey(landed(pipeline.warehouse, "rudder-visitor", "rudder-o-1"),
                            channel="Paid Social", campaign="summer", order_id="rudder-o-1",
                            value=42.5, currency="EUR", person="rudder-user")
