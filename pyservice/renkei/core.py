"""The linkage core (情報提供ネットワークシステム): agencies, PIAs, agency codes, holdings.

:class:`Core` is the integrator's entry point::

    core = renkei.Core("renkei-data")
    city = core.register_agency("横浜市長", ["municipal_mayor"], "3000020141003", municipality_code="141003")
    core.add_pia(city.agency_id, "住民基本台帳に関する事務 全項目評価書", approved_on="2025-04-01",
                 expires_on="2030-03-31")
    code = core.acquire(city.agency_id, "6214 9832 0257")   # 26-char 機関別符号
    core.translate(city.agency_id, code, pension.agency_id) # the pension service's code

What lives where in the data directory:

* ``registry.sqlite3``: agencies (name, types from 別表第二, 法人番号, municipality code,
  status), their 特定個人情報保護評価 (PIA) records, and the agency-code key epochs.
* ``holdings/``: the Rust-managed, journaled holdings (which agency holds which person).
* ``keys/agency-code.key``: the AES-256 code key (0600).

Acquisition follows 番号法 第21条の2: the My Numbers go to J-LIS (:mod:`renkei.acquisition`),
which forwards only 取得番号 and person ids; the core's state, files, logs and errors never
contain a My Number or a resident code.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei._core import codes as _codes
from renkei.acquisition import ACQUISITION_NUMBER_LEN, AcquisitionRelay
from renkei.datadir import DataDir
from renkei.errors import (
    CodeRefusedError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PiaNotApprovedError,
)
from renkei.jlis import NumberAuthority
from renkei.numbers import format_corporate_number, parse_corporate_number

log = logging.getLogger("renkei.core")

CODE_LEN = 16
STATUS_OK = 0
STATUS_REFUSED = 1
#: Acquisition status: J-LIS has no *current* My Number like this (never issued, or changed).
STATUS_UNKNOWN_NUMBER = 2

AGENCY_STATUSES = ("active", "suspended", "retired")
PIA_LEVELS = ("基礎項目評価", "重点項目評価", "全項目評価")
PIA_STATUSES = ("submitted", "approved", "revoked")

# Types whose agencies are local governments: they carry a 全国地方公共団体コード.
LOCAL_TYPES = frozenset({
    "municipal_mayor", "municipal_board_of_education", "mayor_of_city_with_health_center",
    "hiroshima_city_mayor", "nagasaki_city_mayor", "prefectural_governor", "prefectural_governor_etc",
    "prefectural_board_of_education",
})

_SCHEMA = """
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
"""


def agency_types() -> dict[str, str]:
    """The agency types of 番号法 別表第二 (id → Japanese name), from the bundled dataset."""
    text = resources.files("renkei").joinpath("data/beppyo2/agency_types.json").read_text(encoding="utf-8")
    return {t["id"]: t["name"] for t in json.loads(text)}


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


def _code_bytes(code: str | bytes) -> tuple[bytes, bool]:
    """(16 bytes, was_text)."""
    if isinstance(code, str):
        return _codes.code_from_text(code), True
    if isinstance(code, (bytes, bytearray, memoryview)) and len(code) == CODE_LEN:
        return bytes(code), False
    raise InvalidArgumentError("an agency code is 16 bytes or its 26-character text")


def _packed(codes: Any) -> bytes:
    if isinstance(codes, bytes):
        data = codes
    elif isinstance(codes, (bytearray, memoryview)):
        data = bytes(codes)
    elif isinstance(codes, np.ndarray):
        if codes.dtype != np.uint8 or not (codes.ndim == 1 or (codes.ndim == 2 and codes.shape[1] == CODE_LEN)):
            raise InvalidArgumentError("codes as numpy must be uint8, shape (n*16,) or (n, 16)")
        data = codes.tobytes()
    else:
        raise InvalidArgumentError("codes must be bytes or a uint8 numpy array, 16 bytes per code")
    if len(data) % CODE_LEN:
        raise InvalidArgumentError(f"codes must be packed 16 bytes each; got {len(data)} bytes")
    return data


class Core:
    """The linkage core on a data directory. Thread-safe; one process per data directory."""

    def __init__(
        self,
        data_dir: DataDir | str | os.PathLike[str] | None = None,
        *,
        jlis: NumberAuthority | None = None,
        checkpoint_bytes: int | None = None,
    ) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        holdings = self.data_dir.file("holdings")
        holdings.mkdir(mode=0o700, exist_ok=True)
        # The engine takes holdings/LOCK (one process owns the journal) and keeps it until close.
        self._open(holdings, checkpoint_bytes)
        self._jlis = jlis
        self._types = agency_types()

    def _open(self, holdings: Path, checkpoint_bytes: int | None) -> None:
        self._db = self.data_dir.connect("registry.sqlite3")
        self._db.executescript(_SCHEMA)
        self._write = threading.Lock()
        if self._db.execute("SELECT count(*) FROM code_epochs").fetchone()[0] == 0:
            self._db.execute("INSERT INTO code_epochs(epoch, created_at) VALUES (1, ?)", (_now(),))
        current, live = self._epoch_state()
        kwargs = {} if checkpoint_bytes is None else {"checkpoint_bytes": checkpoint_bytes}
        try:
            self._engine = _codes.CodeEngine(
                self.data_dir.secret_key("agency-code"), str(holdings), current, live, **kwargs
            )
        except BaseException:
            self._db.close()
            raise
        report = self._engine.open_report()
        if report["torn_bytes_dropped"]:
            log.warning("holdings journal: dropped a torn tail of %d bytes (never acknowledged)",
                        report["torn_bytes_dropped"])
        log.info("holdings loaded: %d holdings (snapshot=%s, %d journal records replayed)",
                 self._engine.total(), report["snapshot_loaded"], report["records_replayed"])

    def close(self) -> None:
        self._db.close()
        self._engine.close()

    def __enter__(self) -> Core:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> _codes.CodeEngine:
        """The Rust engine (person ids only), for the other parts of the core."""
        return self._engine

    def _relay(self) -> AcquisitionRelay:
        if self._jlis is None:
            self._jlis = NumberAuthority(self.data_dir)
        return AcquisitionRelay(self._jlis)

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
        """Register an agency. ``types`` are ids of 別表第二 agency types (``agency_types()``)."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidArgumentError("an agency needs a name")
        if isinstance(types, str) or not types:
            raise InvalidArgumentError("an agency needs at least one agency type (a list of type ids)")
        unknown = [t for t in types if t not in self._types]
        if unknown:
            raise InvalidArgumentError(f"unknown agency type(s) {unknown}; see renkei.core.agency_types()")
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
        with self._write:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                cur = self._db.execute(
                    "INSERT INTO agencies(name, corporate_number, municipality_code, status, registered_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name.strip(), corp, municipality_code, status, _now()),
                )
                agency_id = int(cur.lastrowid or 0)
                self._db.executemany(
                    "INSERT INTO agency_types(agency_id, type_id) VALUES (?, ?)",
                    [(agency_id, t) for t in sorted(set(types))],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        log.info("agency %d registered (%s)", agency_id, ",".join(sorted(set(types))))
        return self.agency(agency_id)

    def agency(self, agency_id: int) -> Agency:
        row = self._db.execute(
            "SELECT agency_id, name, corporate_number, municipality_code, status, registered_at "
            "FROM agencies WHERE agency_id = ?",
            (int(agency_id),),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no agency {agency_id}")
        types = tuple(
            r[0] for r in self._db.execute(
                "SELECT type_id FROM agency_types WHERE agency_id = ? ORDER BY type_id", (row[0],)
            )
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
        return [self.agency(r[0]) for r in self._db.execute(sql + " ORDER BY agency_id", args).fetchall()]

    def set_agency_status(self, agency_id: int, status: str) -> Agency:
        if status not in AGENCY_STATUSES:
            raise InvalidArgumentError(f"agency status must be one of {AGENCY_STATUSES}")
        self.agency(agency_id)
        with self._write:
            self._db.execute("UPDATE agencies SET status = ? WHERE agency_id = ?", (status, int(agency_id)))
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
        """File a PIA for an agency; approved when ``approved_on`` is given (or status says so)."""
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
        with self._write:
            cur = self._db.execute(
                "INSERT INTO pias(agency_id, title, level, status, approved_on, expires_on, filed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (int(agency_id), title.strip(), level, status, approved, expires, _now()),
            )
        return self.pia(int(cur.lastrowid or 0))

    def pia(self, pia_id: int) -> Pia:
        row = self._db.execute(
            "SELECT pia_id, agency_id, title, level, status, approved_on, expires_on, filed_at FROM pias "
            "WHERE pia_id = ?", (int(pia_id),)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"no PIA {pia_id}")
        return Pia(*row)

    def pias(self, agency_id: int) -> list[Pia]:
        return [self.pia(r[0]) for r in self._db.execute(
            "SELECT pia_id FROM pias WHERE agency_id = ? ORDER BY pia_id", (int(agency_id),)
        )]

    def approve_pia(self, pia_id: int, approved_on: str | _dt.date) -> Pia:
        pia = self.pia(pia_id)
        approved = _date(approved_on, "approved_on")
        if pia.expires_on < approved:
            raise InvalidArgumentError("a PIA cannot expire before it is approved")
        with self._write:
            self._db.execute("UPDATE pias SET status = 'approved', approved_on = ? WHERE pia_id = ?",
                             (approved, int(pia_id)))
        return self.pia(pia_id)

    def revoke_pia(self, pia_id: int) -> Pia:
        self.pia(pia_id)
        with self._write:
            self._db.execute("UPDATE pias SET status = 'revoked' WHERE pia_id = ?", (int(pia_id),))
        return self.pia(pia_id)

    def require_active(self, agency_id: int, *, today: _dt.date | None = None) -> Agency:
        """The agency, if it is active and has an approved, unexpired PIA on file.

        Raises :class:`FailedPreconditionError` naming what is missing (番号法 第28条: no
        linkage through the network without the 特定個人情報保護評価).
        """
        agency = self.agency(agency_id)
        if agency.status != "active":
            raise FailedPreconditionError(f"agency {agency.agency_id} ({agency.name}) is {agency.status}")
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

    # -- key epochs -------------------------------------------------------------------------

    def _epoch_state(self) -> tuple[int, list[int]]:
        live = [int(r[0]) for r in self._db.execute(
            "SELECT epoch FROM code_epochs WHERE retired_at IS NULL ORDER BY epoch")]
        return max(live), live

    def epochs(self) -> list[Epoch]:
        return [Epoch(int(e), c, r) for e, c, r in self._db.execute(
            "SELECT epoch, created_at, retired_at FROM code_epochs ORDER BY epoch")]

    def current_epoch(self) -> int:
        return self._epoch_state()[0]

    def rotate_epoch(self) -> int:
        """Start a new key epoch: codes issued or translated from now on differ from before;
        codes of older live epochs still decode until they are retired."""
        with self._write:
            new = int(self._db.execute("SELECT max(epoch) + 1 FROM code_epochs").fetchone()[0])
            self._db.execute("INSERT INTO code_epochs(epoch, created_at) VALUES (?, ?)", (new, _now()))
            self._engine.set_epochs(*self._epoch_state())
        log.info("agency-code key epoch %d started", new)
        return new

    def retire_epoch(self, epoch: int) -> None:
        """Refuse every code of ``epoch`` from now on (not the current epoch)."""
        with self._write:
            row = self._db.execute("SELECT retired_at FROM code_epochs WHERE epoch = ?", (int(epoch),)).fetchone()
            if row is None:
                raise NotFoundError(f"no key epoch {epoch}")
            if int(epoch) == self._epoch_state()[0]:
                raise FailedPreconditionError(f"key epoch {epoch} is the current one; rotate first")
            if row[0] is None:
                self._db.execute("UPDATE code_epochs SET retired_at = ? WHERE epoch = ?", (_now(), int(epoch)))
            self._engine.set_epochs(*self._epoch_state())
        log.info("agency-code key epoch %d retired", epoch)

    # -- acquisition (番号法 第21条の2) -----------------------------------------------------------

    def acquire_batch(
        self, agency_id: int, my_numbers: npt.NDArray[np.uint64] | Any, acquisition_numbers: bytes | None = None
    ) -> tuple[bytes, npt.NDArray[np.uint8]]:
        """Codes of ``agency_id`` for many persons, named by My Number.

        The My Numbers go to J-LIS with one 取得番号 each; the core gets back only the 取得番号
        and person ids. Returns the codes packed 16 bytes each (zeros where refused) and a
        uint8 status per item: 0 issued, 2 no such current My Number at J-LIS.
        """
        agency = self.require_active(agency_id)
        forwarded = self._relay().forward(my_numbers, acquisition_numbers)
        acq, codes, status = self.issue(agency.agency_id, forwarded.acquisition_numbers, forwarded.person_ids)
        if acq != forwarded.acquisition_numbers:  # the answer must pair up with the request
            raise FailedPreconditionError("acquisition numbers (取得番号) do not match the request")
        return codes, status

    def acquire(self, agency_id: int, my_number: str | int, acquisition_number: bytes | None = None) -> str:
        """The 26-character code of ``agency_id`` for one person, named by My Number."""
        codes, status = self.acquire_batch(agency_id, [my_number], acquisition_number)
        if status[0] != STATUS_OK:
            raise NotFoundError("J-LIS has no current individual number (個人番号) like this")
        return _codes.code_to_text(codes)

    def issue(
        self, agency_id: int, acquisition_numbers: bytes, person_ids: npt.NDArray[np.int64] | Any
    ) -> tuple[bytes, bytes, npt.NDArray[np.uint8]]:
        """The core side of acquisition: (取得番号, person ids) in, (取得番号, codes, status) out.

        The holdings are durable before this returns. Person ids below 0 are requests J-LIS
        could not resolve; they get status 2 and zero bytes.
        """
        agency = self.require_active(agency_id)
        ids = np.asarray(person_ids)
        if ids.ndim != 1 or ids.dtype.kind not in "ui":
            raise InvalidArgumentError("person ids must be a 1-D integer array")
        if len(acquisition_numbers) != ACQUISITION_NUMBER_LEN * len(ids):
            raise InvalidArgumentError("one 16-byte acquisition number (取得番号) per person id")
        found = ids >= 0
        status = np.where(found, STATUS_OK, STATUS_UNKNOWN_NUMBER).astype(np.uint8)
        issued = self._engine.acquire(agency.agency_id, ids[found].astype(np.uint64))
        if found.all():
            codes = issued
        else:
            out = np.zeros((len(ids), CODE_LEN), dtype=np.uint8)
            out[found] = np.frombuffer(issued, dtype=np.uint8).reshape(-1, CODE_LEN)
            codes = out.tobytes()
        log.info("agency %d acquired %d codes (%d unresolved)", agency.agency_id, int(found.sum()),
                 int((~found).sum()))
        return acquisition_numbers, codes, status

    def acquire_code(self, agency_id: int, individual_number: str | int, acquisition_number: bytes) -> bytes:
        """One 16-byte code, with the agency's own 取得番号 (the gRPC ``LinkageEngine`` form)."""
        codes, status = self.acquire_batch(agency_id, [individual_number], acquisition_number)
        if status[0] != STATUS_OK:
            raise NotFoundError("J-LIS has no current individual number (個人番号) like this")
        return codes

    def acquire_codes(self, agency_id: int, individual_numbers: npt.NDArray[np.uint64] | Any) -> bytes:
        """Codes for many current My Numbers, all or nothing: if J-LIS cannot resolve one, nothing
        is issued or recorded and NotFoundError names its index."""
        agency = self.require_active(agency_id)
        forwarded = self._relay().forward(individual_numbers)
        missing = np.flatnonzero(forwarded.person_ids < 0)
        if len(missing):
            raise NotFoundError(
                f"J-LIS has no current individual number (個人番号) like the one at index {int(missing[0])}"
            )
        _, codes, _ = self.issue(agency.agency_id, forwarded.acquisition_numbers, forwarded.person_ids)
        return codes

    def release_holding(self, agency_id: int, agency_code: bytes) -> None:
        self.release(agency_id, agency_code)

    # -- release ------------------------------------------------------------------------------

    def release_batch(self, agency_id: int, codes: Any) -> npt.NDArray[np.uint8]:
        """Release the holdings behind the agency's own codes; status per code (0 released)."""
        agency = self.agency(agency_id)
        removed, status = self._engine.release(agency.agency_id, _packed(codes))
        log.info("agency %d released %d holdings", agency.agency_id, removed)
        return status

    def release(self, agency_id: int, code: str | bytes) -> None:
        """Release one holding (the person moved away, the file was closed)."""
        raw, _ = _code_bytes(code)
        if self.release_batch(agency_id, raw)[0] != STATUS_OK:
            raise CodeRefusedError("agency code (機関別符号) refused")

    # -- translation --------------------------------------------------------------------------

    def translate_batch(
        self, from_agency: int, codes: Any, to_agency: int
    ) -> tuple[bytes, npt.NDArray[np.uint8]]:
        """Translate ``from_agency``'s codes to ``to_agency``'s (packed 16 bytes each).

        Returns the translated codes (zeros where refused) and a uint8 status per item: 0
        translated, 1 refused. A refusal is the same whatever its cause.
        """
        a = self.require_active(from_agency)
        b = self.require_active(to_agency)
        return self._engine.translate(a.agency_id, _packed(codes), b.agency_id)

    def translate(self, from_agency: int, code: str | bytes, to_agency: int) -> str | bytes:
        """One code; text in gives text out, bytes in gives bytes out. Refusal raises
        :class:`~renkei.errors.CodeRefusedError` (a ``PermissionDeniedError``)."""
        raw, was_text = _code_bytes(code)
        out, status = self.translate_batch(from_agency, raw, to_agency)
        if status[0] != STATUS_OK:
            raise CodeRefusedError("agency code (機関別符号) refused")
        return _codes.code_to_text(out) if was_text else out

    # -- holdings queries ---------------------------------------------------------------------

    def holders_of(
        self, *, agency_id: int | None = None, code: str | bytes | None = None, person_id: int | None = None
    ) -> list[int]:
        """Agencies holding a person, named by an agency's code or (internally) by person id."""
        if person_id is not None:
            if agency_id is not None or code is not None:
                raise InvalidArgumentError("give either person_id or agency_id with code")
            return list(self._engine.holders_of_person(int(person_id)))
        if agency_id is None or code is None:
            raise InvalidArgumentError("give agency_id and code, or person_id")
        raw, _ = _code_bytes(code)
        return list(self._engine.holders_of_code(int(agency_id), raw))

    def holdings_count(self, agency_id: int) -> int:
        return int(self._engine.count(int(agency_id)))

    def holdings_counts(self) -> dict[int, int]:
        agencies, counts = self._engine.counts()
        return dict(zip(agencies.tolist(), counts.tolist(), strict=True))

    def checkpoint(self) -> None:
        """Snapshot the holdings and start a fresh journal (restart then loads fast)."""
        self._engine.checkpoint()
