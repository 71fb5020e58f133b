"""Check digits and validation of the My Number system's identifiers.

* 個人番号 (individual number, "My Number"): 12 digits, check digit last
  (平成26年総務省令第85号 第5条).
* 法人番号 (corporate number): 13 digits, check digit first (平成26年財務省令第70号 第2条).
* 住民票コード (resident code): 11 digits, check digit last. The official formula
  (平成14年総務省告示第436号) could not be checked; the mod-11 rule used by every secondary
  source is implemented (see docs/ARCHITECTURE.md).

The string forms accept numbers as people write them: ASCII digits grouped by spaces or hyphens
("6214 9832 0257", "5-8356-7825-6246"). Full-width digits (０–９), the ideographic space and
full-width or typographic hyphens are accepted too, because Japanese forms produce them. Any
other character, and any count of digits other than the exact one, raises
:class:`~renkei.errors.InvalidNumberError` (a ``ValueError``). The ``is_valid_*`` functions
return ``False`` only for a well-formed number with a wrong check digit.

The batch forms take a 1-D numpy ``uint64`` array (leading zeros implicit) and return a numpy
bool array; they release the GIL while they run.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from renkei._core import numbers as _n
from renkei.errors import InvalidArgumentError

__all__ = [
    "corporate_check_digit",
    "format_corporate_number",
    "format_individual_number",
    "individual_check_digit",
    "is_valid_corporate_number",
    "is_valid_individual_number",
    "is_valid_resident_code",
    "parse_corporate_number",
    "parse_individual_number",
    "parse_resident_code",
    "resident_check_digit",
    "validate_corporate_numbers",
    "validate_individual_numbers",
    "validate_resident_codes",
]



#: The three identifiers, as the engine names them.
NumberKind = Literal["individual", "corporate", "resident_code"]


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{what} must be a str, got {type(value).__name__}")
    return value


def individual_check_digit(body11: str) -> int:
    """The check digit of a 個人番号 from its 11-digit body."""
    return _n.individual_check_digit(_n.parse_digits("individual", _text(body11, "body11"), 11))


def corporate_check_digit(base12: str) -> int:
    """The check digit (1–9, written first) of a 法人番号 from its 12-digit base."""
    return _n.corporate_check_digit(_n.parse_digits("corporate", _text(base12, "base12"), 12))


def resident_check_digit(body10: str) -> int:
    """The check digit of a 住民票コード from its 10-digit body (unofficial formula, see module doc)."""
    return _n.resident_check_digit(_n.parse_digits("resident_code", _text(body10, "body10"), 10))


def is_valid_individual_number(s: str) -> bool:
    """Whether a well-formed 12-digit 個人番号 has the right check digit."""
    return _n.is_valid("individual", _n.parse_digits("individual", _text(s, "number")))


def is_valid_corporate_number(s: str) -> bool:
    """Whether a well-formed 13-digit 法人番号 has the right (leading) check digit."""
    return _n.is_valid("corporate", _n.parse_digits("corporate", _text(s, "number")))


def is_valid_resident_code(s: str) -> bool:
    """Whether a well-formed 11-digit 住民票コード has the right check digit."""
    return _n.is_valid("resident_code", _n.parse_digits("resident_code", _text(s, "code")))


def parse_individual_number(s: str) -> int:
    """The value of a valid 個人番号; raises InvalidNumberError when malformed or wrong."""
    return _n.parse_valid("individual", _text(s, "number"))


def parse_corporate_number(s: str) -> int:
    """The value of a valid 法人番号; raises InvalidNumberError when malformed or wrong."""
    return _n.parse_valid("corporate", _text(s, "number"))


def parse_resident_code(s: str) -> int:
    """The value of a valid 住民票コード; raises InvalidNumberError when malformed or wrong."""
    return _n.parse_valid("resident_code", _text(s, "code"))


def format_individual_number(n: int) -> str:
    """A 個人番号 value as its 12 digits (with leading zeros)."""
    return f"{n:012d}"


def format_corporate_number(n: int) -> str:
    """A 法人番号 value as its 13 digits."""
    return f"{n:013d}"


def validate_individual_numbers(a: npt.NDArray[np.uint64] | Any) -> npt.NDArray[np.bool_]:
    """Check-digit validity of many 個人番号 at once (uint64 in, bool out)."""
    return _n.validate_batch("individual", a)


def validate_corporate_numbers(a: npt.NDArray[np.uint64] | Any) -> npt.NDArray[np.bool_]:
    """Check-digit validity of many 法人番号 at once (uint64 in, bool out)."""
    return _n.validate_batch("corporate", a)


def validate_resident_codes(a: npt.NDArray[np.uint64] | Any) -> npt.NDArray[np.bool_]:
    """Check-digit validity of many 住民票コード at once (uint64 in, bool out)."""
    return _n.validate_batch("resident_code", a)
