"""お知らせ: agencies' notices to persons, kept by the core for the portal (no My Number anywhere).

An agency addresses a notice by its own 機関別符号 of the person (LinkageService.SendNotice); the
core finds the person behind the code (the code must be the caller's, live and held) and keeps
the notice under the person's portal pseudonym — the key the person's disclosure session reads
with (DisclosureService.ListMyNotices). The portal learns a notice only through the person's
session; read/unread is the portal's own state. Text that carries a 12-digit number with a valid
My Number check digit is refused: a notice is no place for one.

Durable: SQLite (``notices.sqlite3`` in the core's directory, ``synchronous=FULL``).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from renkei._core import inquiry as _inq
from renkei.datadir import DataDir
from renkei.errors import InvalidArgumentError
from renkei.numbers import is_valid_individual_number

if TYPE_CHECKING:
    from renkei.linkage.codes import AgencyCodes

CODE_LEN = 16
MAX_TITLE = 200
MAX_BODY = 4000
_DIGITS = re.compile(r"(?<![0-9])[0-9０-９]{12}(?![0-9])")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notices (
    notice_id  INTEGER PRIMARY KEY AUTOINCREMENT,
    pseudonym  BLOB NOT NULL,
    agency_id  INTEGER NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS notices_person ON notices(pseudonym, notice_id);
"""


@dataclass(frozen=True)
class StoredNotice:
    notice_id: int
    agency_id: int
    title: str
    body: str
    sent_at: datetime


def check_text(title: str, body: str) -> None:
    if not title.strip() or len(title) > MAX_TITLE:
        raise InvalidArgumentError(f"a notice's title is 1 to {MAX_TITLE} characters")
    if not body.strip() or len(body) > MAX_BODY:
        raise InvalidArgumentError(f"a notice's body is 1 to {MAX_BODY} characters")
    for text in (title, body):
        for m in _DIGITS.finditer(text):
            if is_valid_individual_number(m.group(0).translate(str.maketrans("０１２３４５６７８９", "0123456789"))):
                raise InvalidArgumentError("a notice must not carry a My Number (a 12-digit number with a valid "
                                           "check digit was found)")


class NoticeBox:
    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("notices.sqlite3")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def post(self, pseudonym: bytes, agency_id: int, title: str, body: str) -> int:
        check_text(title, body)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO notices(pseudonym, agency_id, title, body, sent_at) VALUES (?, ?, ?, ?, ?)",
                (bytes(pseudonym), int(agency_id), title, body, datetime.now(UTC).isoformat()))
            return int(cur.lastrowid or 0)

    def of(self, pseudonym: bytes, limit: int, before: int | None = None) -> tuple[list[StoredNotice], int | None]:
        """The person's notices newest first; and the id to continue before (None: no more)."""
        rows = self._db.execute(
            "SELECT notice_id, agency_id, title, body, sent_at FROM notices WHERE pseudonym = ? AND notice_id < ? "
            "ORDER BY notice_id DESC LIMIT ?", (bytes(pseudonym), before if before is not None else 2**62, limit + 1)
        ).fetchall()
        out = [StoredNotice(int(a), int(b), str(c), str(d), datetime.fromisoformat(str(e))) for a, b, c, d, e in rows]
        more = len(out) > limit
        return out[:limit], (out[limit - 1].notice_id if more else None)


class NoticeDesk:
    """The core's side of SendNotice: the agency's own code → the person → their pseudonym."""

    def __init__(self, box: NoticeBox, codes: AgencyCodes, pseudonym_key: bytes) -> None:
        self.box = box
        self._codes = codes
        self._key = pseudonym_key

    def pseudonym_of(self, agency_id: int, agency_code: bytes) -> bytes:
        """The portal pseudonym behind the agency's own live, held code (CODE_REFUSED otherwise)."""
        if len(agency_code) != CODE_LEN:
            raise InvalidArgumentError(f"agency_code must be {CODE_LEN} bytes")
        person = self._codes.engine.person_of(int(agency_id), bytes(agency_code))
        return bytes(_inq.pseudonym(self._key, person))

    def send(self, agency_id: int, agency_code: bytes, title: str, body: str) -> int:
        check_text(title, body)
        return self.box.post(self.pseudonym_of(agency_id, agency_code), agency_id, title, body)


__all__ = ["MAX_BODY", "MAX_TITLE", "NoticeBox", "NoticeDesk", "StoredNotice", "check_text"]
