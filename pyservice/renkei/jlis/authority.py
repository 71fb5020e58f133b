"""J-LIS (地方公共団体情報システム機構): the authority that makes and changes My Numbers.

番号法 第8条: the 個人番号 is obtained by converting the 住民票コード, differs from every other
number including former ones, and has no regularity from which the resident code could be
restored. renkei converts with FF1 (NIST SP 800-38G, AES-256) keyed by ``keys/jlis-number.key``
with the change generation as tweak; see ``core_rs/src/numbers/assign.rs``.

The registry (``jlis.sqlite3``) stores issued numbers with their generation and the person's
**link id** (連携用符号): 16 bytes of HMAC-SHA256 under ``keys/jlis-link.key`` over the
resident code. The link id is all the linkage core ever learns of a person. Being a keyed
function of the resident, it is opaque to everyone without the J-LIS key, the same for a person
across number changes, and never issued to anyone else — also after J-LIS is restored from an
older backup (a counter would start handing the same ids to different residents again). The
registry never stores a resident code: it is recovered from a number by decrypting under its
generation, which needs the number key.

A change (番号法 第7条第2項) moves to the next generation whose number is free, keeps the old
number as *former*, and never reissues a number that was ever used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei._core import numbers as _n
from renkei.datadir import DataDir
from renkei.errors import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from renkei.jlis.notices import INSERT as NOTICE_INSERT
from renkei.jlis.notices import SCHEMA as NOTICES_SCHEMA
from renkei.numbers import format_individual_number

_SCHEMA = """
CREATE TABLE IF NOT EXISTS numbers (
    number     INTEGER PRIMARY KEY,
    link_id    BLOB NOT NULL CHECK (length(link_id) = 16),
    generation INTEGER NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('current', 'former')),
    changed_at TEXT
);
CREATE INDEX IF NOT EXISTS numbers_link ON numbers(link_id);
-- A person has exactly one current number.
CREATE UNIQUE INDEX IF NOT EXISTS numbers_current ON numbers(link_id) WHERE state = 'current';
-- マイナンバーカード public keys for portal login (利用者証明), registered by J-LIS.
CREATE TABLE IF NOT EXISTS card_keys (
    card_key_id   BLOB PRIMARY KEY,
    public_key    BLOB NOT NULL,
    link_id       BLOB NOT NULL,
    registered_at TEXT NOT NULL
);
-- Card keys the linkage core has confirmed; the others are forwarded (again) by J-LIS's service,
-- so a card issued while the core is down (or before the box starts) still reaches it.
CREATE TABLE IF NOT EXISTS card_keys_forwarded (card_key_id BLOB PRIMARY KEY);
"""

# More generations than this for one person means something is badly wrong (each change is a
# court-of-record event); it bounds the search for a free number.
MAX_GENERATIONS = 64
LINK_ID_LEN = 16
SERVICE = "jlis"
#: The J-LIS data directory's keys (name → bytes), created by ``renkei jlis init`` only:
#: the number map (FF1), the link ids, the query log's signing key, the 券面事項入力補助AP key.
KEYS = {"jlis-number": 32, "jlis-link": 32}
#: Keys added after the first release, with the data each one protects: ``init`` creates one on
#: an older directory only while that data does not exist yet (a key missing beside its data is
#: damage, never replaced).
LATER_KEYS = {"jlis-log": ("querylog", 32), "kenmen-ap": ("kenmen-ap.pem", 32)}
_LINK_LABEL = b"renkei-link-id-v1\0"


@dataclass(frozen=True)
class NumberRecord:
    """What J-LIS knows of one issued number (the resident code is derivable, not stored)."""

    number: str
    link_id: bytes
    generation: int
    state: str  # "current" or "former"


def _resident_value(code: str | int) -> int:
    if isinstance(code, bool) or not isinstance(code, (str, int)):
        raise InvalidArgumentError(f"a resident code must be a str or int, got {type(code).__name__}")
    if isinstance(code, int):
        if not 0 <= code < 10**11 or not _n.is_valid("resident_code", code):
            raise _invalid("resident_code", code)
        return code
    return _n.parse_valid("resident_code", code)


def _number_value(number: str | int) -> int:
    if isinstance(number, bool) or not isinstance(number, (str, int)):
        raise InvalidArgumentError(f"a My Number must be a str or int, got {type(number).__name__}")
    if isinstance(number, int):
        if not 0 <= number < 10**12 or not _n.is_valid("individual", number):
            raise _invalid("individual", number)
        return number
    return _n.parse_valid("individual", number)


def _invalid(kind: str, value: int) -> Exception:
    from renkei.errors import InvalidNumberError

    problem = "out_of_range" if value < 0 or value >= (10**11 if kind == "resident_code" else 10**12) else (
        "wrong_check_digit"
    )
    what = "resident code (住民票コード)" if kind == "resident_code" else "individual number (個人番号)"
    return InvalidNumberError(f"invalid {what}: {problem.replace('_', ' ')}", kind, problem)


class NumberAuthority:
    """J-LIS: assigns 個人番号 from 住民票コード, changes leaked numbers, resolves numbers.

    Thread-safe; every method that changes the registry returns only after the change is
    durable (SQLite with ``synchronous=FULL``).
    """

    def __init__(self, data_dir: DataDir | str | os.PathLike[str]) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir, SERVICE)
        self._map = _n.NumberMap(self.data_dir.secret_key("jlis-number"))
        self._link_key = self.data_dir.secret_key("jlis-link")
        self._db = self.data_dir.connect("jlis.sqlite3")
        self._db.executescript(_SCHEMA)
        self._db.executescript(NOTICES_SCHEMA)
        self._lock = threading.Lock()

    @classmethod
    def init(cls, path: str | os.PathLike[str]) -> NumberAuthority:
        """Create (or complete) a J-LIS data directory with its keys, and open it."""
        data_dir = DataDir.init(path, SERVICE, KEYS)
        for name, (guards, size) in LATER_KEYS.items():
            data_dir.add_key(name, size, guards=data_dir.path / guards)
        _publish_kenmen_key(data_dir)
        return cls(data_dir)

    @property
    def link_key(self) -> bytes:
        """J-LIS's link key (for J-LIS's own keyed values: the query log's person pseudonyms)."""
        return self._link_key

    def link_id(self, resident: int) -> bytes:
        """The person's link id (連携用符号): a keyed one-way function of the resident code."""
        return hmac.digest(self._link_key, _LINK_LABEL + resident.to_bytes(8, "big"), "sha256")[:LINK_ID_LEN]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> NumberAuthority:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- card keys (個人番号カード) -----------------------------------------------------------------

    def register_card_key(self, number: str | int, public_key: bytes) -> tuple[bytes, bytes]:
        """Register the Ed25519 public key of the card of the holder of a current number;
        returns (card key id = SHA-256 of the key, the holder's link id) — the pair J-LIS
        forwards to the linkage core. Registering the same key again for the same person is a
        no-op; for another person it is refused."""
        if not isinstance(public_key, bytes | bytearray) or len(public_key) != 32:
            raise InvalidArgumentError("a card public key is 32 bytes (Ed25519)")
        link = self.lookup_current(number).link_id
        key_id = hashlib.sha256(public_key).digest()
        with self._lock:
            row = self._db.execute("SELECT link_id FROM card_keys WHERE card_key_id = ?", (key_id,)).fetchone()
            if row is not None and bytes(row[0]) != link:
                raise AlreadyExistsError("this card key is registered to another person")
            if row is None:
                self._db.execute(
                    "INSERT INTO card_keys(card_key_id, public_key, link_id, registered_at) VALUES (?, ?, ?, ?)",
                    (key_id, bytes(public_key), link, _now()),
                )
        return key_id, link

    def register_link_card_key(self, link_id: bytes, public_key: bytes) -> bytes:
        """The card office's registration at issue: the 利用者証明用 key's SubjectPublicKeyInfo
        (DER) for the holder's link id. Returns the card key id (SHA-256 of the key)."""
        key_id = hashlib.sha256(public_key).digest()
        with self._lock:
            row = self._db.execute("SELECT link_id FROM card_keys WHERE card_key_id = ?", (key_id,)).fetchone()
            if row is not None and bytes(row[0]) != bytes(link_id):
                raise AlreadyExistsError("this card key is registered to another person")
            if row is None:
                self._db.execute(
                    "INSERT INTO card_keys(card_key_id, public_key, link_id, registered_at) VALUES (?, ?, ?, ?)",
                    (key_id, bytes(public_key), bytes(link_id), _now()),
                )
        return key_id

    def unforwarded_card_keys(self, limit: int = 1000) -> list[tuple[bytes, bytes, bytes]]:
        """(card key id, public key, link id) the core has not confirmed yet."""
        rows = self._db.execute(
            "SELECT card_key_id, public_key, link_id FROM card_keys WHERE card_key_id NOT IN "
            "(SELECT card_key_id FROM card_keys_forwarded) ORDER BY registered_at LIMIT ?", (int(limit),)
        ).fetchall()
        return [(bytes(a), bytes(b), bytes(c)) for a, b, c in rows]

    def card_key_forwarded(self, card_key_id: bytes) -> None:
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO card_keys_forwarded(card_key_id) VALUES (?)", (bytes(card_key_id),))

    def card_key(self, card_key_id: bytes) -> tuple[bytes, bytes]:
        """(public key, holder's link id) of a registered card key."""
        row = self._db.execute(
            "SELECT public_key, link_id FROM card_keys WHERE card_key_id = ?", (bytes(card_key_id),)
        ).fetchone()
        if row is None:
            raise NotFoundError("no such card key")
        return bytes(row[0]), bytes(row[1])

    # -- look-ups -----------------------------------------------------------------------------

    def _row(self, number: int) -> tuple[bytes, int, str] | None:
        row = self._db.execute("SELECT link_id, generation, state FROM numbers WHERE number = ?", (number,)).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]), str(row[2]))

    def _current_of_link(self, link: bytes) -> int | None:
        row = self._db.execute(
            "SELECT number FROM numbers WHERE link_id = ? AND state = 'current'", (link,)
        ).fetchone()
        return None if row is None else int(row[0])

    def lookup(self, number: str | int) -> NumberRecord:
        """The registry entry of an issued number (current or former)."""
        value = _number_value(number)
        row = self._row(value)
        if row is None:
            raise NotFoundError("no such individual number has been issued")
        return NumberRecord(format_individual_number(value), bytes(row[0]), int(row[1]), str(row[2]))

    def resolve(self, number: str | int) -> str:
        """The 住民票コード behind an issued number (J-LIS internal use only)."""
        value = _number_value(number)
        row = self._row(value)
        if row is None:
            raise NotFoundError("no such individual number has been issued")
        resident = self._map.resident_for(value, int(row[1]))
        if resident is None:  # only a registry that does not belong to this key gets here
            raise FailedPreconditionError("registry and number key disagree")
        return f"{resident:011d}"

    def lookup_current(self, number: str | int) -> NumberRecord:
        """The registry entry of a *current* number; a former one is refused."""
        record = self.lookup(number)
        if record.state != "current":
            raise FailedPreconditionError("this individual number has been changed; use the current one")
        return record

    def link_ids(self, numbers: npt.NDArray[np.uint64] | Any) -> tuple[bytes, npt.NDArray[np.bool_]]:
        """Link ids of the holders of many current numbers: (16 bytes each, zeros where a
        number is not a current one; found per number).

        Malformed numbers (wrong check digit) raise InvalidNumberError naming the index.
        """
        values = np.ascontiguousarray(numbers) if isinstance(numbers, np.ndarray) else numbers
        ok = _n.validate_batch("individual", values)
        if not ok.all():
            bad = int(np.argmin(ok))
            from renkei.errors import InvalidNumberError

            raise InvalidNumberError(
                f"invalid individual number (個人番号) at index {bad}: wrong check digit or out of range",
                "individual",
                "wrong_check_digit",
                bad,
            )
        count = len(values)
        links = np.zeros((count, LINK_ID_LEN), dtype=np.uint8)
        found = np.zeros(count, dtype=np.bool_)
        as_json = "[" + ",".join(map(str, np.asarray(values, dtype=np.uint64).tolist())) + "]"
        rows = self._db.execute(
            "SELECT j.key, n.link_id FROM json_each(?) j"
            " JOIN numbers n ON n.number = j.value AND n.state = 'current'",
            (as_json,),
        ).fetchall()
        if rows:
            index = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            links[index] = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.uint8).reshape(-1, LINK_ID_LEN)
            found[index] = True
        return links.tobytes(), found

    def number_of(self, resident_code: str | int) -> str | None:
        """The current number of a resident, or None when none was assigned."""
        number = self._current_of_link(self.link_id(_resident_value(resident_code)))
        return None if number is None else format_individual_number(number)

    def counts(self) -> dict[str, int]:
        rows = dict(self._db.execute("SELECT state, count(*) FROM numbers GROUP BY state").fetchall())
        current = int(rows.get("current", 0))
        return {"persons": current, "current": current, "former": int(rows.get("former", 0))}

    # -- assignment ---------------------------------------------------------------------------

    def assign(self, resident_code: str | int) -> str:
        """The My Number of a resident: assigned now, or the current one if already assigned."""
        resident = _resident_value(resident_code)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                number = self._assign_one(resident)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return format_individual_number(number)

    def _assign_one(self, resident: int, notices: bool = True) -> int:
        link = self.link_id(resident)
        current = self._current_of_link(link)
        if current is not None:
            return current
        number, generation = self._free_number(resident, 0)
        self._db.execute(
            "INSERT INTO numbers(number, link_id, generation, state) VALUES (?, ?, ?, 'current')",
            (number, link, generation),
        )
        if notices:
            self._db.execute(NOTICE_INSERT, (link, number, "assigned", _now()))
        return number

    def _free_number(self, resident: int, first_generation: int) -> tuple[int, int]:
        for generation in range(first_generation, MAX_GENERATIONS):
            candidate = self._map.number_for(resident, generation)
            if self._row(candidate) is None:
                return candidate, generation
        raise FailedPreconditionError("no free number within the generation limit")

    def assign_batch(self, resident_codes: npt.NDArray[np.uint64] | Any, *,
                     notices: bool = True) -> npt.NDArray[np.uint64]:
        """My Numbers for many resident codes (uint64 in, uint64 out, same order).

        Already-registered residents get their current number; the whole batch commits in one
        durable transaction, or not at all (an invalid code raises naming its index). Each new
        number queues its 個人番号通知書 in the same transaction (``notices=False``: the test-only
        synthetic population, which has no 4情報 to address a notice to).
        """
        numbers0 = self._map.numbers_for_batch(resident_codes, 0)  # validates every code first
        residents = np.ascontiguousarray(resident_codes, dtype=np.uint64)
        out = np.empty_like(numbers0)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._assign_many(residents, numbers0, out, notices)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return out

    def _assign_many(self, residents: np.ndarray, numbers0: np.ndarray, out: np.ndarray, notices: bool) -> None:
        db = self._db
        # One JSON array per statement: SQLite's json_each walks it in C, so a million look-ups
        # and inserts cost no per-row Python.
        unique0 = np.sort(numbers0)
        if len(unique0) > 1:
            unique0 = unique0[np.concatenate(([True], unique0[1:] != unique0[:-1]))]
        as_json = "[" + ",".join(map(str, unique0.tolist())) + "]"
        taken = {
            int(n): (bytes(link), int(g))
            for n, link, g in db.execute(
                "SELECT n.number, n.link_id, n.generation FROM json_each(?) j JOIN numbers n ON n.number = j.value",
                (as_json,),
            )
        }
        fresh = unique0
        if taken:
            fresh = unique0[~np.isin(unique0, np.fromiter(taken, dtype=np.uint64, count=len(taken)))]
            as_json = "[" + ",".join(map(str, fresh.tolist())) + "]"
        # The resident behind each fresh number, for its link id (FF1 is a permutation per
        # generation, so a generation-0 number names exactly one resident of the batch).
        resident_of = dict(zip(numbers0.tolist(), residents.tolist(), strict=True))
        fresh_rows = [(v, self.link_id(resident_of[v])) for v in fresh.tolist()]
        db.executemany("INSERT INTO numbers(number, link_id, generation, state) VALUES (?, ?, 0, 'current')",
                       fresh_rows)
        if notices:
            stamp = _now()
            db.executemany(NOTICE_INSERT, ((link, v, "assigned", stamp) for v, link in fresh_rows))
        out[:] = numbers0
        if not taken:
            return
        # Generation-0 hits are residents registered before; other hits collide with someone's
        # changed number and take the one-by-one path, which moves on to the next free generation.
        resolved = {
            value: self._current_of_link(link) if generation == 0 else -1
            for value, (link, generation) in taken.items()
        }
        hits = np.nonzero(np.isin(numbers0, np.fromiter(resolved, dtype=np.uint64, count=len(resolved))))[0]
        for i in hits:
            value = int(numbers0[i])
            if resolved[value] == -1:
                resolved[value] = self._assign_one(int(residents[i]), notices)
            out[i] = resolved[value]

    # -- change (番号法 第7条第2項) --------------------------------------------------------------

    def change(self, number: str | int, when: str | None = None) -> str:
        """Designate a new number for the holder of a leaked current number.

        The new number differs from every current and former number; the old one stays in the
        registry as former and is never issued again.
        """
        value = _number_value(number)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = self._change_one(value, when)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return format_individual_number(new)

    def change_batch(self, numbers: Iterable[str | int], when: str | None = None) -> list[str]:
        """Change many numbers in one durable transaction."""
        values = [_number_value(n) for n in numbers]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                new = [self._change_one(v, when) for v in values]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return [format_individual_number(v) for v in new]

    def _change_one(self, value: int, when: str | None) -> int:
        row = self._row(value)
        if row is None:
            raise NotFoundError("no such individual number has been issued")
        link, generation, state = bytes(row[0]), int(row[1]), str(row[2])
        if state != "current":
            raise FailedPreconditionError("this individual number was already changed")
        resident = self._map.resident_for(value, generation)
        if resident is None:
            raise FailedPreconditionError("registry and number key disagree")
        new, new_generation = self._free_number(resident, generation + 1)
        stamp = when or _now()
        self._db.execute("UPDATE numbers SET state = 'former', changed_at = ? WHERE number = ?", (stamp, value))
        self._db.execute(
            "INSERT INTO numbers(number, link_id, generation, state) VALUES (?, ?, ?, 'current')",
            (new, link, new_generation),
        )
        self._db.execute(NOTICE_INSERT, (link, new, "changed", _now()))
        return new

    def current_of(self, link_id: bytes) -> str | None:
        """The current number of the person with ``link_id``, or None."""
        number = self._current_of_link(bytes(link_id))
        return None if number is None else format_individual_number(number)


def _now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")


KENMEN_KEY_FILE = "kenmen-ap.pem"


def _publish_kenmen_key(data_dir: DataDir) -> None:
    """``kenmen-ap.pem``: the public half of J-LIS's 券面事項入力補助AP key, which agencies pin."""
    from renkei.datadir import write_atomic
    from renkei.jpki.kenmen import KenmenSigner

    path = data_dir.path / KENMEN_KEY_FILE
    if not path.exists():
        write_atomic(path, KenmenSigner(data_dir.secret_key("kenmen-ap")).public_pem(), 0o600)
