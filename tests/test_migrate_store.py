"""``renkei core migrate-store`` (renkei.store.migrate, docs/arch/store.md "Moving an embedded
core"): an embedded core with agencies, holdings, inquiries recorded in its ledger and a witness's
cosignature moves onto PostgreSQL; opened there, its codes translate the same, its old records
prove into the new checkpoint, the witness's old checkpoint is consistent with a new one, a person's
records are found by pseudonym, and rows inserted afterwards do not collide. Plus the refusals
(bound, running, a database that holds a core) and a crash between components, re-run."""

from __future__ import annotations

import ast
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei import cli
from renkei.datadir import DataDir
from renkei.ledger import Checkpoint, Ledger, open_ledger, verify_consistency, verify_inclusion
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.cosigning import CosignatureStore
from renkei.linkage.inquiry import Linkage
from renkei.linkage.registry import AgencyRegistry
from renkei.numbers import corporate_check_digit
from renkei.permissions.store import PermissionStore
from renkei.permissions.tables import PermissionTables
from renkei.permits import PermitIssuer
from renkei.service.core import init_data_dir as init_core
from renkei.store import BINDING, store_conninfo
from renkei.store.migrate import COMPONENT_MODULES, FAULT_ENV, components
from renkei.witness.cosignature import CosignatureKey
from tests.garage_server import GarageServer, garage_binary
from tests.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent
MINISTER, CHIYODA = 4, 1
AFFAIR, ITEM = "B2.1", "B2.1.2.1"  # 別表第二 項1 (row B2.1.2: 厚生労働大臣 ← 市町村長)
PERSONS = 300


@dataclass
class Built:
    """What the embedded core held before the move (nothing here is a My Number)."""

    path: Path
    links: bytes
    mine: bytes  # the minister's codes
    translated: bytes  # the same persons' codes at Chiyoda, as the embedded core translated them
    checkpoint: Checkpoint
    witnessed: Checkpoint  # an older checkpoint the witness cosigned (not a history size)
    witness_vkey: str
    pseudonym: bytes
    person_seqs: list[int]
    agencies: list[int]


def _linkage(d: DataDir) -> tuple[Linkage, AgencyRegistry, AgencyCodes, object]:
    registry = AgencyRegistry(d)
    codes = AgencyCodes(d, registry)
    tables = PermissionTables.open(d)
    ledger = open_ledger(d)
    linkage = Linkage(registry, codes, tables.engine, PermitIssuer.from_datadir(d), ledger,
                      d.secret_key("portal-pseudonym"))
    return linkage, registry, codes, ledger


def _close(registry: AgencyRegistry, codes: AgencyCodes, ledger: object) -> None:
    ledger.close()  # type: ignore[attr-defined]
    codes.close()
    registry.close()


def build_core(path: Path, seed: int = 1) -> Built:
    d = init_core(path, demo=True)
    rng = random.Random(seed)
    links = rng.randbytes(16 * PERSONS)
    linkage, registry, codes, ledger = _linkage(d)
    try:
        mine = codes.issue(MINISTER, links)
        codes.issue(CHIYODA, links)
        translated, status = codes.translate_batch(MINISTER, mine, CHIYODA)
        assert (status == 0).all()
        registry.register_card_key(b"k" * 32, b"p" * 32, 7)
        from tests.test_store import _ordinance_doc

        with PermissionStore(d) as permissions:  # three history rows: staged, activated, installed again
            permissions.install(_ordinance_doc(), actor="千代田区", staged=True)
            permissions.activate("chiyoda-2021", actor="ops")
            permissions.install(_ordinance_doc(), actor="千代田区")
        assert isinstance(ledger, Ledger)
        # Inquiries in batches: the first 100 records are what the witness cosigns.
        linkage.batch_inquire(MINISTER, mine[:16 * 100], AFFAIR, CHIYODA, [ITEM], "r0")
        witnessed = ledger.checkpoint()
        key = CosignatureKey("witness.example/w1", bytes(range(32)))
        cosignatures = CosignatureStore(d)
        cosignatures.record(key.vkey, witnessed.size, witnessed.note, key.cosign(witnessed.note, 1_700_000_000),
                            1_700_000_000)
        cosignatures.close()
        for i in range(1, 7):
            linkage.batch_inquire(MINISTER, mine[16 * 50 * i:16 * 50 * (i + 1)] or mine[:16 * 50], AFFAIR, CHIYODA,
                                  [ITEM], f"r{i}")
        for i in range(5):  # the same person several times
            linkage.inquire(MINISTER, mine[16 * 7:16 * 8], AFFAIR, CHIYODA, [ITEM], f"s{i}")
        ledger.retention()  # nothing is old enough: a no-op, but the path is the file ledger's
        # お知らせ and 委任 are not on the store boundary yet: their files stay in the directory.
        from renkei.linkage.delegation import DelegationBook
        from renkei.linkage.notices import NoticeBox

        NoticeBox(d).close()
        DelegationBook(d).close()
        cp = ledger.checkpoint()
        record = ledger.get(cp.size - 1)
        assert record is not None
        page = ledger.records_for_pseudonym(record.pseudonym, page_size=100)
        agencies = [a.agency_id for a in registry.agencies()]
    finally:
        _close(registry, codes, ledger)
    return Built(path, links, mine, translated, cp, witnessed, key.vkey, record.pseudonym,
                 [r.record.seq for r in page.records], agencies)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_core(tmp_path_factory.mktemp("embedded") / "core")


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, symlinks=True)
    return dst


