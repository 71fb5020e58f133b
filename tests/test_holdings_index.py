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


def _patch(e: _codes.CodeEngine, hi: int, first: int, touched: set[tuple[int, int]],
           previous: list[bytes]) -> bytes:
    pairs = sorted(touched)
    return e.index_encode_patch(hi, first, np.array([a for a, _ in pairs], dtype="<u4").tobytes(),
                                np.array([p for _, p in pairs], dtype="<u4").tobytes(), previous)


@settings(max_examples=25, deadline=None)
@given(states(), st.data())
def test_patches_match_the_reference_fold_and_load_as_the_state(
        state: tuple[list[bytes], dict[int, set[int]]], data: st.DataObject) -> None:
    """A base per range, then rounds of scattered acquisitions, releases and new persons, each
    round's patch per range encoded by the engine (its bytes the reference's, sometimes folding
    the range's earlier patches in): bases + patches load, in the engine and in the reference,
    as exactly the state, and the loaded state re-encodes (compacts) to the same ranges."""
    links, sets = state
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    e = engine()
    e.index_assign(0, b"".join(links))
    for agency, persons in sets.items():
        e.index_apply("acquire", agency, u32(persons))
    rows: dict[int, list[bytes]] = {hi: [e.index_encode_range(hi)] for hi in range(e.index_range_count())}
    for _ in range(data.draw(st.integers(1, 4))):
        since = len(links)
        seen = set(links)  # link ids are distinct (the state's rng may repeat this one's draws)
        new = [x for x in dict.fromkeys(rng.randbytes(16) for _ in range(data.draw(st.sampled_from(
            [0, 3, 2_000, 70_000])))) if x not in seen]
        e.index_assign(since, b"".join(new))
        links += new
        touched: set[tuple[int, int]] = set()
        for _ in range(data.draw(st.integers(0, 6))):
            if not links:
                break
            agency = data.draw(st.sampled_from([*sorted(sets), 77]))
            persons = {rng.randrange(len(links)) for _ in range(data.draw(st.sampled_from([1, 50, 3_000])))}
            op = data.draw(st.sampled_from(["acquire", "release"]))
            e.index_apply(op, agency, u32(persons))
            touched |= {(agency, p) for p in persons}
            if op == "acquire":
                sets.setdefault(agency, set()).update(persons)
            else:
                sets.get(agency, set()).difference_update(persons)
        for hi in range(e.index_range_count()):
            if hi not in rows:  # a new range: its base
                rows[hi] = [e.index_encode_range(hi)]
                continue
            mine = {(a, p) for a, p in touched if p >> 16 == hi}
            if not mine and since >= (hi + 1) * ref.RANGE:
                continue  # nothing changed in this range
            fold = rows[hi][1:] if len(rows[hi]) > 1 and data.draw(st.booleans()) else []
            patch = _patch(e, hi, since, mine, fold)
            assert patch == ref.encode_patch(hi, since, links, sets, mine, fold)
            rows[hi] = [*rows[hi][:len(rows[hi]) - len(fold)], patch]
    flat = [row for hi in sorted(rows) for row in rows[hi]]
    want = {a: s for a, s in sets.items() if s}
    assert ref.load(flat) == (links, want)
    back = engine()
    for row in flat:
        (back.index_load_range if row[:4] == b"RKR1" else back.index_load_patch)(row)
    back.index_finish_load()
    assert back.person_count() == len(links)
    assert back.index_range_count() == e.index_range_count()
    compacted = [back.index_encode_range(hi) for hi in range(back.index_range_count())]
    assert ref.load(compacted) == (links, want)


def test_a_patch_that_does_not_fit_is_refused() -> None:
    e = engine()
    e.index_assign(0, b"".join(bytes([i % 251 + 1, i // 251]) * 8 for i in range(1_000)))
    e.index_apply("acquire", 4, u32({1, 2}))
    patch = _patch(e, 0, 500, {(4, 1)}, [])
    with pytest.raises(StorageError, match="assigns person indices from 500, but 0"):
        engine().index_load_patch(patch)
    with pytest.raises(StorageError, match="not a patch"):
        engine().index_load_patch(e.index_encode_range(0))
    with pytest.raises(InvalidArgumentError, match="outside range 1"):
        _patch(e, 1, 0, {(4, 1)}, [])
    with pytest.raises(InvalidArgumentError, match="one agency per person"):
        e.index_encode_patch(0, 0, u32({4}), u32({1, 2}), [])
    damaged = bytearray(patch)
    damaged[-6] ^= 1
    with pytest.raises(StorageError, match="checksum mismatch"):
        e.index_load_patch(bytes(damaged))
