"""Agency codes: batch translation and acquisition, beside same-run baselines.

    .venv/bin/python -m bench.bench_codes

A population of 1,000,000 persons held by two agencies (a city and a national agency). Codes are
presented in random person order, as a real batch would be. Baselines in the same run:

* OpenSSL AES-256-ECB (``cryptography``) over the same number of blocks — one block per code
  for acquisition (an encryption), two per code for translation (decrypt + encrypt): the
  physical floor of the construction;
* the pure-Python reference (tests/reference/codes_ref.py).

All single-threaded (the engine releases the GIL but runs each call on one core): rates are per
core. The last two rows compare translation over national-size sets with a 1M-person
population (bench/national.py does the same on the full national build). Acquisition is
measured twice: fresh holdings (journaled, fsynced once per batch) and the
issuing alone (persons already held: no journal record).
"""

from __future__ import annotations

import itertools
import secrets
import tempfile

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench.common import best_rate, machine, table
from renkei._core import codes as _codes
from tests.reference import codes_ref

POPULATION = 1_000_000
NATIONAL_IDS = 125_000_000


def coverage_engine(path: str, key: bytes, persons: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """Two agencies each holding a random 80 % of `persons` ids, and 1M of agency 1's codes
    (random persons it holds) ready to translate to agency 2."""
    eng = _codes.CodeEngine(key, path, 1, [1], 1 << 40, create=True)
    for lo in range(0, persons, 10_000_000):
        ids = np.arange(lo, min(persons, lo + 10_000_000), dtype=np.uint64)
        eng.acquire(1, ids[rng.random(len(ids)) < 0.8])
        eng.acquire(2, ids[rng.random(len(ids)) < 0.8])
    cand = rng.integers(0, persons, size=1_300_000, dtype=np.uint64)
    held = np.fromiter((eng.holds(1, int(p)) for p in cand), dtype=bool, count=len(cand))
    return eng, eng.acquire(1, cand[held][:1_000_000])


def main() -> None:
    rng = np.random.default_rng(3)
    key = secrets.token_bytes(32)
    with tempfile.TemporaryDirectory() as tmp:
        eng = _codes.CodeEngine(key, f"{tmp}/h", 1, [1], create=True)
        persons = rng.permutation(POPULATION).astype(np.uint64)
        city_codes = eng.acquire(1, persons)
        eng.acquire(2, persons)
        n = len(persons)

        translate = best_rate(lambda: eng.translate(1, city_codes, 2), n)
        _, status = eng.translate(1, city_codes, 2)
        assert not status.any()

        reissue = best_rate(lambda: eng.acquire(1, persons), n)
        fresh_ids = itertools.count(1000)
        fresh = best_rate(lambda: eng.acquire(next(fresh_ids), persons), n, repeat=3, min_time=0.0)

        blocks1 = rng.bytes(16 * n)
        blocks2 = rng.bytes(32 * n)

        # Into preallocated buffers, so the floor is the cipher, not the allocator.
        out1, out2 = bytearray(len(blocks1) + 15), bytearray(len(blocks2) + 15)

        def ecb(data: bytes, out: bytearray) -> None:
            enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
            enc.update_into(data, out)

        floor1 = best_rate(lambda: ecb(blocks1, out1), n)
        floor2 = best_rate(lambda: ecb(blocks2, out2), n)

        # Scale: the same 1M-code translation over national-size sets (125M ids, 80 % coverage,
        # 16 MiB per agency) and over a 1M-person population, measured alternately.
        big, big_codes = coverage_engine(f"{tmp}/big", key, NATIONAL_IDS, rng)
        small, small_codes = coverage_engine(f"{tmp}/small", key, POPULATION, rng)
        at_scale = at_1m = 0.0
        for _ in range(3):
            at_scale = max(at_scale, best_rate(lambda: big.translate(1, big_codes, 2), 1_000_000, repeat=3))
            at_1m = max(at_1m, best_rate(lambda: small.translate(1, small_codes, 2), 1_000_000, repeat=3))


        ref = codes_ref.ReferenceCore(key)
        sample = [int(p) for p in persons[:2_000]]
        ref_codes = ref.acquire(1, sample)
        ref.acquire(2, sample)
        py_translate = best_rate(lambda: ref.translate(1, ref_codes, 2), len(sample), repeat=3)
        py_acquire = best_rate(lambda: ref.acquire(1, sample), len(sample), repeat=3)

    rows = [
        ("translate A→B, 1M codes (Rust batch)", translate,
         f"{translate / floor2:.2f}× the OpenSSL floor; {translate / py_translate:,.0f}× the reference"),
        ("OpenSSL AES-256-ECB, 2 blocks per code", floor2, "floor of translation (decrypt + encrypt)"),
        ("translate (pure-Python reference)", py_translate, "baseline"),
        ("acquire, 1M fresh holdings, journaled + fsync", fresh,
         f"{fresh / floor1:.2f}× the OpenSSL floor; {fresh / py_acquire:,.0f}× the reference"),
        ("acquire, 1M already held (issue codes only)", reissue, f"{reissue / floor1:.2f}× the OpenSSL floor"),
        ("OpenSSL AES-256-ECB, 1 block per code", floor1, "floor of acquisition (encrypt)"),
        ("acquire (pure-Python reference)", py_acquire, "baseline"),
        ("translate 1M codes, sets over 125M ids (80 % coverage)", at_scale,
         f"{at_scale / at_1m:.2f}× the 1M-person population (target ≥ 0.80)"),
        ("translate 1M codes, 1M-person population (80 % coverage)", at_1m, "baseline for scale"),
    ]
    print(f"machine: {machine()}\n")
    print(f"population: {POPULATION:,} persons held by two agencies; codes in random person order\n")
    print(table(rows))


if __name__ == "__main__":
    main()
