"""The core's side of code acquisition (符号取得, 番号法 第21条の2): 取得番号 and waiting codes.

The flow crosses three parties so that the core never sees a My Number and J-LIS never sees a
code (docs/arch/separation.md):

1. an agency reserves acquisition numbers here (:meth:`AcquisitionDesk.reserve`);
2. it sends (My Number, 取得番号) pairs to J-LIS, which forwards (取得番号, link id) to the
   core (:meth:`AcquisitionDesk.issue`): the core issues the codes, the holdings become durable,
   and each code waits under its 取得番号;
3. the agency collects its codes (:meth:`AcquisitionDesk.collect`), each once.

An acquisition number is one AES-256 block under the core's ``acquisition-number`` key over
(agency id, expiry, a 4-byte random prefix drawn when the process starts, a 4-byte counter):
only the core can read it, it names the agency that
reserved it (J-LIS cannot steer a code to another agency, another agency cannot collect it),
and it is neither a 個人番号 nor a 住民票コード. Nothing about it is stored until J-LIS forwards
it, so reserving costs the core no memory. The prefix and counter make numbers unique by
construction — two equal numbers would let one person's code be collected for another's — where
random bytes would only make a repeat unlikely (a birthday bound over every number issued); front-ends
repeat only if two draw the same prefix. Waiting codes are bounded and dropped at expiry (the
law lets everyone keep a 取得番号 only as long as the acquisition needs it):

* embedded core (one process): in that process's memory — a code lost to a restart is acquired
  again, codes are deterministic;
* core on PostgreSQL (several front-ends, docs/arch/store.md): in the store's ``acquisition``
  schema, so an agency reserves on one front-end, J-LIS forwards to another and the agency
  collects on a third, and a front-end's death loses no waiting code. J-LIS may resend a forward
  to the next front-end when one dies mid-call: issuing is idempotent (deterministic codes, a
  holding acquired twice is one holding, a waiting row is replaced by the same row).
"""

from __future__ import annotations

import abc
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from renkei.datadir import DataDir
from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError
from renkei.linkage.codes import CODE_LEN, LINK_ID_LEN, AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.store import Database, open_database, register_component

ACQUISITION_NUMBER_LEN = 16
KEY_NAME = "acquisition-number"
#: How long an acquisition number stays usable (seconds).
TTL_SECONDS = 600
#: At most this many items per call (reserve, issue, collect).
MAX_BATCH = 100_000
#: Codes issued but not collected, over all agencies: beyond this J-LIS's forward is refused.
MAX_WAITING = 1_000_000

# Per-item statuses (the proto's AcquisitionStatus).
ISSUED = 0
REFUSED = 1
NO_SUCH_NUMBER = 2
PENDING = 3


@dataclass(frozen=True)
class Reservation:
    """Acquisition numbers (16 bytes each, packed) and when they expire (unix seconds)."""

    acquisition_numbers: bytes
    expires_at: int


def _count(data: bytes, width: int, what: str) -> int:
    if not isinstance(data, bytes) or len(data) % width:
        raise InvalidArgumentError(f"{what} must be {width} bytes each, packed")
    n = len(data) // width
    if n == 0:
        raise InvalidArgumentError(f"{what}: none given")
    if n > MAX_BATCH:
        raise ResourceExhaustedError(f"{what}: {n} items, at most {MAX_BATCH} a call")
    return n


class WaitingCodes(abc.ABC):
    """Codes issued under a 取得番号 and not yet collected: ``(agency, code, expiry)`` by
    acquisition number. Thread-safe."""

    @abc.abstractmethod
    def count(self) -> int:
        """How many wait (expired ones may still be counted until the next sweep)."""

    @abc.abstractmethod
    def put(self, agency_id: int, acquisition_numbers: bytes, codes: bytes, expiry: int) -> None:
        """The codes of ``agency_id`` (16 bytes each, packed, one per acquisition number) wait
        until ``expiry``; durable (for this kind of store) on return. A number that already
        waits is replaced (a resent forward)."""

    @abc.abstractmethod
    def take(self, agency_id: int, acquisition_numbers: bytes, now: int) -> dict[bytes, bytes]:
        """Remove and return the unexpired codes of ``agency_id`` among ``acquisition_numbers``
        (16 bytes each, packed), by acquisition number."""

    @abc.abstractmethod
    def sweep(self, now: int) -> None:
        """Drop what expired."""

    def close(self) -> None:
        return None


