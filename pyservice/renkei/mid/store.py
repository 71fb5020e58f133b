"""What an intermediate server (中間サーバー) keeps, per tenant: 団体内統合宛名, 符号 and 副本.

One SQLite database (``mid.sqlite3``) in the server's data directory, every row keyed by the
tenant (the agency it serves), so that a shared platform — like the J-LIS 自治体中間サーバー・
プラットフォーム or the insurers' 医療保険者等向け中間サーバー — hosts many agencies apart:

* ``addressees`` — 団体内統合宛名: the integrated address number (15 digits) ↔ the business
  systems' 宛名番号, and the My Number where the agency holds it (only here, only as needed:
  for acquiring the code; cleared with :meth:`MidStore.forget_number`).
* ``codes`` — 符号: integrated address number ↔ the tenant's agency code from the core.
* ``duplicates`` — 副本: (integrated address number, item, data set, version, record key,
  valid from/until, publication date, payload, null reasons), idempotent by record key + version.
* ``exchanges`` — 記録管理: the tenant's own record of every inquiry it made and answered.
* ``applications`` — ワンストップ申請 delivered by the portal (the signed document, the 署名用
  certificate, the status) and the exchanges made for each (docs/arch/onestop.md).

Every write commits durably (WAL, synchronous=FULL) before it returns.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import orjson

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError

ATENA_LEN = 15
CODE_LEN = 16
# fullmatch with explicit ASCII classes: \d would admit other scripts' digits, $ a trailing newline.
_ATENA = re.compile(r"[0-9]{15}")
_DATASET = re.compile(r"[0-9A-Za-z_.-]{1,32}")
_RECORD_KEY = re.compile(r"[0-9A-Za-z_.:-]{1,64}")
MAX_PAYLOAD_BYTES = 64 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS addressees (
    tenant        INTEGER NOT NULL,
    atena         TEXT NOT NULL,
    business_ids  TEXT NOT NULL,          -- JSON list of the business systems' 宛名番号
    my_number     INTEGER,                -- held only until the code is acquired
    registered_at TEXT NOT NULL,
    PRIMARY KEY (tenant, atena)
);
CREATE TABLE IF NOT EXISTS codes (
    tenant      INTEGER NOT NULL,
    atena       TEXT NOT NULL,
    code        BLOB NOT NULL CHECK (length(code) = 16),
    acquired_at TEXT NOT NULL,
    PRIMARY KEY (tenant, atena),
    FOREIGN KEY (tenant, atena) REFERENCES addressees(tenant, atena)
);
CREATE UNIQUE INDEX IF NOT EXISTS codes_by_code ON codes(tenant, code);
CREATE TABLE IF NOT EXISTS duplicates (
    tenant       INTEGER NOT NULL,
    record_key   TEXT NOT NULL,
    version      INTEGER NOT NULL,
    atena        TEXT NOT NULL,
    item         TEXT NOT NULL,           -- the permission table's item id (特定個人情報)
    dataset      TEXT NOT NULL,           -- データセット番号
    valid_from   TEXT NOT NULL,           -- YYYY-MM-DD
    valid_until  TEXT,                    -- YYYY-MM-DD, exclusive; NULL = open
    fiscal_year  INTEGER,                 -- 年度 the data is about, when it is per year
    published    TEXT NOT NULL,           -- 公開日
    payload      TEXT NOT NULL,           -- JSON object: item code → value
    null_reasons TEXT NOT NULL,           -- JSON object: item code → 未設定事由
    registered_at TEXT NOT NULL,
    PRIMARY KEY (tenant, record_key, version)
);
CREATE INDEX IF NOT EXISTS duplicates_by_person ON duplicates(tenant, atena, item, valid_from);
CREATE TABLE IF NOT EXISTS exchanges (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       INTEGER NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('requester', 'provider')),
    at           TEXT NOT NULL,
    counterpart  INTEGER NOT NULL,
    affair       TEXT NOT NULL,
    items        TEXT NOT NULL,           -- JSON list
    atena        TEXT,                    -- the person on this side (never a code of the other side)
    persons      INTEGER NOT NULL,        -- 1, or the size of a batch
    outcome      TEXT NOT NULL,
    ledger_seq   INTEGER,                 -- the core's 照会 record (the first, for a batch)
    permit_id    BLOB,
    ciphertext_sha256 BLOB
);
CREATE INDEX IF NOT EXISTS exchanges_by_tenant ON exchanges(tenant, seq);
CREATE TABLE IF NOT EXISTS applications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant       INTEGER NOT NULL,
    status       TEXT NOT NULL,
    note         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    document     BLOB NOT NULL,           -- exactly as signed
    signature    BLOB NOT NULL,
    certificate  BLOB NOT NULL            -- the 署名用 certificate (DER)
);
CREATE INDEX IF NOT EXISTS applications_by_tenant ON applications(tenant, id);
CREATE TABLE IF NOT EXISTS application_exchanges (
    application  INTEGER NOT NULL REFERENCES applications(id),
    inquiry_seq  INTEGER NOT NULL,
    provision_seq INTEGER NOT NULL,
    affair       TEXT NOT NULL,
    provider     INTEGER NOT NULL,
    outcome      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS application_exchanges_by_app ON application_exchanges(application);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def check_atena(value: str) -> str:
    if not isinstance(value, str) or not _ATENA.fullmatch(value):
        raise InvalidArgumentError("an integrated address number (団体内統合宛名番号) has 15 digits")
    return value


def _day(value: str | date | None, what: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidArgumentError(f"{what} is required (YYYY-MM-DD)")
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


@dataclass(frozen=True)
class Duplicate:
    """One 副本 record as a business system registers it."""

    atena: str
    item: str
    dataset: str
    version: int
    record_key: str
    valid_from: str
    payload: dict[str, Any]
    published: str
    valid_until: str | None = None
    fiscal_year: int | None = None
    null_reasons: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Exchange:
    """One line of the tenant's 記録管理."""

    seq: int
    tenant: int
    role: str
    at: str
    counterpart: int
    affair: str
    items: tuple[str, ...]
    atena: str | None
    persons: int
    outcome: str
    ledger_seq: int | None
    permit_id: bytes | None
    ciphertext_sha256: bytes | None


