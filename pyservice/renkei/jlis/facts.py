"""J-LIS's 本人確認情報: the 基本4情報 of every resident as the resident registry reports them.

番号法 第14条 and 住民基本台帳法 第30条の6 ff.: the municipalities report each resident's
氏名, 生年月日, 性別 and 住所 (with the 住民票コード and the event that changed them) to J-LIS,
which keeps them and answers entitled agencies. Here the facts live in J-LIS's registry
(``jlis.sqlite3``), keyed by the person's **link id** (J-LIS's person key,
:meth:`renkei.jlis.authority.NumberAuthority.link_id`), never by the resident code: reports
arrive by resident code and J-LIS derives the link id at once.

Every report is a new **version** with its event (出生, 転入, 転居, 氏名変更, 死亡, …), the date
it took effect and the time J-LIS recorded it; ``persons`` holds the current version of each
person for look-ups (by link id, or by 氏名 + 生年月日 + 性別 for a number search). Versions are
never changed or deleted.

A report whose 氏名 or 住所 differs from the current one is what revokes the holder's 署名用
certificates (:mod:`renkei.jlis.cards` acts on :class:`Reported.changed`).
"""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from dataclasses import dataclass

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.jpki.profile import BasicFacts

SCHEMA = """
CREATE TABLE IF NOT EXISTS fact_versions (
    link_id      BLOB NOT NULL CHECK (length(link_id) = 16),
    version      INTEGER NOT NULL,
    event        TEXT NOT NULL,
    effective_on TEXT NOT NULL,            -- YYYY-MM-DD, the day the event took effect
    recorded_at  TEXT NOT NULL,            -- ISO 8601 UTC, when J-LIS recorded it
    municipality TEXT NOT NULL,            -- 全国地方公共団体コード of the reporting municipality
    name         TEXT NOT NULL,
    birth        TEXT NOT NULL,
    sex          TEXT NOT NULL,
    address      TEXT NOT NULL,
    PRIMARY KEY (link_id, version)
);
CREATE TABLE IF NOT EXISTS persons (
    link_id     BLOB PRIMARY KEY CHECK (length(link_id) = 16),
    version     INTEGER NOT NULL,
    name        TEXT NOT NULL,
    name_key    TEXT NOT NULL,             -- NFKC, spaces removed: what a search compares
    birth       TEXT NOT NULL,
    sex         TEXT NOT NULL,
    address     TEXT NOT NULL,
    deceased_on TEXT
);
CREATE INDEX IF NOT EXISTS persons_search ON persons(name_key, birth, sex);
"""

#: Events of the resident register (住民基本台帳) that J-LIS hears about, with their Japanese names.
EVENTS = {
    "registration": "住民票の記載",  # first report of an existing resident (初期登録)
    "birth": "出生",
    "move_in": "転入",
    "move": "転居",
    "name_change": "氏名の変更",
    "correction": "職権修正",
    "death": "死亡",
}


def name_key(name: str) -> str:
    """What a 4情報 search compares: NFKC (full-width ↔ half-width), without any spaces."""
    return "".join(unicodedata.normalize("NFKC", name).split())


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class FactsVersion:
    """One reported version of a person's 基本4情報 (``repr`` hides them)."""

    version: int
    event: str
    effective_on: dt.date
    recorded_at: str
    municipality: str
    facts: BasicFacts


@dataclass(frozen=True)
class PersonFacts:
    """A person's current 基本4情報, and the day of death when the register reported one."""

    link_id: bytes
    version: int
    facts: BasicFacts
    deceased_on: dt.date | None

    def __repr__(self) -> str:
        return f"PersonFacts(version={self.version}, <personal data withheld>)"


@dataclass(frozen=True)
class Reported:
    """What a report did: the new version, and which facts changed from the previous one
    (``"name"``, ``"address"``, ``"birth"``, ``"sex"``; ``"death"`` for a death)."""

    link_id: bytes
    version: int
    changed: frozenset[str]
    first: bool

    def __repr__(self) -> str:
        return f"Reported(version={self.version}, changed={sorted(self.changed)}, first={self.first})"


