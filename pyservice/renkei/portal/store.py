"""The portal's durable state: which お知らせ each person has read.

SQLite in the portal's directory (``portal.sqlite3``, ``synchronous=FULL`` through
:meth:`renkei.datadir.DataDir.connect`); a person is their pseudonym, nothing else. The notices
themselves stay at the core and are read through the person's session.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from datetime import UTC, datetime

from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError
from renkei.portal.oauth import Client, check_redirect_uri

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notice_reads (
    pseudonym BLOB NOT NULL,
    notice_id INTEGER NOT NULL,
    read_at   TEXT NOT NULL,
    PRIMARY KEY (pseudonym, notice_id)
);
-- 自己情報取得API: the apps the operator registered (public clients, PKCE) ...
CREATE TABLE IF NOT EXISTS oauth_clients (
    client_id     TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
-- ... and every fetch an app made for a person (their 操作履歴).
CREATE TABLE IF NOT EXISTS api_fetches (
    fetch_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    pseudonym BLOB NOT NULL,
    client_id TEXT NOT NULL,
    scope     TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS api_fetches_person ON api_fetches(pseudonym, fetch_id);
-- ワンストップ申請: which applications a person made (their status is the municipality's, at its mid).
CREATE TABLE IF NOT EXISTS applications (
    pseudonym      BLOB NOT NULL,
    agency_id      INTEGER NOT NULL,
    application_id INTEGER NOT NULL,
    title          TEXT NOT NULL,
    submitted_at   TEXT NOT NULL,
    PRIMARY KEY (agency_id, application_id)
);
CREATE INDEX IF NOT EXISTS applications_person ON applications(pseudonym);
"""


class PortalStore:
    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("portal.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def add_application(self, pseudonym: bytes, agency_id: int, application_id: int, title: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO applications VALUES (?, ?, ?, ?, ?)",
                             (bytes(pseudonym), agency_id, application_id, title, datetime.now(UTC).isoformat()))

    def applications(self, pseudonym: bytes) -> list[tuple[int, int, str, datetime]]:
        """(agency, application id, title, submitted at) of the person's applications, newest first."""
        rows = self._db.execute("SELECT agency_id, application_id, title, submitted_at FROM applications "
                                "WHERE pseudonym = ? ORDER BY submitted_at DESC", (bytes(pseudonym),)).fetchall()
        return [(int(r[0]), int(r[1]), str(r[2]), datetime.fromisoformat(r[3])) for r in rows]

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

    def add_client(self, name: str, redirect_uris: list[str]) -> Client:
        name = name.strip()
        if not name or len(name) > 80:
            raise InvalidArgumentError("an app's name is 1 to 80 characters")
        if not redirect_uris:
            raise InvalidArgumentError("an app needs at least one redirect URI")
        uris = tuple(check_redirect_uri(u) for u in redirect_uris)
        client = Client(secrets.token_urlsafe(16), name, uris)
        with self._lock:
            self._db.execute(
                "INSERT INTO oauth_clients(client_id, name, redirect_uris, created_at) VALUES (?, ?, ?, ?)",
                (client.client_id, name, "\n".join(uris), datetime.now(UTC).isoformat()))
        return client

    def client(self, client_id: str) -> Client | None:
        row = self._db.execute("SELECT client_id, name, redirect_uris FROM oauth_clients WHERE client_id = ?",
                               (client_id,)).fetchone()
        return None if row is None else Client(str(row[0]), str(row[1]), tuple(str(row[2]).split("\n")))

    def record_fetch(self, pseudonym: bytes, client_id: str, scope: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO api_fetches(pseudonym, client_id, scope, at) VALUES (?, ?, ?, ?)",
                             (bytes(pseudonym), client_id, scope, datetime.now(UTC).isoformat()))

    def fetches(self, pseudonym: bytes, limit: int = 1000) -> list[tuple[datetime, str, str]]:
        """(time, app name, scope) newest first."""
        rows = self._db.execute(
            "SELECT f.at, coalesce(c.name, f.client_id), f.scope FROM api_fetches f "
            "LEFT JOIN oauth_clients c ON c.client_id = f.client_id WHERE f.pseudonym = ? "
            "ORDER BY f.fetch_id DESC LIMIT ?", (bytes(pseudonym), limit)).fetchall()
        return [(datetime.fromisoformat(str(a)), str(b), str(c)) for a, b, c in rows]


__all__ = ["PortalStore"]
