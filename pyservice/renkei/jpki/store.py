"""The JPKI registry (``jpki.sqlite3`` in J-LIS's JPKI data directory): every certificate issued
with its revocation status, the CRL numbers, and each card's chip state (the PIN counters).

Durable like every renkei registry: SQLite in WAL mode with ``synchronous=FULL``
(:meth:`renkei.datadir.DataDir.connect`), so a returned commit is on disk. Several processes use
it at once — the responder (``renkei jpki serve``) reads statuses while ``renkei jpki revoke``
or ``renkei card sign-challenge`` write — and every change is one ``BEGIN IMMEDIATE``
transaction.

**The card's chip.** A real card keeps its PIN-try counter inside the chip, where the holder
cannot reset it. A software token is a file the holder can copy, so the counter lives here, in
J-LIS's registry: ``chips`` holds, per card and key (``auth``/``sign``), the PIN verifier, the
failures so far, the limit, and ``slot_secret`` — the second half of the key that unwraps the
token's private key, released only after a PIN check this registry counted
(:mod:`renkei.jpki.card`). Copying the token file therefore buys no extra tries.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from renkei.datadir import DataDir
from renkei.errors import NotFoundError, StorageError

DB_NAME = "jpki.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS certificates (
    serial      TEXT PRIMARY KEY,           -- decimal
    kind        TEXT NOT NULL CHECK (kind IN ('auth', 'sign')),
    card_id     TEXT NOT NULL,
    not_before  TEXT NOT NULL,              -- ISO 8601 UTC
    not_after   TEXT NOT NULL,
    issued_at   TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'good' CHECK (status IN ('good', 'revoked', 'hold')),
    reason      TEXT,                       -- cryptography ReasonFlags value, e.g. keyCompromise
    revoked_at  TEXT,
    der         BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS certificates_card ON certificates(card_id, kind);
CREATE TABLE IF NOT EXISTS chips (
    card_id       TEXT NOT NULL,
    slot          TEXT NOT NULL CHECK (slot IN ('auth', 'sign', 'kenmen')),
    serial        TEXT NOT NULL,            -- the certificate whose key this slot guards
    scrypt_n      INTEGER NOT NULL,
    pin_salt      BLOB NOT NULL,
    pin_verifier  BLOB NOT NULL,
    slot_secret   BLOB NOT NULL,
    reset_wrap    BLOB NOT NULL,            -- the key's data key under keys/card-reset.key
    failures      INTEGER NOT NULL DEFAULT 0,
    max_failures  INTEGER NOT NULL,
    PRIMARY KEY (card_id, slot)
);
CREATE TABLE IF NOT EXISTS crl_numbers (
    kind    TEXT PRIMARY KEY,
    number  INTEGER NOT NULL
);
"""


def _migrate_chips(db: sqlite3.Connection) -> None:
    """Registries from before the 券面事項入力補助AP allowed only 'auth' and 'sign' slots: rebuild the
    table with the wider check, in one transaction (rows kept)."""
    def old() -> bool:
        row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'chips'").fetchone()
        return row is not None and "kenmen" not in str(row[0])

    if not old():
        return
    create = _SCHEMA[_SCHEMA.index("CREATE TABLE IF NOT EXISTS chips"):_SCHEMA.index("CREATE TABLE IF NOT EXISTS "
                                                                                          "crl_numbers")]
    db.execute("BEGIN IMMEDIATE")
    try:
        if not old():  # another process migrated it meanwhile
            db.execute("COMMIT")
            return
        db.execute("ALTER TABLE chips RENAME TO chips_before_kenmen")
        db.execute(create)
        db.execute("INSERT INTO chips SELECT * FROM chips_before_kenmen")
        db.execute("DROP TABLE chips_before_kenmen")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


@dataclass(frozen=True)
class CertificateRecord:
    """A certificate the JPKI issued and its status (``good``, ``revoked`` or ``hold``)."""

    serial: int
    kind: str
    card_id: str
    not_before: dt.datetime
    not_after: dt.datetime
    issued_at: dt.datetime
    status: str
    reason: str | None
    revoked_at: dt.datetime | None
    der: bytes

    @classmethod
    def _of(cls, row: sqlite3.Row | tuple[object, ...]) -> CertificateRecord:
        serial, kind, card_id, nb, na, issued, status, reason, revoked_at, der = row
        return cls(int(str(serial)), str(kind), str(card_id), dt.datetime.fromisoformat(str(nb)),
                   dt.datetime.fromisoformat(str(na)), dt.datetime.fromisoformat(str(issued)), str(status),
                   None if reason is None else str(reason), _time(None if revoked_at is None else str(revoked_at)),
                   bytes(der))  # type: ignore[arg-type]


@dataclass(frozen=True)
class ChipSlot:
    """One key's PIN state on a card's chip."""

    card_id: str
    slot: str
    serial: int
    scrypt_n: int
    pin_salt: bytes
    pin_verifier: bytes
    slot_secret: bytes
    reset_wrap: bytes
    failures: int
    max_failures: int

    @property
    def locked(self) -> bool:
        return self.failures >= self.max_failures


