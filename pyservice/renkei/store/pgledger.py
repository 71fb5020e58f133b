"""The core's provision ledger (情報提供等記録) on PostgreSQL — Tessera's database-backed pattern
(docs/arch/store.md) behind the interface of :class:`renkei.ledger.Ledger`.

* **Sequence** (any front-end; the acknowledgement): one transaction per group of concurrent
  appenders takes ``seq_coord`` ``FOR UPDATE``, turns the group's layout-1 records into public
  leaves and private openings (the engine's ``prepare_records``: sequence numbers, the clock,
  salted person commitments), stores the leaves in ``seq`` and the openings in ``openings``
  (private, kept), and advances ``next``. Its ``COMMIT`` on a primary with a synchronous standby
  is the durable write that replaces the file ledger's ``fdatasync``.
* **Integrate** (the elected front-end, fenced by ``int_coord.epoch``): one transaction folds the
  pending leaves into the stored right edge (the engine's ``integrate_leaves``), writes every
  hash tile and entry bundle create-once into ``tiles``, the checkpoint history row when due
  (``checkpoints``, every ≥ 256 records, create-once), the signed checkpoint, and deletes the
  integrated ``seq`` rows.
* **Index** (behind, off the appends' path): the per-person index rows (``person_index``: the
  pseudonym's 4-byte prefix → sequence number, private; a hash index on the prefix) of
  integrated records, in transactions of their own under ``idx_coord``; look-ups scan the
  short unindexed tail's openings.
* An append returns once its records are sequenced **and** integrated under a published
  checkpoint, as the file ledger's does: the front-end that holds the election integrates right
  after sequencing (and every ``INTEGRATE_S`` in the background, for the other front-ends'
  records); another front-end waits for it.
* **Reads** come from the tiles (proofs: the engine's ``tiles_*`` over tiles fetched by path),
  the openings and the person index; every record read is checked against its level-0 tile
  hash and its opening against its commitment, as the file ledger checks its files.

Keys stay files: every front-end derives the log key from ``keys/ledger-log.key``; the database
holds no key. Retention (施行令 第30条) drops bundles, openings and index rows below the
minimum index (``ret_coord``) and keeps the tiles, as the file ledger does.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from renkei._core import ledger as _l
from renkei.datadir import DataDir, write_atomic
from renkei.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidRecordError,
    LedgerDamageError,
    NotFoundError,
    RenkeiError,
    ResourceExhaustedError,
    StoreUnavailableError,
)
from renkei.ledger import (
    DEFAULT_ORIGIN,
    KEY_NAME,
    RETENTION_YEARS,
    Appended,
    Checkpoint,
    ConsistencyProof,
    InclusionProof,
    Ledger,
    LedgerRecord,
    PersonPage,
    PersonRecord,
    StoredRecord,
    _days,
    pack_records,
    retention_cutoff_us,
    verify_log_dir,
)
from renkei.store import Tx
from renkei.store.objects import TileStore
from renkei.store.postgres import PostgresDatabase
from renkei.store.tlog import WIDTH, split_bundle, tile_path

log = logging.getLogger("renkei.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS seq_coord (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    next BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS seq (
    first  BIGINT PRIMARY KEY,
    count  INTEGER NOT NULL,
    leaves BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS openings (
    first BIGINT PRIMARY KEY,
    count INTEGER NOT NULL,
    data  BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS int_coord (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    origin       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    edge         BYTEA NOT NULL,
    epoch        BIGINT NOT NULL,
    checkpoint   TEXT NOT NULL,
    history_last BIGINT NOT NULL,
    published_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tiles (
    path TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS person_index (
    prefix INTEGER NOT NULL,
    seq    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS person_index_prefix ON person_index USING hash (prefix);
CREATE TABLE IF NOT EXISTS idx_coord (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    indexed BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS ret_coord (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    min_index BIGINT NOT NULL
)
"""

#: Columns stored uncompressed (the commitments and salts are random: compressing them costs more
#: than it saves). Set once, when they are not yet: ALTER TABLE takes an exclusive lock.
_EXTERNAL = (("seq", "leaves"), ("openings", "data"), ("tiles", "data"))

OPENING = 48
HISTORY_SPACING = 256
#: Records sequenced but not integrated beyond which appends are pushed back (retry).
MAX_PENDING = 1_000_000
#: Records one integration transaction takes at most.
INTEGRATE_BATCH = 65_536
#: How often the background integrator looks for other front-ends' records.
INTEGRATE_S = 0.05
#: How long an append waits for an integrator (another front-end's) to cover its records.
WAIT_S = 30.0
_TILE_CACHE = 4096
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_ROW = np.dtype([("n", ">i2"), ("l1", ">i4"), ("prefix", ">i4"), ("l2", ">i4"), ("seq", ">i8")])


def _index_copy(first: int, openings: bytes) -> bytes:
    """The person-index rows (prefix, seq) of ``openings`` (the first at ``first``) in
    PostgreSQL's binary COPY format, built with numpy (no per-record Python)."""
    n = len(openings) // OPENING
    o = np.frombuffer(openings, dtype=np.uint8).reshape(n, OPENING)
    rows = np.empty(n, dtype=_COPY_ROW)
    rows["n"], rows["l1"], rows["l2"] = 2, 4, 8
    rows["prefix"] = o[:, 16:20].copy().view(">i4").reshape(n)
    rows["seq"] = np.arange(first, first + n, dtype=np.int64)
    return _COPY_HEADER + rows.tobytes() + b"\xff\xff"


