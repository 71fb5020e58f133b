"""The core's storage driver boundary (docs/arch/store.md): where the registry, the commission's
PIA decisions and the permission table versions live.

Two drivers behind one SQL-level interface, so each component has one implementation:

* **embedded** (the default): an SQLite file per component in the data directory, as always;
* **PostgreSQL**: one schema per component in the database a data directory is bound to
  (``renkei core init --store postgresql://…``; the binding is ``<data dir>/store.conninfo``, 0600
  since it may hold a password).

Statements use ``?`` placeholders and the SQL both engines share (``ON CONFLICT … DO UPDATE``,
``RETURNING``); each component gives its schema in both dialects::

    db = open_database(data_dir, "registry", {"sqlite": SQLITE_DDL, "postgresql": PG_DDL})
    with db.transaction() as tx:          # one writer at a time, across processes too
        (agency_id,) = tx.one("INSERT INTO agencies(name) VALUES (?) RETURNING agency_id", (name,))
    db.all("SELECT name FROM agencies")
"""

from __future__ import annotations

import abc
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from renkei.datadir import DataDir, connect_sqlite, write_atomic
from renkei.errors import FailedPreconditionError, InvalidArgumentError

if TYPE_CHECKING:
    from renkei.store.objects import TileStore

#: A data directory's store binding (absent: embedded).
BINDING = "store.conninfo"
EMBEDDED = "embedded"

Row = tuple[Any, ...]
Args = Sequence[Any]


class Tx(abc.ABC):
    """The statements of one transaction."""

    @abc.abstractmethod
    def all(self, sql: str, args: Args = ()) -> list[Row]: ...

    @abc.abstractmethod
    def execute(self, sql: str, args: Args = ()) -> int:
        """Run a statement; the number of rows it changed."""

    @abc.abstractmethod
    def many(self, sql: str, rows: Sequence[Args]) -> None: ...

    def copy(self, statement: str, data: bytes) -> None:
        """``COPY … FROM STDIN`` (PostgreSQL only: the ledger's bulk index rows)."""
        raise NotImplementedError("COPY is PostgreSQL's")

    def one(self, sql: str, args: Args = ()) -> Row | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None


class Database(abc.ABC):
    """One component's tables on one driver. Thread-safe."""

    kind: str

    @abc.abstractmethod
    def all(self, sql: str, args: Args = ()) -> list[Row]:
        """A read, committed state."""

    def one(self, sql: str, args: Args = ()) -> Row | None:
        rows = self.all(sql, args)
        return rows[0] if rows else None

    @abc.abstractmethod
    def transaction(self) -> Any:
        """A context manager yielding a :class:`Tx`: committed when the block ends, rolled back
        when it raises. Transactions of one database are serialised (across every process on
        PostgreSQL), so a check inside one holds until it commits."""

    @abc.abstractmethod
    def has_table(self, name: str) -> bool: ...

    @abc.abstractmethod
    def close(self) -> None: ...


class _SqliteTx(Tx):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def all(self, sql: str, args: Args = ()) -> list[Row]:
        return list(self._conn.execute(sql, tuple(args)).fetchall())

    def execute(self, sql: str, args: Args = ()) -> int:
        return int(self._conn.execute(sql, tuple(args)).rowcount)

    def many(self, sql: str, rows: Sequence[Args]) -> None:
        self._conn.executemany(sql, [tuple(r) for r in rows])


class SqliteDatabase(Database):
    """The embedded driver: ``<data dir>/<name>.sqlite3`` (WAL, synchronous=FULL: a returned
    commit is durable); ``read_only`` never writes or creates anything."""

    kind = "sqlite"

    def __init__(self, data_dir: DataDir, name: str, schema: str | None, *, read_only: bool = False) -> None:
        path = data_dir.file(f"{name}.sqlite3")
        self.conn = connect_sqlite(path, read_only=True) if read_only else data_dir.connect(f"{name}.sqlite3")
        self._write = threading.Lock()
        if schema is not None and not read_only:
            self.conn.executescript(schema)

    def all(self, sql: str, args: Args = ()) -> list[Row]:
        return list(self.conn.execute(sql, tuple(args)).fetchall())

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._write:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def has_table(self, name: str) -> bool:
        return self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)) is not None

    def close(self) -> None:
        self.conn.close()


