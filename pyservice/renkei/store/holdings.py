"""The holdings on PostgreSQL (docs/arch/store.md, "Holdings on PostgreSQL"): who holds whom and
the core's person index of J-LIS link ids (連携用符号), shared by every front-end of one store.

Each front-end keeps the whole index in memory (the Rust engine's :class:`CodeEngine` made with
``in_memory``: codes stay computed, AES per person/agency/epoch, never stored) and changes it
only with what the database has committed — on a primary with a synchronous standby, what the
standby has flushed — so the acquisition's order is the file store's: durable first, then in
memory. Schema ``holdings``:

* ``persons(person, link)``: person numbers, assigned **once across front-ends**. A writer takes
  the schema's advisory lock (one writer at a time, every front-end), applies every change
  committed before it (so its index is the store's state), numbers the link ids it has not seen
  ``person_count, +1, …`` and inserts them in the acquisition's transaction. Numbers are dense
  and never reused: the engine's index, the codes and the record pseudonyms rely on that, which
  is why they are not an identity column (a sequence leaves gaps on every rollback and on every
  ``ON CONFLICT``). ``link`` is UNIQUE: a second number for a link id fails the transaction.
* ``holding_events(seq, op, agency, persons)``: the event log the acquisition and release
  transactions append to — one row per (transaction, agency), the persons it changes packed as
  u32 LE (only what changes: a re-acquisition writes nothing). Because writers are serialised
  until their commit, a reader sees a prefix of ``seq``: a follower applies the rows past its
  cursor and misses none.
* ``holdings_snapshot`` + ``holdings_chunk(snapshot, range, kind, data)``: snapshots by range
  of 65,536 person numbers. A range is a **base** row (``kind`` 0, ``RKR1``: the link ids of the
  range and every agency's array or bitmap chunk of it) followed by **patch** rows (``kind`` 1,
  ``RKP1``: the link ids assigned since and the value now of each (agency, person) pair events
  touched since the previous snapshot), CRC-checked, formats in core_rs/src/holdings/index.rs.
  Written by one elected front-end (``pg_try_advisory_lock`` on a session of its own;
  ``holdings_coord.epoch`` is the fencing token, checked in the transaction that completes the
  snapshot), incrementally — a patch for each range changed since the newest complete snapshot
  (the range's patches folded into one once there are ``MAX_PATCHES``; a new base once they
  would exceed ``1/PATCH_FRACTION`` of it), **create-once** under the new snapshot id — and
  completed in one transaction, which also deletes the rows its bases and folds superseded and
  prunes the events and persons covered by a snapshot at least ``PRUNE_AFTER_S`` old. A fresh
  front-end loads each range's newest complete base and the patches after it (a binary
  server-side cursor, inside one REPEATABLE READ transaction so a concurrent pruning cannot pull
  rows away) and replays only the events after the newest snapshot. Rows of the first layout
  (bases only, no ``kind`` column) get ``kind`` 0 when a front-end opens the store and load as
  they did.

A snapshot is *fuzzy*: it records the cursor ``upto_seq`` and the ranges are encoded afterwards,
one by one, while events keep being applied. Replaying from ``upto_seq`` is still exact: an
event sets or clears (agency, person) pairs, so the last event touching a pair decides it, and a
pair no event after ``upto_seq`` touches had the same value at every moment a range was encoded.
Link ids only grow, and a range past the cursor's person count is never encoded. The same
argument makes the incremental rule exact, pair by pair: a pair no event has touched since the
snapshot that last wrote it (base or patch, encoded after that snapshot's cursor) is still as
written, and a patch values every pair touched since the previous snapshot's cursor.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from renkei._core import codes as _codes
from renkei.errors import FailedPreconditionError, NotInitializedError, StorageError, StoreUnavailableError
from renkei.store import Tx
from renkei.store.postgres import PostgresDatabase

log = logging.getLogger("renkei.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS holdings_coord (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    epoch          BIGINT NOT NULL,
    pruned_seq     BIGINT NOT NULL,
    pruned_persons BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS persons (
    person BIGINT PRIMARY KEY CHECK (person >= 0 AND person < 4294967295),
    link   BYTEA NOT NULL UNIQUE CHECK (length(link) = 16)
);
CREATE TABLE IF NOT EXISTS holding_events (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    op      TEXT NOT NULL CHECK (op IN ('acquire', 'release')),
    agency  BIGINT NOT NULL,
    persons BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS holdings_snapshot (
    snapshot   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    upto_seq   BIGINT NOT NULL,
    persons    BIGINT NOT NULL,
    ranges     INTEGER NOT NULL,
    epoch      BIGINT NOT NULL,
    complete   BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS holdings_chunk (
    snapshot BIGINT NOT NULL REFERENCES holdings_snapshot ON DELETE CASCADE,
    range    INTEGER NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (snapshot, range)
)
"""
#: The second layout's column (the format marker of a row: 0 a base ``RKR1``, 1 a patch
#: ``RKP1``); a store of the first layout (bases only) gets it with 0 on every row.
KIND_COLUMN = "ALTER TABLE holdings_chunk ADD COLUMN kind SMALLINT NOT NULL DEFAULT 0 CHECK (kind IN (0, 1))"
BASE, PATCH = 0, 1

