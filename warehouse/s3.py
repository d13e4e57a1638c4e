"""The warehouse on S3-compatible object storage (AWS S3, MinIO, Ceph, R2, ...).

Credentials and endpoint come the usual AWS way, resolved by botocore: environment
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``, ``AWS_REGION``), the shared config and
credentials files, instance roles. The ``[warehouse]`` config section (see
``warehouse.settings``) can name a profile, region or ``endpoint_url`` on top.

Every object is written with one PUT, which S3 makes visible only once complete, so
readers never see a partial file. The maintenance lock uses conditional PUTs
(``If-None-Match: *`` to create, ``If-Match: <etag>`` to renew), see ``warehouse.lock``.
"""

from __future__ import annotations

import fnmatch
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from warehouse.storage import FileInfo, Storage

_PARALLEL_PUTS = 8

if TYPE_CHECKING:
    import fsspec
    import pyarrow as pa


@dataclass(frozen=True)
class S3Options:
    """What the ``[warehouse]`` section may add to botocore's own resolution."""

    endpoint_url: str | None = None
    region: str | None = None
    profile: str | None = None
    # "path" (bucket in the URL path) suits MinIO and most self-hosted stores; "auto" lets
    # botocore pick (virtual-hosted on AWS). Default: path when an endpoint is configured.
    addressing_style: str | None = None


_options = S3Options()
_lock = threading.Lock()
_clients: dict[tuple[Any, ...], Any] = {}
_ENVIRONMENT = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
                "AWS_REGION", "AWS_DEFAULT_REGION")


def configure(options: S3Options) -> None:
    """Set the process's object-store options (from the ``[warehouse]`` config section)."""
    global _options
    with _lock:
        _options = options


def options() -> S3Options:
    return _options


@contextmanager
def configured(new: S3Options) -> Iterator[None]:
    """Use ``new`` for the duration of a block (tests, benchmarks)."""
    global _options
    with _lock:
        old, _options = _options, new
    try:
        yield
    finally:
        with _lock:
            _options = old


def _addressing_style(opts: S3Options) -> str:
    """Path-style (bucket in the path) for any endpoint of our own, from the config or the
    AWS_ENDPOINT_URL(_S3) variables: virtual-hosted names (bucket.minio:9000) do not resolve
    on MinIO, Ceph or a test server. Botocore's choice otherwise (AWS)."""
    if opts.addressing_style:
        return opts.addressing_style
    custom = opts.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get(
        "AWS_ENDPOINT_URL")
    return "path" if custom else "auto"


def _session(opts: S3Options) -> boto3.session.Session:
    return boto3.session.Session(profile_name=opts.profile, region_name=opts.region)


def client(opts: S3Options | None = None) -> Any:
    """A boto3 S3 client for ``opts`` (default: the configured options); cached, thread-safe."""
    opts = opts or _options
    # botocore reads these when the client is made: a change makes another client
    key = (opts, *(os.environ.get(name) for name in _ENVIRONMENT))
    with _lock:
        cached = _clients.get(key)
        if cached is not None:
            return cached
    config = BotoConfig(
        s3={"addressing_style": _addressing_style(opts)},
        retries={"mode": "standard", "max_attempts": 5},
        # Checksums only where S3 requires them: several S3-compatible stores reject the
        # newer default trailing checksums.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    made = _session(opts).client("s3", endpoint_url=opts.endpoint_url, config=config)
    with _lock:
        _clients[key] = made
    return made


def filesystem(opts: S3Options | None = None) -> fsspec.AbstractFileSystem:
    """An fsspec (s3fs) file system with the same endpoint and credentials as ``client()``,
    for DuckDB (``connection.register_filesystem``), Polars and pyarrow."""
    opts = opts or _options
    boto = client(opts)
    kwargs: dict[str, Any] = {
        # No listing cache, no shared instance: files land and go (compaction, erasure)
        # between and during queries, and every glob must see the bucket as it is now.
        "use_listings_cache": True, "listings_expiry_time": 2,
        "skip_instance_cache": True,
        "endpoint_url": boto.meta.endpoint_url,
        "client_kwargs": {"region_name": boto.meta.region_name},
        "config_kwargs": {"s3": {"addressing_style": _addressing_style(opts)}},
    }
    credentials = _session(opts).get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials()
        kwargs.update(key=frozen.access_key, secret=frozen.secret_key, token=frozen.token)
    return _listing_s3fs()(**kwargs)


@cache
def _listing_s3fs() -> type[fsspec.AbstractFileSystem]:
    import s3fs

    class ListingS3FileSystem(s3fs.S3FileSystem):  # type: ignore[misc]
        """s3fs that answers a glob with one listing of the prefix before the first
        wildcard: s3fs lists every partition directory on its own, so a glob over a year
        of days cost hundreds of requests per query."""

        def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
            stripped = self._strip_protocol(path)
            parts = stripped.split("/")
            wild = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), None)
            if wild is None or "**" in stripped or kwargs.get("detail") or maxdepth:
                return super().glob(path, maxdepth=maxdepth, **kwargs)
            base = "/".join(parts[:wild])
            return sorted(found for found in self.find(base)
                          if len(found.split("/")) == len(parts)
                          and fnmatch.fnmatchcase(found, stripped))

    return ListingS3FileSystem


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _missing(error: ClientError) -> bool:
    return _code(error) in ("NoSuchKey", "404", "NotFound") or _status(error) == 404


