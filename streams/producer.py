"""Every Kafka producer of the project outside Faust is built here, with one set of settings.

acks=all: a send is acknowledged only once every in-sync replica has it (the collector
answers 200 on that). A few milliseconds of linger and large batches turn the pipeline's
many envelopes into few requests; the request size allows the largest envelope (the
stages split messages under ``[stream] max_message_bytes``). Batches are LZ4-compressed
(via cramjam): column lists of ids and names shrink several times, and a worker spent
14% of its time copying uncompressed bytes into its sockets (py-spy).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

LINGER_MS = 5
COMPRESSION = "lz4"
MAX_BATCH_BYTES = 1 << 20
MAX_REQUEST_BYTES = 8 << 20


def producer_settings(**overrides: Any) -> dict[str, Any]:
    """The settings every producer uses (Faust's producer gets the same, see streams.app)."""
    return {"acks": "all", "linger_ms": LINGER_MS, "max_batch_size": MAX_BATCH_BYTES,
            "max_request_size": MAX_REQUEST_BYTES, "compression_type": COMPRESSION,
            **overrides}


def kafka_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A producer with the project's settings; start() it before use, stop() after."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **producer_settings(**overrides))
