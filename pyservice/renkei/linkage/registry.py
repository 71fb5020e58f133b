"""The linkage core's registry: agencies, their PIAs, code key epochs, card keys.

On the core's store (``registry.sqlite3``, or schema ``registry`` on PostgreSQL: renkei.store,
docs/arch/store.md) — reading the registry never loads the holdings (see
:mod:`renkei.linkage.codes`)::

    registry = AgencyRegistry(core_data_dir)
    city = registry.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
    registry.add_pia(city.agency_id, "住民基本台帳に関する事務 全項目評価書", approved_on="2025-04-01",
                     expires_on="2030-03-31")

* agencies: name, types from 別表第二, 法人番号, municipality code, status;
* their 特定個人情報保護評価 (PIA) records (番号法 第28条: no linkage without one): in a deployed
  core the commission's decisions, verified (renkei.linkage.commission); ``add_pia`` only for
  embedders without a commission;
* the agency-code key epochs (rotation, retirement);
* card keys J-LIS forwarded (for the person's own disclosure), by the core's person index.

Nothing here is a My Number, a resident code or a J-LIS link id.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import unicodedata
from dataclasses import dataclass
from importlib import resources
from typing import Any

from renkei.datadir import DataDir
from renkei.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PiaNotApprovedError,
)
from renkei.linkage.commission import CommissionPias, describe
from renkei.numbers import format_corporate_number, parse_corporate_number
from renkei.store import open_database, register_component

log = logging.getLogger("renkei.linkage")

SERVICE = "core"

AGENCY_STATUSES = ("active", "suspended", "retired")
PIA_LEVELS = ("基礎項目評価", "重点項目評価", "全項目評価")
PIA_STATUSES = ("submitted", "approved", "revoked")
PIA_TITLE = "特定個人情報保護評価書"

# Types whose agencies are local governments: they carry a 全国地方公共団体コード.
LOCAL_TYPES = frozenset({
    "municipal_mayor", "municipal_board_of_education", "mayor_of_city_with_health_center",
    "hiroshima_city_mayor", "nagasaki_city_mayor", "prefectural_governor", "prefectural_governor_etc",
    "prefectural_board_of_education",
})

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS agencies (
    agency_id         INTEGER PRIMARY KEY,
    name              TEXT NOT NULL,
    corporate_number  TEXT NOT NULL,
    municipality_code TEXT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    registered_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agency_types (
    agency_id INTEGER NOT NULL REFERENCES agencies(agency_id),
    type_id   TEXT NOT NULL,
    PRIMARY KEY (agency_id, type_id)
);
CREATE TABLE IF NOT EXISTS pias (
    pia_id      INTEGER PRIMARY KEY,
    agency_id   INTEGER NOT NULL REFERENCES agencies(agency_id),
    title       TEXT NOT NULL,
    level       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'revoked')),
    approved_on TEXT,
    expires_on  TEXT NOT NULL,
    filed_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pias_agency ON pias(agency_id);
CREATE TABLE IF NOT EXISTS code_epochs (
    epoch      INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
-- Card keys (個人番号カード) J-LIS forwarded, by the core's own person index.
CREATE TABLE IF NOT EXISTS card_keys (
    card_key_id   BLOB PRIMARY KEY,
    public_key    BLOB NOT NULL,
    person        INTEGER NOT NULL,
    registered_at TEXT NOT NULL
);
"""

# The same tables on PostgreSQL (dates stay ISO text: the checks compare them as text). Ids are
# max + 1 inside the serialised write transaction on both drivers, as SQLite assigns them: no gap
# after a rolled-back registration or a failover (a PostgreSQL sequence would skip).
POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS agencies (
    agency_id         BIGINT PRIMARY KEY,
    name              TEXT NOT NULL,
    corporate_number  TEXT NOT NULL,
    municipality_code TEXT,
    status            TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'retired')),
    registered_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agency_types (
    agency_id BIGINT NOT NULL REFERENCES agencies(agency_id),
    type_id   TEXT NOT NULL,
    PRIMARY KEY (agency_id, type_id)
);
CREATE INDEX IF NOT EXISTS agencies_corporate ON agencies(corporate_number);
CREATE TABLE IF NOT EXISTS pias (
    pia_id      BIGINT PRIMARY KEY,
    agency_id   BIGINT NOT NULL REFERENCES agencies(agency_id),
    title       TEXT NOT NULL,
    level       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('submitted', 'approved', 'revoked')),
    approved_on TEXT,
    expires_on  TEXT NOT NULL,
    filed_at    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS pias_agency ON pias(agency_id);