class MemoryWaitingCodes(WaitingCodes):
    """In this process (the embedded core: one process serves every call)."""

    def __init__(self) -> None:
        self._waiting: OrderedDict[bytes, tuple[int, bytes, int]] = OrderedDict()
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            return len(self._waiting)

    def put(self, agency_id: int, acquisition_numbers: bytes, codes: bytes, expiry: int) -> None:
        with self._lock:
            for acq, code in zip(_split(acquisition_numbers), _split(codes), strict=True):
                self._waiting.pop(acq, None)
                self._waiting[acq] = (agency_id, code, expiry)

    def take(self, agency_id: int, acquisition_numbers: bytes, now: int) -> dict[bytes, bytes]:
        out: dict[bytes, bytes] = {}
        with self._lock:
            for acq in _split(acquisition_numbers):
                hit = self._waiting.get(acq)
                if hit is None or hit[0] != agency_id:
                    continue
                del self._waiting[acq]
                if hit[2] >= now:
                    out[acq] = hit[1]
        return out

    def sweep(self, now: int) -> None:
        with self._lock:
            while self._waiting:  # insertion order is expiry order (one TTL for all)
                acq, (_a, _c, expiry) = next(iter(self._waiting.items()))
                if expiry >= now:
                    break
                del self._waiting[acq]


#: Schema ``acquisition`` of the core's store (the same table on SQLite, for the tests of both).
SCHEMA = register_component("acquisition", {
    "sqlite": """
CREATE TABLE IF NOT EXISTS waiting (
    acq BLOB PRIMARY KEY, agency INTEGER NOT NULL, code BLOB NOT NULL, expires INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS waiting_expires ON waiting(expires);
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS waiting (
    acq BYTEA PRIMARY KEY, agency INTEGER NOT NULL, code BYTEA NOT NULL, expires BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS waiting_expires ON waiting(expires);
""",
})
#: Rows per SQLite statement (its bound-parameter limit).
_SQLITE_CHUNK = 500
# PostgreSQL: a batch is two bytea parameters cut into 16-byte rows by the server — no
# per-row Python objects to adapt (measured 2.2× an unnest of arrays).
_PG_ROWS = "SELECT substring(?::bytea from i * 16 + 1 for 16) AS a{extra} FROM generate_series(0, ? - 1) AS i"


def _split(packed: bytes) -> list[bytes]:
    return [packed[i:i + 16] for i in range(0, len(packed), 16)]
#: Seconds between expiry sweeps, and how old the cached count may be.
_SWEEP_EVERY = 5.0
_COUNT_EVERY = 1.0


