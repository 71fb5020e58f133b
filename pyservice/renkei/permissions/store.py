"""Durable table versions in the data directory (``permissions.sqlite3``).

Installing a version validates it by compiling it first (a document the engine refuses is never
stored), then records it with its content hash in one fsynced transaction, and appends an entry
to a change history (who, when, what, hash) that is never rewritten. A version is *active*
(loaded into the engine that decides inquiries) or *staged* (stored, not enforced, until it is
activated). ``engine()`` rebuilds a ``PermissionEngine`` from the bundled 別表第二 plus every
active version.

``PermissionStore(datadir, read_only=True)`` opens the file read-only (no lock, no write, nothing
created): what the CLI's reads use, also while the core runs.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from renkei.datadir import DataDir, connect_sqlite
from renkei.errors import InvalidArgumentError, NotFoundError, NotInitializedError
from renkei.permissions.engine import PermissionEngine, read_document

FILE = "permissions.sqlite3"
ACTIONS = ("install", "stage", "activate", "remove")

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    label TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    document BLOB NOT NULL,
    installed_at INTEGER NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('install', 'stage', 'activate', 'remove')),
    label TEXT NOT NULL,
    hash BLOB,
    actor TEXT NOT NULL,
    note TEXT
);
"""

# Files written before staging existed: versions without ``active``, a history that allowed
# only install/remove. Migrated in one transaction when the store is opened for writing.
_MIGRATE_HISTORY = """
CREATE TABLE history_new (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('install', 'stage', 'activate', 'remove')),
    label TEXT NOT NULL,
    hash BLOB,
    actor TEXT NOT NULL,
    note TEXT
);
INSERT INTO history_new SELECT seq, at, action, label, hash, actor, note FROM history;
DROP TABLE history;
ALTER TABLE history_new RENAME TO history;
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


@dataclass(frozen=True)
class StoredVersion:
    label: str
    hash: bytes
    document: bytes
    installed_at: int
    active: bool


class PermissionStore:
    def __init__(self, datadir: DataDir, *, read_only: bool = False) -> None:
        path = datadir.file(FILE)
        self.read_only = read_only
        if read_only:
            if not path.exists():
                raise NotInitializedError(f"{path} is missing: `renkei core init` creates it; restore it from the "
                                          f"backup of this data directory")
            self._db = connect_sqlite(path, read_only=True)
        else:
            self._db = datadir.connect(FILE)
            self._db.executescript(SCHEMA)
            self._migrate()
        self._has_active = "active" in self._columns("versions")

    def _columns(self, table: str) -> set[str]:
        return {str(r[1]) for r in self._db.execute(f"PRAGMA table_info({table})")}

    def _migrate(self) -> None:
        if "active" not in self._columns("versions"):
            self._db.execute("ALTER TABLE versions ADD COLUMN active INTEGER NOT NULL DEFAULT 1")
        row = self._db.execute("SELECT sql FROM sqlite_master WHERE name = 'history'").fetchone()
        if row is not None and "'activate'" not in row[0]:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for statement in _MIGRATE_HISTORY.strip().split(";"):
                    if statement.strip():
                        self._db.execute(statement)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> PermissionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _writable(self) -> None:
        if self.read_only:
            raise InvalidArgumentError("the permission store was opened read-only")

    def _log(self, action: str, label: str, digest: bytes | None, actor: str, note: str | None, now: int) -> None:
        self._db.execute("INSERT INTO history (at, action, label, hash, actor, note) VALUES (?, ?, ?, ?, ?, ?)",
                         (now, action, label, digest, actor, note))

    def install(self, source: str | os.PathLike[str] | bytes | dict[str, Any], *, actor: str,
                note: str | None = None, staged: bool = False) -> bytes:
        """Validate and store a table version (replacing one with the same label), active
        unless ``staged``; its hash."""
        self._writable()
        data = read_document(source)
        probe = PermissionEngine()
        v = probe.load(data)  # refuses anything the engine would refuse
        now = int(time.time())
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR REPLACE INTO versions (label, hash, document, installed_at, active) "
                             "VALUES (?, ?, ?, ?, ?)", (v.label, v.hash, data, now, 0 if staged else 1))
            self._log("stage" if staged else "install", v.label, v.hash, actor, note, now)
        return v.hash

    def activate(self, label: str, *, actor: str, note: str | None = None) -> StoredVersion:
        """Mark a staged version active (recorded in the history); the version."""
        self._writable()
        now = int(time.time())
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            v = self.version(label)
            if not v.active:
                self._db.execute("UPDATE versions SET active = 1 WHERE label = ?", (label,))
                self._log("activate", label, v.hash, actor, note, now)
        return StoredVersion(v.label, v.hash, v.document, v.installed_at, True)

    def remove(self, label: str, *, actor: str, note: str | None = None) -> None:
        self._writable()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            if self._db.execute("DELETE FROM versions WHERE label = ?", (label,)).rowcount == 0:
                raise NotFoundError(f"no installed table version {label!r}")
            self._log("remove", label, None, actor, note, int(time.time()))

    def _select(self, where: str = "", args: tuple[Any, ...] = ()) -> list[StoredVersion]:
        active = "active" if self._has_active else "1"
        rows = self._db.execute(f"SELECT label, hash, document, installed_at, {active} FROM versions {where} "
                                f"ORDER BY installed_at, label", args)
        return [StoredVersion(str(a), bytes(b), bytes(c), int(d), bool(e)) for a, b, c, d, e in rows]

    def version(self, label: str) -> StoredVersion:
        found = self._select("WHERE label = ?", (label,))
        if not found:
            raise NotFoundError(f"no installed table version {label!r}")
        return found[0]

    def stored(self) -> list[StoredVersion]:
        """Every stored version, active and staged."""
        return self._select()

    def documents(self) -> list[tuple[str, bytes, bytes]]:
        """(label, hash, document) of every active version."""
        return [(v.label, v.hash, v.document) for v in self.stored() if v.active]

    def history(self) -> list[HistoryEntry]:
        try:
            rows = list(self._db.execute("SELECT seq, at, action, label, hash, actor, note FROM history ORDER BY seq"))
        except sqlite3.OperationalError:  # a read-only store written before the history existed
            return []
        return [HistoryEntry(*row) for row in rows]

    def engine(self, *, with_default: bool = True) -> PermissionEngine:
        """An engine with the bundled table and every active version; a stored document whose
        hash no longer matches is refused rather than used."""
        e = PermissionEngine.with_default() if with_default else PermissionEngine()
        for label, want, doc in self.documents():
            v = e.load(bytes(doc))
            if v.hash != bytes(want) or v.label != label:
                e.unload(v.label)
                raise InvalidArgumentError(f"stored table version {label!r} does not match its hash")
        return e
