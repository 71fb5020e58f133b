"""The holdings index without a holdings directory (core_rs/src/holdings/index.rs): fed by a
store driver with link ids and events, encoded into snapshot ranges and loaded back — checked
against the pure-Python reference of the range encoding (tests/reference/holdings_range_ref.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei._core import codes as _codes
from renkei.errors import InvalidArgumentError, StorageError
from tests.reference import holdings_range_ref as ref

KEY = bytes(range(32))


def engine() -> _codes.CodeEngine:
    return _codes.CodeEngine.in_memory(KEY, 1, [1])


def u32(persons: list[int] | set[int]) -> bytes:
    return np.array(sorted(persons), dtype="<u4").tobytes()


def persons_of(data: bytes) -> list[int]:
    return np.frombuffer(data, dtype="<u4").tolist()


def reload(src: _codes.CodeEngine) -> _codes.CodeEngine:
    dst = engine()
    dst.index_reserve(src.person_count())
    for hi in range(src.index_range_count()):
        assert dst.index_load_range(src.index_encode_range(hi)) == hi
    dst.index_finish_load()
    return dst


@st.composite
def states(draw: st.DrawFn) -> tuple[list[bytes], dict[int, set[int]]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    n = draw(st.sampled_from([0, 1, 5_000, 65_536, 70_000, 140_000]))
    links = [rng.randbytes(16) for _ in range(n)]
    sets: dict[int, set[int]] = {}
    for agency in draw(st.lists(st.integers(1, 2**32 - 1), max_size=5, unique=True)):
        if n == 0:
            break
        kind = draw(st.sampled_from(["sparse", "dense", "cluster"]))
        if kind == "sparse":
            sets[agency] = {rng.randrange(n) for _ in range(draw(st.integers(1, 300)))}
        elif kind == "dense":
            sets[agency] = {p for p in range(n) if rng.random() < 0.7}
        else:
            lo = rng.randrange(n)
            sets[agency] = set(range(lo, min(n, lo + draw(st.integers(1, 9_000)))))
    return links, {a: s for a, s in sets.items() if s}


@settings(max_examples=25, deadline=None)
@given(states())
def test_ranges_match_the_reference_and_load_back(state: tuple[list[bytes], dict[int, set[int]]]) -> None:
    links, sets = state
    e = engine()
    e.index_assign(0, b"".join(links))
    for agency, persons in sets.items():
        assert e.index_apply("acquire", agency, u32(persons)) == len(persons)
    assert e.index_range_count() == ref.ranges(links, sets)
    for hi in range(e.index_range_count()):
        data = e.index_encode_range(hi)
        assert data == ref.encode(hi, links, sets)
        got_hi, got_links, got_sets = ref.decode(data)
        assert got_hi == hi and got_links == links[hi * ref.RANGE:(hi + 1) * ref.RANGE]
        lo, top = hi * ref.RANGE, (hi + 1) * ref.RANGE
        assert got_sets == {a: sorted(p for p in s if lo <= p < top) for a, s in sets.items()
                            if any(lo <= p < top for p in s)}
    back = reload(e)
    assert back.person_count() == len(links)
    assert {a: n for a, n in zip(*(x.tolist() for x in back.counts()), strict=True)} == {
        a: len(s) for a, s in sets.items()}
    for agency, persons in sets.items():
        sample = random.Random(agency).sample(sorted(persons), min(50, len(persons)))
        assert all(back.holds(agency, p) for p in sample)
    if links:
        probe = b"".join(links[:: max(1, len(links) // 97)])
        assert (back.persons_of_links(probe, False) == e.persons_of_links(probe, False)).all()


def test_releases_then_ranges_decode_to_the_held_persons() -> None:
    rng = random.Random(5)
    links = [rng.randbytes(16) for _ in range(80_000)]
    e = engine()
    e.index_assign(0, b"".join(links))
    dense = set(range(0, 80_000, 2))
    e.index_apply("acquire", 3, u32(dense))
    gone = {p for p in dense if p % 7 == 0 or p < 65_000}  # the first bitmap chunk shrinks
    assert e.index_apply("release", 3, u32(gone)) == len(gone)
    held = dense - gone
    decoded: set[int] = set()
    for hi in range(e.index_range_count()):
        _, _, sets = ref.decode(e.index_encode_range(hi))
        decoded |= set(sets.get(3, []))
    assert decoded == held
    assert reload(e).count(3) == len(held)


def test_the_driver_plans_numbers_and_events_before_they_are_applied() -> None:
    e = engine()
    links = [bytes([i]) * 16 for i in range(1, 6)]
    persons, new = e.index_resolve_links(b"".join([links[0], links[1], links[0]]))
    assert persons_of(persons) == [0, 1, 0] and new == links[0] + links[1]
    assert e.person_count() == 0, "resolving assigns nothing"
    with pytest.raises(InvalidArgumentError, match="not assigned"):
        e.index_apply("acquire", 7, u32({0}))
    e.index_assign(0, new)
    with pytest.raises(InvalidArgumentError, match="assigns person indices from 0"):
        e.index_assign(0, links[2])
    assert persons_of(e.index_effective("acquire", 7, u32({0, 1}))) == [0, 1]
    e.index_apply("acquire", 7, u32({0}))
    assert persons_of(e.index_effective("acquire", 7, u32({0, 1}))) == [1]
    assert persons_of(e.index_effective("release", 7, u32({0, 1}))) == [0]
    codes = e.codes_for(7, u32({0}))
    assert e.translate_one(7, codes, 7) == codes
    held, status = e.held_persons_of_codes(7, codes + bytes(16))
    assert persons_of(held) == [0] and status.tolist() == [0, 1]
    # The file store's changes are refused: the driver records holdings, not the engine.
    with pytest.raises(InvalidArgumentError, match="store driver"):
        e.acquire_links(7, links[3])
    with pytest.raises(InvalidArgumentError, match="packed 4 bytes"):
        e.index_apply("acquire", 7, b"\x00")
    with pytest.raises(InvalidArgumentError, match="'acquire' or 'release'"):
        e.index_apply("assign", 7, b"")


def test_a_damaged_range_is_refused() -> None:
    e = engine()
    e.index_assign(0, b"".join(bytes([i % 251 + 1, i // 251]) * 8 for i in range(1_000)))
    data = bytearray(e.index_encode_range(0))
    data[100] ^= 1
    with pytest.raises(StorageError, match="checksum mismatch"):
        engine().index_load_range(bytes(data))
