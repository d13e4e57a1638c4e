"""Collector commands: the collector alone, and `run` (broker, workers and collector)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from attribution.policy import ConfigError
from cli.options import (
    BrokerOpt,
    ConfigOpt,
    LogFormatOpt,
    WarehouseOpt,
    err,
    log_format_of,
    read_config_text,
)

if TYPE_CHECKING:
    from attribution.policy import Config
    from streams.collector import CollectorSettings
    from streams.settings import StreamSettings

HostOpt = Annotated[
    str | None, typer.Option(help="Address to listen on; default [collector] host, 127.0.0.1.")
]
PortOpt = Annotated[
    int | None, typer.Option(min=0, max=65535,
                             help="Port to listen on (0: any free one); default 8088.")
]
WriteKeyOpt = Annotated[
    str | None, typer.Option("--write-key", help="A write key to accept (source 'default'), "
                             "besides the configured ones; default: configured, else random.")
]
CLI_SOURCE = "default"


def collector(
    broker: BrokerOpt = None,
    config: ConfigOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    write_key: WriteKeyOpt = None,
    log_format: LogFormatOpt = None,
) -> None:
    """Run the Segment-compatible collector alone against a broker (scale out behind a
    load balancer). Creates the stream's topics if they are missing. Needs the email
    secret ([collector] email_secret_env). SIGHUP re-reads --config (write keys, CORS,
    bots, limits). Serves /metrics, /healthz, /readyz too."""
    from streams.broker import broker_from_env
    from streams.logs import setup_logging

    setup_logging(log_format_of(log_format))

    text = read_config_text(config)
    loaded, stream = _load(text)
    bootstrap = broker_from_env(broker) or loaded.collector.get("bootstrap")
    if not isinstance(bootstrap, str) or not bootstrap:
        raise typer.BadParameter("give --broker, set KAFKA_BROKER or [collector] bootstrap "
                                 "(`attribution run` starts an embedded broker)")
    secret = _email_secret(loaded, embedded=False, warehouse=None)
    settings = _settings(loaded, stream, bootstrap, host, port, write_key, secret)
    _prepare_topics(bootstrap, stream)
    failure = _serve(settings, _reloader(config, bootstrap, host, port, write_key), None)
    if failure is not None:
        err.print(f"[red]{failure}[/red]")
        raise typer.Exit(1)


def run(
    broker: BrokerOpt = None,
    config: ConfigOpt = None,
    warehouse: WarehouseOpt = Path("warehouse"),
    workers: Annotated[int | None, typer.Option(
        min=1, help="Stream worker processes (default: one per core).")] = None,
    write_key: WriteKeyOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
) -> None:
    """The whole engine on one machine: broker (embedded Tansu unless --broker or
    KAFKA_BROKER), stream workers and the collector, until Ctrl-C or SIGTERM. A worker
    that exits is restarted with backoff (1 s doubling to 30 s); after 5 exits in a row
    within 10 s of starting, `run` stops with an error."""
    import signal

    from streams.broker import broker_from_env
    from streams.runner import Workers, default_workers, kafka

    text = read_config_text(config)
    loaded, stream = _load(text)
    secret = _email_secret(loaded, embedded=broker_from_env(broker) is None,
                           warehouse=warehouse)
    # Until the collector serves, a SIGTERM unwinds like Ctrl-C (through the cleanups below).
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    warehouse.mkdir(parents=True, exist_ok=True)
    worker_log = warehouse / "workers.log"
    failure: str | None = None
    try:
        with kafka(broker) as (bootstrap, embedded), worker_log.open("ab") as log:
            if embedded is not None:
                err.print(f"embedded Kafka-compatible broker (Tansu) on {bootstrap}")
            settings = _settings(loaded, stream, bootstrap, host, port, write_key, secret)
            _prepare_topics(bootstrap, stream)
            pool = Workers(bootstrap, warehouse, config, log=log)
            try:
                count = workers or default_workers()
                pool.start(count)
                pool.supervise()  # a worker that exits is restarted, with backoff
                err.print(f"{count} stream worker(s) started; their log: {worker_log}")
                print(f"warehouse: {warehouse.resolve()}", flush=True)
                failure = _serve(settings, _reloader(config, bootstrap, host, port, write_key),
                                 pool.alive)
            finally:
                # Stopping is bounded (workers get 30 s to commit); signals must not cut it short.
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_IGN)
                err.print("stopping: collector closed, workers flush and commit")
                pool.stop()
    except KeyboardInterrupt:
        err.print("interrupted while starting")
        raise typer.Exit(130) from None
    if failure is not None:
        why = f"{failure}: {pool.failure}" if pool.failure else failure
        err.print(f"[red]{why} (workers' log: {worker_log})[/red]")
        raise typer.Exit(1)
    err.print("stopped")


def _serve(settings: CollectorSettings, reload: Callable[[], CollectorSettings] | None,
           healthy: Callable[[], bool] | None) -> str | None:
    """Serve until SIGINT/SIGTERM (None) or a failure (what went wrong)."""
    import asyncio

    from streams.collector import serve_until_signalled

    try:
        return asyncio.run(serve_until_signalled(settings, reload_settings=reload,
                                                 healthy=healthy))
    except OSError as exc:  # e.g. the port is taken
        return f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}"


def _load(text: str | None) -> tuple[Config, StreamSettings]:
    from attribution.defaults import load_config
    from streams.settings import stream_settings

    try:
        loaded = load_config(text)
        return loaded, stream_settings(loaded.stream)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _email_secret(loaded: Config, *, embedded: bool, warehouse: str | Path | None
                  ) -> str | None:
    """The email secret (streams.collector.secret), resolved once before anything starts;
    exit 2 with what to configure when there is none."""
    from streams.collector import CollectorSettings
    from streams.collector.secret import resolve_email_secret

    try:
        section = CollectorSettings.from_section(loaded.collector)
        return resolve_email_secret(section, embedded_broker=embedded,
                                    warehouse=warehouse).email_secret
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _settings(loaded: Config, stream: StreamSettings, bootstrap: str, host: str | None,
              port: int | None, write_key: str | None, secret: str | None = None
              ) -> CollectorSettings:
    """[collector] settings with the command line's overrides; the topic and its partition
    count are the stream's; ``secret`` the resolved email secret (None: keep the running
    one, on a reload)."""
    from streams.collector import CollectorSettings

    raw: dict[str, Any] = {**loaded.collector, "bootstrap": bootstrap}
    events = stream.topic("events")
    if raw.setdefault("topic", events) != events:
        err.print(f"[red][collector] topic {raw['topic']!r} is not the stream's events topic "
                  f"{events!r}; set [stream] topic_prefix instead[/red]")
        raise typer.Exit(2)
    if raw.setdefault("partitions", stream.partitions) != stream.partitions:
        err.print(f"[red][collector] partitions {raw['partitions']!r} differs from [stream] "
                  f"partitions {stream.partitions}; leave it out[/red]")
        raise typer.Exit(2)
    if secret is not None:
        raw.pop("email_secret_env", None)
        raw["email_secret"] = secret
    if host is not None:
        raw["host"] = host
    if port is not None:
        raw["port"] = port
    if write_key is not None:  # first, so it is the key printed at start
        raw["write_keys"] = {write_key: CLI_SOURCE, **raw.get("write_keys", {})}
    try:
        return CollectorSettings.from_section(raw)
    except ConfigError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def _reloader(config: Path | None, bootstrap: str, host: str | None, port: int | None,
              write_key: str | None) -> Callable[[], CollectorSettings] | None:
    """Re-read --config on SIGHUP (raising on a bad edit keeps the running settings)."""
    if config is None:
        return None

    def reload() -> CollectorSettings:
        from attribution.defaults import load_config
        from streams.settings import stream_settings

        loaded = load_config(config.read_text(encoding="utf-8"))
        return _settings(loaded, stream_settings(loaded.stream), bootstrap, host, port,
                         write_key)

    return reload


def _prepare_topics(bootstrap: str, stream: StreamSettings) -> None:
    from aiokafka.errors import KafkaError

    from streams.broker import BrokerError
    from streams.worker import prepare

    try:
        prepare(bootstrap, stream)
    except (KafkaError, BrokerError, OSError) as exc:
        err.print(f"[red]cannot create the stream's topics on {bootstrap}: {exc!r}[/red]")
        raise typer.Exit(1) from None


COMMANDS = [collector, run]
