"""Where the ledger's tiles and entry bundles live: PostgreSQL (the default of a PostgreSQL-bound
core) or the deployment's S3-compatible object store (docs/arch/store.md, "Tiles in an object
store").

Tiles are content-addressed by the tree: the bytes at a path are a function of the entries
sequenced before it, and sequencing is one transaction in PostgreSQL. So every integrator that
writes a path writes the same bytes, and a write is **create-once**: ``PutObject`` with
``If-None-Match: *``; a 412 (the object exists) is success when the stored bytes are the same
and :class:`~renkei.errors.LedgerDamageError` ("the log would fork") when they differ. Not every
S3-compatible server honours the condition (Garage 2.5 ignores it and overwrites), so the store
probes the server once when it opens; where the condition is ignored it reads before it writes
(a missing object is written, an existing one compared) — not atomic, but only the fenced
integrator writes tiles (docs/arch/store.md), so nobody races it. The integrator writes the
tiles **before** it commits the new checkpoint, so a checkpoint never names a tile that is not
stored; tiles written by an integration that then failed are orphans the next integration
writes again with the same bytes.

The object store's credentials are a file of their own (JSON ``{"access_key_id",
"secret_access_key"}``, mode 0600, refused otherwise), never part of the URL:
``s3://bucket/prefix?endpoint=https://s3.example:9000&region=ap-northeast-1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import threading
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from renkei.errors import InvalidArgumentError, LedgerDamageError, StoreUnavailableError


class TileStore(ABC):
    """The tiles and bundles of one log, keyed by their C2SP tlog-tiles path."""

    kind: str

    @abstractmethod
    def get(self, path: str) -> bytes | None:
        """The object at ``path``, or None."""

    @abstractmethod
    def put_once(self, tiles: Mapping[str, bytes]) -> None:
        """Store every tile create-once (same bytes again: success; other bytes: a fork)."""

    @abstractmethod
    def paths(self) -> Iterator[str]:
        """Every stored path, sorted (export and audit)."""

    @abstractmethod
    def delete(self, paths: Sequence[str]) -> None:
        """Remove entry bundles past retention (施行令 第30条); missing ones are no error."""

    def close(self) -> None:  # noqa: B027 - optional for drivers without connections
        """Release connections."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint: str | None
    region: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket[/prefix]?endpoint=…&region=…``; refuses credentials in the URL."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "s3" or not parts.hostname:
            raise InvalidArgumentError("an object store URL is s3://bucket[/prefix]?endpoint=…&region=…")
        if parts.username or parts.password:
            raise InvalidArgumentError("an object store URL holds no credentials: give them as a 0600 file")
        query = urllib.parse.parse_qs(parts.query)
        unknown = set(query) - {"endpoint", "region"}
        if unknown:
            raise InvalidArgumentError(f"unknown object store option(s): {', '.join(sorted(unknown))}")
        endpoint = query.get("endpoint", [None])[0]
        if endpoint is not None and urllib.parse.urlsplit(endpoint).scheme not in ("http", "https"):
            raise InvalidArgumentError("the object store endpoint is an http(s) URL")
        region = query.get("region", ["us-east-1"])[0]
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", region):
            raise InvalidArgumentError(f"the object store region {region!r} is not a region name")
        prefix = parts.path.strip("/")
        return cls(parts.hostname, f"{prefix}/" if prefix else "", endpoint, region)