#: Write a snapshot once this many event rows follow the newest one.
SNAPSHOT_EVENTS = 10_000
#: How often a core on PostgreSQL applies what other front-ends changed (seconds).
FOLLOW_S = 1.0
#: Event rows one poll applies at most (the rest next time).
POLL_ROWS = 5_000
#: The events and persons a snapshot covered are pruned once a newer one completes and it is
#: this old (seconds): a front-end that falls further behind must restart to load a snapshot.
PRUNE_AFTER_S = 300.0
#: Snapshot rows are sent by binary COPY, one transaction per this many bytes (about 16 bases).
COPY_TX_BYTES = 16 << 20
#: A range's patches are folded into one once it has this many after its base (a fresh
#: front-end reads at most ``MAX_PATCHES`` + 1 rows a range).
MAX_PATCHES = 16
#: A range gets a new base once its patches would exceed 1/``PATCH_FRACTION`` of the base's
#: bytes (a load then reads at most that much more than the bases, and a base is rewritten
#: only after patches of an eighth of its size were written: cost proportional to the change).
PATCH_FRACTION = 8
LINK_LEN = 16


def _lock_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"renkei.store.holdings:{name}".encode()).digest()[:8], "big", signed=True)


def _migrate(db: PostgresDatabase) -> None:
    """Bring a store of the first layout (bases only) to this one: the ``kind`` column, 0 on
    every existing row. Checked first, so an up-to-date store takes no table lock."""
    if db.one("SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND table_name = 'holdings_chunk' "
              "AND column_name = 'kind'", (db.name,)) is None:
        with db.transaction() as tx:
            if tx.one("SELECT 1 FROM information_schema.columns WHERE table_schema = ? AND "
                      "table_name = 'holdings_chunk' AND column_name = 'kind'", (db.name,)) is None:
                tx.execute(KIND_COLUMN)
                log.info("holdings snapshots: the store's rows were of the first layout (bases only); "
                         "marked as bases")


def _unique_u32(persons: bytes) -> bytes:
    return np.unique(np.frombuffer(persons, dtype="<u4")).astype("<u4").tobytes()


