"""The core's store on both drivers (docs/arch/store.md): the registry, the commission's
decisions and the permission versions behave the same embedded and on PostgreSQL; a data
directory keeps the store it was created with; two front-ends on one database serialise their
writes; and a kill -9 of the primary under writes loses no acknowledged registration."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from renkei import cli
from renkei.datadir import DataDir
from renkei.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PiaNotApprovedError,
    StoreUnavailableError,
)
from renkei.linkage.registry import AgencyRegistry
from renkei.numbers import corporate_check_digit
from renkei.permissions import engine as pm
from renkei.permissions.store import PermissionStore
from renkei.permissions.tables import PermissionTables
from renkei.ppc.review import PiaReview, Submission
from renkei.ppc.review import init_data_dir as init_ppc
from renkei.service.core import init_data_dir as init_core
from renkei.store import BINDING, describe_store, require_store, store_conninfo
from tests.conftest import store_url
from tests.datadirs import core_dir
from tests.pg_cluster import PgCluster, pg_bindir

DRIVERS = ["embedded", "postgresql"]
TODAY = dt.date.today()


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str | None:
    """The store URL of a fresh core (None: embedded)."""
    return store_url(request, request.param)


def corporate(i: int) -> str:
    base = f"{i:012d}"
    return f"{corporate_check_digit(base)}{base}"


def bound_dir(path: Path, store: str | None) -> DataDir:
    d = core_dir(path)
    if store is not None:
        from renkei.store import bind_store

        bind_store(d, store, fresh=True)
    return d


def test_the_test_cluster_replicates_synchronously(pg: PgCluster) -> None:
    with pg.primary.connect() as conn:
        assert conn.execute("SHOW synchronous_standby_names").fetchone() == ("FIRST 1 (standby)",)
        assert conn.execute("SELECT application_name, sync_state FROM pg_stat_replication").fetchall() == [
            ("standby", "sync")]
    with pg.standby.connect() as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)


def test_registry_on_both_drivers(tmp_path: Path, driver: str | None) -> None:
    d = bound_dir(tmp_path / "core", driver)
    with AgencyRegistry(d) as reg:
        city = reg.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
        board = reg.register_agency("横浜市教育委員会", ["municipal_board_of_education"], "3000020141003",
                                    municipality_code="141003")
        with pytest.raises(AlreadyExistsError, match=f"agency {city.agency_id} is registered already"):
            reg.register_agency("横浜市長 (again)", ["municipal_mayor"], "3000020141003", municipality_code="141003")
        pension = reg.register_agency("日本年金機構", ["japan_pension_service"], "5010405001703")
        assert [a.agency_id for a in reg.agencies()] == [city.agency_id, board.agency_id, pension.agency_id]
        assert [a.agency_id for a in reg.agencies(type_id="japan_pension_service")] == [pension.agency_id]
        assert reg.set_agency_status(board.agency_id, "suspended").status == "suspended"
        with pytest.raises(NotFoundError):
            reg.agency(999)
        # PIAs (an embedder's registry, no commission).
        with pytest.raises(PiaNotApprovedError, match="none has been filed"):
            reg.require_active(city.agency_id)
        pia = reg.add_pia(city.agency_id, "評価書", expires_on=TODAY + dt.timedelta(days=30))
        assert reg.pia_status(city.agency_id) == "submitted"
        reg.approve_pia(pia.pia_id, TODAY)
        assert reg.require_active(city.agency_id).name == "横浜市長"
        reg.revoke_pia(pia.pia_id)
        assert reg.pia_status(city.agency_id) == "revoked"
        # Key epochs and card keys.
        assert reg.rotate_epoch() == 2
        with pytest.raises(FailedPreconditionError, match="current one"):
            reg.retire_epoch(2)
        reg.retire_epoch(1)
        assert reg.epoch_state() == (2, [2])
        reg.register_card_key(b"k" * 32, b"p" * 32, 7)
        reg.register_card_key(b"k" * 32, b"p" * 32, 7)  # the same again: a no-op
        with pytest.raises(AlreadyExistsError):
            reg.register_card_key(b"k" * 32, b"p" * 32, 8)
    # Reopened, and read-only (the CLI while the core runs): all there.
    for read_only in (False, True):
        with AgencyRegistry(d, read_only=read_only) as reg:
            assert [a.name for a in reg.agencies(status="active")] == ["横浜市長", "日本年金機構"]
            assert reg.agency(city.agency_id).types == ("municipal_mayor",)
            assert reg.card_key(b"k" * 32) == (b"p" * 32, 7)
            assert [(e.epoch, e.retired_at is not None) for e in reg.epochs()] == [(1, True), (2, False)]
            assert reg.pias(city.agency_id)[0].status == "revoked"
    # Where the state went: the registry file only for the embedded driver.
    assert (d.path / "registry.sqlite3").exists() == (driver is None)


def submission(agency: int) -> Submission:
    return Submission(agency, "full", "住民基本台帳事務 全項目評価書", ("住民基本台帳ファイル",), ("住民票関係情報",),
                      hashlib.sha256(b"doc").digest(), 0)


def test_commission_decisions_on_both_drivers(tmp_path: Path, driver: str | None) -> None:
    review = PiaReview(init_ppc(tmp_path / "ppc"))
    core = init_core(tmp_path / "core", commission_vkey=review.vkey, store=driver)
    with AgencyRegistry(core) as reg:
        city = reg.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
        assert reg.commission is not None
        pia = review.submit(submission(city.agency_id))
        review.decide(pia.pia_id, "approved", reviewer="委員会 審査官", approved_on=TODAY,
                      expires_on=TODAY + dt.timedelta(days=365))
        cp, decisions = review.decisions(first=0)
        delivered = [(x.seq, x.entry, x.proof) for x in decisions]
        assert reg.commission.apply(cp.note, delivered) == (1, 2)
        assert reg.commission.apply(cp.note, delivered) == (1, 0)  # delivered twice: applied once
        reg.require_active(city.agency_id)
        with pytest.raises(FailedPreconditionError, match="bound to the commission"):
            reg.add_pia(city.agency_id, "評価書", approved_on=TODAY, expires_on=TODAY)
    # A row an operator edits in the database counts for nothing without the signed record.
    edit = ("UPDATE commission_pias SET state = 'approved', approved_on = '2020-01-01', expires_on = '2099-01-01' "
            "WHERE pia_id = ?")
    review.decide(pia.pia_id, "revoked", reviewer="委員会 審査官", reason="取り消し")
    cp, decisions = review.decisions(first=2)
    with AgencyRegistry(core) as reg:
        assert reg.commission is not None
        reg.commission.apply(cp.note, [(x.seq, x.entry, x.proof) for x in decisions])
        assert reg.pia_status(city.agency_id) == "revoked"
    if driver is None:
        import sqlite3

        db = sqlite3.connect(core.path / "registry.sqlite3")
        db.execute(edit, (pia.pia_id,))
        db.commit()
        db.close()
    else:
        with psycopg.connect(driver, autocommit=True) as conn:
            conn.execute(edit.replace("?", "%s").replace("commission_pias", "registry.commission_pias"),
                         (pia.pia_id,))
    with AgencyRegistry(core) as reg, pytest.raises(PiaNotApprovedError, match="lacks the commission's signed"):
        reg.require_active(city.agency_id)
    review.close()


def _ordinance_doc() -> dict[str, Any]:
    bundled = json.loads(pm.default_table_path().read_text(encoding="utf-8"))
    return pm.with_ordinance(
        bundled, municipality="131016", label="chiyoda-2021", effective_from="2021-04-01T00:00:00+09:00",
        affairs=[{"id": "131016-kosodate", "code": "O131016.1", "name": "千代田区子育て支援条例による給付の事務",
                  "codes": ["JT13101600000001"]}],
        rows=[{"ref": "O131016.1.1", "affair": "131016-kosodate", "requesters": ["municipal_mayor"],
               "providers": ["municipal_mayor"], "items": ["local_tax_info"]}],
    )


def test_permission_versions_on_both_drivers(tmp_path: Path, driver: str | None) -> None:
    d = bound_dir(tmp_path / "core", driver)
    doc = _ordinance_doc()
    with PermissionStore(d) as store:
        h = store.install(doc, actor="千代田区", note="条例", staged=True)
        assert [(v.label, v.active) for v in store.stored()] == [("chiyoda-2021", False)]
        assert store.documents() == []
        assert store.activate("chiyoda-2021", actor="ops").active
        store.install(doc, actor="千代田区")  # the same label again: replaced, with the same hash
        bad = json.loads(json.dumps(doc))
        bad["rows"][-1]["items"] = ["nope"]
        with pytest.raises(InvalidArgumentError):
            store.install(bad, actor="x")
        with pytest.raises(NotFoundError):
            store.activate("nope", actor="ops")
    with PermissionStore(d, read_only=True) as store:
        assert [v.label for v in store.engine().versions()] == ["beppyo2-2015", "chiyoda-2021"]
        assert store.version("chiyoda-2021").hash == h
        assert [(x.action, x.label, x.actor) for x in store.history()] == [
            ("stage", "chiyoda-2021", "千代田区"), ("activate", "chiyoda-2021", "ops"),
            ("install", "chiyoda-2021", "千代田区")]
    tables = PermissionTables.open(d)
    assert "chiyoda-2021" in [v.label for v in tables.engine.versions()]
    tables.close()
    with PermissionStore(d) as store:
        store.remove("chiyoda-2021", actor="ops")
        with pytest.raises(NotFoundError):
            store.remove("chiyoda-2021", actor="ops")
        assert store.stored() == [] and store.history()[-1].action == "remove"
    assert (d.path / "permissions.sqlite3").exists() == (driver is None)


def test_a_front_end_follows_the_permission_versions_another_one_changes(tmp_path: Path, driver: str | None) -> None:
    """Two PermissionTables on one store (two front-ends, or the CLI on another host while the
    core runs): what one installs, stages, activates or removes, the other's engine takes up at
    its next refresh — and a refresh with nothing new changes nothing."""
    d = bound_dir(tmp_path / "core", driver)
    a, b = PermissionTables.open(d), PermissionTables.open(d)
    labels = lambda t: ([v.label for v in t.versions() if v.active],  # noqa: E731
                        [v.label for v in t.versions() if not v.active])
    assert not b.refresh()
    doc = json.dumps(_ordinance_doc()).encode()
    a.load(doc, "", "", "条例", actor="千代田区")
    assert labels(b) == (["beppyo2-2015"], []) and b.refresh() and not b.refresh()
    assert labels(b) == (["beppyo2-2015", "chiyoda-2021"], [])
    in_a = {v.label: v.version_hash for v in a.versions()}
    assert {v.label: v.version_hash for v in b.versions()} == in_a
    a.remove("chiyoda-2021", actor="ops")
    staged = json.loads(doc)
    staged["label"] = "chiyoda-2022"
    staged["effective_from"] = "2022-04-01T00:00:00+09:00"
    a.load(json.dumps(staged).encode(), "", "", "条例 改正", actor="千代田区", staged=True)
    assert b.refresh() and labels(b) == (["beppyo2-2015"], ["chiyoda-2022"])
    a.activate("chiyoda-2022", actor="ops")
    assert b.refresh() and labels(b) == (["beppyo2-2015", "chiyoda-2022"], [])
    # B decides by it too: the engine itself was changed, not only the listing.
    assert [v.label for v in b.engine.versions()] == [v.label for v in a.engine.versions()]
    a.close()
    b.close()


def test_a_core_keeps_the_store_it_was_created_with(tmp_path: Path, pg: PgCluster,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    url = pg.create_database("renkei_binding")
    d = init_core(tmp_path / "core", demo=True, store=url)
    assert store_conninfo(d) == url
    assert stat.S_IMODE(os.stat(d.path / BINDING).st_mode) == 0o600  # a URL may hold a password
    assert describe_store(d).startswith("postgresql host=127.0.0.1,127.0.0.1")
    assert not (d.path / "registry.sqlite3").exists()
    init_core(tmp_path / "core", store=url)  # init again: the same store
    with pytest.raises(FailedPreconditionError, match="fixed at init"):
        init_core(tmp_path / "core", store="embedded")
    with pytest.raises(FailedPreconditionError, match="fixed at init"):
        init_core(tmp_path / "core", store=pg.create_database("renkei_other"))
    require_store(d, url)
    with pytest.raises(FailedPreconditionError, match="not the --store given"):
        require_store(d, "embedded")
    # An embedded core's directory is not moved to PostgreSQL behind its back.
    init_core(tmp_path / "plain")
    with pytest.raises(FailedPreconditionError, match="chosen when its data directory is created"):
        init_core(tmp_path / "plain", store=url)
    with pytest.raises(InvalidArgumentError, match="--store is"):
        init_core(tmp_path / "bad", store="mysql://x")
    assert not (tmp_path / "bad").exists()
    # The CLI's offline reads see the PostgreSQL registry (the demo agencies).
    assert cli.main(["core", "status", "--data-dir", str(d.path), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["agencies"] > 0 and status["running"] == "no" and status["store"] == describe_store(d)
    assert cli.main(["core", "serve", "--data-dir", str(d.path), "--store", "embedded"]) != 0
    assert "not the --store given" in capsys.readouterr().err


def test_an_unreachable_store_is_unavailable_and_never_shows_the_password(pg: PgCluster) -> None:
    from renkei.errors import NotInitializedError
    from renkei.store.postgres import PostgresDatabase
    from tests.pg_cluster import free_port

    url = f"postgresql://renkei:s3cret-pw@127.0.0.1:{free_port()}/renkei?connect_timeout=1"
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="cannot be reached") as e:
        PostgresDatabase(url, "registry", "CREATE TABLE IF NOT EXISTS t (a int)", reconnect_s=1.0)
    assert "s3cret" not in str(e.value) and 1.0 <= time.monotonic() - started < 10
    with pytest.raises(InvalidArgumentError) as bad:
        PostgresDatabase("postgresql://renkei:s3cret-pw@[::1", "registry", None)
    assert "s3cret" not in str(bad.value)
    # Read-only (the CLI) on a database the core never initialised: said so, nothing created.
    fresh = pg.create_database("renkei_fresh")
    with pytest.raises(NotInitializedError, match="core init --store"):
        PostgresDatabase(fresh, "registry", None, read_only=True)
    with pg.primary.connect("renkei_fresh") as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'registry'"
                            ).fetchone() == (0,)


def test_two_front_ends_serialise_their_writes(tmp_path: Path, pg: PgCluster) -> None:
    """Two registries on one database (two front-ends): the clash check inside a transaction
    holds across them — of 2 × 20 racing registrations of the same 20 agencies, 20 succeed."""
    url = pg.create_database("renkei_two")
    a, b = bound_dir(tmp_path / "a", url), core_dir(tmp_path / "b")
    (b.path / BINDING).write_text(url)
    ok: list[int] = []
    clashes: list[int] = []

    def run(registry: AgencyRegistry) -> None:
        for i in range(20):
            try:
                ok.append(registry.register_agency(f"機関{i}", ["japan_pension_service"], corporate(i)).agency_id)
            except AlreadyExistsError:
                clashes.append(i)

    with AgencyRegistry(a) as ra, AgencyRegistry(b) as rb:
        threads = [threading.Thread(target=run, args=(r,)) for r in (ra, rb)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(ok) == 20 and len(clashes) == 20
        assert sorted(x.agency_id for x in rb.agencies()) == sorted(ok)


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_kill_9_of_the_primary_loses_no_acknowledged_registration(tmp_path: Path) -> None:
    """Writers register agencies through the registry while the primary is killed with SIGKILL;
    the standby is promoted; the writers reconnect by themselves (both hosts in the URL). Every
    registration that returned is on the new primary; calls in between fail with
    StoreUnavailableError (UNAVAILABLE), never silently."""
    cluster = PgCluster.start()
    try:
        url = cluster.create_database("renkei_failover")
        d = bound_dir(tmp_path / "core", url)
        acked: dict[int, str] = {}
        failed: list[float] = []
        stop = threading.Event()
        killed_at: list[float] = []
        first_after: list[float] = []
        counter = iter(range(1, 1_000_000))
        lock = threading.Lock()

        def writer() -> None:
            with AgencyRegistry(d) as reg:
                while not stop.is_set():
                    with lock:
                        i = next(counter)
                    name = f"機関{i}"
                    started = time.monotonic()
                    try:
                        agency = reg.register_agency(name, ["japan_pension_service"], corporate(i))
                    except StoreUnavailableError:
                        failed.append(time.monotonic())
                        continue
                    now = time.monotonic()
                    with lock:
                        acked[agency.agency_id] = name
                        # The first call begun after the kill that was acknowledged.
                        if killed_at and started > killed_at[0] and not first_after:
                            first_after.append(now)

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.5)
        before = len(acked)
        killed_at.append(time.monotonic())
        cluster.kill_primary()
        time.sleep(0.5)  # the failover manager's detection (Patroni: its loop_wait); then promote
        cluster.promote()
        deadline = time.monotonic() + 30
        while (not first_after or len(acked) < before + 50) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert first_after, "no registration was acknowledged after the promote"
        failover_s = first_after[0] - killed_at[0]
        print(f"\nfailover: {before} registrations acknowledged before the kill, {len(acked)} in all; "
              f"first acknowledged {failover_s:.2f} s after kill -9; {len(failed)} calls failed (UNAVAILABLE)")
        assert failover_s < 15
        with AgencyRegistry(d) as reg:
            held = {a.agency_id: a.name for a in reg.agencies()}
        lost = {k: v for k, v in acked.items() if held.get(k) != v}
        assert lost == {}, f"acknowledged registrations lost: {sorted(lost)[:10]}"
        with cluster.primary.connect() as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    finally:
        cluster.stop()


@pytest.mark.slow
@pytest.mark.skipif(pg_bindir() is None, reason="PostgreSQL server binaries are not installed")
def test_a_running_core_rides_through_a_failover_of_its_store(tmp_path: Path) -> None:
    """The box's core on PostgreSQL; the operator registers agencies through AdminService while
    the primary is killed (SIGKILL) and the standby promoted. The core is not restarted: calls
    in between fail UNAVAILABLE (STORE_UNAVAILABLE), never INTERNAL; every acknowledged agency
    is there afterwards, through the same running core, which also follows a permission version
    installed into the store by another process."""
    import grpc

    from renkei import client
    from renkei._proto.renkei.v1 import admin_service_pb2 as apb
    from renkei.service.status import error_info
    from tests.grpc_server import start_box

    cluster = PgCluster.start()
    try:
        box = start_box(tmp_path / "box", "--core-store", cluster.create_database("renkei_box"))
        try:
            acked: dict[int, str] = {}
            unavailable: list[str] = []
            other: list[str] = []
            stop = threading.Event()
            marks: dict[str, float] = {}

            def operator() -> None:
                with box.channel("operator") as ch:
                    admin = client.AdminServiceStub(ch)
                    i = 0
                    while not stop.is_set():
                        i += 1
                        name = f"機関{i}"
                        started = time.monotonic()
                        try:
                            a = admin.CreateAgency(apb.CreateAgencyRequest(
                                name=name, type_ids=["japan_pension_service"], corporate_number=corporate(10_000 + i)),
                                timeout=40)
                        except grpc.RpcError as e:
                            info = error_info(e)
                            if e.code() == grpc.StatusCode.UNAVAILABLE and info is not None \
                                    and info.reason == "STORE_UNAVAILABLE":
                                unavailable.append(name)
                            elif e.code() == grpc.StatusCode.ALREADY_EXISTS:
                                pass  # a retry of a call whose commit had happened (not retried here)
                            else:
                                other.append(f"{e.code()} {e.details()}")
                            continue
                        acked[a.agency_id] = name
                        if "killed" in marks and started > marks["killed"] and "first_after" not in marks:
                            marks["first_after"] = time.monotonic()

            thread = threading.Thread(target=operator)
            thread.start()
            time.sleep(2.0)
            before = len(acked)
            marks["killed"] = time.monotonic()
            cluster.kill_primary()
            time.sleep(0.5)
            cluster.promote()
            deadline = time.monotonic() + 40
            while ("first_after" not in marks or len(acked) < before + 20) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            thread.join(timeout=60)
            assert other == []
            assert "first_after" in marks, "the running core acknowledged nothing after the promote"
            failover_s = marks["first_after"] - marks["killed"]
            print(f"\ncore failover: {before} agencies acknowledged before the kill, {len(acked)} in all; first "
                  f"acknowledged {failover_s:.2f} s after kill -9; {len(unavailable)} calls UNAVAILABLE")
            assert failover_s < 15
            with box.channel("operator") as ch:
                admin = client.AdminServiceStub(ch)
                for agency_id, name in acked.items():
                    assert admin.GetAgency(apb.GetAgencyRequest(agency_id=agency_id), timeout=10).name == name
                # A version installed into the store by someone else (another front-end, the CLI on
                # another host): the running core follows it, also after the failover.
                other = PermissionTables.open(DataDir(box.data_dir("core"), "core"))
                other.load(json.dumps(_ordinance_doc()).encode(), "", "", "条例", actor="千代田区")
                other.close()
                installed = time.monotonic()
                while "chiyoda-2021" not in [v.label for v in admin.ListPermissionTables(
                        apb.ListPermissionTablesRequest(), timeout=10).versions]:
                    assert time.monotonic() - installed < 15, "the core did not follow the installed version"
                    time.sleep(0.1)
                print(f"the core followed a version installed elsewhere after {time.monotonic() - installed:.2f} s")
        finally:
            rc, out = box.terminate()
        assert rc == 0, out[-3000:]
    finally:
        cluster.stop()