class StoreWaitingCodes(WaitingCodes):
    """In the core's store (``acquisition.waiting``), shared by every front-end.

    A row names an acquisition number, an agency and a code — no person, no link id — and lives
    only until collected or expired (the store's sweep). The count bounding the table is read at
    most once a second, so under a burst it may overshoot ``max_waiting`` by one second's forwards.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pg = db.kind == "postgresql"
        self._lock = threading.Lock()
        self._counted = (0, -1e9)  # (count, monotonic time read)
        self._swept = -1e9

    def count(self) -> int:
        with self._lock:
            n, at = self._counted
            if time.monotonic() - at < _COUNT_EVERY:
                return n
        row = self._db.one("SELECT count(*) FROM waiting")
        n = int(row[0]) if row else 0
        with self._lock:
            self._counted = (n, time.monotonic())
        return n

    def put(self, agency_id: int, acquisition_numbers: bytes, codes: bytes, expiry: int) -> None:
        n = len(acquisition_numbers) // 16
        if not n:
            return
        upsert = ("ON CONFLICT (acq) DO UPDATE SET agency = excluded.agency, code = excluded.code, "
                  "expires = excluded.expires")
        with self._db.transaction(**({"serialise": False} if self._pg else {})) as tx:
            if self._pg:
                tx.execute("INSERT INTO waiting " + _PG_ROWS.format(
                    extra=", ? AS g, substring(?::bytea from i * 16 + 1 for 16) AS c, ? AS e") + " " + upsert,
                    (acquisition_numbers, agency_id, codes, expiry, n))
            else:
                tx.many("INSERT INTO waiting VALUES (?, ?, ?, ?) " + upsert,
                        [(acq, agency_id, code, expiry)
                         for acq, code in zip(_split(acquisition_numbers), _split(codes), strict=True)])
        with self._lock:
            count, at = self._counted
            self._counted = (count + n, at)

    def take(self, agency_id: int, acquisition_numbers: bytes, now: int) -> dict[bytes, bytes]:
        n = len(acquisition_numbers) // 16
        if not n:
            return {}
        got: list[tuple[bytes, bytes, int]] = []
        with self._db.transaction(**({"serialise": False} if self._pg else {})) as tx:
            if self._pg:
                rows = tx.all("DELETE FROM waiting WHERE acq IN (" + _PG_ROWS.format(extra="") + ") AND agency = ? "
                              "RETURNING acq, code, expires", (acquisition_numbers, n, agency_id))
                got.extend((bytes(a), bytes(c), int(e)) for a, c, e in rows)
            else:
                numbers = _split(acquisition_numbers)
                for i in range(0, len(numbers), _SQLITE_CHUNK):
                    part = numbers[i:i + _SQLITE_CHUNK]
                    marks = ",".join("?" * len(part))
                    rows = tx.all(f"DELETE FROM waiting WHERE acq IN ({marks}) AND agency = ? "
                                  f"RETURNING acq, code, expires", (*part, agency_id))
                    got.extend((bytes(a), bytes(c), int(e)) for a, c, e in rows)
        return {acq: code for acq, code, expires in got if expires >= now}

    def sweep(self, now: int) -> None:
        with self._lock:
            if time.monotonic() - self._swept < _SWEEP_EVERY:
                return
            self._swept = time.monotonic()
        with self._db.transaction(**({"serialise": False} if self._pg else {})) as tx:
            tx.execute("DELETE FROM waiting WHERE expires < ?", (now,))

    def close(self) -> None:
        self._db.close()

    @classmethod
    def open(cls, data_dir: DataDir) -> StoreWaitingCodes:
        """The waiting codes on ``data_dir``'s store."""
        return cls(open_database(data_dir, "acquisition", SCHEMA))


