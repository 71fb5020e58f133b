"""J-LIS's step of code acquisition (番号法 第21条の2).

An agency that wants its 機関別符号 for a person reserves a one-off 取得番号 at the linkage
core, then sends (My Number, 取得番号) to J-LIS. J-LIS resolves each current number to the
person's link id (連携用符号) and forwards only (取得番号, link id) to the core, which issues the
code for the agency to collect. The core therefore never receives a My Number or a resident
code, J-LIS never sees a code, and neither keeps the 取得番号 beyond the acquisition
(第21条の2 第3項・第4項). This module is J-LIS's pure part; the service sends the forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.errors import InvalidArgumentError
from renkei.jlis.authority import LINK_ID_LEN, NumberAuthority
from renkei.numbers import parse_individual_number

ACQUISITION_NUMBER_LEN = 16
#: Per-pair statuses J-LIS decides itself (the rest come from the core): the proto's
#: AcquisitionStatus NO_SUCH_NUMBER.
NO_SUCH_NUMBER = 2


@dataclass(frozen=True)
class Forward:
    """What J-LIS forwards to the core: the acquisition numbers and link ids of the pairs whose
    number is current (``index`` says which of the request's pairs); ``statuses`` holds one
    byte per pair, NO_SUCH_NUMBER where J-LIS found no current number, to be completed with
    the core's answer."""

    acquisition_numbers: bytes
    link_ids: bytes
    index: npt.NDArray[np.int64]
    statuses: npt.NDArray[np.uint8]


def my_numbers_array(numbers: Any) -> npt.NDArray[np.uint64]:
    """My Numbers as a uint64 array: from a numpy array, or from a list of str/int."""
    if isinstance(numbers, np.ndarray):
        if numbers.ndim != 1 or numbers.dtype.kind not in "ui":
            raise InvalidArgumentError("My Numbers must be a 1-D integer numpy array")
        if numbers.dtype.kind == "i" and len(numbers) and int(numbers.min()) < 0:
            raise InvalidArgumentError("My Numbers cannot be negative")
        return np.ascontiguousarray(numbers, dtype=np.uint64)
    values = []
    for i, n in enumerate(numbers):
        if isinstance(n, str):
            values.append(parse_individual_number(n))
        elif isinstance(n, int) and not isinstance(n, bool) and n >= 0:
            values.append(n)
        else:
            raise InvalidArgumentError(f"My Number at index {i} must be a str or a non-negative int")
    return np.array(values, dtype=np.uint64)


def resolve_pairs(jlis: NumberAuthority, numbers: Any, acquisition_numbers: bytes) -> Forward:
    """Resolve (My Number, 取得番号) pairs to what the core may see.

    Malformed numbers raise InvalidNumberError naming the index, never the number.
    """
    values = my_numbers_array(numbers)
    if len(acquisition_numbers) != ACQUISITION_NUMBER_LEN * len(values):
        raise InvalidArgumentError(
            f"acquisition numbers (取得番号) must be {ACQUISITION_NUMBER_LEN} bytes per My Number, packed"
        )
    links, found = jlis.link_ids(values)
    index = np.flatnonzero(found)
    acq = np.frombuffer(acquisition_numbers, dtype=np.uint8).reshape(-1, ACQUISITION_NUMBER_LEN)
    lk = np.frombuffer(links, dtype=np.uint8).reshape(-1, LINK_ID_LEN)
    statuses = np.full(len(values), NO_SUCH_NUMBER, dtype=np.uint8)
    return Forward(acq[index].tobytes(), lk[index].tobytes(), index, statuses)


__all__ = ["ACQUISITION_NUMBER_LEN", "Forward", "my_numbers_array", "resolve_pairs"]