def store_conninfo(data_dir: DataDir) -> str | None:
    """The PostgreSQL conninfo (URL or key=value) ``data_dir`` is bound to, or None (embedded)."""
    path = data_dir.path / BINDING
    if not path.exists():
        return None
    return path.read_text().strip()


def is_postgresql(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://")) or "=" in store


def check_store(store: str) -> str:
    """``store`` as given to ``--store``: ``embedded`` or a PostgreSQL URL / conninfo."""
    store = store.strip()
    if store == EMBEDDED:
        return store
    if not is_postgresql(store):
        raise InvalidArgumentError("--store is 'embedded' or a PostgreSQL URL (postgresql://host:port/db…)")
    from renkei.store.postgres import parse_conninfo

    parse_conninfo(store)
    return store


def describe_store(data_dir: DataDir) -> str:
    """Where ``data_dir``'s state lives, for logs (never a password)."""
    conninfo = store_conninfo(data_dir)
    if conninfo is None:
        return EMBEDDED
    from renkei.store.postgres import describe

    return describe(conninfo)


def bind_store(data_dir: DataDir, store: str, *, fresh: bool) -> None:
    """Bind ``data_dir`` to ``store`` (fixed once set, like the commission's key). Only a fresh
    directory can be bound to PostgreSQL: an embedded registry that exists would be abandoned."""
    store = check_store(store)
    current = store_conninfo(data_dir)
    if store == EMBEDDED:
        if current is not None:
            raise FailedPreconditionError(f"{data_dir.path} is bound to PostgreSQL ({describe_store(data_dir)}); "
                                          f"a core's store is fixed at init")
        return
    if current is not None:
        if current != store:
            raise FailedPreconditionError(f"{data_dir.path} is bound to another store ({describe_store(data_dir)}); "
                                          f"a core's store is fixed at init")
        return
    if not fresh:
        raise FailedPreconditionError(f"{data_dir.path} keeps its registry in SQLite already; a core's store is "
                                      f"chosen when its data directory is created (`renkei core init --store …`); "
                                      f"move an existing core with `renkei core migrate-store`")
    write_atomic(data_dir.path / BINDING, (store + "\n").encode(), 0o600)


#: The object store a PostgreSQL-bound core writes its ledger's tiles to (docs/arch/store.md),
#: and the credentials for it (0600, copied in at init).
TILES_BINDING = "tiles.url"
TILES_CREDENTIALS = "tiles.credentials.json"


def check_tiles(url: str, credentials: str | os.PathLike[str], store: str | None) -> None:
    """``--tiles`` / ``--tiles-credentials`` as given, checked before anything is created."""
    from renkei.store.objects import S3Location, read_credentials

    S3Location.parse(url)
    read_credentials(credentials)
    if store is None or check_store(store) == EMBEDDED:
        raise FailedPreconditionError("tiles go to an object store only for a core on PostgreSQL (--store postgresql://…)")


def bind_tiles(data_dir: DataDir, url: str, credentials: str | os.PathLike[str], *, fresh: bool) -> None:
    """Send the ledger's tiles of a PostgreSQL-bound ``data_dir`` to the object store ``url``
    (``s3://bucket/prefix?endpoint=…``). Fixed once set, and only while the directory is new: a
    ledger's tiles are never split between two stores."""
    from renkei.store.objects import S3Location, read_credentials

    S3Location.parse(url)
    key_id, secret = read_credentials(credentials)
    if store_conninfo(data_dir) is None:
        raise FailedPreconditionError("tiles go to an object store only for a core on PostgreSQL (--store postgresql://…)")
    current = data_dir.path / TILES_BINDING
    if current.exists():
        if current.read_text().strip() != url:
            raise FailedPreconditionError(f"{data_dir.path} sends its tiles to another object store; fixed at init")
    elif not fresh:
        raise FailedPreconditionError(f"{data_dir.path} exists already; the tiles' store is chosen when the core's "
                                      f"data directory is created")
    import json

    write_atomic(data_dir.path / TILES_CREDENTIALS,
                 json.dumps({"access_key_id": key_id, "secret_access_key": secret}).encode(), 0o600)
    write_atomic(current, (url + "\n").encode(), 0o600)


def tile_store(data_dir: DataDir) -> TileStore | None:
    """The object store ``data_dir``'s ledger tiles go to, or None (PostgreSQL's ``tiles``)."""
    path = data_dir.path / TILES_BINDING
    if not path.exists():
        return None
    from renkei.store.objects import S3TileStore

    return S3TileStore(path.read_text().strip(), data_dir.path / TILES_CREDENTIALS)


def require_store(data_dir: DataDir, store: str | None) -> None:
    """Refuse to serve ``data_dir`` on another store than the one it is bound to."""
    if store is None:
        return
    store = check_store(store)
    current = store_conninfo(data_dir)
    if (current or EMBEDDED) != store:
        raise FailedPreconditionError(
            f"{data_dir.path} is bound to {describe_store(data_dir)}, not the --store given; a core's store is "
            f"chosen at init (`renkei core init --store …`)")


#: Every component on the boundary: its name (the SQLite file ``<name>.sqlite3``, the PostgreSQL
#: schema) and its DDL per driver, the parts concatenated (the commission's tables are part of
#: ``registry``). ``renkei core migrate-store`` copies exactly these (renkei.store.migrate).
COMPONENTS: dict[str, list[Mapping[str, str]]] = {}


def register_component(name: str, schema: Mapping[str, str]) -> Mapping[str, str]:
    """Declare (part of) component ``name``'s schema — ``{"sqlite": DDL, "postgresql": DDL}`` —
    so that moving an embedded core to PostgreSQL copies it; returns ``schema``. A module that
    calls :func:`open_database` registers its schema at import (and is listed in
    ``renkei.store.migrate.COMPONENT_MODULES``)."""
    if set(schema) != {"sqlite", "postgresql"}:
        raise ValueError(f"component {name!r}: a schema per driver, sqlite and postgresql")
    parts = COMPONENTS.setdefault(name, [])
    if not any(p is schema for p in parts):
        parts.append(schema)
    return schema


def component_schema(name: str, kind: str) -> str:
    """Component ``name``'s whole DDL for driver ``kind`` (every registered part)."""
    return ";\n".join(p[kind].strip().rstrip(";") for p in COMPONENTS[name])


def open_database(data_dir: DataDir, name: str, schema: Mapping[str, str] | None, *,
                  read_only: bool = False) -> Database:
    """Component ``name``'s database on the store ``data_dir`` is bound to; ``schema`` (per
    driver kind) is created when missing unless ``read_only``."""
    conninfo = store_conninfo(data_dir)
    if conninfo is None:
        return SqliteDatabase(data_dir, name, None if schema is None else schema["sqlite"], read_only=read_only)
    from renkei.store.postgres import PostgresDatabase

    return PostgresDatabase(conninfo, name, None if schema is None else schema["postgresql"], read_only=read_only)


__all__ = ["BINDING", "COMPONENTS", "EMBEDDED", "TILES_BINDING", "TILES_CREDENTIALS", "Database", "SqliteDatabase",
           "Tx", "bind_store", "bind_tiles", "check_store", "check_tiles", "component_schema", "describe_store",
           "is_postgresql", "open_database", "register_component", "require_store", "store_conninfo", "tile_store"]
