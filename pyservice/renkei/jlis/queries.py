"""個人番号等照会: entitled agencies ask J-LIS for a person's 基本4情報 or My Number.

番号法 第14条第2項 (and 住民基本台帳法 第30条の9 ff. for the 本人確認情報): an agency that needs a
person's current 4情報 or 個人番号 for an affair the law names asks J-LIS. Here:

* **Entitlements** (``entitlements`` in ``jlis.sqlite3``): per agency, item (``facts`` — the
  基本4情報; ``number`` — the 個人番号; ``card`` — a municipality's card desk) and purpose (the
  affair, an ASCII token such as ``JT01010000000214``), with the legal basis written down,
  who granted it and when; revocation keeps the row. J-LIS's operator manages them.
* **The query log** (:class:`QueryLog`): every request — granted or refused — is a record of
  J-LIS's own tamper-evident log, the ledger engine of the core (:class:`renkei.ledger.Ledger`)
  in ``jlis/querylog/`` under J-LIS's ``keys/jlis-log.key``. A record says who asked
  (requester = agency id), for what purpose (affair), what (item ``basic-facts`` or
  ``individual-number``), under which entitlement (table hash = SHA-256 of the entitlement
  row), the outcome, the time, and the person as a 32-byte pseudonym only J-LIS can compute
  (HMAC of the link id under its link key) — never the facts or the number returned. The answer
  leaves J-LIS only after its record is durable.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import secrets
import threading
from dataclasses import dataclass

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.ledger import Checkpoint, Ledger, LedgerRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entitlements (
    entitlement_id INTEGER PRIMARY KEY,
    agency_id      INTEGER NOT NULL,
    item           TEXT NOT NULL CHECK (item IN ('facts', 'number', 'card')),
    purpose        TEXT NOT NULL,
    legal_basis    TEXT NOT NULL,
    granted_at     TEXT NOT NULL,
    granted_by     TEXT NOT NULL,
    revoked_at     TEXT,
    revoked_by     TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS entitlements_live ON entitlements(agency_id, item, purpose)
    WHERE revoked_at IS NULL;
"""

ITEMS = {"facts": "基本4情報", "number": "個人番号", "card": "個人番号カードの交付等"}
#: The record's item token per entitlement item (printable ASCII, as the ledger's layout wants).
ITEM_TOKENS = {"facts": "basic-facts", "number": "individual-number", "card": "card"}
#: The query log's name (its checkpoint origin) and key.
LOG_ORIGIN = "jlis.renkei.example/queries"
LOG_KEY = "jlis-log"
LOG_DIR = "querylog"
#: Provider id of J-LIS's own records (agencies are numbered from 1).
JLIS_PROVIDER = 0
_PURPOSE = re.compile(r"[\x21-\x7e]{1,64}")
_PSEUDONYM_LABEL = b"renkei-jlis-query-person-v1\0"

#: Denial codes of the query log's records.
NOT_ENTITLED = 1
NO_SUCH_PERSON = 2
AMBIGUOUS = 3
NO_NUMBER = 4
DENIALS = {NOT_ENTITLED: "NOT_ENTITLED", NO_SUCH_PERSON: "NO_SUCH_PERSON", AMBIGUOUS: "AMBIGUOUS",
           NO_NUMBER: "NO_NUMBER"}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_purpose(purpose: str) -> str:
    if not isinstance(purpose, str) or not _PURPOSE.fullmatch(purpose):
        raise InvalidArgumentError("purpose is the affair's token: 1 to 64 printable ASCII characters, no spaces")
    return purpose


@dataclass(frozen=True)
class Entitlement:
    entitlement_id: int
    agency_id: int
    item: str
    purpose: str
    legal_basis: str
    granted_at: str
    granted_by: str
    revoked_at: str | None
    revoked_by: str | None

    @property
    def live(self) -> bool:
        return self.revoked_at is None

    def basis_hash(self) -> bytes:
        """SHA-256 of the grant as recorded: what a query record names as its basis."""
        doc = {"entitlement": self.entitlement_id, "agency": self.agency_id, "item": self.item,
               "purpose": self.purpose, "legal_basis": self.legal_basis, "granted_at": self.granted_at}
        return hashlib.sha256(json.dumps(doc, ensure_ascii=False, sort_keys=True).encode()).digest()


_COLUMNS = ("entitlement_id, agency_id, item, purpose, legal_basis, granted_at, granted_by, revoked_at, "
            "revoked_by")


