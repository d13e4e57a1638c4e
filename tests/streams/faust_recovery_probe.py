"""Run in a fresh process (the Faust patch is process-wide): the counting app of
test_faust_smoke fills its table on the given broker, restarts, and prints the recovered
table as JSON. argv: broker URL, app id, patch mode ("none", "recovery" = the patch
without the shorter fetch wait, "all")."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import orjson

from streams.broker import patch_faust_for_tansu
from tests.streams.test_faust_smoke import (
    EXPECTED_COUNTS,
    INPUT,
    declare_app_topics,
    make_counting_app,
    read_topic,
    send_envelopes,
)

WAIT_S = 60.0


async def fill_restart_recover(url: str, app_id: str) -> dict[str, Any]:
    bootstrap = url.removeprefix("kafka://")
    await declare_app_topics(bootstrap, app_id)
    await send_envelopes(bootstrap, f"{app_id}-in", INPUT)
    app, _counts = make_counting_app(app_id, url)
    await app.start()
    try:
        await read_topic(bootstrap, f"{app_id}-out", len(EXPECTED_COUNTS) + 2)
    finally:
        await app.stop()
    restarted, recovered = make_counting_app(app_id, url)
    await restarted.start()
    try:
        tables: Any = restarted.tables
        await asyncio.wait_for(tables.recovery.completed.wait(), WAIT_S)
        return dict(recovered.items())
    finally:
        await restarted.stop()


if __name__ == "__main__":
    broker_url, name, mode = sys.argv[1:4]
    if mode == "all":
        patch_faust_for_tansu()
    elif mode == "recovery":
        patch_faust_for_tansu(fetch_max_wait_ms=None)
    print(orjson.dumps(asyncio.run(fill_restart_recover(broker_url, name))).decode())
