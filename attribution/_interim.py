"""A per-row stand-in for the vectorised wire validation being built in parallel (same
interface); replaced when it lands."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from schemas.wire import EventRejected, parse_event

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

WIRE_COLUMNS = {
    "type": pl.Utf8, "message_id": pl.Utf8, "anonymous_id": pl.Utf8, "user_id": pl.Utf8,
    "group_id": pl.Utf8, "previous_id": pl.Utf8, "event": pl.Utf8, "name": pl.Utf8,
    "time_us": pl.Int64, "campaign_source": pl.Utf8, "campaign_medium": pl.Utf8,
    "campaign_name": pl.Utf8, "page_url": pl.Utf8, "page_referrer": pl.Utf8,
    "prop_url": pl.Utf8, "prop_referrer": pl.Utf8, "prop_utm_source": pl.Utf8,
    "prop_utm_medium": pl.Utf8, "prop_utm_campaign": pl.Utf8, "prop_channel": pl.Utf8,
    "source": pl.Utf8,
}


@dataclass
class WireBatch:
    columns: pl.DataFrame
    index: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def validate_batch(raws: Sequence[Any], now_us: int | None = None) -> WireBatch:
    now = None if now_us is None else _EPOCH + timedelta(microseconds=now_us)
    rows: dict[str, list[Any]] = {name: [] for name in WIRE_COLUMNS}
    batch = WireBatch(pl.DataFrame())
    for i, raw in enumerate(raws):
        try:
            event, when = parse_event(raw, now)
        except EventRejected as exc:
            batch.rejected.append((i, str(exc) or "invalid event"))
            continue
        except Exception as exc:
            batch.rejected.append((i, f"event could not be processed: {exc!r}"))
            continue
        batch.index.append(i)
        campaign, page, props = event.context.campaign, event.context.page, event.properties
        values = {
            "type": event.type, "message_id": event.message_id,
            "anonymous_id": event.anonymous_id, "user_id": event.user_id,
            "group_id": event.group_id, "previous_id": event.previous_id,
            "event": event.event, "name": event.name,
            "time_us": (when - _EPOCH) // timedelta(microseconds=1),
            "campaign_source": campaign.source if campaign else None,
            "campaign_medium": campaign.medium if campaign else None,
            "campaign_name": campaign.name if campaign else None,
            "page_url": page.url if page else None,
            "page_referrer": page.referrer if page else None,
            "prop_url": _str(props.get("url")), "prop_referrer": _str(props.get("referrer")),
            "prop_utm_source": _str(props.get("utm_source")),
            "prop_utm_medium": _str(props.get("utm_medium")),
            "prop_utm_campaign": _str(props.get("utm_campaign")),
            "prop_channel": _str(props.get("channel")),
            "source": raw.get("source") if isinstance(raw.get("source"), str) else None,
        }
        for name, value in values.items():
            rows[name].append(value)
    batch.columns = pl.DataFrame(rows, schema=WIRE_COLUMNS)
    return batch
