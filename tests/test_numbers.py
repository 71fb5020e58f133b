"""個人番号 / 法人番号 / 住民票コード: every example of the reference, the parsing rules, bad input,
and agreement with the slow reference (tests/reference/numbers_ref.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from renkei import numbers as n
from renkei.errors import InvalidArgumentError, InvalidNumberError
from tests.reference import numbers_ref as ref

VALID_INDIVIDUAL = ["621498320257", "983205673214", "123456789018", "111111111118", "400000000050", "379474484458"]
INVALID_INDIVIDUAL = ["621498320258", "983205673210", "123456789019"]
VALID_CORPORATE = ["5835678256246", "7000012050002", "4011001098993", "1180301018771", "3987654321098",
                   "7010705000725", "7123456789012"]
INVALID_CORPORATE = ["2835678256246"]


@pytest.mark.parametrize("s", VALID_INDIVIDUAL)
def test_valid_individual_examples(s: str) -> None:
    assert n.is_valid_individual_number(s)
    assert n.parse_individual_number(s) == int(s)
    assert n.individual_check_digit(s[:11]) == int(s[11])
    assert n.validate_individual_numbers(np.array([int(s)], dtype=np.uint64)).tolist() == [True]


@pytest.mark.parametrize("s", INVALID_INDIVIDUAL)
def test_invalid_individual_examples(s: str) -> None:
    assert not n.is_valid_individual_number(s)
    with pytest.raises(InvalidNumberError) as e:
        n.parse_individual_number(s)
    assert e.value.problem == "wrong_check_digit" and e.value.kind == "individual"
    assert s not in str(e.value)
    assert n.validate_individual_numbers(np.array([int(s)], dtype=np.uint64)).tolist() == [False]


@pytest.mark.parametrize("s", VALID_CORPORATE)
def test_valid_corporate_examples(s: str) -> None:
    assert n.is_valid_corporate_number(s)
    assert n.corporate_check_digit(s[1:]) == int(s[0])
    assert n.validate_corporate_numbers(np.array([int(s)], dtype=np.uint64)).tolist() == [True]


@pytest.mark.parametrize("s", INVALID_CORPORATE)
def test_invalid_corporate_examples(s: str) -> None:
    assert not n.is_valid_corporate_number(s)
    assert n.validate_corporate_numbers(np.array([int(s)], dtype=np.uint64)).tolist() == [False]


def test_worked_examples() -> None:
    assert n.individual_check_digit("12345678901") == 8  # Σ = 212, 212 mod 11 = 3
    assert n.individual_check_digit("40000000005") == 0
    assert n.corporate_check_digit("123456789012") == 7  # Σ = 74, 74 mod 9 = 2
    assert n.is_valid_resident_code("24727059608")
    assert n.resident_check_digit("2472705960") == 8


def test_written_forms() -> None:
    assert n.is_valid_individual_number("6214 9832 0257")
    assert n.is_valid_individual_number("6214-9832-0257")
    assert n.is_valid_corporate_number("5-8356-7825-6246")
    # Full-width digits and the ideographic space, as Japanese forms produce them: accepted.
    assert n.is_valid_individual_number("６２１４　９８３２　０２５７")
    assert n.is_valid_corporate_number("５８３５６７８２５６２４６")


@pytest.mark.parametrize(
    ("s", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("62149832025", "wrong_length"),
        ("6214983202570", "wrong_length"),
        ("62149832025a", "not_a_digit"),
        ("６２１４９８３２０２５x", "not_a_digit"),
        ("٦٢١٤٩٨٣٢٠٢٥٧", "not_a_digit"),  # Arabic-Indic digits are not accepted
        ("6214.9832.0257", "not_a_digit"),
        ("+621498320257", "not_a_digit"),
        ("9" * 10_000_000, "wrong_length"),
    ],
)
def test_malformed_strings_raise_clear_errors(s: str, problem: str) -> None:
    with pytest.raises(InvalidNumberError) as e:
        n.is_valid_individual_number(s)
    assert isinstance(e.value, ValueError)
    assert e.value.problem == problem
    assert len(str(e.value)) < 200


@pytest.mark.parametrize("bad", [None, 621498320257, b"621498320257", 6.2e11, ["621498320257"]])
def test_non_strings_raise_clear_errors(bad: object) -> None:
    with pytest.raises(InvalidArgumentError):
        n.is_valid_individual_number(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        n.corporate_check_digit(bad)  # type: ignore[arg-type]


def test_batch_bad_inputs() -> None:
    for bad in [
        np.array([1, 2], dtype=np.int64),
        np.array([1.0]),
        np.array(["621498320257"]),
        np.zeros((2, 2), dtype=np.uint64),
        [621498320257],
        None,
        "621498320257",
    ]:
        with pytest.raises(InvalidArgumentError) as e:
            n.validate_individual_numbers(bad)
        assert "uint64" in str(e.value)


def test_batch_non_contiguous_and_edge_values() -> None:
    base = np.array([621498320257, 0, 621498320258, 2**64 - 1, 10**12 + 257, 983205673214], dtype=np.uint64)
    strided = np.repeat(base, 2)[::2]
    assert not strided.flags.c_contiguous
    expected = [True, True, False, False, False, True]
    assert n.validate_individual_numbers(strided).tolist() == expected
    assert n.validate_individual_numbers(base[::-1]).tolist() == expected[::-1]
    assert n.validate_individual_numbers(np.array([], dtype=np.uint64)).tolist() == []
    ro = base.copy()
    ro.setflags(write=False)
    assert n.validate_individual_numbers(ro).tolist() == expected


@given(st.integers(min_value=0, max_value=10**11 - 1))
def test_individual_agrees_with_reference(body: int) -> None:
    s = f"{body:011d}"
    digit = n.individual_check_digit(s)
    assert digit == ref.individual_check_digit(s)
    wrong = (digit + 1) % 10
    assert n.is_valid_individual_number(s + str(digit))
    assert n.is_valid_individual_number(s + str(wrong)) == ref.is_valid_individual(s + str(wrong))


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_corporate_agrees_with_reference(base: int) -> None:
    s = f"{base:012d}"
    assert n.corporate_check_digit(s) == ref.corporate_check_digit(s)


@given(st.integers(min_value=0, max_value=10**10 - 1))
def test_resident_agrees_with_reference(body: int) -> None:
    s = f"{body:010d}"
    assert n.resident_check_digit(s) == ref.resident_check_digit(s)


@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=200))
def test_batches_agree_with_reference(values: list[int]) -> None:
    a = np.array(values, dtype=np.uint64)
    want_i = [v < 10**12 and ref.is_valid_individual(f"{v:012d}") for v in values]
    want_c = [10**12 <= v < 10**13 and ref.is_valid_corporate(f"{v:013d}") for v in values]
    want_r = [v < 10**11 and ref.is_valid_resident(f"{v:011d}") for v in values]
    assert n.validate_individual_numbers(a).tolist() == want_i
    assert n.validate_corporate_numbers(a).tolist() == want_c
    assert n.validate_resident_codes(a).tolist() == want_r


def test_random_batch_matches_reference() -> None:
    rng = np.random.default_rng(7)
    bodies = rng.integers(0, 10**11, size=20_000, dtype=np.uint64)
    checks = np.array([ref.individual_check_digit(f"{b:011d}") for b in bodies.tolist()], dtype=np.uint64)
    full = bodies * np.uint64(10) + checks
    assert n.validate_individual_numbers(full).all()
    off = bodies * np.uint64(10) + (checks + np.uint64(1)) % np.uint64(10)
    want = [ref.is_valid_individual(f"{v:012d}") for v in off.tolist()]
    assert n.validate_individual_numbers(off).tolist() == want
