"""The J-LIS side of code acquisition (番号法 第21条の2).

An agency that wants its 機関別符号 for a person sends the person's My Number together with a
one-off 取得番号 (acquisition number) to J-LIS. J-LIS resolves the number to the person and
forwards only ``(取得番号, person id)`` to the linkage core, which answers ``(取得番号, code)``.
The core therefore never receives a My Number or a resident code; this module is the only
place on the acquisition path that does, and it keeps nothing: the 取得番号 lives only as long
as the request (第21条の2 第3項・第4項).

A 取得番号 here is 16 random bytes (``secrets``), which can never be mistaken for a 12-digit
個人番号 or an 11-digit 住民票コード, as the law requires.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from renkei.errors import InvalidArgumentError
from renkei.jlis.authority import NumberAuthority
from renkei.numbers import parse_individual_number

ACQUISITION_NUMBER_LEN = 16


def new_acquisition_numbers(count: int) -> bytes:
    """``count`` fresh 取得番号, packed 16 bytes each."""
    return secrets.token_bytes(ACQUISITION_NUMBER_LEN * count)


@dataclass(frozen=True)
class Forwarded:
    """What J-LIS forwards to the core: acquisition numbers and person ids, nothing else.

    ``person_ids[i]`` is -1 where J-LIS found no current My Number for request ``i``.
    """

    acquisition_numbers: bytes
    person_ids: npt.NDArray[np.int64]


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


class AcquisitionRelay:
    """J-LIS's relay: My Number + 取得番号 in, 取得番号 + person id out."""

    def __init__(self, jlis: NumberAuthority) -> None:
        self._jlis = jlis

    def forward(self, numbers: Any, acquisition_numbers: bytes | None = None) -> Forwarded:
        values = my_numbers_array(numbers)
        if acquisition_numbers is None:
            acquisition_numbers = new_acquisition_numbers(len(values))
        if not isinstance(acquisition_numbers, bytes) or len(acquisition_numbers) != ACQUISITION_NUMBER_LEN * len(
            values
        ):
            raise InvalidArgumentError(
                f"acquisition numbers (取得番号) must be {ACQUISITION_NUMBER_LEN} bytes per My Number, packed"
            )
        person_ids = self._jlis.person_ids(values)  # raises InvalidNumberError naming an index, never a number
        return Forwarded(acquisition_numbers, person_ids)