class PgHoldings:
    """One front-end's view of the holdings on PostgreSQL: the engine's in-memory index, the
    writes that change it, its follower and the snapshots. Thread-safe."""

    def __init__(self, conninfo: str, engine: _codes.CodeEngine, *, create: bool = False) -> None:
        """Load the newest snapshot and the events after it into ``engine`` (made with
        ``CodeEngine.in_memory``). ``create`` (init) makes the schema; otherwise a schema
        without its coordination row — never initialised, or emptied — is refused: starting
        empty would give existing person numbers, codes and pseudonyms to other persons."""
        if not engine.is_in_memory():
            raise StorageError("the PostgreSQL holdings need an engine made with CodeEngine.in_memory")
        self._db = PostgresDatabase(conninfo, "holdings", SCHEMA)
        self._engine = engine
        #: One applier at a time in this front-end: the index, the cursor and the count move together.
        self._apply = threading.Lock()
        self._seq = 0
        #: (event, persons) the loaded snapshot covered: the store need not hold those rows.
        self._covered = (0, 0)
        self.loaded_from: dict[str, Any] = {}
        #: Event rows after the newest snapshot that make the next one due.
        self.snapshot_events = SNAPSHOT_EVENTS
        #: How many ranges this front-end's last snapshot wrote (the others were unchanged).
        self.last_snapshot_ranges = 0
        #: Of those, rows by kind and bytes: {"bases", "patches", "folded", "bytes"}.
        self.last_snapshot: dict[str, int] = {}
        self.prune_after_s = PRUNE_AFTER_S
        if create:
            with self._db.transaction() as tx:
                # Ranges are mostly random link ids and bitmaps: TOAST them out of line, uncompressed.
                tx.execute("ALTER TABLE holdings_chunk ALTER COLUMN data SET STORAGE EXTERNAL")
                tx.execute("INSERT INTO holdings_coord(id, epoch, pruned_seq, pruned_persons) VALUES (1, 0, 0, 0) "
                           "ON CONFLICT (id) DO NOTHING")
        _migrate(self._db)
        if self._db.one("SELECT 1 FROM holdings_coord WHERE id = 1") is None:
            raise NotInitializedError("the holdings schema on the core's store has no holdings_coord row: it was "
                                      "never initialised (`renkei core init --store …`) or was emptied; starting "
                                      "empty would give existing person numbers to other persons")
        self._load()

    # -- loading -----------------------------------------------------------------------------

    def _load(self) -> None:
        t0 = time.perf_counter()
        conn = self._db.session()
        try:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snap = conn.execute("SELECT snapshot, upto_seq, persons, ranges FROM holdings_snapshot WHERE complete "
                                "ORDER BY snapshot DESC LIMIT 1").fetchone()
            ranges = patches = 0
            patch_s = [0.0]
            if snap is not None:
                snapshot, upto_seq, persons, ranges = snap
                self._engine.index_reserve(int(persons))
                expect = 0
                group: list[tuple[int, bytes]] = []

                def load(hi: int) -> int:
                    """Range ``hi``: its newest base, then the patches after it, in order."""
                    if hi != expect:
                        raise StorageError(f"holdings snapshot {snapshot} lacks range {expect}")
                    bases = [i for i, (kind, _) in enumerate(group) if kind == BASE]
                    if not bases:
                        raise StorageError(f"holdings snapshot {snapshot}: range {hi} has patches but no base")
                    self._engine.index_load_range(group[bases[-1]][1])
                    t = time.perf_counter()
                    for _, data in group[bases[-1] + 1:]:
                        self._engine.index_load_patch(data)
                    patch_s[0] += time.perf_counter() - t
                    return len(group) - bases[-1] - 1

                with conn.cursor(name="renkei_holdings_load", binary=True) as cur:
                    cur.itersize = 8
                    # Each range as the complete snapshots left it: base, then patches, in order.
                    cur.execute("SELECT c.range, c.kind, c.data FROM holdings_chunk c "
                                "JOIN holdings_snapshot s ON s.snapshot = c.snapshot "
                                "WHERE s.complete AND c.snapshot <= %s AND c.range < %s "
                                "ORDER BY c.range, c.snapshot", (snapshot, ranges))
                    current = -1
                    for hi, kind, data in cur:
                        if hi != current and group:
                            patches += load(current)
                            expect += 1
                            group = []
                        current = hi
                        group.append((int(kind), bytes(data)))
                    if group:
                        patches += load(current)
                        expect += 1
                if expect != ranges:
                    raise StorageError(f"holdings snapshot {snapshot} has {expect} of its {ranges} ranges")
                self._engine.index_finish_load()
                self._seq = int(upto_seq)
                self._covered = (int(upto_seq), self._engine.person_count())
            replayed = self._catch_up(_SessionTx(conn), limit=None)
            conn.execute("COMMIT")
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(f"loading the holdings from the core's store failed: "
                                        f"{str(e).strip().splitlines()[-1]}") from None
        finally:
            conn.close()
        self.loaded_from = {"snapshot_ranges": ranges, "patch_rows": patches, "events_replayed": replayed,
                            "seconds": round(time.perf_counter() - t0, 3), "patch_seconds": round(patch_s[0], 3)}
        log.info("holdings loaded from the store: %d persons, %d holdings (%d snapshot ranges + %d patches, %d "
                 "event rows replayed) in %.1f s", self._engine.person_count(), self._engine.total(), ranges,
                 patches, replayed, self.loaded_from["seconds"])

    # -- following ---------------------------------------------------------------------------

    def _catch_up(self, tx: Tx, *, limit: int | None = POLL_ROWS) -> int:
        """Apply the events past the cursor and the persons past the count; event rows applied.
        Events are read first: every person they name was committed with them or before, so
        the persons read afterwards include them (and maybe more, assigned only)."""
        before_seq, before_count = self._seq, self._engine.person_count()
        sql = "SELECT seq, op, agency, persons FROM holding_events WHERE seq > ? ORDER BY seq"
        events = tx.all(sql + (f" LIMIT {int(limit)}" if limit is not None else ""), (self._seq,))
        persons = tx.all("SELECT person, link FROM persons WHERE person >= ? ORDER BY person", (before_count,))
        # What this index applied last must still be in the store (or pruned, which the
        # coordination row read afterwards tells): a commit a cancelled synchronous-replication
        # wait made visible on a primary that then failed over is applied here and lost there.
        last_event = before_seq == 0 or tx.one("SELECT 1 FROM holding_events WHERE seq = ?", (before_seq,)) is not None
        last_person = True
        if before_count > 0:
            row = tx.one("SELECT link FROM persons WHERE person = ?", (before_count - 1,))
            last_person = row is not None and bytes(row[0]) == self._engine.link_of(before_count - 1)
        coord = tx.one("SELECT pruned_seq, pruned_persons FROM holdings_coord WHERE id = 1")
        if coord is None:
            raise NotInitializedError("the holdings schema on the core's store lost its holdings_coord row")
        gone_seq, gone_persons = max(coord[0], self._covered[0]), max(coord[1], self._covered[1])
        if (not last_event and before_seq > gone_seq) or (not last_person and before_count > gone_persons):
            raise StorageError(
                f"this front-end's holdings (through event {before_seq}, {before_count} persons) hold changes the "
                f"store does not (a failover lost a commit this front-end had applied): restart it to load the "
                f"store's state")
        if before_seq < coord[0] or before_count < coord[1]:
            raise StorageError(
                f"this front-end's holdings (through event {before_seq}, {before_count} persons) fell behind the "
                f"store's pruned log (through {coord[0]}, {coord[1]} persons): restart it to load the newest snapshot")
        if persons:
            if int(persons[0][0]) != before_count or int(persons[-1][0]) != before_count + len(persons) - 1:
                raise StorageError(f"the store's person numbers from {before_count} are not dense")
            self._engine.index_assign(before_count, b"".join(bytes(link) for _, link in persons))
        for seq, op, agency, data in events:
            self._engine.index_apply(op, int(agency), bytes(data))
            self._seq = int(seq)
        return len(events)

    def poll(self) -> int:
        """Apply what other front-ends committed since the last poll; event rows applied."""
        with self._apply:
            return self._catch_up(_DbReads(self._db))

    # -- changes (durable first, then in memory) ---------------------------------------------

    def acquire(self, agency: int, links: bytes) -> bytes:
        """``agency``'s codes for the persons behind ``links`` (packed 16 bytes each): new link
        ids get the next person numbers, the holdings an event, in one transaction; its commit
        (replicated) comes before the index changes and before the codes are returned."""
        persons = self._change_links(agency, links)
        return self._engine.codes_for(agency, persons)

    def persons_of_links(self, links: bytes, *, assign: bool) -> npt.NDArray[np.int64]:
        """The person number of each link id (-1: none); ``assign`` numbers new ones durably.
        A miss is checked against the store first (another front-end may have assigned it)."""
        if assign:
            return np.frombuffer(self._change_links(None, links), dtype="<u4").astype(np.int64)
        found = self._engine.persons_of_links(links, False)
        if (found < 0).any():
            self.poll()
            found = self._engine.persons_of_links(links, False)
        return found

    def _change_links(self, agency: int | None, links: bytes) -> bytes:
        """Number the new link ids and, with ``agency``, record its holdings of them all; the
        person number of each link (packed u32 LE), once committed and applied."""
        with self._apply:
            with self._db.transaction() as tx:
                # Holding the schema's lock: every change committed so far is in the index after
                # this, and no other writer commits until this transaction ends.
                self._catch_up(tx, limit=None)
                first = self._engine.person_count()
                persons, new = self._engine.index_resolve_links(links)
                if new:
                    self._insert_persons(tx, first, new)
                changed = b"" if agency is None else self._engine.index_effective(
                    "acquire", agency, _unique_u32(persons))
                seq = self._append(tx, "acquire", agency or 0, changed)
            self._engine.index_assign(first, new)
            if agency is not None and changed:
                self._engine.index_apply("acquire", agency, changed)
            self._seq = max(self._seq, seq)
        return persons

    def release(self, agency: int, codes: bytes) -> tuple[int, npt.NDArray[np.uint8]]:
        """Release the holdings behind ``agency``'s own codes: (released, status per code)."""
        with self._apply:
            with self._db.transaction() as tx:
                self._catch_up(tx, limit=None)
                held, status = self._engine.held_persons_of_codes(agency, codes)
                changed = self._engine.index_effective("release", agency, _unique_u32(held))
                seq = self._append(tx, "release", agency, changed)
            removed = self._engine.index_apply("release", agency, changed) if changed else 0
            self._seq = max(self._seq, seq)
        return removed, status

    @staticmethod
    def _insert_persons(tx: Tx, first: int, new: bytes) -> None:
        n = len(new) // LINK_LEN
        tx.execute("INSERT INTO persons(person, link) SELECT * FROM unnest(?::bigint[], ?::bytea[])",
                   (list(range(first, first + n)), [new[i * LINK_LEN:(i + 1) * LINK_LEN] for i in range(n)]))

    @staticmethod
    def _append(tx: Tx, op: str, agency: int, persons: bytes) -> int:
        if not persons:
            return 0
        row = tx.one("INSERT INTO holding_events(op, agency, persons) VALUES (?, ?, ?) RETURNING seq",
                     (op, agency, persons))
        assert row is not None
        return int(row[0])

    # -- snapshots ---------------------------------------------------------------------------

    def snapshot_due(self, min_events: int | None = None) -> bool:
        """Whether ``min_events`` (default :attr:`snapshot_events`) event rows follow the newest
        complete snapshot."""
        min_events = self.snapshot_events if min_events is None else min_events
        row = self._db.one("SELECT count(*) FROM holding_events WHERE seq > coalesce("
                           "(SELECT max(upto_seq) FROM holdings_snapshot WHERE complete), 0)")
        return row is not None and int(row[0]) >= min_events

    def snapshot(self) -> int | None:
        """Write a snapshot of this front-end's index if it wins the election; the snapshot id,
        or None when another front-end holds the election or nothing changed since the newest."""
        session = self._db.session()
        try:
            won = session.execute("SELECT pg_try_advisory_lock(%s)", (_lock_key("snapshot"),)).fetchone()
            if won is None or not won[0]:
                return None
            epoch_row = session.execute("UPDATE holdings_coord SET epoch = epoch + 1 WHERE id = 1 "
                                        "RETURNING epoch").fetchone()
            assert epoch_row is not None
            epoch = int(epoch_row[0])
            with self._apply:
                self._catch_up(_DbReads(self._db), limit=None)
                upto, persons, ranges = self._seq, self._engine.person_count(), self._engine.index_range_count()
            newest = session.execute("SELECT upto_seq, persons, ranges FROM holdings_snapshot WHERE complete "
                                     "ORDER BY snapshot DESC LIMIT 1").fetchone()
            if newest is not None and (int(newest[0]), int(newest[1])) == (upto, persons):
                return None
            if newest is None:
                plan = _Plan(list(range(ranges)))
            else:
                plan = _plan(session, int(newest[0]), upto, int(newest[1]), persons, int(newest[2]), ranges)
            snapshot = _write_rows(session, upto, persons, ranges, epoch, plan.rows(self._engine))
            with self._db.transaction(serialise=False) as tx:
                coord = tx.one("SELECT epoch FROM holdings_coord WHERE id = 1 FOR UPDATE")
                if coord is None or int(coord[0]) != epoch:
                    raise StorageError(f"holdings snapshot {snapshot}: another front-end was elected since "
                                       f"(epoch {coord[0] if coord else None}, mine {epoch}); not completed")
                # The newest complete snapshot old enough: what it covered no follower needs now.
                previous = tx.one("SELECT upto_seq, persons FROM holdings_snapshot WHERE complete AND "
                                  "created_at <= now() - make_interval(secs => ?) ORDER BY snapshot DESC LIMIT 1",
                                  (self.prune_after_s,))
                tx.execute("UPDATE holdings_snapshot SET complete = true WHERE snapshot = ?", (snapshot,))
                # What this snapshot's bases and folded patches supersede (only the ranges it
                # wrote: proportional to the change), snapshots left with no row, unfinished ones.
                if plan.based:
                    tx.execute("DELETE FROM holdings_chunk WHERE snapshot < ? AND range = ANY(?)",
                               (snapshot, plan.based))
                if plan.folded:
                    tx.execute("DELETE FROM holdings_chunk WHERE snapshot < ? AND kind = 1 AND range = ANY(?)",
                               (snapshot, plan.folded))
                tx.execute("DELETE FROM holdings_snapshot s WHERE s.snapshot < ? AND (NOT s.complete OR NOT EXISTS "
                           "(SELECT 1 FROM holdings_chunk c WHERE c.snapshot = s.snapshot))", (snapshot,))
                if previous is not None:
                    # What the previous snapshot covered: a follower is at least there by now.
                    tx.execute("DELETE FROM holding_events WHERE seq <= ?", (previous[0],))
                    tx.execute("DELETE FROM persons WHERE person < ?", (previous[1],))
                    tx.execute("UPDATE holdings_coord SET pruned_seq = greatest(pruned_seq, ?), "
                               "pruned_persons = greatest(pruned_persons, ?) WHERE id = 1", previous)
            self.last_snapshot_ranges = len(plan.dirty)
            self.last_snapshot = {"bases": len(plan.based), "patches": len(plan.dirty) - len(plan.based),
                                  "folded": len(plan.folded), "bytes": plan.bytes}
            log.info("holdings snapshot %d written: %d of %d ranges changed (%d bases, %d patches of which %d "
                     "folded; %d bytes), %d persons, through event %d", snapshot, len(plan.dirty), ranges,
                     len(plan.based), len(plan.dirty) - len(plan.based), len(plan.folded), plan.bytes, persons,
                     upto)
            return snapshot
        except psycopg.OperationalError as e:
            raise StoreUnavailableError(f"writing a holdings snapshot failed: {str(e).strip().splitlines()[-1]}") \
                from None
        finally:
            session.close()  # ends the session: the election lock goes with it

    @property
    def cursor(self) -> tuple[int, int]:
        """(the last event applied, persons assigned) of this front-end's index."""
        return self._seq, self._engine.person_count()

    def close(self) -> None:
        self._db.close()


