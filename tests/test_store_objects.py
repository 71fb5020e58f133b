"""The ledger's tiles in an S3-compatible object store (renkei.store.objects), tested against a
real server process (Garage, tests/garage_server.py) — never an in-process fake."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from renkei.errors import FailedPreconditionError, InvalidArgumentError, LedgerDamageError, StoreUnavailableError
from renkei.ledger import LedgerRecord, open_ledger, verify_log_dir
from renkei.service.core import init_data_dir as init_core
from renkei.store import TILES_BINDING, TILES_CREDENTIALS
from renkei.store.objects import S3Location, S3TileStore, read_credentials
from renkei.store.pgledger import PgLedger
from tests.garage_server import GarageServer, garage_binary
from tests.pg_cluster import PgCluster

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
                "s3://tiles?endpoint=ftp://x", "s3://tiles?region=ap/1"):
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


@pytest.fixture
def pg_url(pg: PgCluster, request: pytest.FixtureRequest) -> str:
    from tests.conftest import store_url

    got = store_url(request, "postgresql")
    assert got is not None
    return got


def _rec(i: int) -> LedgerRecord:
    return LedgerRecord(
        requester=100 + i % 5, provider=200 + i % 3, affair="1-3", items=("TM1",),
        table_hash=hashlib.sha256(b"table").digest(), pseudonym=hashlib.sha256((i % 11).to_bytes(4, "big")).digest(),
        permit_id=bytes([1 + i % 200]) * 16, time=datetime(2026, 1, 1, 9, tzinfo=UTC))


def test_tiles_go_only_with_postgresql_and_only_at_init(tmp_path: Path, pg_url: str) -> None:
    creds = tmp_path / "k.json"
    creds.write_text(json.dumps({"access_key_id": "GK1", "secret_access_key": "s"}))
    creds.chmod(0o600)
    with pytest.raises(FailedPreconditionError, match="PostgreSQL"):
        init_core(tmp_path / "embedded", tiles="s3://tiles?endpoint=http://127.0.0.1:1", tiles_credentials=creds)
    assert not (tmp_path / "embedded").exists()  # refused before anything was created
    with pytest.raises(InvalidArgumentError, match="credentials"):
        init_core(tmp_path / "nocreds", store=pg_url, tiles="s3://tiles?endpoint=http://127.0.0.1:1")
    creds.chmod(0o644)
    with pytest.raises(InvalidArgumentError, match="0600"):
        init_core(tmp_path / "loose", store=pg_url, tiles="s3://tiles?endpoint=http://127.0.0.1:1",
                  tiles_credentials=creds)
    assert not (tmp_path / "loose").exists()


@needs_garage
def test_the_core_ledger_keeps_its_tiles_in_the_object_store(tmp_path: Path, pg_url: str,
                                                              garage: GarageServer) -> None:
    """A PostgreSQL-bound core whose tiles go to Garage: the tiles are there (none in the
    database), proofs and the public log verify from them; the object store dies (kill -9):
    appends are still sequenced durably but no checkpoint covers them until it is back; then
    every record is integrated and the log verifies."""
    s3_url, creds = garage.bucket("ledger-tiles", "core")
    d = init_core(tmp_path / "core", store=pg_url, tiles=s3_url, tiles_credentials=creds)
    for name in (TILES_BINDING, TILES_CREDENTIALS):
        assert stat.S_IMODE((d.path / name).stat().st_mode) == 0o600
    assert (d.path / TILES_BINDING).read_text().strip() == s3_url
    with pytest.raises(FailedPreconditionError):  # fixed at init
        init_core(tmp_path / "core", store=pg_url, tiles=s3_url.replace("/core?", "/other?"), tiles_credentials=creds)
    led = open_ledger(d, background=False)
    assert isinstance(led, PgLedger)
    try:
        first = led.append_batch([_rec(i) for i in range(600)])
        assert first.checkpoint.size == 600
        for i in range(600, 700):
            led.append(_rec(i))
        assert led.size == 700
        led.prove_inclusion(650).verify()
        led.prove_consistency(600, 700).verify()
        assert led.verify()["size"] == 700
        row = led._db.one("SELECT count(*) FROM tiles")
        assert row is not None and row[0] == 0  # nothing in PostgreSQL's table
        objects = S3TileStore(s3_url, creds)
        try:
            paths = list(objects.paths())
            assert "tile/0/000" in paths and "tile/0/002.p/188" in paths and any("entries" in p for p in paths)
        finally:
            objects.close()

        garage.kill9()
        with pytest.raises(StoreUnavailableError):
            # The integrator sequences and integrates its own group in one transaction: with its
            # tiles unwritable, the whole append is rolled back (not acknowledged, not in the log).
            led.append_batch([_rec(i) for i in range(700, 750)])
        assert led.size == 700
        garage.restart()
        got = led.append_batch([_rec(i) for i in range(750, 800)])
        assert got.first_seq == 700 and got.checkpoint.size == 750
        back, want = led.get(700), _rec(750)
        assert back is not None and (back.permit_id, back.requester, back.pseudonym) == \
            (want.permit_id, want.requester, want.pseudonym)
        for seq in (0, 255, 256, 720, 749):
            led.prove_inclusion(seq).verify()
        led.prove_consistency(700, 750).verify()
        assert led.verify()["size"] == 750
        led.export(tmp_path / "public")
        assert verify_log_dir(tmp_path / "public", led.vkey)["size"] == 750
        # Retention (施行令 第30条): the two full bundles go from the bucket too; proofs stay.
        objects = S3TileStore(s3_url, creds)
        try:
            assert objects.get("tile/entries/000") is not None
            assert led.retention(datetime(2033, 6, 1, tzinfo=UTC)) == 512
            assert objects.get("tile/entries/000") is None and objects.get("tile/entries/001") is None
            assert objects.get("tile/0/000") is not None  # hash tiles are kept
        finally:
            objects.close()
        assert led.get(5) is None and led.get(600) is not None
        led.prove_inclusion(5).verify()
        assert led.verify()["size"] == 750
    finally:
        led.close()
