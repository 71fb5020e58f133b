"""The ledger's tiles in an S3-compatible object store (renkei.store.objects), tested against a
real server process (Garage, tests/garage_server.py) — never an in-process fake."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from renkei.errors import InvalidArgumentError, LedgerDamageError, StoreUnavailableError
from renkei.store.objects import S3Location, S3TileStore, read_credentials
from tests.garage_server import GarageServer, garage_binary

needs_garage = pytest.mark.skipif(garage_binary() is None, reason="garage is not built (make builds it)")


@pytest.fixture(scope="module")
def garage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GarageServer]:
    server = GarageServer.start(tmp_path_factory.mktemp("garage"))
    try:
        yield server
    finally:
        server.stop()


def test_locations_and_credentials_are_checked(tmp_path: Path) -> None:
    loc = S3Location.parse("s3://tiles/renkei/ledger?endpoint=https://s3.example:9000&region=ap-northeast-1")
    assert (loc.bucket, loc.prefix, loc.endpoint, loc.region) == \
        ("tiles", "renkei/ledger/", "https://s3.example:9000", "ap-northeast-1")
    for bad in ("http://tiles", "s3://", "s3://AKIA:secret@tiles", "s3://tiles?acl=public",
                "s3://tiles?endpoint=ftp://x"):
        with pytest.raises(InvalidArgumentError):
            S3Location.parse(bad)
    creds = tmp_path / "c.json"
    creds.write_text(json.dumps({"access_key_id": "GK1", "secret_access_key": "s"}))
    creds.chmod(0o644)
    with pytest.raises(InvalidArgumentError, match="0600"):
        read_credentials(creds)
    creds.chmod(0o600)
    assert read_credentials(creds) == ("GK1", "s")
    creds.write_text("{}")
    with pytest.raises(InvalidArgumentError, match="access_key_id"):
        read_credentials(creds)
    with pytest.raises(InvalidArgumentError, match="not found"):
        read_credentials(tmp_path / "missing.json")


@needs_garage
def test_tiles_are_created_once(garage: GarageServer) -> None:
    url, creds = garage.bucket("once")
    store = S3TileStore(url, creds)
    try:
        tiles = {f"tile/0/x{i:03d}": os.urandom(32 * 256) for i in range(40)} | {"tile/entries/000": b"bundle"}
        store.put_once(tiles)
        # Garage 2.5 overwrites despite If-None-Match: the store found out and reads first.
        assert store.conditional_writes is not None
        assert all(store.get(p) == d for p, d in tiles.items())
        assert store.get("tile/0/x999") is None
        store.put_once(tiles)  # the same bytes again (an integration retried): success
        with pytest.raises(LedgerDamageError, match="fork"):
            store.put_once({"tile/0/x000": b"other bytes"})
        assert store.get("tile/0/x000") == tiles["tile/0/x000"]  # the first bytes stay
        assert list(store.paths()) == sorted(tiles)
    finally:
        store.close()


@needs_garage
def test_an_unreachable_object_store_is_unavailable(garage: GarageServer, tmp_path: Path) -> None:
    url, creds = garage.bucket("down")
    dead = url.replace(f":{garage.s3_port}", f":{_closed_port()}")
    store = S3TileStore(dead, creds)
    try:
        with pytest.raises(StoreUnavailableError):
            store.put_once({"tile/0/000": b"x"})
        with pytest.raises(StoreUnavailableError):
            store.get("tile/0/000")
    finally:
        store.close()
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"access_key_id": "GK" + "0" * 24, "secret_access_key": "0" * 64}))
    wrong.chmod(0o600)
    store = S3TileStore(url, wrong)
    try:
        with pytest.raises(StoreUnavailableError):
            store.put_once({"tile/0/000": b"x"})
    finally:
        store.close()


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
