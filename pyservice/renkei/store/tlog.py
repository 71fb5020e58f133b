"""A C2SP transparency log sequenced and integrated in PostgreSQL — Tessera's database-backed
pattern for a generic log of opaque entries (docs/arch/store.md). The core's own ledger, with
its openings, per-person index and checkpoint history, is :mod:`renkei.store.pgledger`, which
follows the same pattern with the engine's integrator.

* **Sequence** (any front-end): one transaction takes ``seq_coord`` ``FOR UPDATE``, stores the
  batch as an entry bundle in ``seq`` and advances ``next``. Its ``COMMIT`` — on a primary with
  a synchronous standby — is the acknowledgement: the entries have their sequence numbers and
  survive a failover.
* **Integrate** (one elected front-end at a time): one transaction takes ``int_coord`` ``FOR
  UPDATE``, checks the integrator's epoch (the fencing token its election got), reads the
  pending batches in order, folds their leaf hashes into the tree's right edge, writes the C2SP
  tlog-tiles (hash tiles and entry bundles) create-once into ``tiles``, signs the checkpoint
  and deletes the integrated batches. An integrator that dies mid-way has changed nothing.
* **Election**: a session advisory lock on a connection of its own; the winner increments
  ``int_coord.epoch``. A holder that dies loses its session and so the lock (kill -9: at once;
  a vanished host: after the server's TCP keepalive); locks are not replicated, so after a
  failover every front-end competes again on the new primary, and the epoch — committed and
  replicated — still fences the old holder.

``export(directory)`` writes the checkpoint and every tile as files: the layout
``renkei ledger verify`` (:func:`renkei.ledger.verify_log_dir`) checks from the verifier key.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import psycopg

from renkei._core import ledger as _l
from renkei.datadir import write_atomic
from renkei.errors import FailedPreconditionError, InvalidArgumentError, LedgerDamageError, ResourceExhaustedError
from renkei.store import Tx
from renkei.store.postgres import PostgresDatabase

SCHEMA = """
CREATE TABLE IF NOT EXISTS seq_coord (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    next BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS seq (
    first  BIGINT PRIMARY KEY,
    count  INTEGER NOT NULL,
    bundle BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS int_coord (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    size       BIGINT NOT NULL,
    edge       BYTEA NOT NULL,
    epoch      BIGINT NOT NULL,
    checkpoint TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tiles (
    path TEXT PRIMARY KEY,
    data BYTEA NOT NULL
)
"""

WIDTH = 256
#: Entries sequenced but not yet integrated beyond which appends are pushed back.
MAX_PENDING = 200_000
#: Entries one integration transaction takes at most.
INTEGRATE_BATCH = 16_384
MAX_ENTRY = 65_535


def index_path(n: int) -> str:
    """``N`` as 3-digit path elements, all but the last prefixed with ``x`` (1234067 → x001/x234/067)."""
    groups = [f"{n % 1000:03d}"]
    n //= 1000
    while n > 0:
        groups.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(groups))


def tile_path(level: int | None, index: int, width: int) -> str:
    """Hash tile ``index`` at ``level`` (None: the entry bundle) holding ``width`` items."""
    base = f"tile/{'entries' if level is None else level}/{index_path(index)}"
    return base if width == WIDTH else f"{base}.p/{width}"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _subtree(hashes: list[bytes]) -> bytes:
    """Root of a perfect subtree (a full tile's 256 hashes)."""
    while len(hashes) > 1:
        hashes = [_node(hashes[i], hashes[i + 1]) for i in range(0, len(hashes), 2)]
    return hashes[0]


def push(edge: list[bytes], size: int, h: bytes) -> None:
    """Fold leaf hash ``h`` (index ``size``) into the right edge: the roots of the perfect
    subtrees of the tree, largest first (one per set bit of ``size``)."""
    while size & 1:
        h = _node(edge.pop(), h)
        size >>= 1
    edge.append(h)


def edge_root(edge: list[bytes]) -> bytes:
    if not edge:
        return hashlib.sha256(b"").digest()
    acc = edge[-1]
    for h in reversed(edge[:-1]):
        acc = _node(h, acc)
    return acc


def bundle(entries: Sequence[bytes]) -> bytes:
    return b"".join(len(e).to_bytes(2, "big") + e for e in entries)


def split_bundle(data: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(data):
        n = int.from_bytes(data[at:at + 2], "big")
        out.append(data[at + 2:at + 2 + n])
        at += 2 + n
    return out


def tiles_for(read: Callable[[str], bytes | None], size: int, entries: Sequence[bytes],
              leaves: list[bytes] | None = None) -> dict[str, bytes]:
    """Every tile and bundle (path → bytes) that growing the tree from ``size`` by ``entries``
    (whose leaf hashes are ``leaves`` when known) writes: the partial ones at the right edge and
    those completed on the way, at each level. ``read`` gives the existing partial tiles at
    ``size``."""
    out: dict[str, bytes] = {}

    def grow(level: int | None, count: int, items: list[bytes], item_size: int | None) -> list[bytes]:
        """Append ``items`` after the ``count`` already at this level; the roots of the hash
        tiles completed (for the level above)."""
        start = count - count % WIDTH
        have: list[bytes] = []
        if count % WIDTH:
            old = read(tile_path(level, count // WIDTH, count % WIDTH))
            if old is None:
                raise LedgerDamageError(f"{tile_path(level, count // WIDTH, count % WIDTH)} is missing",
                                        tile_path(level, count // WIDTH, count % WIDTH))
            have = (split_bundle(old) if item_size is None
                    else [old[i:i + item_size] for i in range(0, len(old), item_size)])
        row = have + items
        completed = []
        for t in range(start // WIDTH, (count + len(items) + WIDTH - 1) // WIDTH):
            chunk = row[t * WIDTH - start:(t + 1) * WIDTH - start]
            out[tile_path(level, t, len(chunk))] = bundle(chunk) if item_size is None else b"".join(chunk)
            if len(chunk) == WIDTH and (t + 1) * WIDTH > count:
                completed.append(_subtree(chunk))
        return completed

    grow(None, size, list(entries), None)
    hashes = leaves if leaves is not None else [leaf_hash(e) for e in entries]
    level = 0
    while hashes:
        hashes = grow(level, size >> (8 * level), hashes, 32)
        level += 1
    return out


class PgLog:
    """One log in one PostgreSQL schema (see the module docstring). Thread-safe."""

    def __init__(self, conninfo: str, origin: str, seed: bytes, *, schema: str = "tlog",
                 max_pending: int = MAX_PENDING) -> None:
        self.origin = origin
        self._seed = seed
        self.vkey = str(_l.vkey_for(origin, seed))
        self._db = PostgresDatabase(conninfo, schema, SCHEMA)
        self._max_pending = max_pending
        self._key = int.from_bytes(hashlib.sha256(f"renkei.tlog:{schema}".encode()).digest()[:8], "big", signed=True)
        self._lock = threading.Lock()
        self._session: psycopg.Connection[Any] | None = None
        self._epoch: int | None = None
        with self._db.transaction(serialise=False) as tx:
            tx.execute("INSERT INTO seq_coord(id, next) VALUES (1, 0) ON CONFLICT (id) DO NOTHING")
            tx.execute("INSERT INTO int_coord(id, size, edge, epoch, checkpoint) VALUES (1, 0, ?, 0, ?) "
                       "ON CONFLICT (id) DO NOTHING", (b"", self._sign(0, edge_root([]))))

    def _sign(self, size: int, root: bytes) -> str:
        import base64

        return str(_l.sign_note(f"{self.origin}\n{size}\n{base64.b64encode(root).decode()}\n",
                                name=self.origin, seed=self._seed))

    # -- sequencing -------------------------------------------------------------------------

    def append(self, entries: Sequence[bytes]) -> int:
        """Sequence ``entries`` durably; the first one's index (the rest follow in order)."""
        if not entries:
            raise InvalidArgumentError("nothing to append")
        for e in entries:
            if not 0 < len(e) <= MAX_ENTRY:
                raise InvalidArgumentError(f"a log entry has 1 to {MAX_ENTRY} bytes")
        with self._db.transaction(serialise=False) as tx:
            row = tx.one("SELECT next FROM seq_coord WHERE id = 1 FOR UPDATE")
            done = tx.one("SELECT size FROM int_coord WHERE id = 1")
            assert row is not None and done is not None
            first = int(row[0])
            if first - int(done[0]) > self._max_pending:
                # Tessera's push-back: integration is behind; the caller retries later.
                raise ResourceExhaustedError(f"{first - int(done[0])} log entries await integration; retry")
            tx.execute("INSERT INTO seq(first, count, bundle) VALUES (?, ?, ?)", (first, len(entries), bundle(entries)))
            tx.execute("UPDATE seq_coord SET next = ? WHERE id = 1", (first + len(entries),))
        return first

    def sequenced(self) -> int:
        row = self._db.one("SELECT next FROM seq_coord WHERE id = 1")
        assert row is not None
        return int(row[0])

    # -- election ---------------------------------------------------------------------------

    def elect(self) -> bool:
        """Try to become the integrator (again after losing the session); whether this is it."""
        with self._lock:
            if self._session is not None and not self._session.closed and not self._session.broken:
                try:
                    self._session.execute("SELECT 1")
                    return True
                except psycopg.OperationalError:
                    pass
            self._resign()
            session = self._db.session()
            row = session.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if row is None or not row[0]:
                session.close()
                return False
            with self._db.transaction(serialise=False) as tx:
                got = tx.one("UPDATE int_coord SET epoch = epoch + 1 WHERE id = 1 RETURNING epoch")
            assert got is not None
            self._session, self._epoch = session, int(got[0])
            return True

    def _resign(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session, self._epoch = None, None

    @property
    def epoch(self) -> int | None:
        """The epoch this front-end integrates under, or None when it is not the integrator."""
        return self._epoch

    # -- integration ------------------------------------------------------------------------

    def integrate(self, limit: int = INTEGRATE_BATCH) -> int:
        """Integrate pending batches (whole ones, up to about ``limit`` entries); the tree's new
        size. Only the elected integrator may (FailedPreconditionError otherwise)."""
        epoch = self._epoch
        if epoch is None:
            raise FailedPreconditionError("this front-end is not the log's integrator")
        with self._db.transaction(serialise=False) as tx:
            row = tx.one("SELECT size, edge, epoch FROM int_coord WHERE id = 1 FOR UPDATE")
            assert row is not None
            size, raw_edge = int(row[0]), bytes(row[1])
            if int(row[2]) != epoch:
                with self._lock:
                    self._resign()
                raise FailedPreconditionError(f"another integrator was elected (epoch {row[2]}, this one {epoch})")
            entries: list[bytes] = []
            for first, count, data in tx.all("SELECT first, count, bundle FROM seq WHERE first >= ? ORDER BY first "
                                             "LIMIT 1024", (size,)):
                if int(first) != size + len(entries):
                    raise LedgerDamageError(f"sequenced batch at {first} does not follow {size + len(entries)}")
                batch = split_bundle(bytes(data))
                if len(batch) != int(count):
                    raise LedgerDamageError(f"sequenced batch at {first} holds {len(batch)} entries, not {count}")
                entries.extend(batch)
                if len(entries) >= limit:
                    break
            if not entries:
                return size
            edge = [raw_edge[i:i + 32] for i in range(0, len(raw_edge), 32)]
            leaves = [leaf_hash(e) for e in entries]
            n = size
            for h in leaves:
                push(edge, n, h)
                n += 1
            self._put_once(tx, tiles_for(lambda p: self._tile(tx, p), size, entries, leaves))
            tx.execute("UPDATE int_coord SET size = ?, edge = ?, checkpoint = ? WHERE id = 1",
                       (n, b"".join(edge), self._sign(n, edge_root(edge))))
            tx.execute("DELETE FROM seq WHERE first < ?", (n,))
        return n

    @staticmethod
    def _tile(tx: Tx, path: str) -> bytes | None:
        row = tx.one("SELECT data FROM tiles WHERE path = ?", (path,))
        return None if row is None else bytes(row[0])

    @staticmethod
    def _put_once(tx: Tx, tiles: dict[str, bytes]) -> None:
        """Create-once: an existing tile with the same bytes is success, other bytes a fork.
        The inserts are pipelined; one read of the stored digests checks them all."""
        tx.many("INSERT INTO tiles(path, data) VALUES (?, ?) ON CONFLICT (path) DO NOTHING", list(tiles.items()))
        for path, digest in tx.all("SELECT path, sha256(data) FROM tiles WHERE path = ANY(?)", (list(tiles),)):
            if bytes(digest) != hashlib.sha256(tiles[str(path)]).digest():
                raise LedgerDamageError(f"{path} exists with other contents: the log would fork", str(path))

    # -- reading ----------------------------------------------------------------------------

    def checkpoint(self) -> str:
        row = self._db.one("SELECT checkpoint FROM int_coord WHERE id = 1")
        assert row is not None
        return str(row[0])

    def tile(self, path: str) -> bytes | None:
        row = self._db.one("SELECT data FROM tiles WHERE path = ?", (path,))
        return None if row is None else bytes(row[0])

    def export(self, directory: str | os.PathLike[str]) -> None:
        """The checkpoint and every tile as files (what a tiles reader or a verifier reads)."""
        root = Path(directory)
        for path, data in self._db.all("SELECT path, data FROM tiles ORDER BY path"):
            target = root / str(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(bytes(data))
        write_atomic(root / "checkpoint", self.checkpoint().encode(), 0o644)

    def close(self) -> None:
        with self._lock:
            self._resign()
        self._db.close()


__all__ = ["SCHEMA", "PgLog", "edge_root", "index_path", "leaf_hash", "push", "tile_path", "tiles_for"]
