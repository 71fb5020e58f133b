"""What the witness last cosigned for each log (its only state), in ``witness.sqlite3``.

One row per origin: tree size, root and the cosigned checkpoint (the log's signatures the
witness verified plus its own cosignature, served by the monitoring endpoint). Updates are a
compare-and-set on (size, root) inside one SQLite transaction (WAL, ``synchronous=FULL``): the
commit is on disk before :meth:`WitnessState.compare_and_set` returns, so before the witness
answers; a request that raced another one for the same log loses with the size now stored,
never rolling the log back (the race the tlog-witness spec describes).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from renkei.datadir import DataDir
from renkei.errors import CheckpointConflictError

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB NOT NULL CHECK (length(root) = 32),
    note TEXT NOT NULL,
    updated_us INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class LogState:
    origin: str
    size: int
    root: bytes
    note: str


class WitnessState:
    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("witness.sqlite3")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def latest(self, origin: str) -> LogState | None:
        with self._lock:
            row = self._db.execute("SELECT size, root, note FROM log WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else LogState(origin, int(row[0]), bytes(row[1]), str(row[2]))

    def all(self) -> list[LogState]:
        with self._lock:
            rows = self._db.execute("SELECT origin, size, root, note FROM log ORDER BY origin").fetchall()
        return [LogState(o, int(s), bytes(r), str(n)) for o, s, r, n in rows]

    def compare_and_set(self, origin: str, old: LogState | None, size: int, root: bytes, note: str) -> None:
        """Store (size, root, note) for ``origin`` if what is stored is still ``old`` (None: nothing
        stored); durable on return. Raises :class:`CheckpointConflictError` with the stored size
        otherwise."""
        now = time.time_ns() // 1000
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT size, root FROM log WHERE origin = ?", (origin,)).fetchone()
                current = None if row is None else (int(row[0]), bytes(row[1]))
                expected = None if old is None else (old.size, old.root)
                if current != expected:
                    self._db.execute("ROLLBACK")
                    raise CheckpointConflictError(
                        f"the witness's size for {origin!r} changed meanwhile",
                        0 if current is None else current[0],
                    )
                self._db.execute("INSERT OR REPLACE INTO log VALUES (?, ?, ?, ?, ?)", (origin, size, root, note, now))
                self._db.execute("COMMIT")
            except CheckpointConflictError:
                raise
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise


__all__ = ["LogState", "WitnessState"]