class FactsRegistry:
    """The 本人確認情報 in J-LIS's ``jlis.sqlite3`` (its own connection; thread-safe)."""

    def __init__(self, data_dir: DataDir) -> None:
        self._db = data_dir.connect("jlis.sqlite3")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def report(self, link_id: bytes, event: str, effective_on: dt.date | str, facts: BasicFacts,
               municipality: str) -> Reported:
        """Record a report of the resident register for the person with ``link_id``.

        The first report of a person must be ``registration``, ``birth`` or ``move_in``; after
        a ``death`` only a ``correction`` is accepted. Durable on return."""
        day = _check(link_id, event, effective_on, municipality)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                reported = self._report(link_id, event, day, facts, municipality)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return reported

    def report_batch(self, reports: list[tuple[bytes, str, dt.date | str, BasicFacts, str]]) -> list[Reported]:
        """Many reports (link id, event, effective_on, facts, municipality) in one durable
        transaction, all or none: the register's bulk load (初期登録) and catch-up."""
        checked = [(link_id, event, _check(link_id, event, effective_on, municipality), facts, municipality)
                   for link_id, event, effective_on, facts, municipality in reports]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = [self._report(*r) for r in checked]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _report(self, link_id: bytes, event: str, day: dt.date, facts: BasicFacts, municipality: str) -> Reported:
        current = self._db.execute(
            "SELECT version, name, birth, sex, address, deceased_on FROM persons WHERE link_id = ?", (link_id,)
        ).fetchone()
        if current is None and event not in ("registration", "birth", "move_in"):
            raise NotFoundError("J-LIS holds no 本人確認情報 for this resident yet: the first report is a "
                                "registration, a birth or a move-in")
        if current is not None and event in ("registration", "birth"):
            raise FailedPreconditionError(f"this resident is registered already: report the change ({event} "
                                          f"is for a first report)")
        if current is not None and current[5] is not None and event != "correction":
            raise FailedPreconditionError("this resident's death has been reported: only a correction is accepted")
        version = 1 if current is None else int(current[0]) + 1
        changed: set[str] = set()
        if current is not None:
            for field, old, new in (("name", current[1], facts.name), ("birth", current[2], facts.birth.isoformat()),
                                    ("sex", current[3], facts.sex), ("address", current[4], facts.address)):
                if old != new:
                    changed.add(field)
        deceased = day.isoformat() if event == "death" else (None if current is None else current[5])
        if event == "death":
            changed.add("death")
        self._db.execute(
            "INSERT INTO fact_versions(link_id, version, event, effective_on, recorded_at, municipality, name, birth, "
            "sex, address) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (link_id, version, event, day.isoformat(), _now(), municipality, facts.name, facts.birth.isoformat(),
             facts.sex, facts.address))
        self._db.execute(
            "INSERT INTO persons(link_id, version, name, name_key, birth, sex, address, deceased_on) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(link_id) DO UPDATE SET version = excluded.version, "
            "name = excluded.name, name_key = excluded.name_key, birth = excluded.birth, sex = excluded.sex, "
            "address = excluded.address, deceased_on = excluded.deceased_on",
            (link_id, version, facts.name, name_key(facts.name), facts.birth.isoformat(), facts.sex, facts.address,
             deceased))
        return Reported(link_id, version, frozenset(changed), current is None)

    def current(self, link_id: bytes) -> PersonFacts | None:
        """The person's current 基本4情報, or None when J-LIS has none."""
        with self._lock:
            row = self._db.execute(
                "SELECT version, name, birth, sex, address, deceased_on FROM persons WHERE link_id = ?",
                (bytes(link_id),)).fetchone()
        if row is None:
            return None
        return PersonFacts(bytes(link_id), int(row[0]), BasicFacts(row[1], dt.date.fromisoformat(row[2]), row[3],
                                                                   row[4]),
                           None if row[5] is None else dt.date.fromisoformat(row[5]))

    def history(self, link_id: bytes) -> list[FactsVersion]:
        """Every reported version of the person, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT version, event, effective_on, recorded_at, municipality, name, birth, sex, address "
                "FROM fact_versions WHERE link_id = ? ORDER BY version", (bytes(link_id),)).fetchall()
        return [FactsVersion(int(v), e, dt.date.fromisoformat(eff), rec, m,
                             BasicFacts(n, dt.date.fromisoformat(b), s, a))
                for v, e, eff, rec, m, n, b, s, a in rows]

    def search(self, name: str, birth: dt.date, sex: str, address: str | None = None) -> list[bytes]:
        """Link ids of the living persons whose current 氏名 (compared after NFKC, without spaces),
        生年月日 and 性別 — and 住所, when given — match."""
        sql = "SELECT link_id FROM persons WHERE name_key = ? AND birth = ? AND sex = ? AND deceased_on IS NULL"
        args: list[object] = [name_key(name), birth.isoformat(), sex]
        if address is not None:
            sql += " AND address = ?"
            args.append(address)
        with self._lock:
            return [bytes(r[0]) for r in self._db.execute(sql + " LIMIT 10", args).fetchall()]

    def counts(self) -> dict[str, int]:
        with self._lock:
            persons, deceased = self._db.execute(
                "SELECT count(*), count(deceased_on) FROM persons").fetchone()
            versions = self._db.execute("SELECT count(*) FROM fact_versions").fetchone()[0]
        return {"persons": int(persons), "deceased": int(deceased), "versions": int(versions)}


def _check(link_id: bytes, event: str, effective_on: dt.date | str, municipality: str) -> dt.date:
    if event not in EVENTS:
        raise InvalidArgumentError(f"unknown event {event!r}; expected one of {', '.join(EVENTS)}")
    day = _day(effective_on, "effective_on")
    if day > dt.date.today() + dt.timedelta(days=1):
        raise InvalidArgumentError("effective_on is in the future")
    if not isinstance(municipality, str) or not (municipality.isascii() and municipality.isdigit()
                                                 and len(municipality) == 6):
        raise InvalidArgumentError("municipality is a 6-digit 全国地方公共団体コード")
    if not isinstance(link_id, bytes) or len(link_id) != 16:
        raise InvalidArgumentError("a link id is 16 bytes")
    return day


def _day(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be a date YYYY-MM-DD") from None


__all__ = ["EVENTS", "FactsRegistry", "FactsVersion", "PersonFacts", "Reported", "name_key"]