def read_credentials(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(access key id, secret) from a JSON file readable by its owner only."""
    p = Path(path)
    try:
        mode = stat.S_IMODE(p.stat().st_mode)
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InvalidArgumentError(f"object store credentials not found: {p}") from None
    except (OSError, ValueError) as e:
        raise InvalidArgumentError(f"object store credentials unreadable: {p}: {e}") from None
    if mode & 0o077:
        raise InvalidArgumentError(f"object store credentials {p} are mode {mode:04o}; they must be 0600")
    try:
        return str(data["access_key_id"]), str(data["secret_access_key"])
    except (KeyError, TypeError):
        raise InvalidArgumentError(f"object store credentials {p} need access_key_id and secret_access_key") from None


class S3TileStore(TileStore):
    """Tiles in an S3-compatible bucket (boto3). Thread-safe; writes of one integration go out
    in parallel (a tile is a few KiB: latency, not bandwidth, is the cost)."""

    kind = "s3"

    def __init__(self, url: str, credentials: str | os.PathLike[str], *, parallel: int = 16) -> None:
        import boto3
        from botocore.config import Config

        self.location = S3Location.parse(url)
        key_id, secret = read_credentials(credentials)
        self._client: Any = boto3.client(
            "s3", endpoint_url=self.location.endpoint, region_name=self.location.region,
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=parallel,
                          s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=30))
        self._pool = ThreadPoolExecutor(parallel, thread_name_prefix="tiles-s3")
        self._probe_lock = threading.Lock()
        #: Whether the server honours If-None-Match (probed at the first write, so opening the
        #: store and reading from it do not need the server up).
        self.conditional_writes: bool | None = None

    def _key(self, path: str) -> str:
        return self.location.prefix + path

    def _unavailable(self, e: Exception) -> StoreUnavailableError:
        return StoreUnavailableError(f"object store {self.location.bucket}: {type(e).__name__}: {e}")

    def get(self, path: str) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self._client.get_object(Bucket=self.location.bucket, Key=self._key(path))["Body"]
            return bytes(body.read())
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise self._unavailable(e) from None
        except BotoCoreError as e:
            raise self._unavailable(e) from None

    def _put_object(self, key: str, data: bytes, *, if_none_match: bool) -> bool:
        """PutObject; False when the server refused it because the object exists (412/409)."""
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"IfNoneMatch": "*"} if if_none_match else {}
        try:
            self._client.put_object(Bucket=self.location.bucket, Key=key, Body=data,
                                    ContentType="application/octet-stream", **extra)
            return True
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if if_none_match and (code in ("PreconditionFailed", "ConditionalRequestConflict")
                                  or status in (409, 412)):
                return False
            raise self._unavailable(e) from None
        except BotoCoreError as e:
            raise self._unavailable(e) from None

    def _probe(self) -> bool:
        """Whether the server honours ``If-None-Match: *`` (a second conditional write of one
        key is refused). The probe object is removed again."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = f"{self.location.prefix}.renkei-probe/{os.urandom(8).hex()}"
        try:
            self._put_object(key, b"1", if_none_match=True)
            return not self._put_object(key, b"2", if_none_match=True)
        finally:
            with contextlib.suppress(BotoCoreError, ClientError):
                self._client.delete_object(Bucket=self.location.bucket, Key=key)

    def _put(self, path: str, data: bytes) -> None:
        if self.conditional_writes:
            if self._put_object(self._key(path), data, if_none_match=True):
                return
            stored = self.get(path)
        else:
            stored = self.get(path)
            if stored is None:
                self._put_object(self._key(path), data, if_none_match=False)
                return
        if stored is None:  # 409: a concurrent delete; tiles are never deleted, so write it
            self._put_object(self._key(path), data, if_none_match=False)
        elif stored != data:
            raise LedgerDamageError(f"{path} exists with other contents: the log would fork", path)

    def put_once(self, tiles: Mapping[str, bytes]) -> None:
        with self._probe_lock:
            if self.conditional_writes is None:
                self.conditional_writes = self._probe()
        for f in [self._pool.submit(self._put, p, d) for p, d in tiles.items()]:
            f.result()

    def paths(self) -> Iterator[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        skip = len(self.location.prefix)
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.location.bucket, Prefix=self.location.prefix):
            keys.extend(str(o["Key"])[skip:] for o in page.get("Contents", []))
        return iter(sorted(k for k in keys if not k.startswith(".renkei-probe/")))

    def delete(self, paths: Sequence[str]) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        keys = [self._key(p) for p in paths]
        try:
            for i in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
                got = self._client.delete_objects(Bucket=self.location.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
                errors = [e for e in got.get("Errors", []) if e.get("Code") != "NoSuchKey"]
                if errors:
                    raise StoreUnavailableError(f"object store {self.location.bucket}: could not delete "
                                                f"{errors[0].get('Key')}: {errors[0].get('Code')}")
        except (BotoCoreError, ClientError) as e:
            raise self._unavailable(e) from None

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()


__all__ = ["S3Location", "S3TileStore", "TileStore", "read_credentials"]