_CERT_COLUMNS = "serial, kind, card_id, not_before, not_after, issued_at, status, reason, revoked_at, der"
_CHIP_COLUMNS = ("card_id, slot, serial, scrypt_n, pin_salt, pin_verifier, slot_secret, reset_wrap, failures, "
                 "max_failures")


class JpkiStore:
    """The registry of one JPKI data directory. Thread-safe (one connection behind a lock)."""

    def __init__(self, data_dir: DataDir) -> None:
        self.path = data_dir.file(DB_NAME)
        try:
            self._db = data_dir.connect(DB_NAME)
            self._db.executescript(_SCHEMA)
            _migrate_chips(self._db)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"{self.path} is damaged ({e}); restore it from a backup") from None
        self._lock = threading.RLock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: serialised with other processes)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # -- certificates -----------------------------------------------------------------------------

    def add_certificate(self, db: sqlite3.Connection, kind: str, card_id: str, serial: int,
                        not_before: dt.datetime, not_after: dt.datetime, der: bytes) -> None:
        db.execute(
            f"INSERT INTO certificates({_CERT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'good', NULL, NULL, ?)",
            (str(serial), kind, card_id, _iso(not_before), _iso(not_after), _iso(dt.datetime.now(dt.UTC)), der),
        )

    def certificate(self, serial: int, kind: str | None = None) -> CertificateRecord | None:
        with self._lock:
            row = self._db.execute(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE serial = ?",
                                   (str(serial),)).fetchone()
        if row is None:
            return None
        record = CertificateRecord._of(row)
        return record if kind is None or record.kind == kind else None

    def certificates_of(self, card_id: str) -> list[CertificateRecord]:
        with self._lock:
            rows = self._db.execute(f"SELECT {_CERT_COLUMNS} FROM certificates WHERE card_id = ? ORDER BY issued_at",
                                    (card_id,)).fetchall()
        return [CertificateRecord._of(r) for r in rows]

    def revoked(self, kind: str, now: dt.datetime) -> list[CertificateRecord]:
        """Revoked or suspended certificates of ``kind`` that have not expired (the CRL's entries)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_CERT_COLUMNS} FROM certificates WHERE kind = ? AND status != 'good' AND not_after > ? "
                "ORDER BY revoked_at", (kind, _iso(now))).fetchall()
        return [CertificateRecord._of(r) for r in rows]

    def set_status(self, db: sqlite3.Connection, serial: int, status: str, reason: str | None,
                   when: dt.datetime | None) -> None:
        db.execute("UPDATE certificates SET status = ?, reason = ?, revoked_at = ? WHERE serial = ?",
                   (status, reason, None if when is None else _iso(when), str(serial)))

    def next_crl_number(self, kind: str) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT number FROM crl_numbers WHERE kind = ?", (kind,)).fetchone()
            number = 1 if row is None else int(row[0]) + 1
            db.execute("INSERT INTO crl_numbers(kind, number) VALUES (?, ?) "
                       "ON CONFLICT(kind) DO UPDATE SET number = excluded.number", (kind, number))
        return number

    # -- chips ------------------------------------------------------------------------------------

    def put_slot(self, db: sqlite3.Connection, s: ChipSlot) -> None:
        db.execute(
            f"INSERT INTO chips({_CHIP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(card_id, slot) DO UPDATE SET serial = excluded.serial, scrypt_n = excluded.scrypt_n, "
            "pin_salt = excluded.pin_salt, pin_verifier = excluded.pin_verifier, slot_secret = excluded.slot_secret, "
            "reset_wrap = excluded.reset_wrap, failures = excluded.failures, max_failures = excluded.max_failures",
            (s.card_id, s.slot, str(s.serial), s.scrypt_n, s.pin_salt, s.pin_verifier, s.slot_secret, s.reset_wrap,
             s.failures, s.max_failures),
        )

    def slot(self, card_id: str, slot: str, db: sqlite3.Connection | None = None) -> ChipSlot:
        with self._lock:
            row = (db or self._db).execute(f"SELECT {_CHIP_COLUMNS} FROM chips WHERE card_id = ? AND slot = ?",
                                           (card_id, slot)).fetchone()
        if row is None:
            raise NotFoundError(f"the JPKI knows no {slot} key of this card")
        card, sl, serial, n, salt, verifier, secret, wrap, failures, limit = row
        return ChipSlot(str(card), str(sl), int(str(serial)), int(n), bytes(salt), bytes(verifier), bytes(secret),
                        bytes(wrap), int(failures), int(limit))

    def set_failures(self, db: sqlite3.Connection, card_id: str, slot: str, failures: int) -> None:
        db.execute("UPDATE chips SET failures = ? WHERE card_id = ? AND slot = ?", (failures, card_id, slot))

    def delete_slot(self, db: sqlite3.Connection, card_id: str, slot: str) -> None:
        db.execute("DELETE FROM chips WHERE card_id = ? AND slot = ?", (card_id, slot))


__all__ = ["DB_NAME", "CertificateRecord", "ChipSlot", "JpkiStore"]
