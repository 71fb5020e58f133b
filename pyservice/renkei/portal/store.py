"""The portal's durable state: which お知らせ each person has read.

SQLite in the portal's directory (``portal.sqlite3``, ``synchronous=FULL`` through
:meth:`renkei.datadir.DataDir.connect`); a person is their pseudonym, nothing else. The notices
themselves stay at the core and are read through the person's session.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from renkei.datadir import DataDir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notice_reads (
    pseudonym BLOB NOT NULL,
    notice_id INTEGER NOT NULL,
    read_at   TEXT NOT NULL,
    PRIMARY KEY (pseudonym, notice_id)
);
"""


class PortalStore:
    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("portal.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def mark_read(self, pseudonym: bytes, notice_id: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO notice_reads(pseudonym, notice_id, read_at) VALUES (?, ?, ?)",
                             (bytes(pseudonym), int(notice_id), datetime.now(UTC).isoformat()))

    def read_of(self, pseudonym: bytes, notice_ids: Iterable[int]) -> set[int]:
        ids = [int(i) for i in notice_ids]
        if not ids:
            return set()
        marks = ",".join("?" * len(ids))
        rows = self._db.execute(f"SELECT notice_id FROM notice_reads WHERE pseudonym = ? AND notice_id IN ({marks})",
                                (bytes(pseudonym), *ids)).fetchall()
        return {int(r[0]) for r in rows}


__all__ = ["PortalStore"]