class _Plan:
    """What one snapshot writes: for each range in ``dirty``, a base when it has none yet (no
    ``chain``), else a patch of the pairs ``touched`` there and the link ids from person
    ``first`` on, folding the range's earlier patches in (``previous``) once it has
    ``MAX_PATCHES`` — or a base after all when the patches would outgrow ``1/PATCH_FRACTION`` of
    the base (``chain``: its base's bytes and its patches' bytes). The rows are encoded as they
    are sent."""

    def __init__(self, dirty: list[int]) -> None:
        self.dirty = dirty
        self.first = 0
        self.touched: dict[int, tuple[bytes, bytes]] = {}
        self.chain: dict[int, tuple[int, list[int]]] = {}
        self.previous: dict[int, list[bytes]] = {}
        #: Filled while the rows are made: the ranges given a base, the ranges whose patches were folded.
        self.based: list[int] = []
        self.folded: list[int] = []
        self.bytes = 0

    def rows(self, engine: _codes.CodeEngine) -> Iterator[tuple[int, int, bytes]]:
        for hi in self.dirty:
            chain = self.chain.get(hi)
            kind, data = BASE, b""
            if chain is not None:
                base_bytes, patches = chain
                previous = self.previous.get(hi, [])
                agencies, persons = self.touched.get(hi, (b"", b""))
                data = engine.index_encode_patch(hi, self.first, agencies, persons, previous)
                kept = 0 if previous else sum(patches)
                if (kept + len(data)) * PATCH_FRACTION <= base_bytes:
                    kind = PATCH
                    if previous:
                        self.folded.append(hi)
            if kind == BASE:
                data = engine.index_encode_range(hi)
                self.based.append(hi)
            self.bytes += len(data)
            yield hi, kind, data