def migrate(path: Path, url: str, *extra: str) -> int:
    return cli.main(["core", "migrate-store", "--data-dir", str(path), "--store", url, *extra])


def check_moved(b: Built, path: Path) -> None:
    """The moved core on PostgreSQL: everything the embedded one had, and it goes on."""
    d = DataDir(path, "core")
    assert store_conninfo(d) is not None
    linkage, registry, codes, ledger = _linkage(d)
    try:
        assert ledger.kind == "postgresql"  # type: ignore[attr-defined]
        # Codes translate as before; the person index kept its order.
        out, status = codes.translate_batch(MINISTER, b.mine, CHIYODA)
        assert (status == 0).all() and out == b.translated
        assert codes.person_count() == PERSONS
        # The same tree: the checkpoint as it was, signed by the same key.
        assert ledger.checkpoint().note == b.checkpoint.note  # type: ignore[attr-defined]
        assert [a.agency_id for a in registry.agencies()] == b.agencies
        assert registry.card_key(b"k" * 32) == (b"p" * 32, 7)
        # More records after the move.
        linkage.batch_inquire(MINISTER, b.mine[:16 * 40], AFFAIR, CHIYODA, [ITEM], "after")
        linkage.inquire(MINISTER, b.mine[16 * 7:16 * 8], AFFAIR, CHIYODA, [ITEM], "after-1")
        new = ledger.checkpoint()  # type: ignore[attr-defined]
        assert new.size == b.checkpoint.size + 41
        # Old records prove into the new checkpoint; the old checkpoints are consistent with it.
        for seq in (0, 99, 255, 256, b.checkpoint.size - 1):
            p = ledger.prove_inclusion(seq, new.size)  # type: ignore[attr-defined]
            verify_inclusion(seq, new.size, p.leaf_hash, p.hashes, new.root)
        for old in (b.checkpoint, b.witnessed):
            c = ledger.prove_consistency(old.size, new.size)  # type: ignore[attr-defined]
            verify_consistency(old.size, new.size, old.root, new.root, c.hashes)
        # やりとり履歴: the person's records by pseudonym, the old ones and the new one.
        page = ledger.records_for_pseudonym(b.pseudonym, page_size=100)  # type: ignore[attr-defined]
        seqs = [r.record.seq for r in page.records]
        assert [s for s in seqs if s < b.checkpoint.size] == b.person_seqs
        assert len([s for s in seqs if s >= b.checkpoint.size]) == 2  # in the batch and alone
        for r in page.records:
            r.proof.verify()
            assert r.proof.root == new.root
        ledger.verify()  # type: ignore[attr-defined]
        # Rows inserted after the move take the next ids (identity counters were set).
        top = max(b.agencies)
        base = "000000000999"
        added = registry.register_agency("テスト機関", ["japan_pension_service"],
                                         f"{corporate_check_digit(base)}{base}")
        assert added.agency_id == top + 1
        store = PermissionStore(d)
        try:
            assert [(x.action, x.label) for x in store.history()] == [
                ("stage", "chiyoda-2021"), ("activate", "chiyoda-2021"), ("install", "chiyoda-2021")]
            before = 3
            with store._db.transaction() as tx:
                (seq,) = tx.one("INSERT INTO history(at, action, label, hash, actor, note) "
                                "VALUES (1, 'remove', 'x', NULL, 'test', NULL) RETURNING seq") or (0,)
            assert seq == before + 1
        finally:
            store.close()
        # The witness's cosignature moved with its checkpoint.
        cos = CosignatureStore(d)
        try:
            got = cos.cosigned(b.witnessed.size)
            assert got is not None and got[0] == b.witnessed.note
            assert cos.witness_size(b.witness_vkey) == b.witnessed.size
        finally:
            cos.close()
    finally:
        _close(registry, codes, ledger)


