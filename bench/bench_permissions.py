"""Permissions and permits, beside same-run baselines.

    .venv/bin/python -m bench.bench_permissions

* batch checks (numpy (n, 5) uint32, GIL released) on the real 259-row 別表第二 and on a
  synthetic procedure-level table of 100,000 rows (JT/TM-coded affairs and items);
* single-check cost on both tables: through the Python API, and inside the engine (a batch of
  uniformly random queries over the whole table, so every check is a cold, independent lookup);
* reload of the 100,000-row table while another thread keeps checking;
* the pure-Python reference (tests/reference/permissions_ref.py) on the same queries;
* permits signed and verified per second, beside an independent PASETO verify in Python
  (`cryptography` Ed25519, tests/reference/paseto_ref.py);
* cedar-policy (AWS Cedar, Rust) with the 259 rows as 259 `permit` policies, when its bench
  binary has been built (it is kept out of the workspace so tests never build Cedar):
  `cargo build --release --manifest-path bench/cedar/Cargo.toml --target-dir target/cedar-bench`.

All single-threaded except the reload run: the rates are per core.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import best_rate, machine, table
from renkei.permissions.engine import AgencyFacts, PermissionEngine, default_table_path
from renkei.permits import PermitIssuer, PermitVerifier
from tests.reference import paseto_ref, permissions_ref

AT = datetime(2020, 4, 1, tzinfo=UTC)
CEDAR_BIN = Path(__file__).resolve().parents[1] / "target" / "cedar-bench" / "release" / "renkei-cedar-bench"


def cedar(n: int = 200_000) -> dict[str, float] | None:
    """Run the Cedar baseline on the bundled table; None when its binary is not built."""
    if not CEDAR_BIN.exists():
        return None
    out = subprocess.run([str(CEDAR_BIN), str(default_table_path()), str(n)], check=True, capture_output=True,
                         text=True).stdout
    return {k: float(v) for k, v in (kv.split("=") for kv in out.split())}


def synthetic(n_rows: int, seed: int = 1) -> dict[str, Any]:
    """A procedure-level table: ~n/5 affairs (事務手続コード), 5,000 items (特定個人情報名コード),
    the 64 real agency types, 1 requester, 1–2 providers and 1–3 items per row."""
    rng = np.random.default_rng(seed)
    base = json.loads(default_table_path().read_text(encoding="utf-8"))
    types = [t["id"] for t in base["agency_types"]]
    n_affairs, n_items = max(1, n_rows // 5), 5000
    affairs = [{"id": f"JT{k:014d}", "code": f"JT{k:014d}", "name": f"procedure {k}"} for k in range(n_affairs)]
    items = [{"id": f"TM{k:014d}", "code": f"TM{k:014d}", "name": f"item {k}"} for k in range(n_items)]
    rq = rng.integers(0, len(types), n_rows)
    pv = rng.integers(0, len(types), (n_rows, 2))
    npv = rng.integers(1, 3, n_rows)
    it = rng.integers(0, n_items, (n_rows, 3))
    nit = rng.integers(1, 4, n_rows)
    af = rng.integers(0, n_affairs, n_rows)
    rows = [{"ref": f"S.{k}", "affair": affairs[af[k]]["id"], "requesters": [types[rq[k]]],
             "providers": [types[p] for p in pv[k, :npv[k]]], "items": [items[i]["id"] for i in it[k, :nit[k]]]}
            for k in range(n_rows)]
    return {"format": "renkei-permissions/1", "label": f"synthetic-{n_rows}",
            "effective_from": "2017-11-13T00:00:00+09:00", "agency_types": base["agency_types"],
            "affairs": affairs, "items": items, "rows": rows}


def queries(e: PermissionEngine, doc: dict[str, Any], n: int, seed: int) -> tuple[np.ndarray, list[tuple[Any, ...]]]:
    """n queries drawn uniformly from the table's rows (so almost all are allowed), packed, and
    the same as name tuples."""
    rng = np.random.default_rng(seed)
    rows = doc["rows"]
    pick = rng.integers(0, len(rows), n)
    named = [(rows[k]["requesters"][0], rows[k]["affair"], rows[k]["providers"][0], rows[k]["items"][0])
             for k in pick.tolist()]
    tid = {t["id"]: i for t, i in zip(doc["agency_types"], e.type_ids([t["id"] for t in doc["agency_types"]]),
                                      strict=True)}
    aid = dict(zip([a["id"] for a in doc["affairs"]], e.affair_ids([a["id"] for a in doc["affairs"]], AT),
                   strict=True))
    iid = dict(zip([i["id"] for i in doc["items"]], e.item_ids([i["id"] for i in doc["items"]], AT), strict=True))
    ids = [(tid[r], aid[a], tid[p], iid[i]) for r, a, p, i in named[:min(n, 200_000)]]
    small = np.array([(*x, 0) for x in ids], dtype=np.uint32)
    q = np.resize(small, (n, 5)) if n > len(small) else small
    return np.ascontiguousarray(q, dtype=np.uint32), named


def main() -> None:
    print(f"machine: {machine()}\n")
    real = json.loads(default_table_path().read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    big = synthetic(100_000)
    big_bytes = json.dumps(big).encode()
    gen_s = time.perf_counter() - t0

    e_real, e_big = PermissionEngine(), PermissionEngine()
    e_real.load(real)
    e_big.load(big_bytes)
    rows: list[tuple[str, float, str]] = []

    n = 4_000_000
    q_real, named_real = queries(e_real, real, n, 2)
    q_big, named_big = queries(e_big, big, n, 3)
    assert (e_real.check_batch(q_real[:100_000], AT).outcome == 0).all()
    b_real = best_rate(lambda: e_real.check_batch(q_real, AT), n)
    b_big = best_rate(lambda: e_big.check_batch(q_big, AT), n)
    # Denials take the explaining path: a random mix over types, affairs and items.
    rng = np.random.default_rng(4)
    q_mix = np.stack([
        rng.integers(0, 64, n), rng.integers(0, 120, n), rng.integers(0, 64, n), rng.integers(0, 82, n),
        np.zeros(n, dtype=np.int64)], axis=1).astype(np.uint32)
    q_mix[::2] = q_real[::2]  # half real rows, half random (nearly always denied)
    q_mix = np.ascontiguousarray(q_mix)
    mix_res = e_real.check_batch(q_mix, AT)
    deny_share = float((mix_res.outcome != 0).mean())
    b_mix = best_rate(lambda: e_real.check_batch(q_mix, AT), n, repeat=3)

    # Pure-Python reference on the same queries.
    r_real = permissions_ref.RefTable(real)
    sample = named_real[:2000]
    ref_rate = best_rate(lambda: [r_real.check([a], 0, b, [c], [d]) for a, b, c, d in sample], len(sample), repeat=3)
    r_big = permissions_ref.RefTable(big)
    sample_big = named_big[:20]
    ref_big = best_rate(lambda: [r_big.check([a], 0, b, [c], [d]) for a, b, c, d in sample_big], len(sample_big),
                        repeat=2)

    rows += [
        ("batch check, real 別表第二 (259 rows), allowed", b_real, f"{b_real / ref_rate:,.0f}× the reference"),
        ("batch check, synthetic 100,000 rows, allowed", b_big, f"{b_big / b_real:.2f}× the 259-row rate"),
        (f"batch check, real table, random mix ({deny_share:.0%} denied)", b_mix,
         "denials name the failed component and the nearest row"),
        ("pure-Python reference check, 259 rows", ref_rate, "baseline (scans the rows)"),
        ("pure-Python reference check, 100,000 rows", ref_big, "baseline"),
    ]

    # Single checks. Inside the engine: uniformly random queries over the whole table, one at a
    # time in a batch, so the 100k table's working set does not sit in cache.
    single_n = 1_000_000
    s_real = best_rate(lambda: e_real.check_batch(q_real[-single_n:], AT), single_n, repeat=3)
    q_big_random, _ = queries(e_big, big, single_n, 9)
    s_big = best_rate(lambda: e_big.check_batch(q_big_random, AT), single_n, repeat=3)
    a, b, c, d = named_real[0]
    api_real = best_rate(lambda: e_real.check(AgencyFacts(a), b, AgencyFacts(c), [d], AT), 1, repeat=3)
    a2, b2, c2, d2 = named_big[0]
    api_big = best_rate(lambda: e_big.check(AgencyFacts(a2), b2, AgencyFacts(c2), [d2], AT), 1, repeat=3)
    rows += [
        ("engine check, 259 rows (ns each = 1e9/rate)", s_real, f"{1e9 / s_real:.0f} ns per check"),
        ("engine check, 100,000 rows, random over all rows", s_big,
         f"{1e9 / s_big:.0f} ns per check; cost {s_real / s_big:.2f}× the 259-row cost"),
        ("Python API check(), 259 rows", api_real, f"{1e6 / api_real:.1f} µs per call"),
        ("Python API check(), 100,000 rows", api_big,
         f"{1e6 / api_big:.1f} µs per call; cost {api_real / api_big:.2f}× the 259-row cost"),
    ]

    # Reload of the 100k table while a thread keeps checking (batches release the GIL).
    stop = threading.Event()
    done = [0]
    bad = [0]
    q_small = q_big[:10_000]

    def checker() -> None:
        while not stop.is_set():
            res = e_big.check_batch(q_small, AT)
            bad[0] += int((res.outcome != 0).sum())
            done[0] += len(q_small)

    th = threading.Thread(target=checker)
    th.start()
    time.sleep(0.05)
    reloads = []
    for _ in range(3):
        before = done[0]
        t = time.perf_counter()
        e_big.load(big_bytes)
        reloads.append((time.perf_counter() - t, done[0] - before))
    stop.set()
    th.join()
    reload_s, during = min(reloads)
    rows.append(("reload 100,000-row table (parse, compile, swap) while checking", 1 / reload_s,
                 f"{reload_s * 1000:.0f} ms per reload; {during:,} checks answered meanwhile, "
                 f"{bad[0]} wrong"))

    # Permits.
    issuer = PermitIssuer(bytes(range(32)))
    vhash = e_real.versions()[0].hash
    now = int(time.time())
    kw: dict[str, Any] = dict(requester="6000012070001", provider="8000020131016", person=bytes(16),
                              affair="JT01010000000101", items=["TM01010000000101"], table_version=vhash,
                              ledger_seq=123_456_789_012, now=now)
    token = issuer.issue(**kw).token
    sign_rate = best_rate(lambda: issuer.issue(**kw), 1, repeat=3)
    verifier = PermitVerifier(issuer.public_key, replay_cache=False)
    verify_rate = best_rate(lambda: verifier.verify(token, now), 1, repeat=3)
    ref_verify = best_rate(lambda: paseto_ref.verify(token, issuer.public_key, now), 1, repeat=3)
    persons = bytes(16 * 10_000)
    batch_rate = best_rate(lambda: issuer.issue_batch(requester="6000012070001", provider="8000020131016",
                                                      persons=persons, affair="B2.1", items=["B2.1.2.1"],
                                                      table_version=vhash, ledger_seq=1, now=now), 10_000, repeat=3)
    rows += [
        (f"permit signed (PASETO v4.public, {len(token)} bytes)", sign_rate, "Ed25519 + JSON claims"),
        ("permit verified (engine)", verify_rate, f"{verify_rate / ref_verify:.2f}× the Python verify"),
        ("permit verified (independent Python, cryptography)", ref_verify, "baseline"),
        ("batch permit, 10,000 items, one signature (items/s)", batch_rate, "Merkle tree + 1 signature"),
    ]

    c = cedar()
    if c is None:
        print(f"(cedar-policy baseline skipped: {CEDAR_BIN} not built)\n")
    else:
        assert c["allowed"] == c["checks"], "Cedar must allow the same real-row queries"
        rows.append((f"cedar-policy is_authorized, 259 rows as {c['policies']:.0f} policies", c["rate"],
                     f"engine check is {s_real / c['rate']:,.0f}× faster; Python API check() "
                     f"{api_real / c['rate']:.1f}×; policy parse {c['parse_ms']:.0f} ms"))

    print(f"synthetic table generated in {gen_s:.1f} s ({len(big_bytes) / 1e6:.1f} MB JSON, "
          f"{e_big.versions()[0].keys:,} keys); real table {e_real.versions()[0].keys} keys\n")
    print(table(rows))


if __name__ == "__main__":
    main()