def _precondition_failed(error: ClientError) -> bool:
    # 412: the condition did not hold; 409: a concurrent conditional write won the race.
    return _status(error) in (409, 412) or _code(error) in (
        "PreconditionFailed", "ConditionalRequestConflict")


class S3Storage(Storage):
    """``s3://bucket/prefix``: keys are stored under ``prefix/``."""

    def __init__(self, bucket: str, prefix: str, opts: S3Options | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.options = opts or _options
        self.client = client(self.options)
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"

    def with_options(self, opts: S3Options) -> S3Storage:
        return S3Storage(self.bucket, self.prefix, replace(opts))

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _relative(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def list_files(self, prefix: str) -> list[FileInfo]:
        found = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
            for item in page.get("Contents", ()):
                found.append(FileInfo(self._relative(item["Key"]), int(item["Size"]),
                                      item["LastModified"].timestamp()))
        return sorted(found, key=lambda info: info.key)

    def read_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _missing(error):
                raise FileNotFoundError(f"{self.file_url(key)} does not exist") from None
            raise
        body: bytes = response["Body"].read()
        return body

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def write_parquet_many(self, files: Sequence[tuple[str, pa.Table]]) -> None:
        """PUTs side by side: a flush spread over many days is many small objects, each a
        round trip (botocore's client is thread-safe; its pool holds 10 connections)."""
        if len(files) <= 1:
            super().write_parquet_many(files)
            return
        with ThreadPoolExecutor(min(_PARALLEL_PUTS, len(files))) as pool:
            list(pool.map(lambda file: self.write_parquet(*file), files))

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        return self.etag(key) is not None

    def copy(self, source: str, target: str) -> None:
        # Server-side: one request, the target appears whole (objects up to 5 GB).
        self.client.copy_object(Bucket=self.bucket, Key=self._key(target),
                                CopySource={"Bucket": self.bucket, "Key": self._key(source)})

    def read_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """The content and ETag of ``key`` (one request), None if there is none."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return response["Body"].read(), str(response["ETag"])

    def etag(self, key: str) -> str | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as error:
            if _missing(error):
                return None
            raise
        return str(head["ETag"])

    def create(self, key: str, data: bytes) -> str | None:
        """Write ``key`` only if it does not exist (``If-None-Match: *``); its ETag, or None
        when another writer's object is there."""
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(key),
                                              Body=data, IfNoneMatch="*")
        except ClientError as error:
            if _precondition_failed(error):
                return None
            raise
        return str(response["ETag"])

    def replace_if(self, key: str, data: bytes, etag: str) -> str | None:
        """Overwrite ``key`` only if it still has ``etag`` (``If-Match``); the new ETag, or
        None when it changed or is gone."""
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(key),
                                              Body=data, IfMatch=etag)
        except ClientError as error:
            if _precondition_failed(error) or _missing(error):
                return None
            raise
        return str(response["ETag"])

    def delete_if(self, key: str, etag: str) -> bool:
        """Delete ``key`` only if it still has ``etag``; False when it changed."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key), IfMatch=etag)
        except ClientError as error:
            if _precondition_failed(error) or _missing(error):
                return False
            raise
        return True
