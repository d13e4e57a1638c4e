"""Run a stream worker, and tell when everything produced so far has landed."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from pathlib import Path

import faust

from attribution.defaults import channel_rules, load_config
from streams.app import create_app
from streams.broker import consumer_group_lag, create_topics
from streams.gc_tuning import tune_gc
from streams.health import OpsServer
from streams.logs import LogFormat, logging_config
from streams.metrics import WorkerMetrics
from streams.settings import StreamSettings, stream_settings
from streams.topic_guard import (
    TopicGuardService,
    forbid_topic_auto_creation,
    require_declared_topics,
)
from streams.topics import source_topics, topic_names, topic_specs
from streams.watchdog import EXIT_STALLED, StallWatchdog


def prepare(bootstrap: str, settings: StreamSettings) -> None:
    """Create the pipeline's topics (idempotent) before any producer or worker uses them."""
    asyncio.run(create_topics(bootstrap, topic_specs(settings)))


def run_worker(bootstrap: str, warehouse: Path, config_text: str | None,
               loglevel: str = "WARNING", log_format: LogFormat = "json",
               **overrides: object) -> None:
    """Blocks until SIGTERM/SIGINT; Faust then finishes the batch in hand, commits and
    leaves the group. Serves /metrics, /healthz and /readyz meanwhile (streams.health)."""
    config = load_config(config_text)
    settings = stream_settings(config.stream, **overrides)
    prepare(bootstrap, settings)
    forbid_topic_auto_creation()  # Faust's clients too: a lost topic must stay lost, loudly
    require_declared_topics(bootstrap, topic_specs(settings))  # else: SystemExit, the reason
    metrics = WorkerMetrics()
    app = create_app(settings, config, channel_rules(config), bootstrap, warehouse, metrics)
    ops = OpsServer(app, metrics, settings.ops_host, settings.ops_port, warehouse)
    watchdog = StallWatchdog(app, metrics, bootstrap, source_topics(settings),
                             settings.stall_seconds)
    guard = TopicGuardService(bootstrap, topic_specs(settings), metrics.registry)
    worker = faust.Worker(app, ops, watchdog, guard, loglevel=loglevel, quiet=True,
                          logging_config=logging_config(log_format, loglevel))
    # Faust's terminal spinner would set the root logger to DEBUG (filtering in its handler),
    # so every send built a debug record only to drop it: 3% of a busy worker (py-spy).
    worker.spinner = None
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    tune_gc()
    try:
        worker.execute_from_commandline()
    finally:
        if watchdog.fired:  # stopped itself: tell the supervisor to restart it
            sys.exit(EXIT_STALLED)


def pipeline_lag(bootstrap: str, settings: StreamSettings) -> int:
    """Records produced to the pipeline's topics and not yet committed by the workers."""
    names = topic_names(settings)
    topics = {names.events: settings.partitions, names.identity: 1,
              names.journeys: settings.partitions, names.landing: settings.partitions}
    lag = asyncio.run(consumer_group_lag(bootstrap, settings.app_id, topics))
    return sum(lag.values())


def wait_until_landed(bootstrap: str, settings: StreamSettings, timeout: float,
                      poll: float = 0.5) -> float:
    """Block until every stage has committed everything (twice in a row: a stage may be
    about to emit into the next one); returns the seconds waited. TimeoutError after timeout.
    """
    started = time.monotonic()
    quiet = 0
    while time.monotonic() - started < timeout:
        quiet = quiet + 1 if pipeline_lag(bootstrap, settings) == 0 else 0
        if quiet >= 2:
            return time.monotonic() - started
        time.sleep(poll)
    raise TimeoutError(f"stream still lagging after {timeout:.0f}s")