class AcquisitionDesk:
    """Acquisition numbers and the codes waiting for them. Thread-safe."""

    def __init__(self, key: bytes, registry: AgencyRegistry, codes: AgencyCodes, *,
                 ttl_seconds: int = TTL_SECONDS, max_waiting: int = MAX_WAITING,
                 waiting: WaitingCodes | None = None) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._registry = registry
        self._codes = codes
        self._ttl = ttl_seconds
        self._max_waiting = max_waiting
        self._waiting = waiting if waiting is not None else MemoryWaitingCodes()
        self._serial_lock = threading.Lock()
        self._prefix = secrets.token_bytes(4)
        self._next = 0

    def close(self) -> None:
        self._waiting.close()

    def reserve(self, agency_id: int, count: int) -> Reservation:
        """``count`` fresh acquisition numbers for an active agency with an approved PIA."""
        if not 0 < count <= MAX_BATCH:
            raise InvalidArgumentError(f"count must be 1 to {MAX_BATCH}")
        agency = self._registry.require_active(agency_id)
        expires = int(time.time()) + self._ttl
        blocks = np.empty((count, 16), dtype=np.uint8)
        blocks[:, 0:4] = np.frombuffer(agency.agency_id.to_bytes(4, "big"), dtype=np.uint8)
        blocks[:, 4:8] = np.frombuffer(expires.to_bytes(4, "big"), dtype=np.uint8)
        with self._serial_lock:
            if self._next + count > 1 << 32:  # ~12 h at 100,000 numbers/s: a fresh prefix
                self._prefix, self._next = secrets.token_bytes(4), 0
            prefix, first = self._prefix, self._next
            self._next += count
        blocks[:, 8:12] = np.frombuffer(prefix, dtype=np.uint8)
        blocks[:, 12:16] = np.arange(first, first + count, dtype=">u4").view(np.uint8).reshape(count, 4)
        enc = self._cipher.encryptor()
        return Reservation(enc.update(blocks.tobytes()) + enc.finalize(), expires)

    def _open(self, acquisition_numbers: bytes) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.bool_]]:
        """(agency per number, unexpired per number)."""
        dec = self._cipher.decryptor()
        plain = np.frombuffer(dec.update(acquisition_numbers) + dec.finalize(), dtype=np.uint8).reshape(-1, 16)
        agencies = plain[:, 0:4].copy().view(">u4").ravel().astype(np.uint32)
        expiry = plain[:, 4:8].copy().view(">u4").ravel().astype(np.int64)
        now = int(time.time())
        return agencies, (expiry >= now) & (expiry <= now + self._ttl)

    def issue(self, acquisition_numbers: bytes, link_ids: bytes) -> npt.NDArray[np.uint8]:
        """J-LIS's forward: (取得番号, link id) pairs → codes waiting for collection.

        Status per item: ISSUED, or REFUSED (not a live acquisition number, or its agency has
        lost its approved PIA since reserving). The holdings and the waiting codes are durable
        before this returns; the same forward sent again issues the same codes.
        """
        n = _count(acquisition_numbers, ACQUISITION_NUMBER_LEN, "acquisition numbers")
        if _count(link_ids, LINK_ID_LEN, "link ids") != n:
            raise InvalidArgumentError("one 16-byte link id per acquisition number")
        agencies, live = self._open(acquisition_numbers)
        status = np.full(n, REFUSED, dtype=np.uint8)
        expiry = int(time.time()) + self._ttl
        self._waiting.sweep(int(time.time()))
        waiting = self._waiting.count()
        if waiting + n > self._max_waiting:
            raise ResourceExhaustedError(f"{waiting} codes are waiting to be collected; agencies must collect first")
        for agency in np.unique(agencies[live]).tolist():
            index = np.flatnonzero(live & (agencies == agency))
            try:
                codes = self._codes.issue(agency, b"".join(
                    link_ids[i * LINK_ID_LEN:(i + 1) * LINK_ID_LEN] for i in index.tolist()))
            except (FailedPreconditionError, NotFoundError):
                continue  # the agency was retired, suspended or lost its PIA since reserving
            acq = np.frombuffer(acquisition_numbers, dtype=np.uint8).reshape(-1, ACQUISITION_NUMBER_LEN)
            self._waiting.put(agency, acq[index].tobytes(), codes, expiry)
            status[index] = ISSUED
        return status

    def collect(self, agency_id: int, acquisition_numbers: bytes) -> tuple[bytes, npt.NDArray[np.uint8]]:
        """The caller's codes by acquisition number (zeros where not issued) and a status per
        item: ISSUED, PENDING (J-LIS has not forwarded it) or REFUSED (not a live acquisition
        number of this agency, or already collected)."""
        n = _count(acquisition_numbers, ACQUISITION_NUMBER_LEN, "acquisition numbers")
        agencies, live = self._open(acquisition_numbers)
        mine = live & (agencies == agency_id)
        out = bytearray(n * CODE_LEN)
        status = np.where(mine, PENDING, REFUSED).astype(np.uint8)
        index = np.flatnonzero(mine)
        acq = np.frombuffer(acquisition_numbers, dtype=np.uint8).reshape(-1, ACQUISITION_NUMBER_LEN)
        wanted = acq[index].tobytes()
        got = self._waiting.take(agency_id, wanted, int(time.time()))
        for i, acq_number in zip(index.tolist(), _split(wanted), strict=True):
            code = got.get(acq_number)
            if code is not None:
                out[i * CODE_LEN:(i + 1) * CODE_LEN] = code
                status[i] = ISSUED
        return bytes(out), status

    def waiting(self) -> int:
        return self._waiting.count()


__all__ = ["ACQUISITION_NUMBER_LEN", "AcquisitionDesk", "MemoryWaitingCodes", "Reservation", "StoreWaitingCodes",
           "WaitingCodes"]
