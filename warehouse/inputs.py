"""Read wire-format events from JSON Lines (optionally gzipped) and Parquet files."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

import orjson
import pyarrow.parquet as pq

Progress = Callable[[int], None]  # called with bytes consumed since the last call


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _jsonl(path: Path, progress: Progress | None) -> Iterator[tuple[str, bytes]]:
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if progress is not None:
                progress(len(line))
            stripped = line.strip()
            if stripped:
                yield f"{path.name}:{number}", stripped


def _parquet(path: Path, progress: Progress | None) -> Iterator[tuple[str, Any]]:
    # Rows are wire events; nested JSON columns may be structs or JSON text.
    parquet = pq.ParquetFile(path)
    row = 0
    for batch in parquet.iter_batches(batch_size=10_000):
        for record in batch.to_pylist():
            row += 1
            yield f"{path.name}:row {row}", {k: _maybe_json(v) for k, v in record.items()
                                             if v is not None}
        if progress is not None:
            progress(batch.nbytes)


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def read_events(paths: Sequence[Path], progress: Progress | None = None
                ) -> Iterator[tuple[str, Any]]:
    """(position, raw event) for every line or row of every file, in file order."""
    for path in paths:
        if path.suffix == ".parquet":
            yield from _parquet(path, progress)
        else:
            yield from _jsonl(path, progress)


def fingerprint(paths: Sequence[Path], extra: str = "") -> str:
    """Content hash of the inputs (and config), used to name landed files deterministically."""
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def total_size(paths: Sequence[Path]) -> int:
    return sum(path.stat().st_size for path in paths)