def test_an_embedded_core_moves_onto_postgresql(built: Built, tmp_path: Path, pg: PgCluster,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    path = _copy(built.path, tmp_path / "core")
    url = pg.create_database("renkei_migrate_1")
    assert migrate(path, url) == 0
    out, err = capfd.readouterr()
    assert "ledger: checked" in err and "holdings: checked" in err and "switched" in err
    assert "persons" in out and str(PERSONS) in out
    # Every SQLite file is copied (a component on the store) or stays and is listed (today:
    # notices and delegations, not on the store boundary yet).
    files = sorted(path.glob("*.sqlite3"))
    assert {"notices.sqlite3", "delegations.sqlite3"} <= {f.name for f in files}
    for f in files:
        assert f.stem in components() or f.name in out, f.name
    # Never a link id or a code in what the command prints.
    for i in range(PERSONS):
        for secret in (built.links[16 * i:16 * i + 16].hex(), built.mine[16 * i:16 * i + 16].hex()):
            assert secret not in out + err
    # The embedded files stay (the rollback) and the binding is 0600.
    assert (path / "registry.sqlite3").exists() and (path / "ledger" / "checkpoint").exists()
    assert oct((path / BINDING).stat().st_mode & 0o777) == "0o600"
    check_moved(built, path)
    # Bound now: a second run is refused.
    assert migrate(path, url) == 1
    assert "bound to PostgreSQL already" in capfd.readouterr().err


def test_a_running_core_and_a_database_holding_a_core_are_refused(built: Built, tmp_path: Path, pg: PgCluster,
                                                                 capfd: pytest.CaptureFixture[str]) -> None:
    path = _copy(built.path, tmp_path / "core")
    url = pg.create_database("renkei_migrate_2")
    # The serving core holds its ledger's writer lock (the same flock as here).
    serving = Ledger(DataDir(path, "core"))
    try:
        assert migrate(path, url) == 1
        assert "the core is running" in capfd.readouterr().err
    finally:
        serving.close()
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name IN "
                            "('registry', 'ledger', 'holdings', 'renkei_migration')").fetchone() == (0,)
    # A database a core was initialised on.
    init_core(tmp_path / "other", store=url)
    assert migrate(path, url) == 1
    assert "already holds a core's schemas" in capfd.readouterr().err
    assert not (path / BINDING).exists()