def _plan(conn: psycopg.Connection[Any], since_seq: int, upto: int, since_persons: int, persons: int,
          since_ranges: int, ranges: int) -> _Plan:
    """What a snapshot at (``upto``, ``persons``) writes after the newest one at (``since_seq``,
    ``since_persons``): the ranges an event in between touched (and the pairs it touched there),
    those with persons assigned since, and the new ones. Every other range is as the snapshots
    that last wrote it left it — they encoded it after their own cursor, and no event has touched
    it since; in a range written, a pair no event touched since is as they left it too."""
    dirty: set[int] = set(range(since_ranges, ranges))
    if persons > since_persons:
        dirty.update(range(since_persons >> 16, ((persons - 1) >> 16) + 1))
    agencies: list[npt.NDArray[np.uint32]] = []
    members: list[npt.NDArray[np.uint32]] = []
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT agency, persons FROM holding_events WHERE seq > %s AND seq <= %s", (since_seq, upto))
        for agency, data in cur:
            got = np.frombuffer(bytes(data), dtype="<u4")
            members.append(got)
            agencies.append(np.full(len(got), agency, dtype="<u4"))
    if members:
        every, by = np.concatenate(members), np.concatenate(agencies)
        order = np.lexsort((every, by, every >> 16))
        every, by = every[order], by[order]
        his = every >> 16
        cuts = np.flatnonzero(np.diff(his)) + 1
        touched = {int(p[0] >> 16): (a.astype("<u4").tobytes(), p.astype("<u4").tobytes())
                   for a, p in zip(np.split(by, cuts), np.split(every, cuts), strict=True) if len(p)}
        dirty.update(touched)
    else:
        touched = {}
    plan = _Plan(sorted(hi for hi in dirty if hi < ranges))
    plan.first, plan.touched = since_persons, touched
    if not plan.dirty:
        return plan
    # Each written range's complete rows: its newest base's bytes, its patches' bytes after it.
    with conn.cursor(binary=True) as cur:
        cur.execute("SELECT c.range, c.snapshot, c.kind, length(c.data) FROM holdings_chunk c JOIN holdings_snapshot "
                    "s ON s.snapshot = c.snapshot WHERE s.complete AND c.range = ANY(%s) ORDER BY c.range, c.snapshot",
                    (plan.dirty,))
        rows: dict[int, list[tuple[int, int, int]]] = {}
        for hi, snapshot, kind, size in cur:
            rows.setdefault(int(hi), []).append((int(snapshot), int(kind), int(size)))
    fold: list[tuple[int, int]] = []
    for hi, versions in rows.items():
        bases = [i for i, (_, kind, _) in enumerate(versions) if kind == BASE]
        if not bases:
            continue  # written as a base
        after = versions[bases[-1] + 1:]
        plan.chain[hi] = (versions[bases[-1]][2], [size for _, _, size in after])
        if len(after) >= MAX_PATCHES:
            fold += [(hi, snapshot) for snapshot, _, _ in after]
    if fold:
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT range, data FROM holdings_chunk WHERE (range, snapshot) IN (SELECT * FROM "
                        "unnest(%s::int4[], %s::int8[])) ORDER BY range, snapshot",
                        ([hi for hi, _ in fold], [snapshot for _, snapshot in fold]))
            for hi, data in cur:
                plan.previous.setdefault(int(hi), []).append(bytes(data))
    return plan


