"""Where the warehouse's files live: a local directory or a prefix in an S3-compatible bucket.

Everything that reads or writes landed files goes through a ``Storage``, addressing files
by keys relative to the warehouse root with ``/`` separators, for example
``credits/conversion_date=2026-11-29/stream-ab12.parquet``. Both kinds promise readers the
same thing: a file appears whole or not at all. Locally that is a temp file, fsync and
rename; on object storage a single PUT, which becomes visible only once complete (there is
no rename there, so names are chosen by the writer to be stable: see ``warehouse.landing``).

A root is a ``Path`` (local directory) or a URL string ``s3://bucket/prefix``. A ``Path``
made from such a URL (as typer makes it from ``--warehouse s3://...``, collapsing ``//``
to ``/``) is recognised too, so commands whose options are typed ``Path`` pass object-store
roots through unchanged.
"""

from __future__ import annotations

import ctypes
import functools
import io
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeAlias

import pyarrow as pa
import pyarrow.parquet as pq

Root: TypeAlias = Path | str
"""A warehouse root: a local directory, or ``s3://bucket/prefix``."""

TEMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class FileInfo:
    key: str  # relative to the warehouse root, '/'-separated
    size: int
    mtime: float  # seconds since the epoch (object storage: LastModified)

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def s3_parts(root: Root) -> tuple[str, str] | None:
    """(bucket, prefix without slashes at either end) of an object-store root, else None."""
    text = str(root)
    if not text.startswith("s3:/"):
        return None
    rest = text[len("s3:"):].lstrip("/")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"no bucket in warehouse URL {text!r}: use s3://bucket/prefix")
    return bucket, prefix.strip("/")


def is_object_store(root: Root) -> bool:
    return s3_parts(root) is not None


def display(root: Root) -> str:
    """The root as a person would type it (``s3://bucket/prefix`` or the directory)."""
    parts = s3_parts(root)
    if parts is None:
        return str(root)
    bucket, prefix = parts
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()


class Storage(ABC):
    """The operations the warehouse needs from a place that holds files."""

    url: str  # what DuckDB and other readers prefix keys with (absolute path or s3:// URL)

    @property
    def is_local(self) -> bool:
        return False

    def file_url(self, key: str) -> str:
        return f"{self.url}/{key}"

    @abstractmethod
    def list_files(self, prefix: str) -> list[FileInfo]:
        """Every file under ``prefix`` (a key prefix ending in '/'), recursively."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The file's content; FileNotFoundError if there is none."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace ``key`` atomically: readers see the old content or the new."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; no error if it is already gone."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    def copy(self, source: str, target: str) -> None:
        """Make ``target`` hold ``source``'s content, atomically for readers of ``target``."""
        self.write_bytes(target, self.read_bytes(source))

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(pa.BufferReader(self.read_bytes(key)), columns=columns)

    def parquet_rows(self, key: str) -> int:
        return int(pq.ParquetFile(pa.BufferReader(self.read_bytes(key))).metadata.num_rows)

    def parquet_schema(self, key: str) -> pa.Schema:
        return pq.read_schema(pa.BufferReader(self.read_bytes(key)))

    def write_parquet(self, key: str, table: pa.Table) -> None:
        self.write_bytes(key, parquet_bytes(table))

    def write_parquet_many(self, files: Sequence[tuple[str, pa.Table]]) -> None:
        """Write several files, each atomically (a reader sees each whole or not at all;
        there is no promise across files). Durable when this returns."""
        for key, table in files:
            self.write_parquet(key, table)


class LocalStorage(Storage):
    """A directory; writes go through a hidden temp sibling, fsync and rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root.resolve())

    @property
    def is_local(self) -> bool:
        return True

    def path(self, key: str) -> Path:
        return self.root.joinpath(*PurePosixPath(key).parts)

    def list_files(self, prefix: str) -> list[FileInfo]:
        base = self.path(prefix)
        if not base.is_dir():
            return []
        found = []
        for directory, _dirs, names in os.walk(base):
            for name in names:
                full = Path(directory) / name
                try:
                    stat = full.stat()
                except FileNotFoundError:  # removed while listing (compaction, erasure)
                    continue
                key = full.relative_to(self.root).as_posix()
                found.append(FileInfo(key, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda info: info.key)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def read_parquet(self, key: str, columns: list[str] | None = None) -> pa.Table:
        return pq.read_table(self.path(key), columns=columns)

    def parquet_rows(self, key: str) -> int:
        return int(pq.ParquetFile(self.path(key)).metadata.num_rows)

    def parquet_schema(self, key: str) -> pa.Schema:
        return pq.read_schema(self.path(key))

    def write_bytes(self, key: str, data: bytes) -> None:
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
        try:
            with open(temp, "wb") as sink:
                sink.write(data)
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)

    def write_parquet(self, key: str, table: pa.Table) -> None:
        # Straight to the temp file: no copy of the encoded file in memory.
        final = self.path(key)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
        try:
            with open(temp, "wb") as sink:
                pq.write_table(table, sink, compression="zstd")
                sink.flush()
                os.fsync(sink.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(final.parent)

    def write_parquet_many(self, files: Sequence[tuple[str, pa.Table]]) -> None:
        """As ``write_parquet`` for each file, paying durability per batch, not per file:
        temp files written, all made durable, renamed, the renames made durable. A stream
        flush of traffic spread over many days writes a file per day and table, and two
        fsyncs per file were most of the sink's time (0.6 ms per file against 0.16)."""
        if len(files) <= _FSYNC_EACH_UP_TO or not hasattr(os, "sync"):
            for key, table in files:
                self.write_parquet(key, table)
            return
        moves: list[tuple[Path, Path]] = []
        try:
            for key, table in files:
                final = self.path(key)
                final.parent.mkdir(parents=True, exist_ok=True)
                temp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
                moves.append((temp, final))
                with open(temp, "wb") as sink:
                    pq.write_table(table, sink, compression="zstd")
            _sync_file_system(self.root)
            for temp, final in moves:
                os.replace(temp, final)
        except BaseException:
            for temp, _final in moves:
                temp.unlink(missing_ok=True)
            raise
        _sync_file_system(self.root)

    def delete(self, key: str) -> None:
        path = self.path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def move(self, source: str, target: str) -> None:
        """Rename ``source`` over ``target`` (same file system): atomic and durable."""
        final = self.path(target)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), final)
        fsync_dir(final.parent)

    def copy(self, source: str, target: str) -> None:
        self.write_bytes(target, self.read_bytes(source))


# More files than this in one write: one sync of the file system instead of an fsync
# per file and directory (syncfs costs a few ms, an fsync pair about 0.5 ms).
_FSYNC_EACH_UP_TO = 8


def _sync_file_system(path: Path) -> None:
    """Flush every dirty page of the file system holding ``path`` (Linux ``syncfs``; where
    that is missing, ``sync`` of all of them)."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed", str(path))
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        syncfs: Callable[[int], int] = libc.syncfs
    except (OSError, AttributeError):
        return None
    return syncfs


def fsync_dir(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def storage_for(root: Root) -> Storage:
    """The storage behind a warehouse root (see the module docstring for the forms)."""
    parts = s3_parts(root)
    if parts is None:
        return LocalStorage(Path(root))
    from warehouse.s3 import S3Storage  # boto3 is imported only for object-store roots

    return S3Storage(*parts)