@dataclass(frozen=True)
class ApplicationExchange:
    inquiry_seq: int
    provision_seq: int
    affair: str
    provider: int
    outcome: str


@dataclass(frozen=True)
class Application:
    """A ワンストップ申請 as delivered by the portal, with its status and the exchanges it caused."""

    id: int
    tenant: int
    status: str
    note: str
    received_at: str
    updated_at: str
    document: bytes
    signature: bytes
    certificate: bytes
    exchanges: tuple[ApplicationExchange, ...]


# Application statuses (shown to the person as they are).
RECEIVED, REVIEWING, INQUIRED = "受付", "審査中", "情報照会済"
FINAL = ("決定", "却下")


# Per-record registration results (the proto's DuplicateStatus).
REGISTERED = 0
UNCHANGED = 1  # the same record key and version with the same content: idempotent
CODE_NOT_ACQUIRED = 2  # 符号が未取得です
DUPLICATE_RECORD_KEY = 3  # レコード識別番号が既に存在しています (same key + version, other content)
ITEM_NOT_PROVIDED = 4  # the item is not one this tenant's agency type provides under the table
INVALID = 5

REGISTRATION_MESSAGES = {
    CODE_NOT_ACQUIRED: "符号が未取得です (the code of this integrated address number has not been acquired)",
    DUPLICATE_RECORD_KEY: "レコード識別番号が既に存在しています (the record key and version exist with other content)",
    ITEM_NOT_PROVIDED: "この特定個人情報の提供は許可されていません (the table lets this agency provide no such item)",
}


