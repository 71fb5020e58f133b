"""``renkei core migrate-store``: move an existing embedded core onto PostgreSQL (docs/arch/store.md,
"Moving an embedded core"; the operator's steps in docs/OPERATIONS.md).

The core must be stopped; its files are only read and stay where they are (the rollback). In order:

1. **Refusals before anything is written**: the directory is bound already; the core is serving
   (its ``ledger/`` and ``holdings/`` writer locks, the same ``flock`` the serving core holds, are
   taken here and kept to the end, and every component's SQLite file is held with ``BEGIN
   IMMEDIATE`` so no offline command writes behind the copy); the database holds a core's schemas
   that are not this core's interrupted migration.
2. **A marker** (schema ``renkei_migration``, the core's ledger verifier key and the state),
   committed before any core schema is made: a re-run after a crash finds it, drops what the
   interrupted run made and starts again; anything else in the way is refused.
3. **Components** (every one registered with :func:`renkei.store.register_component`: the
   registry with the commission's decisions and the card keys, the permission versions and their
   history, the cosignatures, …): the schema from the component's PostgreSQL DDL, then each table
   of its SQLite file copied by ``COPY`` in the PostgreSQL column order, parents before children,
   and every identity/serial counter set past the largest id (and past SQLite's AUTOINCREMENT
   counter), so a row inserted afterwards does not collide.
4. **Holdings**: the file store's person index and holdings as one complete snapshot
   (:func:`renkei.store.holdings.import_engine`), then loaded into a fresh in-memory index and
   compared range by range with the file store's.
5. **Ledger**: the same tree — every public tile and bundle (into ``tiles`` or the object store of
   ``--tiles``), the right edge rebuilt from the partial tiles, the latest signed checkpoint as it
   is (the same key signs the next), the checkpoint history, the private openings and the person
   index; then checked: the root at the same size, every stored checkpoint's root, every record and
   opening equal to the file ledger's, and the PostgreSQL ledger's own ``verify``.
6. **Switch**: the tiles binding, then ``store.conninfo`` (written atomically, fsynced) — the one
   step that moves the core. Nothing before it changes what the directory serves.

Progress goes to ``progress`` (the CLI: stderr); it never names a person, a link id or a code.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql as pgsql

from renkei.datadir import DataDir, write_atomic
from renkei.errors import FailedPreconditionError, InvalidArgumentError, LedgerDamageError, RenkeiError, StorageError
from renkei.store import (
    BINDING,
    COMPONENTS,
    TILES_BINDING,
    TILES_CREDENTIALS,
    check_store,
    component_schema,
    is_postgresql,
    store_conninfo,
)
from renkei.store.postgres import PostgresDatabase, describe

#: The modules whose components live on the store (each registers its schema at import). A
#: module that starts calling ``open_database`` is added here (tests/test_migrate_store.py checks).
COMPONENT_MODULES = ("renkei.linkage.registry", "renkei.linkage.commission", "renkei.permissions.store",
                     "renkei.linkage.cosigning", "renkei.linkage.acquisition", "renkei.linkage.disclosure",
                     "renkei.linkage.notices", "renkei.linkage.delegation")
#: The schemas of a core's state beside the components.
ENGINE_SCHEMAS = ("holdings", "ledger")
MARKER_SCHEMA = "renkei_migration"
#: Records per openings row, and per comparison step.
CHUNK = 65_536
#: Test seam: ``RENKEI_FAULT_MIGRATE_AFTER=<step>`` ends the process (exit 137, as a kill -9)
#: right after that step (a component's name, ``holdings``, ``ledger``, ``checked``).
FAULT_ENV = "RENKEI_FAULT_MIGRATE_AFTER"
_TILE = re.compile(r"^tile/(entries|[0-7])/(x\d{3}/)*\d{3}(\.p/\d{1,3})?$")

Progress = Callable[[str], None]


@dataclass
class Report:
    """What was moved (counts only: nothing here names a person)."""

    store: str
    components: dict[str, dict[str, int]] = field(default_factory=dict)
    persons: int = 0
    holdings: int = 0
    ledger_records: int = 0
    ledger_tiles: int = 0
    checkpoints: int = 0
    tiles: str = "postgresql"
    restarted: bool = False
    seconds: dict[str, float] = field(default_factory=dict)
    stays: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"store": self.store, "tiles": self.tiles, "components": self.components, "persons": self.persons,
                "holdings": self.holdings, "ledger_records": self.ledger_records, "ledger_tiles": self.ledger_tiles,
                "checkpoints": self.checkpoints, "restarted": self.restarted, "stays_embedded": self.stays,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def _fault(step: str) -> None:
    if os.environ.get(FAULT_ENV) == step:
        os._exit(137)


def components() -> dict[str, tuple[str, str]]:
    """Every registered component: name → (SQLite DDL, PostgreSQL DDL)."""
    for module in COMPONENT_MODULES:
        importlib.import_module(module)
    return {name: (component_schema(name, "sqlite"), component_schema(name, "postgresql")) for name in COMPONENTS}


def core_schemas() -> list[str]:
    return sorted({*components(), *ENGINE_SCHEMAS})


# -- the source: locks held for the whole migration ------------------------------------------


@contextlib.contextmanager
def _stopped_core(data_dir: DataDir) -> Iterator[tuple[Any, Any, Any]]:
    """The core's file ledger and holdings, opened as their writer (the serving core's locks):
    (Ledger, CodeEngine, AgencyRegistry read-only). Refused while the core runs."""
    from renkei._core import codes as _codes
    from renkei.ledger import Ledger
    from renkei.linkage.registry import AgencyRegistry

    def running(what: str) -> FailedPreconditionError:
        return FailedPreconditionError(
            f"{data_dir.path}'s {what} is in use by another process: the core is running (`renkei core serve` or "
            f"`renkei up`); stop it, then migrate its store")

    try:
        ledger = Ledger(data_dir)
    except StorageError as e:
        if "in use by another process" in str(e):
            raise running("ledger") from None
        raise
    try:
        registry = AgencyRegistry(data_dir, read_only=True)
        try:
            current, live = registry.epoch_state()
            try:
                engine = _codes.CodeEngine(data_dir.secret_key("agency-code"), str(data_dir.file("holdings")),
                                           current, live)
            except StorageError as e:
                if "in use by another process" in str(e):
                    raise running("holdings store") from None
                raise
            try:
                yield ledger, engine, registry
            finally:
                engine.close()
        finally:
            registry.close()
    finally:
        ledger.close()


@contextlib.contextmanager
def _held_sqlite(data_dir: DataDir, names: list[str]) -> Iterator[dict[str, sqlite3.Connection]]:
    """Each component's SQLite file with its write lock taken (``BEGIN IMMEDIATE``) until the
    switch: an offline command writing meanwhile waits and then fails, it is never lost."""
    held: dict[str, sqlite3.Connection] = {}
    try:
        for name in names:
            path = data_dir.path / f"{name}.sqlite3"
            if not path.exists():
                continue
            conn = sqlite3.connect(path, timeout=10, isolation_level=None)
            held[name] = conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError:
                raise FailedPreconditionError(f"{path.name} is being written by another process; stop it, "
                                              f"then migrate the store") from None
        yield held
    finally:
        for conn in held.values():
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            conn.close()


# -- the target: refusals and the marker -----------------------------------------------------


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        raise FailedPreconditionError(f"the store ({describe(conninfo)}) cannot be reached: "
                                      f"{str(e).strip().splitlines()[-1]}") from None


def _claim_target(conninfo: str, source: str, schemas: list[str], progress: Progress) -> bool:
    """Refuse a database holding another core's schemas; take it over from this core's
    interrupted migration (its schemas dropped). Whether a previous run was restarted."""
    with _connect(conninfo) as conn:
        existing = sorted(str(r[0]) for r in conn.execute(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(%s)",
            ([*schemas, MARKER_SCHEMA],)).fetchall())
        marker = None
        if MARKER_SCHEMA in existing:
            marker = conn.execute(pgsql.SQL("SELECT source, state FROM {}.migration WHERE id = 1").format(
                pgsql.Identifier(MARKER_SCHEMA))).fetchone()
        core = [s for s in existing if s != MARKER_SCHEMA]
        # "copying" / "switching": interrupted before store.conninfo was written, so nothing has
        # served from these schemas; "done": the move finished (and may have been rolled back).
        if marker is not None and (marker[0] != source or marker[1] not in ("copying", "switching")):
            whose = "this core's finished migration" if marker[0] == source else "another core's migration"
            raise FailedPreconditionError(
                f"the database ({describe(conninfo)}) holds {whose} (state {marker[1]}); migrate into an empty "
                f"database")
        if marker is None and core:
            raise FailedPreconditionError(
                f"the database ({describe(conninfo)}) already holds a core's schemas ({', '.join(core)}); migrate "
                f"into an empty database")
        with conn.transaction():
            for s in core:
                conn.execute(pgsql.SQL("DROP SCHEMA {} CASCADE").format(pgsql.Identifier(s)))
            conn.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(MARKER_SCHEMA)))
            conn.execute(pgsql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.migration (id INTEGER PRIMARY KEY CHECK (id = 1), source TEXT NOT NULL, "
                "state TEXT NOT NULL, started_at DOUBLE PRECISION NOT NULL, finished_at DOUBLE PRECISION)").format(
                pgsql.Identifier(MARKER_SCHEMA)))
            conn.execute(pgsql.SQL(
                "INSERT INTO {}.migration VALUES (1, %s, 'copying', %s, NULL) ON CONFLICT (id) DO UPDATE "
                "SET started_at = excluded.started_at").format(pgsql.Identifier(MARKER_SCHEMA)), (source, time.time()))
    if marker is not None:
        progress(f"an interrupted migration of this core found: its {len(core)} schemas dropped, starting again")
    return marker is not None


def _set_marker(conninfo: str, state: str) -> None:
    with _connect(conninfo) as conn:
        conn.execute(pgsql.SQL("UPDATE {}.migration SET state = %s, finished_at = %s WHERE id = 1").format(
            pgsql.Identifier(MARKER_SCHEMA)), (state, time.time()))


# -- components: generic table copy ----------------------------------------------------------


def _pg_tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """The schema's tables, parents before the tables whose foreign keys name them."""
    tables = [str(r[0]) for r in conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s AND table_type = 'BASE TABLE' "
        "ORDER BY table_name", (schema,)).fetchall()]
    deps: dict[str, set[str]] = {t: set() for t in tables}
    for child, parent in conn.execute(
            "SELECT c.relname, p.relname FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid "
            "JOIN pg_class p ON p.oid = k.confrelid JOIN pg_namespace n ON n.oid = k.connamespace "
            "WHERE k.contype = 'f' AND n.nspname = %s", (schema,)).fetchall():
        if str(child) != str(parent):
            deps[str(child)].add(str(parent))
    ordered: list[str] = []
    while deps:
        ready = sorted(t for t, d in deps.items() if not d - set(ordered))
        if not ready:
            raise StorageError(f"schema {schema}: its foreign keys form a cycle")
        ordered += ready
        for t in ready:
            del deps[t]
    return ordered


