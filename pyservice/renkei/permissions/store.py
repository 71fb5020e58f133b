"""Durable table versions in the data directory (``permissions.sqlite3``).

Installing a version validates it by compiling it first (a document the engine refuses is never
stored), then records it with its content hash in one fsynced transaction, and appends an entry
to a change history (who, when, what, hash) that is never rewritten. ``engine()`` rebuilds a
``PermissionEngine`` from the bundled 別表第二 plus every installed version.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError, NotFoundError
from renkei.permissions.engine import PermissionEngine, read_document

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    label TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    document BLOB NOT NULL,
    installed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('install', 'remove')),
    label TEXT NOT NULL,
    hash BLOB,
    actor TEXT NOT NULL,
    note TEXT
);
"""


@dataclass(frozen=True)
class HistoryEntry:
    seq: int
    at: int
    action: str
    label: str
    hash: bytes | None
    actor: str
    note: str | None


class PermissionStore:
    def __init__(self, datadir: DataDir) -> None:
        self._db = datadir.connect("permissions.sqlite3")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PermissionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def install(self, source: str | os.PathLike[str] | bytes | dict[str, Any], *, actor: str,
                note: str | None = None) -> bytes:
        """Validate and store a table version (replacing one with the same label); its hash."""
        data = read_document(source)
        probe = PermissionEngine()
        v = probe.load(data)  # refuses anything the engine would refuse
        now = int(time.time())
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?)", (v.label, v.hash, data, now))
            self._db.execute("INSERT INTO history (at, action, label, hash, actor, note) "
                             "VALUES (?, 'install', ?, ?, ?, ?)", (now, v.label, v.hash, actor, note))
        return v.hash

    def remove(self, label: str, *, actor: str, note: str | None = None) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._db.execute("DELETE FROM versions WHERE label = ?", (label,)).rowcount == 0:
                raise NotFoundError(f"no installed table version {label!r}")
            self._db.execute("INSERT INTO history (at, action, label, hash, actor, note) "
                             "VALUES (?, 'remove', ?, NULL, ?, ?)", (int(time.time()), label, actor, note))

    def documents(self) -> list[tuple[str, bytes, bytes]]:
        """(label, hash, document) of every installed version."""
        return list(self._db.execute("SELECT label, hash, document FROM versions ORDER BY installed_at, label"))

    def history(self) -> list[HistoryEntry]:
        return [HistoryEntry(*row) for row in self._db.execute(
            "SELECT seq, at, action, label, hash, actor, note FROM history ORDER BY seq")]

    def engine(self, *, with_default: bool = True) -> PermissionEngine:
        """An engine with the bundled table and every installed version; a stored document whose
        hash no longer matches is refused rather than used."""
        e = PermissionEngine.with_default() if with_default else PermissionEngine()
        for label, want, doc in self.documents():
            v = e.load(bytes(doc))
            if v.hash != bytes(want) or v.label != label:
                e.unload(v.label)
                raise InvalidArgumentError(f"stored table version {label!r} does not match its hash")
        return e
