"""The core's side of code acquisition (符号取得, 番号法 第21条の2): 取得番号 and waiting codes.

The flow crosses three parties so that the core never sees a My Number and J-LIS never sees a
code (docs/arch/separation.md):

1. an agency reserves acquisition numbers here (:meth:`AcquisitionDesk.reserve`);
2. it sends (My Number, 取得番号) pairs to J-LIS, which forwards (取得番号, link id) to the
   core (:meth:`AcquisitionDesk.issue`): the core issues the codes, the holdings become durable,
   and each code waits under its 取得番号;
3. the agency collects its codes (:meth:`AcquisitionDesk.collect`), each once.

An acquisition number is one AES-256 block under the core's ``acquisition-number`` key over
(agency id, expiry, 8 random bytes): only the core can read it, it names the agency that
reserved it (J-LIS cannot steer a code to another agency, another agency cannot collect it),
and it is neither a 個人番号 nor a 住民票コード. Nothing about it is stored until J-LIS forwards
it, so reserving costs the core no memory; waiting codes are kept in memory only, bounded, and
dropped at expiry (the law lets everyone keep a 取得番号 only as long as the acquisition
needs it). A code lost to a restart is acquired again: codes are deterministic.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from renkei.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError
from renkei.linkage.codes import CODE_LEN, LINK_ID_LEN, AgencyCodes
from renkei.linkage.registry import AgencyRegistry

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


class AcquisitionDesk:
    """Acquisition numbers and the codes waiting for them. Thread-safe."""

    def __init__(self, key: bytes, registry: AgencyRegistry, codes: AgencyCodes, *,
                 ttl_seconds: int = TTL_SECONDS, max_waiting: int = MAX_WAITING) -> None:
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())
        self._registry = registry
        self._codes = codes
        self._ttl = ttl_seconds
        self._max_waiting = max_waiting
        self._waiting: OrderedDict[bytes, tuple[int, bytes, int]] = OrderedDict()  # acq → (agency, code, expiry)
        self._lock = threading.Lock()

    def reserve(self, agency_id: int, count: int) -> Reservation:
        """``count`` fresh acquisition numbers for an active agency with an approved PIA."""
        if not 0 < count <= MAX_BATCH:
            raise InvalidArgumentError(f"count must be 1 to {MAX_BATCH}")
        agency = self._registry.require_active(agency_id)
        expires = int(time.time()) + self._ttl
        blocks = np.empty((count, 16), dtype=np.uint8)
        blocks[:, 0:4] = np.frombuffer(agency.agency_id.to_bytes(4, "big"), dtype=np.uint8)
        blocks[:, 4:8] = np.frombuffer(expires.to_bytes(4, "big"), dtype=np.uint8)
        blocks[:, 8:16] = np.frombuffer(secrets.token_bytes(8 * count), dtype=np.uint8).reshape(count, 8)
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
        lost its approved PIA since reserving). The holdings are durable before this returns.
        """
        n = _count(acquisition_numbers, ACQUISITION_NUMBER_LEN, "acquisition numbers")
        if _count(link_ids, LINK_ID_LEN, "link ids") != n:
            raise InvalidArgumentError("one 16-byte link id per acquisition number")
        agencies, live = self._open(acquisition_numbers)
        status = np.full(n, REFUSED, dtype=np.uint8)
        expiry = int(time.time()) + self._ttl
        with self._lock:
            self._expire()
            if len(self._waiting) + n > self._max_waiting:
                raise ResourceExhaustedError(
                    f"{len(self._waiting)} codes are waiting to be collected; agencies must collect first"
                )
        for agency in np.unique(agencies[live]).tolist():
            index = np.flatnonzero(live & (agencies == agency))
            try:
                codes = self._codes.issue(agency, b"".join(
                    link_ids[i * LINK_ID_LEN:(i + 1) * LINK_ID_LEN] for i in index.tolist()))
            except (FailedPreconditionError, NotFoundError):
                continue  # the agency was retired, suspended or lost its PIA since reserving
            with self._lock:
                for k, i in enumerate(index.tolist()):
                    acq = acquisition_numbers[i * ACQUISITION_NUMBER_LEN:(i + 1) * ACQUISITION_NUMBER_LEN]
                    self._waiting[acq] = (agency, codes[k * CODE_LEN:(k + 1) * CODE_LEN], expiry)
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
        now = int(time.time())
        with self._lock:
            for i in np.flatnonzero(mine).tolist():
                acq = acquisition_numbers[i * ACQUISITION_NUMBER_LEN:(i + 1) * ACQUISITION_NUMBER_LEN]
                hit = self._waiting.pop(acq, None)
                if hit is None:
                    continue
                agency, code, expiry = hit
                if agency != agency_id or expiry < now:
                    continue
                out[i * CODE_LEN:(i + 1) * CODE_LEN] = code
                status[i] = ISSUED
        return bytes(out), status

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiting)

    def _expire(self) -> None:
        """Under the lock: drop waiting codes past expiry (roughly in insertion order)."""
        now = int(time.time())
        while self._waiting:
            acq, (_a, _c, expiry) = next(iter(self._waiting.items()))
            if expiry >= now:
                break
            del self._waiting[acq]


__all__ = ["ACQUISITION_NUMBER_LEN", "AcquisitionDesk", "Reservation"]