def _prefix(pseudonym: bytes) -> int:
    return int.from_bytes(pseudonym[:4], "big", signed=True)


class PgLedger(Ledger):
    """The core's ledger in schema ``ledger`` of the database ``conninfo`` names (see the module
    docstring). Same interface as :class:`~renkei.ledger.Ledger`, every method overridden (the
    file ledger's engine, ``Ledger._l``, does not exist here: callers use the interface);
    thread-safe; any number of front-end processes may open the same one."""

    kind = "postgresql"

    def __init__(self, data_dir: DataDir | str, conninfo: str, origin: str | None = None, *,
                 key_name: str = KEY_NAME, schema: str = "ledger", max_pending: int = MAX_PENDING,
                 integrate_s: float = INTEGRATE_S, background: bool = True,
                 tiles: TileStore | None = None) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, "core")
        # The deployment's object store for tiles and bundles (renkei.store.objects); None: the
        # ``tiles`` table. Everything else (sequencing, openings, index, checkpoints) stays here.
        self._objects = tiles
        self._seed = self.data_dir.secret_key(key_name)
        self._db = PostgresDatabase(conninfo, schema, SCHEMA)
        for table, column in _EXTERNAL:
            row = self._db.one("SELECT a.attstorage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
                               "JOIN pg_namespace n ON n.oid = c.relnamespace "
                               "WHERE n.nspname = ? AND c.relname = ? AND a.attname = ?", (schema, table, column))
            if row is not None and str(row[0]) != "e":
                with self._db.transaction() as tx:
                    tx.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
        self._max_pending = max_pending
        self._lock_key = int.from_bytes(hashlib.sha256(f"renkei.pgledger:{schema}".encode()).digest()[:8],
                                        "big", signed=True)
        self.origin = self._fix_origin(origin)
        self.vkey = str(_l.vkey_for(self.origin, self._seed))
        # As the file ledger does: the origin and verifier key beside the keys, so the CLI's
        # offline commands (ledger_vkey) and the box's wiring find them.
        self.path = self.data_dir.subdir("ledger")
        for name, text in (("origin", self.origin), ("vkey", self.vkey)):
            if not (self.path / name).exists():
                write_atomic(self.path / name, (text + "\n").encode(), 0o600)
        # Group commit: callers that append together share one sequencing transaction.
        self._queue: list[tuple[int, bytes]] = []
        self._done: dict[int, tuple[int, int] | BaseException] = {}
        self._ticket = 0
        self._leading = False
        self._cv = threading.Condition()
        # Election and integration.
        self._elect_lock = threading.Lock()
        self._int_lock = threading.Lock()
        self._session: psycopg.Connection[Any] | None = None
        self._epoch: int | None = None
        # What this front-end sequenced and has not seen integrated: (count, leaves, openings) by
        # first sequence number, so that integrating it reads nothing back.
        self._mine: dict[int, tuple[int, bytes, bytes]] = {}
        self._mine_lock = threading.Lock()
        self._tiles: OrderedDict[str, bytes] = OrderedDict()
        self._tiles_lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._integrate_loop, args=(integrate_s,),
                                            name="ledger-integrator", daemon=True)
            self._thread.start()

    def _fix_origin(self, origin: str | None) -> str:
        want = origin or _env_origin()
        _l.vkey_for(want, bytes(32))  # validates the name
        with self._db.transaction(serialise=False) as tx:
            tx.execute("INSERT INTO seq_coord(id, next) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            tx.execute("INSERT INTO idx_coord(id, indexed) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            tx.execute("INSERT INTO ret_coord(id, min_index) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            tx.execute("INSERT INTO int_coord(id, origin, size, edge, epoch, checkpoint, history_last, published_at) "
                       "VALUES (1, ?, 0, ?, 0, ?, 0, ?) ON CONFLICT (id) DO NOTHING",
                       (want, b"", self._sign(want, 0, _l.edge_root(b"")[1]), time.time()))
            row = tx.one("SELECT origin FROM int_coord WHERE id = 1")
        assert row is not None
        stored = str(row[0])
        if origin is not None and origin != stored:
            raise InvalidArgumentError(f"this ledger's origin is {stored!r}, not {origin!r}")
        return stored

    def _sign(self, origin: str, size: int, root: bytes) -> str:
        return str(_l.sign_note(f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n",
                                name=origin, seed=self._seed))

    def __repr__(self) -> str:
        return f"PgLedger({self._db.name!r}, size={self.size})"

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._elect_lock:
            self._resign()
        self._db.close()
        if self._objects is not None:
            self._objects.close()

    # -- sequencing (the acknowledgement) ---------------------------------------------------

    @property
    def appender(self) -> PgLedger:
        """What the inquiry path appends through: this object's ``append_packed``."""
        return self

    def append_packed(self, packed: bytes) -> tuple[int, int, str]:
        """Append packed layout-1 records; (first sequence number, count, checkpoint note
        covering them) once they are durable on the store and integrated."""
        with self._cv:
            ticket = self._ticket
            self._ticket += 1
            self._queue.append((ticket, bytes(packed)))
            while ticket not in self._done:
                if self._leading:
                    self._cv.wait()
                    continue
                self._leading = True
                batch, self._queue = self._queue, []
                self._cv.release()
                try:
                    results = self._sequence(batch)
                except BaseException as e:  # the whole group failed (store unavailable, pushed back)
                    results = {t: e for t, _ in batch}
                finally:
                    self._cv.acquire()
                    self._leading = False
                self._done.update(results)
                self._cv.notify_all()
            result = self._done.pop(ticket)
        if isinstance(result, BaseException):
            raise result
        first, count = result
        if count == 0:
            return first, 0, self.checkpoint().note
        return first, count, self._covered(first + count)

    def _sequence(self, batch: list[tuple[int, bytes]]) -> dict[int, tuple[int, int] | BaseException]:
        """One sequencing transaction for a group of callers. When this front-end is the
        integrator it also integrates in the same transaction (one synchronously replicated
        commit instead of two; fenced by the epoch as any integration): a fenced or failing
        integration leaves the sequencing alone."""
        results: dict[int, tuple[int, int] | BaseException] = {}
        now_us = time.time_ns() // 1000
        first = -1
        integrated = 0
        try:
            with self._db.transaction(serialise=False) as tx:
                row = tx.one("SELECT next FROM seq_coord WHERE id = 1 FOR UPDATE")
                done = tx.one("SELECT size FROM int_coord WHERE id = 1")
                assert row is not None and done is not None
                first = at = int(row[0])
                if first - int(done[0]) > self._max_pending:
                    # Tessera's push-back: integration is behind; the caller retries later.
                    raise ResourceExhaustedError(f"{first - int(done[0])} ledger records await integration; retry")
                leaves: list[bytes] = []
                openings: list[bytes] = []
                for ticket, packed in batch:
                    try:
                        # One caller's bad records fail that caller alone.
                        lv, op = _l.prepare_records(packed, at, now_us)
                    except InvalidRecordError as e:
                        results[ticket] = e
                        continue
                    n = len(op) // OPENING
                    results[ticket] = (at, n)
                    leaves.append(lv)
                    openings.append(op)
                    at += n
                all_leaves, all_openings = b"".join(leaves), b"".join(openings)
                if at > first:
                    own = False
                    epoch = self._epoch
                    if epoch is not None:
                        # The integrator: this group goes straight into the tree, never into `seq`.
                        tx.execute("SAVEPOINT integrate")
                        try:
                            integrated, _note = self._integrate_in(tx, epoch, INTEGRATE_BATCH,
                                                                   (first, at - first, all_leaves, all_openings))
                            own = integrated >= at
                        except (FailedPreconditionError, LedgerDamageError) as e:
                            tx.execute("ROLLBACK TO SAVEPOINT integrate")
                            log.warning("integrating with the sequencing transaction: %s", e)
                    if not own:
                        tx.execute("INSERT INTO seq(first, count, leaves) VALUES (?, ?, ?)",
                                   (first, at - first, all_leaves))
                        with self._mine_lock:
                            self._mine[first] = (at - first, all_leaves, all_openings)
                    tx.execute("INSERT INTO openings(first, count, data) VALUES (?, ?, ?)",
                               (first, at - first, all_openings))
                    tx.execute("UPDATE seq_coord SET next = ? WHERE id = 1", (at,))
        except BaseException:
            with self._mine_lock:
                self._mine.pop(first, None)  # never committed: the numbers go to someone else
            raise
        self._forget_below(integrated)
        return results

    def _covered(self, end: int) -> str:
        """The checkpoint note once the tree reaches ``end``: integrate when this front-end is
        the integrator, else wait for the one that is."""
        deadline = time.monotonic() + WAIT_S
        while True:
            if self.elect():
                try:
                    size, note = self._integrate_until(end)
                except FailedPreconditionError:
                    continue  # fenced by a newer integrator: wait for it instead
            else:
                size, note = self._state()
            if size >= end:
                return note
            if time.monotonic() > deadline:
                raise StoreUnavailableError(
                    f"ledger records up to {end} are durable but no integrator published a checkpoint covering "
                    f"them within {WAIT_S:.0f} s")
            time.sleep(0.005)

    # -- election and integration ------------------------------------------------------------

    def elect(self) -> bool:
        """Try to become the integrator (again after losing the session); whether this is it."""
        with self._elect_lock:
            s = self._session
            if s is not None and not s.closed and not s.broken:
                return True
            self._resign()
            try:
                session = self._db.session()
                row = session.execute("SELECT pg_try_advisory_lock(%s)", (self._lock_key,)).fetchone()
            except (psycopg.OperationalError, StoreUnavailableError):
                return False
            if row is None or not row[0]:
                session.close()
                return False
            try:
                with self._db.transaction(serialise=False) as tx:
                    got = tx.one("UPDATE int_coord SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")
            except StoreUnavailableError:
                session.close()
                return False
            assert got is not None
            self._session, self._epoch = session, int(got[0])
            log.info("this front-end integrates the ledger (epoch %d)", self._epoch)
            return True

    def _resign(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session, self._epoch = None, None

    @property
    def epoch(self) -> int | None:
        return self._epoch

    def _integrate_until(self, end: int) -> tuple[int, str]:
        with self._int_lock:
            size, note = self._state()
            while size < end:
                size, note = self.integrate()
            return size, note

    def _integrate_loop(self, interval: float) -> None:
        while not self._closed.wait(interval):
            try:
                if self.elect():
                    with self._int_lock:
                        self.integrate()
                    self.index()
            except RenkeiError as e:  # the store is failing over: the next round tries again
                log.warning("integrating the ledger: %s", e)
            except Exception:
                log.exception("integrating the ledger failed")

    def index(self, limit: int = INTEGRATE_BATCH) -> int:
        """Index the person of integrated records not indexed yet (up to ``limit`` of them, in
        one transaction; off the appends' path: look-ups scan the short unindexed tail); the
        new indexed size. Any front-end may (``idx_coord`` is locked), the integrator does."""
        with self._db.transaction(serialise=False) as tx:
            row = tx.one("SELECT indexed FROM idx_coord WHERE id = 1 FOR UPDATE")
            size = tx.one("SELECT size FROM int_coord WHERE id = 1")
            assert row is not None and size is not None
            indexed = int(row[0])  # retention moves it past retired records
            end = min(int(size[0]), indexed + limit)
            if end <= indexed:
                return indexed
            opening = self._openings_in(tx, indexed, end)
            tx.copy("COPY person_index (prefix, seq) FROM STDIN (FORMAT BINARY)", _index_copy(indexed, opening))
            tx.execute("UPDATE idx_coord SET indexed = ? WHERE id = 1", (end,))
        return end

    def integrate(self, limit: int = INTEGRATE_BATCH) -> tuple[int, str]:
        """One integration transaction (whole sequenced groups, up to about ``limit`` records);
        (new size, its checkpoint note). Only the elected integrator may."""
        epoch = self._epoch
        if epoch is None:
            raise FailedPreconditionError("this front-end is not the ledger's integrator")
        with self._db.transaction(serialise=False) as tx:
            n, note = self._integrate_in(tx, epoch, limit)
        self._forget_below(n)
        return n, note

    def _integrate_in(self, tx: Tx, epoch: int, limit: int,
                      own: tuple[int, int, bytes, bytes] | None = None) -> tuple[int, str]:
        """The integration step inside transaction ``tx`` (FailedPreconditionError when fenced).
        ``own``: (first, count, leaves, openings) of a group being sequenced in ``tx`` and not
        stored in ``seq``, integrated after the pending ones when it follows them."""
        row = tx.one("SELECT size, edge, epoch, checkpoint, history_last, origin FROM int_coord WHERE id = 1 "
                     "FOR UPDATE")
        assert row is not None
        size, edge, note, history_last = int(row[0]), bytes(row[1]), str(row[3]), int(row[4])
        if int(row[2]) != epoch:
            with self._elect_lock:
                self._resign()
            raise FailedPreconditionError(f"another integrator was elected (epoch {row[2]}, this one {epoch})")
        leaves: list[bytes] = []
        openings: list[bytes] = []
        n = size
        pending = [(int(f), int(c)) for f, c in tx.all(
            "SELECT first, count FROM seq WHERE first >= ? ORDER BY first LIMIT 256", (size,))]
        take: list[tuple[int, int]] = []
        for first, count in pending:
            if first != n:
                raise LedgerDamageError(f"sequenced records at {first} do not follow {n}", "seq")
            take.append((first, count))
            n += count
            if n - size >= limit:
                break
        with self._mine_lock:
            cached = {f: self._mine[f] for f, _ in take if f in self._mine}
        missing = [f for f, _ in take if f not in cached]
        fetched = {int(f): (int(c), bytes(lv), bytes(op)) for f, c, lv, op in tx.all(
            "SELECT s.first, s.count, s.leaves, o.data FROM seq s JOIN openings o ON o.first = s.first "
            "WHERE s.first = ANY(?)", (missing,))} if missing else {}
        for first, count in take:
            c, lv, op = cached[first] if first in cached else fetched[first]
            if c != count or len(op) != OPENING * count:
                raise LedgerDamageError(f"the records sequenced at {first} are damaged", "seq")
            leaves.append(lv)
            openings.append(op)
        if own is not None and own[0] == n:
            leaves.append(own[2])
            openings.append(own[3])
            n += own[1]
        if n == size:
            return size, note
        new_edge, got, root, tiles = _l.integrate_leaves(edge, b"".join(leaves))
        if got != n:
            raise LedgerDamageError(f"sequenced records at {size} hold {got - size} leaves, not {n - size}", "seq")
        self._put_once(tx, tiles)
        note = self._sign(str(row[5]), n, root)
        if n - history_last >= HISTORY_SPACING:
            tx.execute("INSERT INTO checkpoints(size, note) VALUES (?, ?) ON CONFLICT (size) DO NOTHING", (n, note))
            history_last = n
        tx.execute("UPDATE int_coord SET size = ?, edge = ?, checkpoint = ?, history_last = ?, published_at = ? "
                   "WHERE id = 1", (n, new_edge, note, history_last, time.time()))
        tx.execute("DELETE FROM seq WHERE first < ?", (n,))
        return n, note

    def _forget_below(self, n: int) -> None:
        with self._mine_lock:
            for f in [f for f in self._mine if f < n]:
                del self._mine[f]

    def _put_once(self, tx: Tx, tiles: list[tuple[str, bytes]]) -> None:
        """Create-once: an existing tile with the same bytes is success, other bytes a fork. In
        an object store they are written before this transaction commits the checkpoint that
        names them (renkei.store.objects)."""
        if self._objects is not None:
            self._objects.put_once(dict(tiles))
            return
        # Pipelined inserts: faster here than one INSERT … SELECT FROM unnest(arrays) (measured).
        tx.many("INSERT INTO tiles(path, data) VALUES (?, ?) ON CONFLICT (path) DO NOTHING", tiles)
        want = {p: hashlib.sha256(d).digest() for p, d in tiles}
        for path, digest in tx.all("SELECT path, sha256(data) FROM tiles WHERE path = ANY(?)", (list(want),)):
            if bytes(digest) != want[str(path)]:
                raise LedgerDamageError(f"{path} exists with other contents: the log would fork", str(path))

    # -- reading -----------------------------------------------------------------------------

    def _state(self) -> tuple[int, str]:
        row = self._db.one("SELECT size, checkpoint FROM int_coord WHERE id = 1")
        assert row is not None
        return int(row[0]), str(row[1])

    @property
    def size(self) -> int:
        return self._state()[0]

    def checkpoint(self) -> Checkpoint:
        return Checkpoint.from_note(self._state()[1])

    def published_at(self) -> float:
        row = self._db.one("SELECT published_at FROM int_coord WHERE id = 1")
        assert row is not None
        return float(row[0])

    def checkpoints(self) -> list[Checkpoint]:
        latest = self.checkpoint()
        out = [Checkpoint.from_note(str(n)) for (n,) in
               self._db.all("SELECT note FROM checkpoints WHERE size < ? ORDER BY size", (latest.size,))]
        return [*out, latest]

    def checkpoint_at(self, size: int) -> Checkpoint:
        latest = self.checkpoint()
        if size == latest.size:
            return latest
        row = self._db.one("SELECT note FROM checkpoints WHERE size = ?", (size,))
        if row is None:
            raise NotFoundError(f"no stored checkpoint of tree size {size}")
        return Checkpoint.from_note(str(row[0]))

    def _tile(self, path: str) -> bytes | None:
        """A tile or bundle by path. Every path is written once (partial ones carry their width),
        so what was read once is cached."""
        with self._tiles_lock:
            got = self._tiles.get(path)
            if got is not None:
                self._tiles.move_to_end(path)
                return got
        got = self._fetch(path)
        if got is None and ".p/" in path:
            got = self._narrowed(path)
        if got is None:
            return None
        data = got
        with self._tiles_lock:
            self._tiles[path] = data
            if len(self._tiles) > _TILE_CACHE:
                self._tiles.popitem(last=False)
        return data

    def _fetch(self, path: str) -> bytes | None:
        if self._objects is not None:
            return self._objects.get(path)
        row = self._db.one("SELECT data FROM tiles WHERE path = ?", (path,))
        return None if row is None else bytes(row[0])

    def _narrowed(self, path: str) -> bytes | None:
        """A partial tile or bundle that is not stored, as the first ``W`` hashes or entries of
        the full one or of the wider partial at the latest size — the same bytes by
        construction (C2SP tlog-tiles). A ledger moved from the files (``renkei core
        migrate-store``) has the partials of its latest size only: the file ledger deletes
        superseded ones, and proofs at an older size (a witness's, a stored checkpoint's) read
        them here."""
        base, _, w = path.partition(".p/")
        wider = self._fetch(base)
        if wider is None:
            parts = base.split("/")
            level = 0 if parts[1] == "entries" else int(parts[1])
            index = int("".join(p.lstrip("x") for p in parts[2:]))
            full, latest = divmod(self.size >> (8 * level), WIDTH)
            if index != full or latest <= int(w):
                return None
            wider = self._fetch(f"{base}.p/{latest}")
            if wider is None:
                return None
        return narrowed_tile(path, wider)

    def _need(self, path: str) -> bytes:
        data = self._tile(path)
        if data is None:
            raise LedgerDamageError(f"{path} is missing", path)
        return data

    def entries(self, start: int, end: int, size: int | None = None) -> list[bytes]:
        """Public leaves ``start..end`` of the tree of ``size`` (default: latest), each checked
        against its level-0 tile hash."""
        size = self.size if size is None else size
        if not 0 <= start <= end <= size:
            raise NotFoundError(f"records {start}..{end} are not in the ledger (size {size})")
        out: list[bytes] = []
        for b in range(start // WIDTH, (end + WIDTH - 1) // WIDTH):
            width = WIDTH if (b + 1) * WIDTH <= size else size % WIDTH
            bundle = split_bundle(self._need(tile_path(None, b, width)))
            hashes = self._need(tile_path(0, b, width))
            if len(bundle) != width or len(hashes) != 32 * width:
                raise LedgerDamageError(f"{tile_path(None, b, width)} holds {len(bundle)} records, not {width}",
                                        tile_path(None, b, width))
            for k in range(max(start, b * WIDTH) - b * WIDTH, min(end, (b + 1) * WIDTH) - b * WIDTH):
                if _l.leaf_hash(bundle[k]) != hashes[32 * k:32 * k + 32]:
                    raise LedgerDamageError(f"record {b * WIDTH + k} does not match the tree",
                                            tile_path(None, b, width))
                out.append(bundle[k])
        return out

    def openings(self, start: int, end: int) -> list[bytes]:
        """The openings of records ``start..end`` (sequenced ones)."""
        with self._db.transaction(serialise=False) as tx:
            data = self._openings_in(tx, start, end)
        return [data[i:i + OPENING] for i in range(0, len(data), OPENING)]

    @staticmethod
    def _openings_in(tx: Tx, start: int, end: int) -> bytes:
        """The openings of records ``start..end``, concatenated."""
        parts: list[bytes] = []
        for first, count, data in tx.all(
                "SELECT first, count, data FROM openings WHERE first >= "
                "(SELECT coalesce(max(first), 0) FROM openings WHERE first <= ?) AND first < ? ORDER BY first",
                (start, end)):
            first, count, data = int(first), int(count), bytes(data)
            lo, hi = max(start, first), min(end, first + count)
            parts.append(data[(lo - first) * OPENING:(hi - first) * OPENING])
        out = b"".join(parts)
        if len(out) != (end - start) * OPENING:
            raise LedgerDamageError(f"the openings of records {start}..{end} are incomplete", "openings")
        return out

    def _opening(self, seq: int) -> bytes:
        row = self._db.one("SELECT first, count, substring(data from ((?::bigint - first) * 48 + 1)::int for 48) "
                           "FROM openings WHERE first <= ? ORDER BY first DESC LIMIT 1", (seq, seq))
        if row is None or not int(row[0]) <= seq < int(row[0]) + int(row[1]) or len(row[2]) != OPENING:
            raise LedgerDamageError(f"the opening of record {seq} is missing", "openings")
        return bytes(row[2])

    def _opened(self, seq: int, leaf: bytes, opening: bytes) -> LedgerRecord:
        try:
            return LedgerRecord.decode(leaf, opening)
        except InvalidArgumentError as e:
            raise LedgerDamageError(f"record {seq}: {e}", "openings") from None

    def get(self, seq: int) -> LedgerRecord | None:
        if seq < self.min_index():
            return None  # retired: its body and opening are gone
        return self._opened(seq, self.entries(seq, seq + 1)[0], self._opening(seq))

    def stored(self, seqs: Sequence[int]) -> list[StoredRecord]:
        retired = self.min_index()
        seqs = [s for s in seqs if s >= retired]  # retired ones left out, as the file ledger does
        if not seqs:
            return []
        size = self.size
        lo, hi = min(seqs), max(seqs) + 1
        if hi - lo < 4 * len(seqs) + 256:
            leaves, opens = self.entries(lo, hi, size), self.openings(lo, hi)
            pairs = [(leaves[s - lo], opens[s - lo]) for s in seqs]
        else:
            pairs = [(self.entries(s, s + 1, size)[0], self._opening(s)) for s in seqs]
        return [StoredRecord(self._opened(s, e, o), e, o) for s, (e, o) in zip(seqs, pairs, strict=True)]

    def root_at(self, size: int) -> bytes:
        if not 0 <= size <= self.size:
            raise NotFoundError(f"tree size {size} is beyond the ledger's")
        return _l.tiles_root(size, self._tile)

    def prove_inclusion(self, seq: int, size: int | None = None) -> InclusionProof:
        latest = self.size
        size = latest if size is None else size
        if not 0 <= seq < size <= latest:
            raise NotFoundError(f"record {seq} is not in a tree of size {size} (ledger size {latest})")
        hashes = _l.tiles_inclusion_proof(seq, size, self._tile)
        width = WIDTH if (seq // WIDTH + 1) * WIDTH <= size else size % WIDTH
        leaf = self._need(tile_path(0, seq // WIDTH, width))[32 * (seq % WIDTH):32 * (seq % WIDTH) + 32]
        return InclusionProof(seq, size, leaf, hashes, _l.tiles_root(size, self._tile))

    def prove_consistency(self, old: int, new: int | None = None) -> ConsistencyProof:
        latest = self.size
        new = latest if new is None else new
        if not 0 < old <= new <= latest:
            raise InvalidArgumentError(f"no consistency proof from size {old} to size {new}")
        hashes = _l.tiles_consistency_proof(old, new, self._tile)
        return ConsistencyProof(old, new, _l.tiles_root(old, self._tile), _l.tiles_root(new, self._tile), hashes)

    def records_for_pseudonym(self, pseudonym: bytes, page_size: int = 50, before: int | None = None,
                              today: date | None = None) -> PersonPage:
        if page_size < 1:
            raise InvalidArgumentError("page_size must be at least 1")
        if len(pseudonym) != 32:
            raise InvalidArgumentError("a pseudonym is 32 bytes")
        day = _days(date.today() if today is None else today)
        size, note = self._state()
        cp = Checkpoint.from_note(note)
        start = size if before is None else min(before, size)
        row = self._db.one("SELECT indexed FROM idx_coord WHERE id = 1")
        assert row is not None
        retired = self.min_index()
        indexed = max(min(int(row[0]), start), retired)
        out: list[PersonRecord] = []
        next_before: int | None = None
        # The integrated records not indexed yet (a short tail): their openings scanned.
        tail: list[int] = []
        if start > indexed:
            with self._db.transaction(serialise=False) as tx:
                raw = self._openings_in(tx, indexed, start)
            o = np.frombuffer(raw, dtype=np.uint8).reshape(-1, OPENING)
            hits = np.flatnonzero((o[:, 16:] == np.frombuffer(pseudonym, dtype=np.uint8)).all(axis=1))
            tail = [indexed + int(k) for k in hits[::-1]]
        start = indexed
        first_round = True
        while next_before is None:
            if first_round:
                seqs, first_round = tail, False
                more = True
            else:
                seqs = [int(s) for (s,) in self._db.all(
                    "SELECT seq FROM person_index WHERE prefix = ? AND seq < ? AND seq >= ? ORDER BY seq DESC "
                    "LIMIT 256", (_prefix(pseudonym), start, retired))]
                more = len(seqs) == 256
            for seq in seqs:
                opening = self._opening(seq)
                if opening[16:] != pseudonym:
                    continue
                leaf = self.entries(seq, seq + 1, size)[0]
                r = self._opened(seq, leaf, opening)
                if r.withheld and (r.disclose_after is None or _days(r.disclose_after) > day):
                    continue
                if len(out) == page_size:
                    next_before = seq + 1
                    break
                proof = _l.tiles_inclusion_proof(seq, size, self._tile)
                out.append(PersonRecord(r, leaf, InclusionProof(seq, size, _l.leaf_hash(leaf), proof, cp.root),
                                        opening))
            if not more:
                break
            if seqs and seqs[-1] < start:
                start = seqs[-1]
        return PersonPage(out, next_before, cp)

    def min_index(self) -> int:
        """Records below this have no body or opening any more (retention)."""
        row = self._db.one("SELECT min_index FROM ret_coord WHERE id = 1")
        assert row is not None
        return int(row[0])

    def index_columns(self, start: int, end: int) -> tuple[
            npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.uint32], npt.NDArray[np.uint32],
            npt.NDArray[np.uint16], list[str]]:
        leaves = self.entries(start, end)
        return _l.leaf_columns(b"".join(len(e).to_bytes(2, "big") + e for e in leaves), start)

    def append(self, record: LedgerRecord) -> int:
        first, _count, _note = self.append_packed(pack_records([record]))
        return first

    def append_batch(self, records: Sequence[LedgerRecord] | bytes | npt.NDArray[np.uint8]) -> Appended:
        if isinstance(records, np.ndarray):
            if records.dtype != np.uint8:
                raise InvalidArgumentError(f"packed records must be a uint8 array, got {records.dtype}")
            packed = records.tobytes()
        else:
            packed = records if isinstance(records, bytes) else pack_records(records)
        first, count, note = self.append_packed(packed)
        return Appended(first, count, Checkpoint.from_note(note))

    def retention(self, now: datetime | None = None, years: int = RETENTION_YEARS) -> int:
        """Drop the bodies and openings of records older than ``years`` (施行令 第30条: 7), as
        the file ledger does: whole entry bundles from the front whose records are all past the
        cutoff, their openings (rows deleted, the retired part of a straddling row zeroed) and
        person-index rows; the hash tiles stay, so the tree and every proof stay valid. One
        transaction (all or nothing); the number of record bodies dropped by this call."""
        cutoff = retention_cutoff_us(now, years)
        full = self.size // WIDTH
        with self._db.transaction() as tx:
            row = tx.one("SELECT min_index FROM ret_coord WHERE id = 1 FOR UPDATE")
            assert row is not None
            old = int(row[0])
            b = old // WIDTH
            while b < full:
                path = tile_path(None, b, WIDTH)
                if self._objects is not None:
                    data = self._objects.get(path)
                else:
                    got = tx.one("SELECT data FROM tiles WHERE path = ?", (path,))
                    data = None if got is None else bytes(got[0])
                if data is None:
                    raise LedgerDamageError(f"{path} is missing", path)
                if any(int.from_bytes(e[9:17], "big", signed=True) >= cutoff for e in split_bundle(data)):
                    break
                b += 1
            new = b * WIDTH
            if new == old:
                return 0
            tx.execute("UPDATE ret_coord SET min_index = ? WHERE id = 1", (new,))
            gone = [tile_path(None, i, WIDTH) for i in range(old // WIDTH, b)]
            tx.execute("DELETE FROM tiles WHERE path = ANY(?)", (gone,))
            tx.execute("DELETE FROM openings WHERE first + count <= ?", (new,))
            straddle = tx.one("SELECT first FROM openings WHERE first < ? AND first + count > ?", (new, new))
            if straddle is not None:
                first = int(straddle[0])
                tx.execute("UPDATE openings SET data = overlay(data placing ? from 1) WHERE first = ?",
                           (bytes((new - first) * OPENING), first))
            tx.execute("DELETE FROM person_index WHERE seq < ?", (new,))
            tx.execute("UPDATE idx_coord SET indexed = greatest(indexed, ?) WHERE id = 1", (new,))
        if self._objects is not None:
            # After the commit: the bundles are public (no person named) and the openings that
            # tie them to a person went with the transaction, so a failed delete (reported to the
            # caller) leaves only unreadable public bytes behind, which reads and export skip.
            self._objects.delete(gone)
        with self._tiles_lock:
            for path in gone:
                self._tiles.pop(path, None)
        return new - old

    def verify(self) -> dict[str, int]:
        """Every public tile and bundle (exported and checked as `renkei ledger verify --dir D
        --vkey V` checks a copy of the log, records as renkei's) and every opening against its
        leaf; ``LedgerDamageError`` naming the first damage."""
        size, note = self._state()
        retired = self.min_index()
        with tempfile.TemporaryDirectory(prefix="renkei-pgledger-") as tmp:
            root = Path(tmp)
            self.export(root, size, note)
            report = verify_log_dir(root, self.vkey, renkei=True)
        checked = 0
        for lo in range(retired, size, 65_536):
            hi = min(size, lo + 65_536)
            for seq, leaf, opening in zip(range(lo, hi), self.entries(lo, hi, size), self.openings(lo, hi),
                                          strict=True):
                if not _l.opens(leaf, opening):
                    raise LedgerDamageError(f"the opening of record {seq} does not open its leaf", "openings")
                checked += 1
        report["openings_checked"] = checked
        report["checkpoints_checked"] = self._verify_history(size)
        self._verify_index(retired)
        return report

    def _stored_tiles(self, size: int) -> Iterator[tuple[str, bytes]]:
        """Every stored tile and bundle of the tree of ``size``, by path."""
        if self._objects is not None:
            for path in self._objects.paths():
                if _tile_within(path, size):
                    data = self._objects.get(path)
                    if data is None:
                        raise LedgerDamageError(f"{path} vanished from the object store", path)
                    yield path, data
            return
        for path, data in self._db.all("SELECT path, data FROM tiles ORDER BY path"):
            if _tile_within(str(path), size):
                yield str(path), bytes(data)

    def _verify_history(self, size: int) -> int:
        """Every stored checkpoint: signed by the log's key, its root the tree's at its size."""
        from renkei.ledger import verify_checkpoint

        n = 0
        for (note,) in self._db.all("SELECT note FROM checkpoints WHERE size <= ? ORDER BY size", (size,)):
            try:
                cp = verify_checkpoint(str(note), self.vkey, self.origin)
            except RenkeiError as e:
                raise LedgerDamageError(f"a stored checkpoint does not verify: {e}", "checkpoints") from None
            if cp.root != _l.tiles_root(cp.size, self._tile):
                raise LedgerDamageError(f"the stored checkpoint of size {cp.size} is not the tree's", "checkpoints")
            n += 1
        return n

    def _verify_index(self, retired: int) -> None:
        """The person index holds exactly one row per indexed, unretired record, with its
        opening's prefix."""
        row = self._db.one("SELECT indexed FROM idx_coord WHERE id = 1")
        assert row is not None
        indexed = int(row[0])
        rows = np.array(self._db.all("SELECT seq, prefix FROM person_index ORDER BY seq"), dtype=np.int64)
        rows = rows.reshape(-1, 2)
        if indexed < retired or not np.array_equal(rows[:, 0], np.arange(retired, indexed)):
            raise LedgerDamageError(f"the person index holds {len(rows)} rows, not one for each of the "
                                    f"{max(0, indexed - retired)} indexed records", "person_index")
        if indexed > retired:
            with self._db.transaction(serialise=False) as tx:
                o = np.frombuffer(self._openings_in(tx, retired, indexed), dtype=np.uint8).reshape(-1, OPENING)
            want = o[:, 16:20].copy().view(">i4").reshape(-1).astype(np.int64)
            bad = np.flatnonzero(want != rows[:, 1])
            if len(bad):
                raise LedgerDamageError(f"the person index is wrong for record {retired + int(bad[0])}",
                                        "person_index")

    def export(self, directory: str | Path, size: int | None = None, note: str | None = None) -> None:
        """The public log as files (checkpoint, format, tiles up to the checkpoint): the layout a
        tiles reader or `renkei ledger verify --dir` reads."""
        if size is None or note is None:
            size, note = self._state()
        root = Path(directory)
        for path, data in self._stored_tiles(size):
            target = root / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (root / "checkpoint").write_text(note)
        (root / "format").write_bytes(b"renkei-ledger 2\n")
        (root / "retention").write_text(f"{self.min_index()}\n")


def narrowed_tile(path: str, wider: bytes) -> bytes | None:
    """Partial tile or bundle ``path`` (``….p/<W>``) cut from ``wider`` (the full one, or a wider
    partial at the same index): its first ``W`` hashes or entries — the same bytes by
    construction (a tile's first hashes never change as the tree grows). None when ``wider``
    holds fewer."""
    width = int(path.partition(".p/")[2])
    if path.startswith("tile/entries/"):
        entries = split_bundle(wider)[:width]
        return b"".join(len(e).to_bytes(2, "big") + e for e in entries) if len(entries) == width else None
    return wider[:32 * width] if len(wider) >= 32 * width else None


def _tile_within(path: str, size: int) -> bool:
    """Whether tile ``path`` belongs to the tree of ``size`` (full tiles below it and the
    partial ones at its edge; partials of other sizes are left out)."""
    parts = path.split("/")
    level = None if parts[1] == "entries" else int(parts[1])
    rest = "/".join(parts[2:])
    width = WIDTH
    if ".p/" in rest:
        rest, w = rest.split(".p/")
        width = int(w)
    index = int("".join(p.lstrip("x") for p in rest.split("/")))
    count = size >> (8 * (level or 0))
    full, partial = divmod(count, WIDTH)
    return index < full if width == WIDTH else (index == full and width == partial)


def stored_checkpoint(conninfo: str, schema: str = "ledger") -> str | None:
    """The latest checkpoint note of the ledger in ``conninfo``, read-only (nothing created;
    None before the ledger exists): for ``renkei core status`` while the core runs."""
    from renkei.errors import NotInitializedError

    try:
        db = PostgresDatabase(conninfo, schema, None, read_only=True)
    except NotInitializedError:
        return None
    try:
        if not db.has_table("int_coord"):
            return None
        row = db.one("SELECT checkpoint FROM int_coord WHERE id = 1")
        return None if row is None else str(row[0])
    finally:
        db.close()


def _env_origin() -> str:
    import os

    return os.environ.get("RENKEI_LEDGER_ORIGIN", DEFAULT_ORIGIN)


__all__ = ["SCHEMA", "PgLedger", "narrowed_tile", "stored_checkpoint"]