@pytest.mark.parametrize("step", ["registry", "holdings", "ledger", "checked"])
def test_a_crash_mid_migration_is_finished_by_running_it_again(built: Built, tmp_path: Path, pg: PgCluster,
                                                               step: str, capfd: pytest.CaptureFixture[str]) -> None:
    path = _copy(built.path, tmp_path / "core")
    url = pg.create_database(f"renkei_migrate_crash_{step}")
    env = {**os.environ, FAULT_ENV: step,
           "PYTHONPATH": os.pathsep.join([str(ROOT / "pyservice"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "renkei.cli", "core", "migrate-store", "--data-dir", str(path),
                           "--store", url], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 137, proc.stderr
    assert not (path / BINDING).exists()  # the switch never happened: the embedded core is as it was
    # Another core's migration may not take the database over.
    with psycopg.connect(url, autocommit=True) as conn:
        (source,) = conn.execute("SELECT source FROM renkei_migration.migration").fetchone() or ("",)
        conn.execute("UPDATE renkei_migration.migration SET source = 'another'")
        assert migrate(path, url) == 1
        assert "another core's migration" in capfd.readouterr().err
        conn.execute("UPDATE renkei_migration.migration SET source = %s", (source,))
    assert migrate(path, url) == 0
    assert "an interrupted migration of this core found" in capfd.readouterr().err
    check_moved(built, path)


def test_every_component_on_the_store_is_migrated() -> None:
    """Every module that opens a database on the store boundary is listed in COMPONENT_MODULES
    and registers the component it opens, so migrate-store copies it (a new component left
    out would be left behind in its SQLite file)."""
    names = set(components())
    pkg = ROOT / "pyservice" / "renkei"
    for path in pkg.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "open_database" and \
                    len(node.args) >= 2:
                arg = node.args[1]
                module = ".".join(("renkei", *path.relative_to(pkg).with_suffix("").parts))
                if module == "renkei.store":
                    continue
                assert module in COMPONENT_MODULES, f"{module} opens a component: list it in COMPONENT_MODULES"
                if isinstance(arg, ast.Constant):
                    assert arg.value in names, f"{module}: component {arg.value!r} is not registered"



@pytest.mark.skipif(garage_binary() is None, reason="garage is not built (make builds it)")
def test_the_tiles_move_to_an_object_store(built: Built, tmp_path: Path, pg: PgCluster,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    """--tiles: the public tiles and bundles go to a real S3-compatible server (Garage), none to
    PostgreSQL; the core then reads and grows its tree there."""
    from renkei.store import TILES_BINDING, TILES_CREDENTIALS
    from renkei.store.objects import S3TileStore

    path = _copy(built.path, tmp_path / "core")
    url = pg.create_database("renkei_migrate_s3")
    with GarageServer.start(tmp_path / "garage") as garage:
        tiles, credentials = garage.bucket("tiles")
        assert migrate(path, url, "--tiles", tiles, "--tiles-credentials", str(credentials)) == 0
        assert "ledger: 0 tiles" not in capfd.readouterr().err
        assert (path / TILES_BINDING).read_text().strip() == tiles
        assert oct((path / TILES_CREDENTIALS).stat().st_mode & 0o777) == "0o600"
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM ledger.tiles").fetchone() == (0,)
        store = S3TileStore(tiles, credentials)
        try:
            stored = set(store.paths())
        finally:
            store.close()
        assert "tile/0/000" in stored and "tile/entries/000" in stored
        check_moved(built, path)


def test_a_core_bound_to_the_commission_moves_with_its_decisions(tmp_path: Path, pg: PgCluster) -> None:
    """The commission's decisions (projection and evidence) are part of the registry; a core with
    an empty ledger and no holdings moves too."""
    import datetime as dt

    from renkei.ppc.review import PiaReview
    from renkei.ppc.review import init_data_dir as init_ppc
    from tests.test_store import submission

    today = dt.date.today()
    review = PiaReview(init_ppc(tmp_path / "ppc"))
    core = init_core(tmp_path / "core", commission_vkey=review.vkey)
    with AgencyRegistry(core) as reg:
        city = reg.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
        pia = review.submit(submission(city.agency_id))
        review.decide(pia.pia_id, "approved", reviewer="委員会 審査官", approved_on=today,
                      expires_on=today + dt.timedelta(days=365))
        cp, decisions = review.decisions(first=0)
        assert reg.commission is not None
        assert reg.commission.apply(cp.note, [(x.seq, x.entry, x.proof) for x in decisions]) == (1, 2)
    url = pg.create_database("renkei_migrate_commission")
    assert migrate(core.path, url) == 0
    with AgencyRegistry(core) as reg:
        assert reg.commission is not None and reg.commission.applied_through() == 1
        assert reg.require_active(city.agency_id).name == "横浜市長"
        # The next decision applies on PostgreSQL from where the embedded core left off.
        review.decide(pia.pia_id, "revoked", reviewer="委員会 審査官", reason="取り消し")
        cp, decisions = review.decisions(first=2)
        reg.commission.apply(cp.note, [(x.seq, x.entry, x.proof) for x in decisions])
        assert reg.pia_status(city.agency_id) == "revoked"
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM registry.commission_evidence").fetchone() == (3,)
    ledger = open_ledger(core, background=False)
    try:
        assert ledger.size == 0 and ledger.kind == "postgresql"  # type: ignore[attr-defined]
    finally:
        ledger.close()


def test_a_ledger_after_retention_moves_with_its_minimum(tmp_path: Path, pg: PgCluster) -> None:
    """Records past retention (施行令 第30条) have no body or opening in the files: the move keeps
    the minimum, the retired records' proofs (their hashes stay in the tiles) and the rest."""
    import hashlib
    from datetime import UTC, datetime

    from renkei.ledger import LedgerRecord

    d = init_core(tmp_path / "core")

    def rec(i: int, year: int) -> LedgerRecord:
        return LedgerRecord(requester=1, provider=2, affair="B2.1", items=("B2.1.2.1",),
                            table_hash=hashlib.sha256(b"t").digest(), pseudonym=hashlib.sha256(bytes([i % 3])).digest(),
                            permit_id=(i + 1).to_bytes(16, "big"), time=datetime(year, 1, 1, tzinfo=UTC))

    with Ledger(d) as ledger:
        ledger.append_batch([rec(i, 2015) for i in range(600)])
        ledger.append_batch([rec(i, 2026) for i in range(600, 700)])
        assert ledger.retention() == 512
        old = ledger.checkpoint()
        kept = ledger.get(650)
        page = [r.record.seq for r in ledger.records_for_pseudonym(hashlib.sha256(bytes([1])).digest()).records]
    url = pg.create_database("renkei_migrate_retention")
    assert migrate(d.path, url) == 0
    moved = open_ledger(d, background=False)
    try:
        assert moved.kind == "postgresql" and moved.min_index() == 512  # type: ignore[attr-defined]
        assert moved.checkpoint().note == old.note
        assert moved.get(0) is None and moved.get(650) == kept
        p = moved.prove_inclusion(3)
        p.verify()
        assert p.root == old.root
        got = [r.record.seq for r in moved.records_for_pseudonym(hashlib.sha256(bytes([1])).digest()).records]
        assert got == page and min(got) >= 512
        moved.verify()
    finally:
        moved.close()


def test_a_serving_core_is_refused_and_moves_once_stopped(tmp_path: Path, pg: PgCluster,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    """A real `renkei core serve` on the directory: refused (its writer locks); stopped: moved,
    and serving again from PostgreSQL."""
    import signal
    import time

    from renkei.ledger import ledger_vkey
    from renkei.pki.ca import DevelopmentCA
    from renkei.ppc.review import LOG_DIR, LOG_KEY
    from renkei.ppc.review import init_data_dir as init_ppc

    data = tmp_path / "core"
    _log, commission_vkey = ledger_vkey(init_ppc(tmp_path / "ppc"), key_name=LOG_KEY, subdir=LOG_DIR)
    init_core(data, commission_vkey=commission_vkey)
    DevelopmentCA.init(tmp_path / "pki").issue_service("core", data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "pyservice"), str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}

    def serve() -> tuple[subprocess.Popen[bytes], Path]:
        ready = tmp_path / f"ready-{time.monotonic_ns()}.json"
        proc = subprocess.Popen([sys.executable, "-m", "renkei.cli", "core", "serve", "--data-dir", str(data),
                                 "--port", "0", "--public-port", "0", "--ready-file", str(ready)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the core did not start"
            time.sleep(0.05)
        return proc, ready

    def stop(proc: subprocess.Popen[bytes]) -> None:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0

    url = pg.create_database("renkei_migrate_serving")
    proc, _ = serve()
    try:
        assert migrate(data, url) == 1
        assert "the core is running" in capfd.readouterr().err
        assert not (data / BINDING).exists()
    finally:
        stop(proc)
    assert migrate(data, url) == 0
    proc, _ = serve()
    try:
        assert cli.main(["--json", "core", "status", "--data-dir", str(data)]) == 0
        assert "postgresql" in capfd.readouterr().out
    finally:
        stop(proc)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 1500), st.integers(0, 1500), st.integers(0, 2**32))
def test_the_edge_and_the_narrowed_partials_are_the_engine_s(first: int, more: int, seed: int) -> None:
    """The two pieces migrate-store adds to the tree's code, against the engine: the right edge
    rebuilt from the partial tiles of a size equals the edge the engine's integration keeps (and
    gives its root); a partial tile the file ledger deleted, cut from the tile that superseded
    it, equals the engine's bytes at the older size."""
    from renkei._core import ledger as _l
    from renkei.store.migrate import edge_from_tiles
    from renkei.store.pgledger import narrowed_tile
    from renkei.store.tlog import tile_path

    rng = random.Random(seed)
    entries = [rng.randbytes(rng.randint(1, 40)) for _ in range(first + more)]
    packed = [b"".join(len(e).to_bytes(2, "big") + e for e in part) for part in (entries[:first], entries[first:])]
    edge1, n1, _root1, tiles1 = _l.integrate_leaves(b"", packed[0])
    edge2, n2, root2, tiles2 = _l.integrate_leaves(edge1, packed[1]) if more else (edge1, n1, _root1, [])
    older, latest = dict(tiles1), {**dict(tiles1), **dict(tiles2)}
    assert edge_from_tiles(lambda p: latest[p], n2) == edge2
    assert _l.edge_root(edge_from_tiles(lambda p: latest[p], n2)) == (n2, root2)
    # The file ledger keeps the full tiles and the partials of its latest size only: every older
    # partial is derived from what stays.
    current = {tile_path(level, (n2 >> 8 * level) // 256, (n2 >> 8 * level) % 256) for level in range(3)}
    current.add(tile_path(None, n2 // 256, n2 % 256))
    stays = {k: v for k, v in latest.items() if ".p/" not in k or k in current}
    for path, data in older.items():
        if path in stays:
            continue
        base = path.partition(".p/")[0]
        wider = stays.get(base) or next(v for k, v in stays.items() if k.startswith(base + ".p/"))
        assert narrowed_tile(path, wider) == data