class Entitlements:
    """Which agency may ask J-LIS what, for which purpose, on which legal basis."""

    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("jlis.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def grant(self, agency_id: int, item: str, purpose: str, legal_basis: str, actor: str) -> Entitlement:
        if item not in ITEMS:
            raise InvalidArgumentError(f"item must be one of {', '.join(ITEMS)}")
        if not isinstance(agency_id, int) or not 0 < agency_id < 2**32:
            raise InvalidArgumentError("agency_id must be a positive agency id")
        check_purpose(purpose)
        if not isinstance(legal_basis, str) or not legal_basis.strip() or len(legal_basis) > 500:
            raise InvalidArgumentError("an entitlement needs its legal basis (e.g. 番号法 第14条第2項), at most 500 "
                                       "characters")
        if not actor or len(actor) > 100:
            raise InvalidArgumentError("who grants it (actor) is required, at most 100 characters")
        with self._lock:
            try:
                cur = self._db.execute(
                    "INSERT INTO entitlements(agency_id, item, purpose, legal_basis, granted_at, granted_by) "
                    "VALUES (?, ?, ?, ?, ?, ?)", (agency_id, item, purpose, legal_basis.strip(), _now(), actor))
            except Exception as e:
                if "UNIQUE" in str(e):
                    from renkei.errors import AlreadyExistsError

                    raise AlreadyExistsError(f"agency {agency_id} is entitled to {item} for {purpose} already") \
                        from None
                raise
        return self.get(int(cur.lastrowid or 0))

    def revoke(self, entitlement_id: int, actor: str) -> Entitlement:
        e = self.get(entitlement_id)
        if not e.live:
            raise FailedPreconditionError(f"entitlement {entitlement_id} was revoked already")
        with self._lock:
            self._db.execute("UPDATE entitlements SET revoked_at = ?, revoked_by = ? WHERE entitlement_id = ?",
                             (_now(), actor, entitlement_id))
        return self.get(entitlement_id)

    def get(self, entitlement_id: int) -> Entitlement:
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM entitlements WHERE entitlement_id = ?",
                                   (int(entitlement_id),)).fetchone()
        if row is None:
            raise NotFoundError(f"no entitlement {entitlement_id}")
        return Entitlement(*row)

    def list(self, agency_id: int | None = None, *, live_only: bool = False) -> list[Entitlement]:
        sql, args = f"SELECT {_COLUMNS} FROM entitlements WHERE 1=1", []
        if agency_id is not None:
            sql += " AND agency_id = ?"
            args.append(int(agency_id))
        if live_only:
            sql += " AND revoked_at IS NULL"
        with self._lock:
            return [Entitlement(*r) for r in self._db.execute(sql + " ORDER BY entitlement_id", args).fetchall()]

    def find(self, agency_id: int, item: str, purpose: str) -> Entitlement | None:
        """The live entitlement of the agency for (item, purpose), if any."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM entitlements WHERE agency_id = ? AND item = ? AND purpose = ? "
                "AND revoked_at IS NULL", (int(agency_id), item, purpose)).fetchone()
        return None if row is None else Entitlement(*row)


class QueryLog:
    """J-LIS's tamper-evident log of queries and card events (the core's ledger engine)."""

    def __init__(self, data_dir: DataDir, link_key: bytes) -> None:
        self.ledger = Ledger(data_dir, LOG_ORIGIN, key_name=LOG_KEY, subdir=LOG_DIR)
        self._link_key = link_key

    def close(self) -> None:
        self.ledger.close()

    @property
    def vkey(self) -> str:
        return self.ledger.vkey

    def pseudonym(self, link_id: bytes | None) -> bytes:
        """The person's 32-byte key in the log (all zero when no person is concerned)."""
        if link_id is None:
            return bytes(32)
        return hmac.digest(self._link_key, _PSEUDONYM_LABEL + link_id, "sha256")

    def record(self, requester: int, purpose: str, item: str, basis: Entitlement | None, link_id: bytes | None,
               denied: int = 0, reason: str = "") -> LedgerRecord:
        """The record of one request (not yet appended). ``item`` is an :data:`ITEM_TOKENS` value
        or a card event (``card-issue``, ``card-suspend``, …)."""
        return LedgerRecord(
            requester=requester, provider=JLIS_PROVIDER, affair=purpose, items=[item],
            table_hash=bytes(32) if basis is None else basis.basis_hash(), pseudonym=self.pseudonym(link_id),
            permit_id=bytes(16) if denied else secrets.token_bytes(16), denied_code=denied,
            reason=reason if denied else "")

    def append(self, record: LedgerRecord) -> int:
        """Append durably; the record's sequence number."""
        return self.ledger.append(record)

    def checkpoint(self) -> Checkpoint:
        return self.ledger.checkpoint()

    def records_of(self, link_id: bytes, page_size: int = 100) -> list[LedgerRecord]:
        """The person's records, newest first (J-LIS's answer to 本人確認情報の提供状況の開示)."""
        page = self.ledger.records_for_pseudonym(self.pseudonym(link_id), page_size)
        return [r.record for r in page.records]

    def get(self, seq: int) -> LedgerRecord | None:
        return self.ledger.get(seq)

    @property
    def size(self) -> int:
        return self.ledger.size


__all__ = ["DENIALS", "ITEMS", "ITEM_TOKENS", "JLIS_PROVIDER", "LOG_DIR", "LOG_KEY", "LOG_ORIGIN", "Entitlement",
           "Entitlements", "QueryLog", "check_purpose"]
