"""Numbers: batch check-digit validation and J-LIS assignment, beside same-run baselines.

    .venv/bin/python -m bench.bench_numbers

Baselines: the pure-Python reference (tests/reference/numbers_ref.py), and for assignment the
physical floor of FF1 — ten AES-256 blocks per number — through OpenSSL (`cryptography`).
All single-threaded: the figures are per core.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from bench.common import best_rate, machine, table
from renkei import NumberAuthority
from renkei import numbers as n
from renkei._core import numbers as _n
from tests.reference import numbers_ref as ref


def main() -> None:
    rng = np.random.default_rng(1)
    size = 10_000_000
    bodies = rng.integers(0, 10**11, size=size, dtype=np.uint64)
    individual = bodies * np.uint64(10) + rng.integers(0, 10, size=size, dtype=np.uint64)
    corporate = rng.integers(10**12, 10**13, size=size, dtype=np.uint64)
    sample = [f"{v:012d}" for v in individual[:20_000].tolist()]
    csample = [f"{v:013d}" for v in corporate[:20_000].tolist()]

    rust_ind = best_rate(lambda: n.validate_individual_numbers(individual), size)
    rust_corp = best_rate(lambda: n.validate_corporate_numbers(corporate), size)
    py_ind = best_rate(lambda: [ref.is_valid_individual(s) for s in sample], len(sample), repeat=3)
    py_corp = best_rate(lambda: [ref.is_valid_corporate(s) for s in csample], len(csample), repeat=3)

    key = bytes(range(32))
    m = _n.NumberMap(key)
    residents = rng.integers(0, 10**10, size=1_000_000, dtype=np.uint64)
    # Valid resident codes for the whole batch, computed with the engine's own batch check.
    codes = residents * np.uint64(10)
    for d in range(10):
        cand = residents * np.uint64(10) + np.uint64(d)
        ok = n.validate_resident_codes(cand)
        codes[ok] = cand[ok]
    assign_core = best_rate(lambda: m.numbers_for_batch(codes, 0), len(codes), repeat=3)
    ref_codes = [f"{v:011d}" for v in codes[:300].tolist()]
    py_assign = best_rate(lambda: [ref.my_number_for(key, c, 0) for c in ref_codes], len(ref_codes), repeat=3)
    blocks = np.frombuffer(rng.bytes(16 * 10 * len(codes)), dtype=np.uint8).tobytes()

    def openssl_floor() -> None:
        enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        enc.update(blocks)

    floor = best_rate(openssl_floor, len(codes), repeat=3)

    registry = 0.0
    for _ in range(3):  # each run into a fresh registry; the best of three
        with tempfile.TemporaryDirectory() as tmp, NumberAuthority(tmp) as jlis:
            start = time.perf_counter()
            jlis.assign_batch(codes)
            registry = max(registry, len(codes) / (time.perf_counter() - start))

    rows = [
        ("validate 個人番号 (Rust batch, numpy uint64)", rust_ind, f"{rust_ind / py_ind:,.0f}× the reference"),
        ("validate 個人番号 (pure-Python reference)", py_ind, "baseline"),
        ("validate 法人番号 (Rust batch, numpy uint64)", rust_corp, f"{rust_corp / py_corp:,.0f}× the reference"),
        ("validate 法人番号 (pure-Python reference)", py_corp, "baseline"),
        ("J-LIS FF1 assignment (Rust batch)", assign_core,
         f"{assign_core / py_assign:,.0f}× the reference; {assign_core / floor:.2f}× the OpenSSL floor"),
        ("J-LIS FF1 assignment (pure-Python reference)", py_assign, "baseline"),
        ("OpenSSL AES-256-ECB, 10 blocks per number", floor, "physical floor of FF1 (10 rounds)"),
        ("NumberAuthority.assign_batch, 1M new residents, durable", registry,
         "FF1 + SQLite registry, one fsynced commit (best of 3)"),
    ]
    print(f"machine: {machine()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
