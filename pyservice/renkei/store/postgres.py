"""The PostgreSQL driver of the core's store (docs/arch/store.md), on psycopg 3.

One schema per component (``registry``, ``permissions``) in the database of the conninfo. A
returned commit is what the server acknowledged: with ``synchronous_commit = on`` and a named
synchronous standby, also flushed on the standby (the driver warns at connect when it is not).

Failover: the conninfo may name both nodes (``postgresql://h1:p1,h2:p2/db?target_session_attrs=
read-write``); a broken connection is dropped and the next call reconnects, trying for up to
``reconnect_s``. A transaction whose connection broke is never retried here — its commit may or
may not have happened — but fails with :class:`StoreUnavailableError` for the caller to retry; a
read is retried once.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql as pgsql
from psycopg.conninfo import conninfo_to_dict

from renkei.errors import InvalidArgumentError, NotInitializedError, StoreUnavailableError
from renkei.store import Args, Database, Row, Tx

log = logging.getLogger("renkei.store")

#: How long a call keeps trying to reach a writable server (a promote takes a few seconds).
RECONNECT_S = 30.0
CONNECT_TIMEOUT_S = 3
#: Connections kept open per database for the next call (more are opened under load).
MAX_IDLE = 8
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def parse_conninfo(conninfo: str) -> dict[str, Any]:
    try:
        return conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError:
        # libpq's message may quote the text, and the text may hold a password: not repeated.
        raise InvalidArgumentError("not a PostgreSQL URL or conninfo (libpq cannot parse it)") from None


def describe(conninfo: str) -> str:
    """Host(s), port(s) and database of ``conninfo``: what logs and messages may show."""
    d = parse_conninfo(conninfo)
    return f"postgresql host={d.get('host', '')} port={d.get('port', '')} dbname={d.get('dbname', '')}"


def _lock_key(name: str) -> int:
    """The advisory lock that serialises one component's writers across every process."""
    return int.from_bytes(hashlib.sha256(f"renkei.store:{name}".encode()).digest()[:8], "big", signed=True)


def _sql(statement: str) -> str:
    # The components write `?` placeholders (shared with SQLite) and never a literal ? or %.
    return statement.replace("?", "%s")


class _PgTx(Tx):
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def all(self, sql: str, args: Args = ()) -> list[Row]:
        cur = self._conn.execute(_sql(sql), tuple(args))
        return list(cur.fetchall()) if cur.description is not None else []

    def execute(self, sql: str, args: Args = ()) -> int:
        return int(self._conn.execute(_sql(sql), tuple(args)).rowcount)

    def many(self, sql: str, rows: Sequence[Args]) -> None:
        with self._conn.cursor() as cur:
            cur.executemany(_sql(sql), [tuple(r) for r in rows])

    def copy(self, statement: str, data: bytes) -> None:
        """``COPY … FROM STDIN`` with ``data`` as the stream (e.g. binary rows built with numpy)."""
        with self._conn.cursor() as cur, cur.copy(statement) as cp:
            cp.write(data)