def _write_rows(conn: psycopg.Connection[Any], upto: int, persons: int, ranges: int, epoch: int,
                rows: Iterable[tuple[int, int, bytes]]) -> int:
    """A new (incomplete) snapshot row and its range rows (range, kind, data), encoded as they
    are sent with binary ``COPY`` (a transaction every ``COPY_TX_BYTES``); the snapshot id."""
    with conn.transaction():
        row = conn.execute("INSERT INTO holdings_snapshot(upto_seq, persons, ranges, epoch) VALUES (%s, %s, %s, %s) "
                           "RETURNING snapshot", (upto, persons, ranges, epoch)).fetchone()
    assert row is not None
    snapshot = int(row[0])
    todo = iter(rows)
    pending = next(todo, None)
    while pending is not None:
        sent = 0
        with conn.transaction(), conn.cursor() as cur, \
                cur.copy("COPY holdings_chunk(snapshot, range, kind, data) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "int2", "bytea"])
            while pending is not None and sent < COPY_TX_BYTES:
                # Create-once: a row is written under a new snapshot id and never changed.
                hi, kind, data = pending
                copy.write_row((snapshot, hi, kind, data))
                sent += len(data)
                pending = next(todo, None)
    return snapshot


def import_engine(conninfo: str, engine: _codes.CodeEngine) -> int:
    """Seed a store's empty holdings schema with everything ``engine`` holds (an embedded
    core's file store: the step a move to PostgreSQL needs; the national benchmark's writer) as
    one complete snapshot. Refused when the schema holds persons or events already."""
    db = PostgresDatabase(conninfo, "holdings", SCHEMA)
    try:
        _migrate(db)
        with db.transaction() as tx:
            tx.execute("ALTER TABLE holdings_chunk ALTER COLUMN data SET STORAGE EXTERNAL")
            tx.execute("INSERT INTO holdings_coord(id, epoch, pruned_seq, pruned_persons) VALUES (1, 0, 0, 0) "
                       "ON CONFLICT (id) DO NOTHING")
            if tx.one("SELECT 1 FROM persons UNION ALL SELECT 1 FROM holding_events "
                      "UNION ALL SELECT 1 FROM holdings_snapshot WHERE complete LIMIT 1") is not None:
                raise FailedPreconditionError("the store's holdings are not empty: an import would overwrite them")
        conn = db.session()
        try:
            ranges = engine.index_range_count()
            snapshot = _write_rows(conn, 0, engine.person_count(), ranges, 0,
                                   ((hi, BASE, engine.index_encode_range(hi)) for hi in range(ranges)))
            with conn.transaction():
                conn.execute("UPDATE holdings_snapshot SET complete = true WHERE snapshot = %s", (snapshot,))
        finally:
            conn.close()
        return snapshot
    finally:
        db.close()


class _DbReads(Tx):
    """Reads outside a transaction (the follower: each statement on committed state)."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def all(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        return self._db.all(sql, args)

    def execute(self, sql: str, args: Any = ()) -> int:
        raise AssertionError("reads only")

    def many(self, sql: str, rows: Any) -> None:
        raise AssertionError("reads only")


class _SessionTx(Tx):
    """Statements on a session of its own (the load's REPEATABLE READ transaction)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def all(self, sql: str, args: Any = ()) -> list[tuple[Any, ...]]:
        cur = self._conn.execute(sql.replace("?", "%s"), tuple(args))
        return list(cur.fetchall()) if cur.description is not None else []

    def execute(self, sql: str, args: Any = ()) -> int:
        raise AssertionError("reads only")

    def many(self, sql: str, rows: Any) -> None:
        raise AssertionError("reads only")


__all__ = ["FOLLOW_S", "SNAPSHOT_EVENTS", "PgHoldings", "import_engine"]