class MidStore:
    """The intermediate server's database. Thread-safe (one connection, writes serialised)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("mid.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _tx(self, fn: Any, *args: Any) -> Any:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(*args)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    # -- 団体内統合宛名 ---------------------------------------------------------------------------

    def register_addressees(self, tenant: int, rows: Sequence[tuple[str, Sequence[str], int | None]]) -> int:
        """(integrated address number, business 宛名番号s, My Number or None) per person;
        existing ones get their business ids merged and a My Number set if missing. Returns how
        many were new."""
        checked = []
        for atena, business, number in rows:
            check_atena(atena)
            ids = sorted({str(b) for b in business})
            if any(not b or len(b) > 32 for b in ids):
                raise InvalidArgumentError("a business 宛名番号 has 1 to 32 characters")
            if number is not None and not 0 < int(number) < 10**12:
                raise InvalidArgumentError("a My Number has 12 digits")
            checked.append((atena, ids, number))

        # One entry per person: a number listed twice in a call is merged as it would be across calls.
        wanted: dict[str, tuple[set[str], int | None]] = {}
        for atena, ids, number in checked:
            seen = wanted.get(atena)
            wanted[atena] = (set(ids), number) if seen is None else (seen[0] | set(ids), seen[1] or number)

        def write() -> int:
            stamp = _now()
            atenas = list(wanted)
            existing: dict[str, str] = {}
            for k in range(0, len(atenas), 500):  # primary-key probes, IN lists of 500
                part = atenas[k:k + 500]
                existing.update(self._db.execute(
                    f"SELECT atena, business_ids FROM addressees WHERE tenant = ? AND atena IN "
                    f"({','.join('?' * len(part))})", (tenant, *part)).fetchall())
            inserts, updates = [], []
            for atena, (ids, number) in wanted.items():
                old = existing.get(atena)
                if old is None:
                    inserts.append((tenant, atena, orjson.dumps(sorted(ids)).decode(), number, stamp))
                else:
                    updates.append((orjson.dumps(sorted(set(orjson.loads(old)) | ids)).decode(), number, tenant, atena))
            self._db.executemany("INSERT INTO addressees VALUES (?, ?, ?, ?, ?)", inserts)
            self._db.executemany("UPDATE addressees SET business_ids = ?, my_number = coalesce(my_number, ?) "
                                 "WHERE tenant = ? AND atena = ?", updates)
            return len(inserts)

        return int(self._tx(write))

    def awaiting_codes(self, tenant: int, atenas: Sequence[str] | None = None,
                       limit: int = 100_000) -> list[tuple[str, int]]:
        """(integrated address number, My Number) of persons with a number but no code yet."""
        sql = ("SELECT a.atena, a.my_number FROM addressees a LEFT JOIN codes c ON c.tenant = a.tenant "
               "AND c.atena = a.atena WHERE a.tenant = ? AND c.code IS NULL AND a.my_number IS NOT NULL")
        args: list[Any] = [tenant]
        if atenas is not None:
            sql += " AND a.atena IN (SELECT value FROM json_each(?))"
            args.append(json.dumps([check_atena(a) for a in atenas]))
        rows = self._db.execute(sql + " ORDER BY a.atena LIMIT ?", [*args, limit]).fetchall()
        return [(str(a), int(n)) for a, n in rows]

    def forget_number(self, tenant: int, atenas: Sequence[str]) -> None:
        """Drop the My Numbers once the codes are held (the code is what linkage needs)."""
        def write() -> None:
            self._db.executemany("UPDATE addressees SET my_number = NULL WHERE tenant = ? AND atena = ?",
                                 [(tenant, a) for a in atenas])
        self._tx(write)

    # -- 符号 ------------------------------------------------------------------------------------

    def set_codes(self, tenant: int, pairs: Sequence[tuple[str, bytes]]) -> None:
        def write() -> None:
            stamp = _now()
            self._db.executemany(
                "INSERT INTO codes VALUES (?, ?, ?, ?) ON CONFLICT(tenant, atena) DO UPDATE SET code = excluded.code, "
                "acquired_at = excluded.acquired_at", [(tenant, a, bytes(c), stamp) for a, c in pairs])
        self._tx(write)

    def codes_of(self, tenant: int, atenas: Sequence[str], *, checked: bool = False) -> list[bytes | None]:
        """The tenant's code per integrated address number (None: not acquired); ``checked``:
        the caller has validated the numbers already."""
        rows = self._db.execute(
            # CROSS JOIN keeps the list as the outer loop: one primary-key probe per person.
            "SELECT j.key, c.code FROM json_each(?) j CROSS JOIN codes c ON c.tenant = ? AND c.atena = j.value",
            (orjson.dumps(list(atenas) if checked else [check_atena(a) for a in atenas]).decode(), tenant)).fetchall()
        out: list[bytes | None] = [None] * len(atenas)
        for k, code in rows:
            out[int(k)] = bytes(code)
        return out

    def code_of(self, tenant: int, atena: str) -> bytes:
        (code,) = self.codes_of(tenant, [atena])
        if code is None:
            raise FailedPreconditionError(f"指定された団体内統合宛名番号「{atena}」は符号が未取得です "
                                          "(no agency code acquired for this integrated address number)")
        return code

    def atenas_of_codes(self, tenant: int, codes: Sequence[bytes]) -> list[str | None]:
        """The integrated address number behind each of the tenant's codes (None: unknown)."""
        wanted = [bytes(c) for c in codes]
        found: dict[bytes, str] = {}
        # IN lists of 500 probe codes_by_code once per code and write nothing (a temporary table
        # costs a write per code: 3x slower at 10,000).
        with self._lock:
            for k in range(0, len(wanted), 500):
                part = wanted[k:k + 500]
                found.update(self._db.execute(
                    f"SELECT code, atena FROM codes WHERE tenant = ? AND code IN ({','.join('?' * len(part))})",
                    (tenant, *part)).fetchall())
        return [found.get(c) for c in wanted]

    # -- 副本 ------------------------------------------------------------------------------------

    def register_duplicates(self, tenant: int, records: Sequence[Duplicate],
                            providable: set[str]) -> list[int]:
        """Register 副本 records in one durable transaction; a status per record (REGISTERED,
        UNCHANGED, CODE_NOT_ACQUIRED, DUPLICATE_RECORD_KEY, ITEM_NOT_PROVIDED). ``providable`` is
        the set of item ids this tenant may provide under the permission table."""
        days: dict[Any, Any] = {}  # dates repeat across a bulk load: parse each once
        prepared = [self._prepare(tenant, r, providable, days) for r in records]
        atenas = sorted({row[3] for status, row in prepared if status == REGISTERED and row is not None})
        with_code = {a for a, c in zip(atenas, self.codes_of(tenant, atenas, checked=True), strict=True)
                     if c is not None}

        def write() -> list[int]:
            keys = sorted({row[1] for status, row in prepared if status == REGISTERED and row is not None})
            # What is already stored under these record keys: primary-key prefix probes, IN lists
            # of 500 (no JSON to build or parse per record).
            have: dict[tuple[str, int], tuple[Any, ...]] = {}
            for k in range(0, len(keys), 500):
                part = keys[k:k + 500]
                for key, version, *rest in self._db.execute(
                        "SELECT record_key, version, atena, item, dataset, valid_from, valid_until, fiscal_year, "
                        f"published, payload, null_reasons FROM duplicates WHERE tenant = ? AND record_key IN "
                        f"({','.join('?' * len(part))})", (tenant, *part)):
                    have[(key, int(version))] = tuple(rest)
            out: list[int] = []
            new: list[tuple[Any, ...]] = []
            stamp = _now()
            for status, row in prepared:
                if status != REGISTERED or row is None:
                    out.append(status)
                elif row[3] not in with_code:
                    out.append(CODE_NOT_ACQUIRED)
                elif (row[1], row[2]) in have:
                    out.append(UNCHANGED if have[(row[1], row[2])] == row[3:12] else DUPLICATE_RECORD_KEY)
                else:
                    have[(row[1], row[2])] = row[3:12]  # a second copy in the same call is a retry of the first
                    new.append((*row, stamp))
                    out.append(REGISTERED)
            self._db.executemany("INSERT INTO duplicates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", new)
            return out

        return list(self._tx(write))

    @staticmethod
    def _prepare(tenant: int, r: Duplicate, providable: set[str],
                 days: dict[Any, Any]) -> tuple[int, tuple[Any, ...] | None]:
        def day(value: str | date | None, what: str, required: bool = True) -> str | None:
            hit = days.get(value, days)
            if hit is days:
                hit = days[value] = _day(value, what, required=True) if value not in (None, "") else None
            if hit is None and required:
                raise InvalidArgumentError(f"{what} is required (YYYY-MM-DD)")
            return hit  # type: ignore[no-any-return]

        try:
            check_atena(r.atena)
            if not _DATASET.fullmatch(r.dataset) or not _RECORD_KEY.fullmatch(r.record_key):
                raise InvalidArgumentError("dataset or record key malformed")
            if not 0 < int(r.version) < 2**31:
                raise InvalidArgumentError("version must be positive")
            valid_from = day(r.valid_from, "valid_from")
            valid_until = day(r.valid_until, "valid_until", required=False)
            published = day(r.published, "published")
            if valid_until is not None and valid_from is not None and valid_until <= valid_from:
                raise InvalidArgumentError("valid_until must be after valid_from")
            raw = orjson.dumps(r.payload, option=orjson.OPT_SORT_KEYS)  # canonical: a retry compares equal
            if len(raw) > MAX_PAYLOAD_BYTES or not raw.startswith(b"{"):
                raise InvalidArgumentError("payload: a JSON object of at most 64 KiB")
            payload = raw.decode()
            reasons = orjson.dumps(r.null_reasons, option=orjson.OPT_SORT_KEYS).decode() if r.null_reasons else "{}"
        except (InvalidArgumentError, TypeError, ValueError, orjson.JSONEncodeError):
            return INVALID, None
        if r.item not in providable:
            return ITEM_NOT_PROVIDED, None
        return REGISTERED, (tenant, r.record_key, int(r.version), r.atena, r.item, r.dataset, valid_from,
                            valid_until, r.fiscal_year, published, payload, reasons)

    def duplicates_for(self, tenant: int, atenas: Sequence[str], items: Iterable[str], *,
                       at: date | None = None, fiscal_year: int | None = None) -> dict[str, list[dict[str, Any]]]:
        """The 副本 in force for each person and item: for ``fiscal_year`` the latest version
        about that year (items kept per 年度), else the latest version valid at ``at`` (default today). Keyed by
        integrated address number; each value a list of records (one per item and data set)."""
        day = (at or datetime.now(UTC).date()).isoformat()
        items = sorted(set(items))
        sql = ("SELECT d.atena, d.item, d.dataset, d.version, d.record_key, d.valid_from, d.valid_until, "
               "d.fiscal_year, d.published, d.payload, d.null_reasons FROM json_each(?) j "
               "CROSS JOIN duplicates d ON d.tenant = ? AND d.atena = j.value "
               "WHERE d.item IN (SELECT value FROM json_each(?)) ")
        args: list[Any] = [orjson.dumps(list(atenas)).decode(), tenant, orjson.dumps(items).decode()]
        in_force = "(d.valid_from <= ? AND (d.valid_until IS NULL OR d.valid_until > ?))"
        if fiscal_year is not None:
            # The 年度 condition is about per-year data (tax); data without a 年度 (住民票関係情報)
            # is answered as in force on the day.
            sql += f"AND (d.fiscal_year = ? OR (d.fiscal_year IS NULL AND {in_force})) "
            args += [int(fiscal_year), day, day]
        else:
            sql += f"AND {in_force} "
            args += [day, day]
        sql += "ORDER BY d.atena, d.item, d.dataset, d.version"
        best: dict[tuple[str, str, str], dict[str, Any]] = {}
        for (atena, item, dataset, version, key, vf, vu, fy, pub, payload, reasons) in self._db.execute(sql, args):
            best[(atena, item, dataset)] = {
                "item": item, "dataset": dataset, "version": int(version), "record_key": key,
                "valid_from": vf, "valid_until": vu, "fiscal_year": fy, "published": pub,
                "values": orjson.loads(payload), "null_reasons": orjson.loads(reasons),
            }
        out: dict[str, list[dict[str, Any]]] = {}
        for (atena, _item, _ds), rec in best.items():
            out.setdefault(atena, []).append(rec)
        return out

    # -- 記録管理 ---------------------------------------------------------------------------------

    def record_exchange(self, tenant: int, role: str, counterpart: int, affair: str, items: Sequence[str],
                        atena: str | None, persons: int, outcome: str, ledger_seq: int | None,
                        permit_id: bytes | None, ciphertext_sha256: bytes | None) -> int:
        def write() -> int:
            cur = self._db.execute(
                "INSERT INTO exchanges(tenant, role, at, counterpart, affair, items, atena, persons, outcome, "
                "ledger_seq, permit_id, ciphertext_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (tenant, role, _now(), counterpart, affair, json.dumps(list(items)), atena, persons, outcome,
                 ledger_seq, permit_id, ciphertext_sha256))
            return int(cur.lastrowid or 0)
        return int(self._tx(write))

    def exchanges(self, tenant: int, after: int = 0, limit: int = 100) -> list[Exchange]:
        rows = self._db.execute(
            "SELECT seq, tenant, role, at, counterpart, affair, items, atena, persons, outcome, ledger_seq, "
            "permit_id, ciphertext_sha256 FROM exchanges WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?",
            (tenant, after, limit)).fetchall()
        return [Exchange(int(r[0]), int(r[1]), r[2], r[3], int(r[4]), r[5], tuple(json.loads(r[6])), r[7], int(r[8]),
                         r[9], r[10], None if r[11] is None else bytes(r[11]),
                         None if r[12] is None else bytes(r[12])) for r in rows]

    # -- ワンストップ申請 ------------------------------------------------------------------------

    def add_application(self, tenant: int, document: bytes, signature: bytes, certificate: bytes) -> Application:
        def write() -> int:
            at = _now()
            cur = self._db.execute(
                "INSERT INTO applications(tenant, status, note, received_at, updated_at, document, signature, "
                "certificate) VALUES (?, ?, '', ?, ?, ?, ?, ?)",
                (tenant, RECEIVED, at, at, document, signature, certificate))
            return int(cur.lastrowid or 0)
        return self.applications(tenant, [int(self._tx(write))])[0]

    def applications(self, tenant: int, ids: Sequence[int] | None = None, after: int = 0,
                     limit: int = 100) -> list[Application]:
        """The tenant's applications by id (those found, in the order asked), or a page after ``after``."""
        cols = "id, tenant, status, note, received_at, updated_at, document, signature, certificate"
        if ids is not None:
            found = {int(r[0]): r for i in ids for r in self._db.execute(
                f"SELECT {cols} FROM applications WHERE tenant = ? AND id = ?", (tenant, i)).fetchall()}
            rows = [found[i] for i in ids if i in found]
        else:
            rows = self._db.execute(f"SELECT {cols} FROM applications WHERE tenant = ? AND id > ? ORDER BY id "
                                    f"LIMIT ?", (tenant, after, limit)).fetchall()
        out = []
        for r in rows:
            ex = self._db.execute("SELECT inquiry_seq, provision_seq, affair, provider, outcome FROM "
                                  "application_exchanges WHERE application = ? ORDER BY rowid", (r[0],)).fetchall()
            out.append(Application(int(r[0]), int(r[1]), r[2], r[3], r[4], r[5], bytes(r[6]), bytes(r[7]),
                                   bytes(r[8]), tuple(ApplicationExchange(int(e[0]), int(e[1]), e[2], int(e[3]), e[4])
                                                      for e in ex)))
        return out

    def _application(self, tenant: int, application_id: int) -> str:
        row = self._db.execute("SELECT status FROM applications WHERE tenant = ? AND id = ?",
                               (tenant, application_id)).fetchone()
        if row is None:
            raise NotFoundError(f"application {application_id} is not one of this agency's")
        return str(row[0])

    def check_application(self, tenant: int, application_id: int) -> None:
        """Refuses an id that is not the tenant's, or an application already decided."""
        if self._application(tenant, application_id) in FINAL:
            raise FailedPreconditionError(f"application {application_id} is already decided")

    def update_application(self, tenant: int, application_id: int, status: str, note: str) -> Application:
        if status not in (REVIEWING, *FINAL):
            raise InvalidArgumentError(f"status: one of {REVIEWING}, {', '.join(FINAL)}")
        if len(note) > 1000:
            raise InvalidArgumentError("note: at most 1,000 characters")

        def write() -> None:
            self.check_application(tenant, application_id)
            self._db.execute("UPDATE applications SET status = ?, note = ?, updated_at = ? WHERE id = ?",
                             (status, note, _now(), application_id))
        self._tx(write)
        return self.applications(tenant, [application_id])[0]

    def link_exchange(self, tenant: int, application_id: int, inquiry_seq: int, provision_seq: int, affair: str,
                      provider: int, outcome: str) -> None:
        """An inquiry made for the application: linked, and the status moves on to 情報照会済."""
        def write() -> None:
            status = self._application(tenant, application_id)
            self._db.execute("INSERT INTO application_exchanges VALUES (?, ?, ?, ?, ?, ?)",
                             (application_id, inquiry_seq, provision_seq, affair, provider, outcome))
            self._db.execute("UPDATE applications SET status = ?, updated_at = ? WHERE id = ?",
                             (status if status in FINAL else INQUIRED, _now(), application_id))
        self._tx(write)

    def counts(self, tenant: int) -> dict[str, int]:
        one = self._db.execute
        return {
            "addressees": int(one("SELECT count(*) FROM addressees WHERE tenant = ?", (tenant,)).fetchone()[0]),
            "codes": int(one("SELECT count(*) FROM codes WHERE tenant = ?", (tenant,)).fetchone()[0]),
            "duplicates": int(one("SELECT count(*) FROM duplicates WHERE tenant = ?", (tenant,)).fetchone()[0]),
        }


__all__ = ["Application", "ApplicationExchange", "Duplicate", "Exchange", "MidStore", "check_atena"]