CREATE TABLE IF NOT EXISTS code_epochs (
    epoch      BIGINT PRIMARY KEY,
    created_at TEXT NOT NULL,
    retired_at TEXT
);
CREATE TABLE IF NOT EXISTS card_keys (
    card_key_id   BYTEA PRIMARY KEY,
    public_key    BYTEA NOT NULL,
    person        BIGINT NOT NULL,
    registered_at TEXT NOT NULL
);
"""

#: The registry on either driver (renkei.store: ``renkei core migrate-store`` copies it).
register_component("registry", {"sqlite": SQLITE_SCHEMA, "postgresql": POSTGRES_SCHEMA})


def agency_types() -> dict[str, str]:
    """The agency types of 番号法 別表第二 (id → Japanese name), from the bundled dataset, and the
    disclosure system's (情報提供等記録開示システム, 番号法 附則第6条: マイナポータル as an agency;
    its rows are a table version of their own, renkei.permissions.self_disclosure)."""
    from renkei.permissions.self_disclosure import PORTAL_TYPE, PORTAL_TYPE_NAME

    text = resources.files("renkei").joinpath("data/beppyo2/agency_types.json").read_text(encoding="utf-8")
    return {**{t["id"]: t["name"] for t in json.loads(text)}, PORTAL_TYPE: PORTAL_TYPE_NAME}


def municipality_check_digit(body5: str) -> int:
    """Check digit of a 全国地方公共団体コード (JIS X 0402 style): (11 − Σ w·d mod 11) mod 10, w = 6..2."""
    s = sum(int(d) * w for d, w in zip(body5, (6, 5, 4, 3, 2), strict=True))
    return (11 - s % 11) % 10


def parse_municipality_code(code: str) -> str:
    """A 6-digit 全国地方公共団体コード with a correct check digit (5 digits get theirs added)."""
    if not isinstance(code, str) or not code.isascii() or not code.isdigit() or len(code) not in (5, 6):
        raise InvalidArgumentError("a municipality code (全国地方公共団体コード) has 5 or 6 ASCII digits")
    check = municipality_check_digit(code[:5])
    if len(code) == 6 and int(code[5]) != check:
        raise InvalidArgumentError("municipality code (全国地方公共団体コード) has a wrong check digit")
    return code[:5] + str(check)


def local_government_corporate_number(code: str) -> str:
    """The 法人番号 of a local public body (地方公共団体): check digit ‖ 000020 ‖ 団体コード."""
    from renkei.numbers import corporate_check_digit

    base = f"000020{parse_municipality_code(code)}"
    return format_corporate_number(int(f"{corporate_check_digit(base)}{base}"))


#: An agency's name: 1 to 64 characters after NFC normalisation, printable (letters, marks,
#: numbers, punctuation, symbols, spaces); no control or format characters, no line breaks.
MAX_NAME_CHARS = 64
_NAME_CATEGORIES = ("L", "M", "N", "P", "S")  # and Zs (spaces)


def agency_name(name: object) -> str:
    """``name`` checked and normalised (NFC, outer spaces removed), or InvalidArgumentError
    saying what is wrong (never repeating an unbounded input)."""
    if not isinstance(name, str):
        raise InvalidArgumentError("an agency needs a name")
    text = unicodedata.normalize("NFC", name).strip()
    if not text:
        raise InvalidArgumentError("an agency needs a name")
    if len(text) > MAX_NAME_CHARS:
        raise InvalidArgumentError(f"an agency's name has at most {MAX_NAME_CHARS} characters ({len(text)} given)")
    for i, ch in enumerate(text):
        cat = unicodedata.category(ch)
        if not (cat.startswith(_NAME_CATEGORIES) or cat == "Zs"):
            raise InvalidArgumentError(
                f"an agency's name may not contain U+{ord(ch):04X} ({unicodedata.name(ch, cat)}) at position {i}"
            )
    return text


def _date(value: str | _dt.date, what: str) -> str:
    if isinstance(value, _dt.datetime):
        value = value.date()
    if isinstance(value, _dt.date):
        return value.isoformat()
    try:
        return _dt.date.fromisoformat(value).isoformat()
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{what} must be an ISO date (YYYY-MM-DD)") from None


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Agency:
    """A registered agency (情報照会者 / 情報提供者)."""

    agency_id: int
    name: str
    types: tuple[str, ...]
    corporate_number: str
    municipality_code: str | None
    status: str
    registered_at: str


@dataclass(frozen=True)
class Pia:
    """A 特定個人情報保護評価 record of an agency."""

    pia_id: int
    agency_id: int
    title: str
    level: str
    status: str
    approved_on: str | None
    expires_on: str
    filed_at: str


@dataclass(frozen=True)
class Epoch:
    epoch: int
    created_at: str
    retired_at: str | None


class AgencyRegistry:
    """The core's agency and PIA registry on the data directory's store. Thread-safe; readers in
    other processes may read while the core runs (SQLite WAL, or PostgreSQL)."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str], *, read_only: bool = False) -> None:
        """``read_only`` opens the registry without writing or creating anything (the CLI's reads)."""
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, SERVICE)
        self._types = agency_types()
        self._db = open_database(self.data_dir, "registry", {"sqlite": SQLITE_SCHEMA, "postgresql": POSTGRES_SCHEMA},
                                 read_only=read_only)
        try:
            #: The commission's decisions, when this core is bound to its decision log (then the
            #: only PIAs that count; renkei.linkage.commission).
            self.commission = CommissionPias.of(self.data_dir, self._db, read_only=read_only)
            if not read_only:
                with self._db.transaction() as tx:
                    if tx.one("SELECT count(*) FROM code_epochs") == (0,):
                        tx.execute("INSERT INTO code_epochs(epoch, created_at) VALUES (1, ?)", (_now(),))
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> AgencyRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- agency registry ------------------------------------------------------------------

    def register_agency(
        self,
        name: str,
        types: list[str] | tuple[str, ...],
        corporate_number: str,
        *,
        municipality_code: str | None = None,
        status: str = "active",
    ) -> Agency:
        """Register an agency. ``types`` are ids of 別表第二 agency types (``agency_types()``).

        One legal person (法人番号) may be several agencies — a city's mayor and its board of
        education are separate 情報照会者 — but never twice the same: an agency that shares
        the corporate number and any type with one already registered is refused
        (AlreadyExistsError naming it)."""
        name = agency_name(name)
        if isinstance(types, str) or not types:
            raise InvalidArgumentError("an agency needs at least one agency type (a list of type ids)")
        unknown = [t for t in types if t not in self._types]
        if unknown:
            raise InvalidArgumentError(f"unknown agency type(s) {unknown}; see renkei.linkage.registry.agency_types()")
        corp = format_corporate_number(parse_corporate_number(corporate_number))
        local = LOCAL_TYPES.intersection(types)
        if municipality_code is not None:
            municipality_code = parse_municipality_code(municipality_code)
        elif local:
            raise InvalidArgumentError(
                f"agency type(s) {sorted(local)} need a municipality code (全国地方公共団体コード)"
            )
        if status not in AGENCY_STATUSES:
            raise InvalidArgumentError(f"agency status must be one of {AGENCY_STATUSES}")
        with self._db.transaction() as tx:
            # Checked inside the write transaction (one writer at a time on every driver): two
            # registrations cannot both pass.
            wanted = sorted(set(types))
            clash = tx.one(
                "SELECT a.agency_id, t.type_id FROM agencies a JOIN agency_types t ON t.agency_id = a.agency_id "
                f"WHERE a.corporate_number = ? AND t.type_id IN ({', '.join('?' * len(wanted))}) "
                "ORDER BY a.agency_id LIMIT 1",
                (corp, *wanted),
            )
            if clash is not None:
                raise AlreadyExistsError(
                    f"agency {clash[0]} is registered already with corporate number {corp} and type {clash[1]}"
                )
            row = tx.one(
                "INSERT INTO agencies(agency_id, name, corporate_number, municipality_code, status, registered_at) "
                "SELECT coalesce(max(agency_id), 0) + 1, ?, ?, ?, ?, ? FROM agencies RETURNING agency_id",
                (name, corp, municipality_code, status, _now()),
            )
            assert row is not None
            agency_id = int(row[0])
            tx.many("INSERT INTO agency_types(agency_id, type_id) VALUES (?, ?)", [(agency_id, t) for t in wanted])
        log.info("agency %d registered (%s)", agency_id, ",".join(sorted(set(types))))
        return self.agency(agency_id)

    def agency(self, agency_id: int) -> Agency:
        row = self._db.one(
            "SELECT agency_id, name, corporate_number, municipality_code, status, registered_at "
            "FROM agencies WHERE agency_id = ?",
            (int(agency_id),),
        )
        if row is None:
            raise NotFoundError(f"no agency {agency_id}")
        types = tuple(
            r[0] for r in self._db.all("SELECT type_id FROM agency_types WHERE agency_id = ? ORDER BY type_id",
                                       (row[0],))
        )
        return Agency(int(row[0]), row[1], types, row[2], row[3], row[4], row[5])

    def agencies(self, *, type_id: str | None = None, status: str | None = None) -> list[Agency]:
        sql = "SELECT agency_id FROM agencies WHERE 1=1"
        args: list[Any] = []
        if type_id is not None:
            sql += " AND agency_id IN (SELECT agency_id FROM agency_types WHERE type_id = ?)"
            args.append(type_id)
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [self.agency(r[0]) for r in self._db.all(sql + " ORDER BY agency_id", args)]

    def set_agency_status(self, agency_id: int, status: str) -> Agency:
        if status not in AGENCY_STATUSES:
            raise InvalidArgumentError(f"agency status must be one of {AGENCY_STATUSES}")
        self.agency(agency_id)
        with self._db.transaction() as tx:
            tx.execute("UPDATE agencies SET status = ? WHERE agency_id = ?", (status, int(agency_id)))
        log.info("agency %d status -> %s", agency_id, status)
        return self.agency(agency_id)

    # -- PIA registry (特定個人情報保護評価) ----------------------------------------------------

    def add_pia(
        self,
        agency_id: int,
        title: str,
        *,
        level: str = "全項目評価",
        expires_on: str | _dt.date,
        approved_on: str | _dt.date | None = None,
        status: str | None = None,
    ) -> Pia:
        """File a PIA for an agency; approved when ``approved_on`` is given (or status says so).

        For embedders without a commission only: a core bound to the commission's decision log
        refuses (its PIAs are the commission's decisions, renkei.linkage.commission)."""
        self._local_pias_only()
        self.agency(agency_id)
        if not isinstance(title, str) or not title.strip():
            raise InvalidArgumentError("a PIA needs a title (the 評価書 it refers to)")
        if level not in PIA_LEVELS:
            raise InvalidArgumentError(f"PIA level must be one of {PIA_LEVELS}")
        status = status or ("approved" if approved_on is not None else "submitted")
        if status not in PIA_STATUSES:
            raise InvalidArgumentError(f"PIA status must be one of {PIA_STATUSES}")
        approved = _date(approved_on, "approved_on") if approved_on is not None else None
        if status == "approved" and approved is None:
            raise InvalidArgumentError("an approved PIA needs approved_on")
        expires = _date(expires_on, "expires_on")
        if approved is not None and expires < approved:
            raise InvalidArgumentError("a PIA cannot expire before it is approved")
        with self._db.transaction() as tx:
            row = tx.one(
                "INSERT INTO pias(pia_id, agency_id, title, level, status, approved_on, expires_on, filed_at) "
                "SELECT coalesce(max(pia_id), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM pias RETURNING pia_id",
                (int(agency_id), title.strip(), level, status, approved, expires, _now()),
            )
        assert row is not None
        return self.pia(int(row[0]))

    def pia(self, pia_id: int) -> Pia:
        row = self._db.one(
            "SELECT pia_id, agency_id, title, level, status, approved_on, expires_on, filed_at FROM pias "
            "WHERE pia_id = ?", (int(pia_id),)
        )
        if row is None:
            raise NotFoundError(f"no PIA {pia_id}")
        return Pia(int(row[0]), int(row[1]), *row[2:])

    def pias(self, agency_id: int) -> list[Pia]:
        return [self.pia(r[0]) for r in self._db.all(
            "SELECT pia_id FROM pias WHERE agency_id = ? ORDER BY pia_id", (int(agency_id),)
        )]

    def _local_pias_only(self) -> None:
        if self.commission is not None:
            raise FailedPreconditionError(
                "this core is bound to the commission's PIA decisions (commission.vkey): a PIA's state is what the "
                "commission decided (renkei ppc …), never set at the core")

    def approve_pia(self, pia_id: int, approved_on: str | _dt.date) -> Pia:
        self._local_pias_only()
        pia = self.pia(pia_id)
        approved = _date(approved_on, "approved_on")
        if pia.expires_on < approved:
            raise InvalidArgumentError("a PIA cannot expire before it is approved")
        with self._db.transaction() as tx:
            tx.execute("UPDATE pias SET status = 'approved', approved_on = ? WHERE pia_id = ?",
                       (approved, int(pia_id)))
        return self.pia(pia_id)

    def revoke_pia(self, pia_id: int) -> Pia:
        self._local_pias_only()
        self.pia(pia_id)
        with self._db.transaction() as tx:
            tx.execute("UPDATE pias SET status = 'revoked' WHERE pia_id = ?", (int(pia_id),))
        return self.pia(pia_id)

    def require_active(self, agency_id: int, *, today: _dt.date | None = None) -> Agency:
        """The agency, if it is active and has an approved, unexpired PIA on file.

        Raises :class:`FailedPreconditionError` naming what is missing (番号法 第28条: no
        linkage through the network without the 特定個人情報保護評価).
        """
        agency = self.agency(agency_id)
        if agency.status != "active":
            raise FailedPreconditionError(f"agency {agency.agency_id} ({agency.name}) is {agency.status}")
        if self.commission is not None:
            when = today or _dt.date.today()
            if self.commission.in_force(agency.agency_id, when) is not None:
                return agency
            raise PiaNotApprovedError(
                f"agency {agency.agency_id} ({agency.name}) has no 特定個人情報保護評価 (PIA) approved by the "
                f"commission and in force: {describe(self.commission.pias(agency.agency_id), when)}")
        day = (today or _dt.date.today()).isoformat()
        pias = self.pias(agency.agency_id)
        if any(p.status == "approved" and p.approved_on is not None and p.approved_on <= day <= p.expires_on
               for p in pias):
            return agency
        if not pias:
            detail = "none has been filed"
        else:
            last = pias[-1]
            if last.status == "approved" and last.expires_on < day:
                detail = f"the latest, PIA {last.pia_id} '{last.title}', expired on {last.expires_on}"
            elif last.status == "approved":
                detail = f"the latest, PIA {last.pia_id} '{last.title}', takes effect on {last.approved_on}"
            else:
                detail = f"the latest, PIA {last.pia_id} '{last.title}', is {last.status}"
        raise PiaNotApprovedError(
            f"agency {agency.agency_id} ({agency.name}) has no approved, unexpired "
            f"特定個人情報保護評価 (PIA) on file: {detail}"
        )

    def pia_status(self, agency_id: int, *, today: _dt.date | None = None) -> str:
        """One word for the agency's PIA state: approved (in force today), submitted, revoked or
        not_submitted."""
        if self.commission is not None:
            try:
                self.require_active(agency_id, today=today)
                return "approved"
            except FailedPreconditionError:
                pass
            decided = self.commission.pias(agency_id)
            if not decided:
                return "not_submitted"
            return "revoked" if decided[-1].state in ("revoked", "expired") else "submitted"
        pias = self.pias(agency_id)
        try:
            self.require_active(agency_id, today=today)
            return "approved"
        except FailedPreconditionError:
            pass
        if not pias:
            return "not_submitted"
        return "revoked" if pias[-1].status == "revoked" else "submitted"

    # -- key epochs -------------------------------------------------------------------------

    def epoch_state(self) -> tuple[int, list[int]]:
        """(current epoch, live epochs): what the code engine needs."""
        return self._epoch_state()

    def _epoch_state(self) -> tuple[int, list[int]]:
        live = [int(r[0]) for r in self._db.all(
            "SELECT epoch FROM code_epochs WHERE retired_at IS NULL ORDER BY epoch")]
        return max(live), live

    def epochs(self) -> list[Epoch]:
        return [Epoch(int(e), c, r) for e, c, r in self._db.all(
            "SELECT epoch, created_at, retired_at FROM code_epochs ORDER BY epoch")]

    def current_epoch(self) -> int:
        return self._epoch_state()[0]

    def rotate_epoch(self) -> int:
        """Start a new key epoch: codes issued or translated from now on differ from before;
        codes of older live epochs still decode until they are retired."""
        with self._db.transaction() as tx:
            row = tx.one("SELECT max(epoch) + 1 FROM code_epochs")
            assert row is not None
            new = int(row[0])
            tx.execute("INSERT INTO code_epochs(epoch, created_at) VALUES (?, ?)", (new, _now()))
        log.info("agency-code key epoch %d started", new)
        return new

    def retire_epoch(self, epoch: int) -> None:
        """Refuse every code of ``epoch`` from now on (not the current epoch)."""
        with self._db.transaction() as tx:
            row = tx.one("SELECT retired_at FROM code_epochs WHERE epoch = ?", (int(epoch),))
            if row is None:
                raise NotFoundError(f"no key epoch {epoch}")
            current = tx.one("SELECT max(epoch) FROM code_epochs WHERE retired_at IS NULL")
            if current is not None and int(epoch) == int(current[0]):
                raise FailedPreconditionError(f"key epoch {epoch} is the current one; rotate first")
            if row[0] is None:
                tx.execute("UPDATE code_epochs SET retired_at = ? WHERE epoch = ?", (_now(), int(epoch)))
        log.info("agency-code key epoch %d retired", epoch)

    # -- card keys (for DisclosureService login) ----------------------------------------------

    def register_card_key(self, card_key_id: bytes, public_key: bytes, person: int) -> None:
        """Remember a card key J-LIS forwarded; the same key again for the same person is a
        no-op, for another person it is refused."""
        with self._db.transaction() as tx:
            row = tx.one("SELECT person FROM card_keys WHERE card_key_id = ?", (bytes(card_key_id),))
            if row is not None and int(row[0]) != person:
                raise AlreadyExistsError("this card key is registered to another person")
            if row is None:
                tx.execute(
                    "INSERT INTO card_keys(card_key_id, public_key, person, registered_at) VALUES (?, ?, ?, ?)",
                    (bytes(card_key_id), bytes(public_key), int(person), _now()),
                )

    def card_key(self, card_key_id: bytes) -> tuple[bytes, int]:
        """(public key, person index) of a registered card key."""
        row = self._db.one("SELECT public_key, person FROM card_keys WHERE card_key_id = ?", (bytes(card_key_id),))
        if row is None:
            raise NotFoundError("no such card key")
        return bytes(row[0]), int(row[1])