def _copy_component(conninfo: str, name: str, pg_ddl: str, src: sqlite3.Connection | None) -> dict[str, int]:
    """Component ``name``'s schema made from its DDL and every table of its SQLite file copied in;
    rows per table."""
    db = PostgresDatabase(conninfo, name, pg_ddl)
    counts: dict[str, int] = {}
    try:
        conn = db.session()
        try:
            tables = _pg_tables(conn, name)
            if src is None:
                return {t: 0 for t in tables}
            have = {str(r[0]) for r in src.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").fetchall()}
            extra = sorted(have - set(tables))
            if extra:
                raise FailedPreconditionError(
                    f"{name}.sqlite3 has tables the component's PostgreSQL schema lacks ({', '.join(extra)}): "
                    f"nothing was moved")
            autoinc: dict[str, int] = {}
            if src.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone() is not None:
                autoinc = {str(t): int(s) for t, s in src.execute("SELECT name, seq FROM sqlite_sequence").fetchall()}
            with conn.transaction():
                for table in tables:
                    if table not in have:
                        counts[table] = 0
                        continue
                    counts[table] = _copy_table(conn, src, name, table, autoinc.get(table, 0))
        finally:
            conn.close()
    finally:
        db.close()
    return counts


def _copy_table(conn: psycopg.Connection[Any], src: sqlite3.Connection, schema: str, table: str,
                autoinc: int) -> int:
    cols = conn.execute(
        "SELECT column_name, is_nullable = 'YES' OR column_default IS NOT NULL OR is_identity = 'YES' "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table)).fetchall()
    theirs = [str(r[1]) for r in src.execute(f'PRAGMA table_info("{table}")').fetchall()]
    missing = sorted(set(theirs) - {str(c) for c, _ in cols})
    if missing:
        raise FailedPreconditionError(f"{schema}.sqlite3 table {table} has columns its PostgreSQL table lacks "
                                      f"({', '.join(missing)}): nothing was moved")
    names = [str(c) for c, _ in cols if str(c) in theirs]
    required = [str(c) for c, optional in cols if str(c) not in theirs and not optional]
    if required:
        raise FailedPreconditionError(f"{schema}.sqlite3 table {table} lacks required columns "
                                      f"({', '.join(required)}): nothing was moved")
    ident = pgsql.Identifier(table)
    columns = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in names)
    select = "SELECT " + ", ".join(f'"{c}"' for c in names) + f' FROM "{table}"'
    n = 0
    # The schema is fresh: rows its DDL seeds (a counter row) give way to the source's.
    conn.execute(pgsql.SQL("DELETE FROM {}").format(ident))
    with conn.cursor() as cur, cur.copy(pgsql.SQL("COPY {} ({}) FROM STDIN").format(ident, columns)) as cp:
        for row in src.execute(select):
            cp.write_row(row)
            n += 1
    got = conn.execute(pgsql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()
    if got is None or int(got[0]) != n:
        raise StorageError(f"{schema}.{table}: {n} rows copied, {got[0] if got else 0} stored")
    # Identity / serial counters past every id copied (and SQLite's AUTOINCREMENT high mark).
    for column in names:
        seq = conn.execute("SELECT pg_get_serial_sequence(%s, %s)",
                           (f'"{schema}"."{table}"', column)).fetchone()
        if seq is None or seq[0] is None:
            continue
        top = conn.execute(pgsql.SQL("SELECT coalesce(max({}), 0) FROM {}").format(
            pgsql.Identifier(column), ident)).fetchone()
        after = max(int(top[0]) if top else 0, autoinc) + 1
        conn.execute("SELECT setval(%s, %s, false)", (seq[0], after))
    return n


# -- the ledger ------------------------------------------------------------------------------


def _file_tiles(root: Path, size: int) -> Iterator[tuple[str, Path]]:
    """The file ledger's public tiles and bundles of the tree of ``size`` (tlog-tiles paths)."""
    from renkei.store.pgledger import _tile_within

    tile_dir = root / "tile"
    if not tile_dir.exists():
        return
    for p in sorted(tile_dir.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if _TILE.match(rel) and _tile_within(rel, size):
            yield rel, p


def edge_from_tiles(read: Callable[[str], bytes], size: int) -> bytes:
    """The tree's right edge (integrate.rs's ``rkedge1`` encoding) from the partial tiles of
    ``size`` and its partial bundle, read by tlog-tiles path; checked by the engine when the root
    is taken from it (``edge_root``)."""
    from renkei.store.tlog import WIDTH, tile_path

    if size == 0:
        return b""
    out = bytearray(b"rkedge1\n" + size.to_bytes(8, "big"))
    for level in range(8):
        full, width = divmod(size >> (8 * level), WIDTH)
        hashes = read(tile_path(level, full, width)) if width else b""
        if len(hashes) != 32 * width:
            raise LedgerDamageError(f"{tile_path(level, full, width)} holds {len(hashes)} bytes, not {32 * width}",
                                    tile_path(level, full, width))
        out += bytes([width]) + hashes
    full, width = divmod(size, WIDTH)
    bundle = read(tile_path(None, full, width)) if width else b""
    out += len(bundle).to_bytes(4, "big") + bundle
    return bytes(out)


def _copy_ledger(conninfo: str, data_dir: DataDir, ledger: Any, tiles: Any, progress: Progress,
                 report: Report) -> None:
    from renkei._core import ledger as _l
    from renkei.store.pgledger import _EXTERNAL, OPENING, SCHEMA, PgLedger

    size = int(ledger.size)
    latest = ledger.checkpoint()
    retired = int(ledger.min_index())
    edge = edge_from_tiles(lambda rel: (ledger.path / rel).read_bytes(), size)
    got, root = _l.edge_root(edge)
    if got != size or root != latest.root:
        raise LedgerDamageError("the ledger's partial tiles do not give its checkpoint's root", "tile")
    history = ledger.checkpoints()
    db = PostgresDatabase(conninfo, "ledger", SCHEMA)
    try:
        conn = db.session()
        try:
            with conn.transaction():
                for table, column in _EXTERNAL:
                    conn.execute(pgsql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STORAGE EXTERNAL").format(
                        pgsql.Identifier(table), pgsql.Identifier(column)))
            # The public tiles: to the object store first (as the integrator writes them before
            # the checkpoint that names them), or into `tiles`.
            batch: dict[str, bytes] = {}
            n_tiles = 0
            with conn.transaction():
                if tiles is not None:
                    for rel, path in _file_tiles(ledger.path, size):
                        batch[rel] = path.read_bytes()
                        n_tiles += 1
                        if len(batch) >= 512:
                            tiles.put_once(batch)
                            batch = {}
                    if batch:
                        tiles.put_once(batch)
                else:
                    with conn.cursor() as cur, cur.copy("COPY tiles(path, data) FROM STDIN") as cp:
                        for rel, path in _file_tiles(ledger.path, size):
                            cp.write_row((rel, path.read_bytes()))
                            n_tiles += 1
                progress(f"ledger: {n_tiles} tiles and bundles copied "
                         f"({'object store' if tiles is not None else 'PostgreSQL'})")
                # The private openings from the first retained record, in rows of CHUNK.
                for lo in range(retired, size, CHUNK):
                    hi = min(size, lo + CHUNK)
                    opens = ledger._l.openings(lo, hi)
                    if any(o is None or len(o) != OPENING for o in opens):
                        raise LedgerDamageError(f"an opening of records {lo}..{hi} is missing", "open")
                    conn.execute("INSERT INTO openings(first, count, data) VALUES (%s, %s, %s)",
                                 (lo, hi - lo, b"".join(opens)))
                progress(f"ledger: {size - retired} openings copied")
                for cp in history:
                    conn.execute("INSERT INTO checkpoints(size, note) VALUES (%s, %s) ON CONFLICT (size) DO NOTHING",
                                 (cp.size, cp.note))
                conn.execute("INSERT INTO seq_coord(id, next) VALUES (1, %s)", (size,))
                conn.execute("INSERT INTO idx_coord(id, indexed) VALUES (1, %s)", (retired,))
                conn.execute("INSERT INTO ret_coord(id, min_index) VALUES (1, %s)", (retired,))
                conn.execute("INSERT INTO int_coord(id, origin, size, edge, epoch, checkpoint, history_last, "
                             "published_at) VALUES (1, %s, %s, %s, 0, %s, %s, %s)",
                             (ledger.origin, size, edge, latest.note, size, ledger.published_at()))
        finally:
            conn.close()
    finally:
        db.close()
    report.ledger_records, report.ledger_tiles, report.checkpoints = size, n_tiles, len(history)
    # The per-person index, by the PostgreSQL ledger's own indexer, then every check.
    pg = PgLedger(data_dir, conninfo, ledger.origin, background=False, tiles=tiles)
    try:
        while pg.index() < size:
            pass
        progress(f"ledger: person index built ({size - retired} records)")
        t = time.perf_counter()
        _check_ledger(ledger, pg, size, retired, history)
        report.seconds["ledger_check"] = time.perf_counter() - t
    finally:
        pg.close()
    progress(f"ledger: checked — the same {size} records, root and checkpoints")


def _check_ledger(ledger: Any, pg: Any, size: int, retired: int, history: list[Any]) -> None:
    latest = ledger.checkpoint()
    if pg.checkpoint().note != latest.note or pg.size != size:
        raise LedgerDamageError("the moved ledger's checkpoint is not the file ledger's", "int_coord")
    if pg.root_at(size) != latest.root:
        raise LedgerDamageError(f"the moved ledger's root at size {size} differs from the file ledger's", "tiles")
    for cp in history:
        if pg.root_at(cp.size) != cp.root:
            raise LedgerDamageError(f"the moved ledger's root at size {cp.size} differs from the stored checkpoint's",
                                    "tiles")
    for lo in range(retired, size, CHUNK):
        hi = min(size, lo + CHUNK)
        if [bytes(e) for e in ledger._l.entries(lo, hi)] != pg.entries(lo, hi, size) or \
                [bytes(o) for o in ledger._l.openings(lo, hi)] != pg.openings(lo, hi):
            raise LedgerDamageError(f"the moved records {lo}..{hi} differ from the file ledger's", "tiles")
    pg.verify()


# -- holdings --------------------------------------------------------------------------------


def _copy_holdings(conninfo: str, data_dir: DataDir, engine: Any, registry: Any, progress: Progress,
                   report: Report) -> None:
    from renkei._core import codes as _codes
    from renkei.store.holdings import PgHoldings, import_engine

    import_engine(conninfo, engine)
    progress(f"holdings: {engine.person_count()} persons and {engine.total()} holdings written as one snapshot")
    current, live = registry.epoch_state()
    mem = _codes.CodeEngine.in_memory(data_dir.secret_key("agency-code"), current, live)
    store = PgHoldings(conninfo, mem)
    try:
        same = (mem.person_count() == engine.person_count() and mem.total() == engine.total()
                and mem.index_range_count() == engine.index_range_count()
                and all(mem.index_encode_range(hi) == engine.index_encode_range(hi)
                        for hi in range(engine.index_range_count())))
        if not same:
            raise StorageError("the moved holdings differ from the file store's (nothing was switched)")
    finally:
        store.close()
        mem.close()
    report.persons, report.holdings = int(engine.person_count()), int(engine.total())
    progress("holdings: checked — a fresh front-end loads the same person index and holdings")


# -- the whole move --------------------------------------------------------------------------


def migrate_store(path: str | os.PathLike[str], store: str, *, tiles: str | None = None,
                  tiles_credentials: str | os.PathLike[str] | None = None,
                  progress: Progress | None = None) -> Report:
    """Move the stopped embedded core in ``path`` onto the PostgreSQL database ``store`` (and its
    ledger's tiles to the object store ``tiles``); see the module docstring."""
    say: Progress = progress or (lambda _line: None)
    store = check_store(store)
    if not is_postgresql(store):
        raise InvalidArgumentError("--store is the PostgreSQL URL to move the core to (postgresql://…)")
    if tiles is not None:
        from renkei.store import check_tiles

        if tiles_credentials is None:
            raise InvalidArgumentError("an object store for the tiles needs its credentials file "
                                       "(--tiles-credentials)")
        check_tiles(tiles, tiles_credentials, store)
    data_dir = DataDir(path, "core")
    if store_conninfo(data_dir) is not None:
        raise FailedPreconditionError(f"{data_dir.path} is bound to PostgreSQL already; nothing to move")
    if not (data_dir.path / "ledger" / "origin").exists():
        raise FailedPreconditionError(f"{data_dir.path} is not an initialised core (no ledger): `renkei core init`")
    report = Report(describe(store), tiles="object store" if tiles else "postgresql")
    comps = components()
    t0 = time.perf_counter()
    with _stopped_core(data_dir) as (ledger, engine, registry):
        # Leftovers of an interrupted run are not a binding: the directory is unbound.
        for leftover in (TILES_BINDING, TILES_CREDENTIALS):
            (data_dir.path / leftover).unlink(missing_ok=True)
        from renkei.permissions.store import PermissionStore

        PermissionStore(data_dir).close()  # an older permissions file brings itself up to date first
        with _held_sqlite(data_dir, sorted(comps)) as held:
            report.stays = sorted(p.name for p in data_dir.path.glob("*.sqlite3") if p.stem not in comps)
            report.restarted = _claim_target(store, str(ledger.vkey), core_schemas(), say)
            say(f"moving {data_dir.path} to {report.store}")
            for name in sorted(comps):
                t = time.perf_counter()
                report.components[name] = _copy_component(store, name, comps[name][1], held.get(name))
                report.seconds[name] = time.perf_counter() - t
                rows = sum(report.components[name].values())
                say(f"{name}: {rows} rows in {len(report.components[name])} tables copied")
                _fault(name)
            t = time.perf_counter()
            _copy_holdings(store, data_dir, engine, registry, say, report)
            report.seconds["holdings"] = time.perf_counter() - t
            _fault("holdings")
            tile_store = None
            if tiles is not None and tiles_credentials is not None:
                from renkei.store.objects import S3TileStore

                tile_store = S3TileStore(tiles, tiles_credentials)
            t = time.perf_counter()
            try:
                _copy_ledger(store, data_dir, ledger, tile_store, say, report)
            finally:
                if tile_store is not None:
                    tile_store.close()
            report.seconds["ledger"] = time.perf_counter() - t
            _fault("ledger")
            _set_marker(store, "switching")
            _fault("checked")
            # The switch: the tiles' binding first (unread while unbound), store.conninfo last.
            if tiles is not None and tiles_credentials is not None:
                from renkei.store.objects import read_credentials

                key_id, secret = read_credentials(tiles_credentials)
                write_atomic(data_dir.path / TILES_CREDENTIALS,
                             json.dumps({"access_key_id": key_id, "secret_access_key": secret}).encode(), 0o600)
                write_atomic(data_dir.path / TILES_BINDING, (tiles + "\n").encode(), 0o600)
            write_atomic(data_dir.path / BINDING, (store + "\n").encode(), 0o600)
    with contextlib.suppress(RenkeiError, psycopg.Error):
        _set_marker(store, "done")
    report.seconds["total"] = time.perf_counter() - t0
    say(f"switched: {data_dir.path} is bound to {report.store}; its embedded files stay as they were (the rollback "
        f"until the core on PostgreSQL appends)")
    return report


__all__ = ["COMPONENT_MODULES", "FAULT_ENV", "Report", "components", "core_schemas", "edge_from_tiles",
           "migrate_store"]
