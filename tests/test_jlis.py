"""J-LIS number assignment: FF1 conversion, uniqueness across changes, resolution, key files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renkei import NumberAuthority
from renkei import numbers as n
from renkei._core import numbers as _n
from renkei.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    InvalidNumberError,
    KeyFileError,
    NotFoundError,
    NotInitializedError,
)
from tests.reference import numbers_ref as ref


def resident_codes(count: int, seed: int = 1) -> np.ndarray:
    """`count` distinct valid resident codes (random 10-digit bodies + check digit)."""
    rng = np.random.default_rng(seed)
    bodies = np.unique(rng.integers(0, 10**10, size=int(count * 1.01) + 10, dtype=np.uint64))
    rng.shuffle(bodies)
    bodies = bodies[:count]
    assert len(bodies) == count
    checks = np.array([_n.resident_check_digit(int(b)) for b in bodies.tolist()], dtype=np.uint64)
    return bodies * np.uint64(10) + checks


def test_nist_ff1_vectors_through_the_reference() -> None:
    # The reference FF1 itself is checked against NIST's published AES-256 samples, so that the
    # property test below compares the engine with something known to be right.
    key = bytes.fromhex("2B7E151628AED2A6ABF7158809CF4F3CEF4359D8D580AA4F7F036D6F04FC6A94")
    digits = list(range(10))
    assert "".join(map(str, ref.ff1_encrypt(key, b"", 10, digits))) == "6657667009"
    assert "".join(map(str, ref.ff1_encrypt(key, bytes.fromhex("39383736353433323130"), 10, digits))) == "1001623463"


@settings(max_examples=60)
@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=10**10 - 1), st.integers(0, 5))
def test_number_map_agrees_with_reference_ff1(key: bytes, body: int, generation: int) -> None:
    code = f"{body:010d}{ref.resident_check_digit(f'{body:010d}')}"
    m = _n.NumberMap(key)
    got = m.number_for(int(code), generation)
    assert f"{got:012d}" == ref.my_number_for(key, code, generation)
    assert m.resident_for(got, generation) == int(code)


def test_keys_created_0600_by_init_only_and_reused(tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError, match="renkei jlis init"):
        NumberAuthority(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()  # opening never creates
    with NumberAuthority.init(tmp_path) as a:
        first = a.assign("24727059608")
    for name in ("jlis-number", "jlis-link"):
        key = tmp_path / "keys" / f"{name}.key"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert len(key.read_bytes()) == 32
    assert stat.S_IMODE((tmp_path / "jlis.sqlite3").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    with NumberAuthority(tmp_path) as a:
        assert a.assign("24727059608") == first  # same key, same registry: idempotent
        assert a.number_of("24727059608") == first


def test_deleted_key_is_refused_naming_the_file_never_recreated(tmp_path: Path) -> None:
    # Tried: a deleted J-LIS key silently recreated gave a resident two CURRENT My Numbers.
    with NumberAuthority.init(tmp_path) as a:
        assert a.assign("24727059608")
    key = tmp_path / "keys" / "jlis-number.key"
    key.unlink()
    with pytest.raises(KeyFileError, match=r"jlis-number\.key is missing"):
        NumberAuthority(tmp_path)
    with pytest.raises(KeyFileError, match=r"jlis-number\.key is missing"):
        NumberAuthority.init(tmp_path)  # init does not paper over it either
    assert not key.exists()


def test_unsafe_or_truncated_key_is_refused(tmp_path: Path) -> None:
    NumberAuthority.init(tmp_path).close()
    key = tmp_path / "keys" / "jlis-number.key"
    os.chmod(key, 0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        NumberAuthority(tmp_path)
    os.chmod(key, 0o600)
    key.write_bytes(key.read_bytes()[:20])
    with pytest.raises(KeyFileError, match="20 bytes"):
        NumberAuthority(tmp_path)


def test_link_ids_never_reused_after_restoring_an_older_backup(tmp_path: Path) -> None:
    # Tried: restoring jlis.sqlite3 from a backup re-issued a later person's dense id to another
    # resident, who then got the first person's agency code and read their records.
    codes = resident_codes(4, seed=11)
    with NumberAuthority.init(tmp_path) as jlis:
        jlis.assign_batch(codes[:2])
    backup = (tmp_path / "jlis.sqlite3").read_bytes()
    with NumberAuthority(tmp_path) as jlis:
        late = jlis.assign(int(codes[2]))
        late_link = jlis.lookup(late).link_id
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"jlis.sqlite3{suffix}").unlink(missing_ok=True)
    (tmp_path / "jlis.sqlite3").write_bytes(backup)
    os.chmod(tmp_path / "jlis.sqlite3", 0o600)
    with NumberAuthority(tmp_path) as jlis:
        other = jlis.assign(int(codes[3]))  # a different resident registered after the restore
        assert jlis.lookup(other).link_id != late_link
        again = jlis.assign(int(codes[2]))  # the late resident comes back with the same link id
        assert again == late and jlis.lookup(again).link_id == late_link
        links, found = jlis.link_ids(np.array([int(other), int(again)], dtype=np.uint64))
        assert found.all() and links[:16] != links[16:]


def test_million_residents_get_million_distinct_valid_numbers(tmp_path: Path) -> None:
    codes = resident_codes(1_000_000)
    with NumberAuthority.init(tmp_path) as jlis:
        numbers = jlis.assign_batch(codes)
        assert numbers.dtype == np.uint64 and len(numbers) == len(codes)
        assert len(np.unique(numbers)) == len(codes)
        assert n.validate_individual_numbers(numbers).all()
        assert jlis.counts() == {"persons": 1_000_000, "current": 1_000_000, "former": 0}
        # Resolve round-trips (sampled: each resolve is a registry look-up).
        for i in range(0, 1_000_000, 50_000):
            assert jlis.resolve(int(numbers[i])) == f"{int(codes[i]):011d}"
        # Assigning again returns the same numbers and registers nobody new.
        again = jlis.assign_batch(codes[:1000])
        assert (again == numbers[:1000]).all()
        assert jlis.counts()["persons"] == 1_000_000
        links, found = jlis.link_ids(numbers[:1000])
        assert found.all() and len({links[i:i + 16] for i in range(0, len(links), 16)}) == 1000


def test_ten_thousand_changes_are_distinct_from_all_current_and_former(tmp_path: Path) -> None:
    codes = resident_codes(50_000, seed=2)
    with NumberAuthority.init(tmp_path) as jlis:
        original = jlis.assign_batch(codes)
        leaked = [int(v) for v in original[:10_000]]
        first = jlis.change_batch(leaked)
        # A second change for some of them: former numbers pile up and must never come back.
        second = jlis.change_batch(first[:2_000])
        ever = set(original.tolist()) | {int(v) for v in first} | {int(v) for v in second}
        assert len(ever) == 50_000 + 10_000 + 2_000
        assert jlis.counts() == {"persons": 50_000, "current": 50_000, "former": 12_000}
        for i in range(0, 10_000, 997):
            old = leaked[i]
            assert jlis.lookup(old).state == "former"
            assert jlis.resolve(old) == jlis.resolve(first[i]) == f"{int(codes[i]):011d}"
            assert jlis.lookup(first[i]).link_id == jlis.lookup(old).link_id
        for i in range(0, 2_000, 199):
            assert jlis.number_of(f"{int(codes[i]):011d}") == second[i]
        with pytest.raises(FailedPreconditionError):
            jlis.change(leaked[0])
        with pytest.raises(FailedPreconditionError):
            jlis.lookup_current(leaked[0])
        # Batch link ids: former numbers are not current.
        links, found = jlis.link_ids(np.array([leaked[0], int(second[0])], dtype=np.uint64))
        assert found.tolist() == [False, True] and links[:16] == bytes(16)


def test_collision_with_a_former_number_moves_to_next_generation(tmp_path: Path) -> None:
    # Force the rare case: a new resident whose generation-0 number equals someone's changed
    # number. Find such a pair by construction: take a changed number, decrypt it under
    # generation 0 to the resident code that would collide, if that code is valid.
    with NumberAuthority.init(tmp_path) as jlis:
        codes = resident_codes(3000, seed=3)
        numbers = jlis.assign_batch(codes)
        changed = jlis.change_batch([int(v) for v in numbers[:3000]])
        victim = None
        for c in changed:
            r = jlis._map.resident_for(int(c), 0)
            if r is not None and jlis.number_of(r) is None:
                victim = r
                break
        assert victim is not None, "no colliding resident code among 3000 (probability ~ 1e-40)"
        new = jlis.assign(victim)
        assert new not in set(changed) and int(new) not in set(numbers.tolist())
        assert jlis.lookup(new).generation == 1
        assert jlis.resolve(new) == f"{victim:011d}"
        # The batch path handles it the same way.
        with NumberAuthority.init(tmp_path / "b") as other:
            other_numbers = other.assign_batch(codes)
            other_changed = other.change_batch([int(v) for v in other_numbers])
            out = other.assign_batch(np.array([victim], dtype=np.uint64))
            assert int(out[0]) not in set(map(int, other_changed)) | set(other_numbers.tolist())


def test_bad_input(tmp_path: Path) -> None:
    with NumberAuthority.init(tmp_path) as jlis:
        with pytest.raises(InvalidNumberError) as e:
            jlis.assign("24727059609")
        assert e.value.kind == "resident_code" and "24727059609" not in str(e.value)
        for bad in [None, 3.5, b"24727059608", True]:
            with pytest.raises(InvalidArgumentError):
                jlis.assign(bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidNumberError) as e:
            jlis.assign_batch(np.array([24727059608, 24727059609], dtype=np.uint64))
        assert e.value.index == 1
        assert jlis.counts()["persons"] == 0  # nothing of a refused batch was kept
        with pytest.raises(InvalidArgumentError):
            jlis.assign_batch(np.array([24727059608], dtype=np.int64))
        with pytest.raises(NotFoundError):
            jlis.resolve("621498320257")
        with pytest.raises(InvalidNumberError):
            jlis.resolve("621498320258")
        with pytest.raises(InvalidNumberError) as e:
            jlis.link_ids(np.array([621498320257, 621498320258], dtype=np.uint64))
        assert e.value.index == 1