class PostgresDatabase(Database):
    kind = "postgresql"

    def __init__(self, conninfo: str, name: str, schema: str | None, *, read_only: bool = False,
                 reconnect_s: float = RECONNECT_S) -> None:
        if not _NAME.match(name):
            raise InvalidArgumentError(f"not a schema name: {name!r}")
        parse_conninfo(conninfo)
        self._conninfo = conninfo
        self._where = describe(conninfo)
        self.name = name
        self._read_only = read_only
        self._reconnect_s = reconnect_s
        self._idle: list[psycopg.Connection[Any]] = []
        self._idle_lock = threading.Lock()
        self._key = _lock_key(name)
        self._checked = False
        if read_only:
            if not self._schema_exists():
                raise NotInitializedError(f"{self._where} has no schema {name!r}: `renkei core init --store …` "
                                          f"creates it")
        elif schema is not None:
            with self.transaction() as tx:
                tx.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(pgsql.Identifier(name)).as_string())
                for statement in schema.split(";"):
                    if statement.strip():
                        tx.execute(statement)

    # -- connections ------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        deadline = time.monotonic() + self._reconnect_s
        while True:
            try:
                conn = psycopg.connect(self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                break
            except psycopg.OperationalError as e:
                if time.monotonic() >= deadline:
                    raise StoreUnavailableError(f"the core's store ({self._where}) cannot be reached: "
                                                f"{str(e).strip().splitlines()[-1]}") from None
                time.sleep(0.2)
        try:
            conn.execute(pgsql.SQL("SET search_path TO {}").format(pgsql.Identifier(self.name)))
            if self._read_only:
                conn.execute("SET default_transaction_read_only = on")
            if not self._checked:
                self._check_replication(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _check_replication(self, conn: psycopg.Connection[Any]) -> None:
        row = conn.execute("SELECT current_setting('synchronous_commit'), "
                           "current_setting('synchronous_standby_names')").fetchone()
        self._checked = True
        if row is not None and (row[0] in ("off", "local") or not str(row[1]).strip()):
            # A development server is legitimate; an operator must see that it is one.
            log.warning("the core's store (%s) acknowledges commits that no synchronous standby holds "
                        "(synchronous_commit=%s, synchronous_standby_names=%r)", self._where, row[0], row[1])

    @contextmanager
    def _connection(self, *, ping: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; ``ping`` checks an idle one first (one round trip), so that a
        transaction never starts on a connection that died while idle (a failover)."""
        with self._idle_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is not None and ping:
            try:
                conn.execute("")
            except psycopg.OperationalError:
                conn.close()
                conn = None
                self._checked = False  # a failover: say again what the new primary guarantees
        if conn is None:
            conn = self._connect()
        try:
            yield conn
        finally:
            if conn.closed or conn.broken:
                conn.close()
                self._checked = False  # a failover: say again what the new primary guarantees
            else:
                with self._idle_lock:
                    if len(self._idle) < MAX_IDLE:
                        self._idle.append(conn)
                        conn = None
                if conn is not None:
                    conn.close()

    def _schema_exists(self) -> bool:
        return self.all("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", (self.name,)) != []

    # -- the interface ----------------------------------------------------------------------

    def all(self, sql: str, args: Args = ()) -> list[Row]:
        for attempt in (1, 2):
            try:
                with self._connection() as conn:
                    cur = conn.execute(_sql(sql), tuple(args))
                    return list(cur.fetchall()) if cur.description is not None else []
            except psycopg.OperationalError as e:
                # The connection broke (a failover): a read is safe to repeat on a new one.
                if attempt == 2:
                    raise StoreUnavailableError(f"the core's store ({self._where}) failed: "
                                                f"{str(e).strip().splitlines()[-1]}") from None
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self, *, serialise: bool = True) -> Iterator[Tx]:
        """``serialise=False`` leaves the locking to the statements (``SELECT … FOR UPDATE``):
        the ledger's sequencer and integrator (renkei.store.tlog) run side by side."""
        try:
            with self._connection(ping=True) as conn, conn.transaction():
                if serialise:
                    # One writer per component at a time, in every front-end (SQLite's BEGIN IMMEDIATE).
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key,))
                yield _PgTx(conn)
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(
                f"the core's store ({self._where}) failed during a transaction, whose outcome is unknown "
                f"(retry): {str(e).strip().splitlines()[-1]}") from None

    def session(self) -> psycopg.Connection[Any]:
        """A connection of its own (not pooled), for session state such as an advisory lock."""
        return self._connect()

    def has_table(self, name: str) -> bool:
        return self.all("SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                        (self.name, name)) != []

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


__all__ = ["RECONNECT_S", "PostgresDatabase", "describe", "parse_conninfo"]
