"""National holdings on PostgreSQL: written as snapshot ranges, loaded into a fresh front-end.

    python -m bench.bench_pg_holdings                      # 125 M persons, 750 M holdings
    python -m bench.bench_pg_holdings --persons 10000000   # a scaled run
    python -m bench.bench_pg_holdings --scattered 10000 --rounds 20   # the scattered-change case (defaults)

1. Builds the national population with ``bench.national``'s generator through an embedded core
   (5,000 agencies; random 16-byte link ids; 6 holdings a person on average) and checkpoints it.
2. **Write** (a fresh process): opens that core's holdings and imports them into an empty
   ``holdings`` schema on a PostgreSQL primary with a synchronous standby made for the run
   (tests/pg_cluster.py, both on this machine): one complete snapshot, one row per 65,536
   persons, binary ``COPY`` (``renkei.store.holdings.import_engine``).
3. **Load** (a fresh process): ``PgHoldings`` into ``CodeEngine.in_memory`` — the newest
   snapshot through a binary server-side cursor, then the events after it — as a new front-end
   starts; the goal (issue #16) is ≤ 5 min. Then, in that front-end, 10,000 new persons and a
   snapshot (incremental: the tail ranges), ``--scattered`` (10,000) releases of persons
   scattered over the population and a snapshot (a patch per range they touched); the same
   again with patches forbidden — every touched range rewritten as a base, what the first
   layout did: the same-run baseline of the scattered case — and ``--rounds`` (20) more
   scattered rounds, each with its snapshot (patches pile up, are folded at ``MAX_PATCHES``).
4. **Load again** (twice, each a fresh process), now through every range's base and patches.
5. Same-run baselines, each in a fresh process: reading the same rows without decoding them
   (the database's floor), and reopening the embedded core's own ``snapshot.bin``.
6. Checks: the loaded front-end has the build's persons and holdings, and translates a sample
   of 200,000 codes to exactly the bytes the embedded core gives; the second load translates
   a sample exactly as the front-end that made the changes did.

Prints the Markdown table for docs/BENCHMARKS.md. Needs PostgreSQL's server binaries
(``pg_config --bindir``) and about 3× the snapshot's size of free disk under $TMPDIR.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine
from bench.national import build
from tests.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent

# Each step runs in a fresh interpreter: its time and peak RSS are its own.
WRITE = """
import json, sys, time
from renkei._core import codes as _codes
from renkei.datadir import DataDir
from renkei.store.holdings import import_engine
from bench.national import rss_mib
d = DataDir(sys.argv[1], "core")
engine = _codes.CodeEngine(d.secret_key("agency-code"), str(d.file("holdings")), 1, [1])
t = time.perf_counter()
import_engine(sys.argv[2], engine)
print(json.dumps({"write_s": time.perf_counter() - t, "ranges": engine.index_range_count(),
                  "peak_rss_mib": rss_mib()[1]}))
"""

SAMPLE = """
def sample(engine, a, b, persons):
    import hashlib
    import numpy as np
    rng = np.random.default_rng(7)
    cand = rng.integers(0, persons, size=200_000, dtype=np.uint64)
    held = np.array([engine.holds(a, int(p)) for p in cand], dtype=bool)
    codes = engine.codes_for(a, cand[held].astype("<u4").tobytes())
    out, status = engine.translate(a, codes, b)
    return hashlib.sha256(out + status.tobytes()).hexdigest()
"""

LOAD = SAMPLE + """
import json, sys, time
from renkei._core import codes as _codes
from renkei.datadir import DataDir
from renkei.store.holdings import PgHoldings
from bench.national import rss_mib
d = DataDir(sys.argv[1], "core")
t = time.perf_counter()
engine = _codes.CodeEngine.in_memory(d.secret_key("agency-code"), 1, [1])
store = PgHoldings(sys.argv[2], engine)
load_s = time.perf_counter() - t
rss, peak = rss_mib()
a = int(sys.argv[3])
out = {"load_s": load_s, "rss_mib": rss, "peak_rss_mib": peak, "persons": engine.person_count(),
       "holdings": engine.total(), "loaded": store.loaded_from,
       "sample": sample(engine, a, int(sys.argv[4]), engine.person_count())}
# Live changes, then the elected front-end's incremental snapshots: 10,000 new persons (the
# tail ranges), then releases of persons scattered over the whole population.
import secrets
import numpy as np
from renkei.store import holdings as pg_holdings
scattered, rounds = int(sys.argv[5]), int(sys.argv[6])
t = time.perf_counter()
store.acquire(a, secrets.token_bytes(16 * 10_000))
out["acquire_10k_new_s"] = time.perf_counter() - t
t = time.perf_counter()
store.snapshot()
out["snapshot_clustered_s"], out["snapshot_clustered_ranges"] = time.perf_counter() - t, store.last_snapshot_ranges
rng = np.random.default_rng(9)

def release_scattered():
    cand = rng.choice(engine.person_count(), scattered * 3 // 2, replace=False)
    held = np.array([p for p in cand.tolist() if engine.holds(a, p)][:scattered], dtype="<u4")
    t = time.perf_counter()
    store.release(a, engine.codes_for(a, held.tobytes()))
    return time.perf_counter() - t

def timed_snapshot():
    t = time.perf_counter()
    store.snapshot()
    return time.perf_counter() - t, dict(store.last_snapshot, ranges=store.last_snapshot_ranges)

out["release_scattered_s"] = release_scattered()
out["snapshot_scattered_s"], out["snapshot_scattered"] = timed_snapshot()
# The same-run baseline: the same kind of change, every touched range rewritten as a base.
fraction = pg_holdings.PATCH_FRACTION
pg_holdings.PATCH_FRACTION = 1 << 62
release_scattered()
out["snapshot_bases_s"], out["snapshot_bases"] = timed_snapshot()
pg_holdings.PATCH_FRACTION = fraction
out["rounds"] = []
for _ in range(rounds):
    release_scattered()
    out["rounds"].append(timed_snapshot())
out["holdings_after"] = engine.total()
out["sample_after"] = sample(engine, a, int(sys.argv[4]), engine.person_count())
print(json.dumps(out))
"""

RELOAD = SAMPLE + """
import json, sys, time
from renkei._core import codes as _codes
from renkei.datadir import DataDir
from renkei.store.holdings import PgHoldings
from bench.national import rss_mib
d = DataDir(sys.argv[1], "core")
t = time.perf_counter()
engine = _codes.CodeEngine.in_memory(d.secret_key("agency-code"), 1, [1])
store = PgHoldings(sys.argv[2], engine)
load_s = time.perf_counter() - t
print(json.dumps({"load_s": load_s, "peak_rss_mib": rss_mib()[1], "loaded": store.loaded_from,
                  "holdings": engine.total(),
                  "sample": sample(engine, int(sys.argv[3]), int(sys.argv[4]), engine.person_count())}))
"""

FILES = SAMPLE + """
import json, sys, time
from renkei._core import codes as _codes
from renkei.datadir import DataDir
from bench.national import rss_mib
d = DataDir(sys.argv[1], "core")
t = time.perf_counter()
engine = _codes.CodeEngine(d.secret_key("agency-code"), str(d.file("holdings")), 1, [1])
reload_s = time.perf_counter() - t
print(json.dumps({"reload_s": reload_s, "peak_rss_mib": rss_mib()[1],
                  "sample": sample(engine, int(sys.argv[3]), int(sys.argv[4]), engine.person_count())}))
"""

FLOOR = """
import json, sys, time
import psycopg
t = time.perf_counter()  # connect, read every row in full: what any loader pays
total = 0
with psycopg.connect(sys.argv[1]) as conn, conn.cursor(name="floor", binary=True) as cur:
    cur.itersize = 8
    cur.execute("SELECT range, data FROM holdings.holdings_chunk ORDER BY range")
    for _, data in cur:
        total += len(data)
print(json.dumps({"floor_s": time.perf_counter() - t, "bytes": total}))
"""


def step(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True,
                         cwd=ROOT)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, default=125_000_000)
    p.add_argument("--chunk", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=125)
    p.add_argument("--scattered", type=int, default=10_000, help="releases a scattered round makes")
    p.add_argument("--rounds", type=int, default=20, help="scattered rounds after the baseline, a snapshot each")
    args = p.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="renkei-pg-holdings-"))
    cluster: PgCluster | None = None
    try:
        print(f"machine: {machine()}")
        print(f"building {args.persons:,} persons in {data}", flush=True)
        b = build(data, args.persons, args.chunk, args.seed)
        a, c = str(int(b["national_a"])), str(int(b["national_b"]))
        cluster = PgCluster.start()
        url = cluster.create_database("bench")
        print("writing to PostgreSQL", flush=True)
        w = step(WRITE, str(data), url)
        with cluster.primary.connect("bench") as conn:
            row = conn.execute("SELECT pg_database_size('bench'), "
                               "pg_total_relation_size('holdings.holdings_chunk')").fetchone()
            assert row is not None
            db_bytes, chunk_bytes = int(row[0]), int(row[1])
        print("loading into a fresh front-end", flush=True)
        started = time.perf_counter()
        r = step(LOAD, str(data), url, a, c, str(args.scattered), str(args.rounds))
        process_s = time.perf_counter() - started
        print(f"loaded in {r['load_s']:.1f} s ({process_s:.1f} s with the interpreter, changes and snapshots)",
              flush=True)
        with cluster.primary.connect("bench") as conn:
            row = conn.execute("SELECT count(*) FILTER (WHERE kind = 1), count(*), "
                               "pg_total_relation_size('holdings.holdings_chunk') FROM holdings.holdings_chunk"
                               ).fetchone()
            assert row is not None
            patch_rows, all_rows, chunk_after = int(row[0]), int(row[1]), int(row[2])
        print("loading again, through bases and patches (twice)", flush=True)
        r2 = step(RELOAD, str(data), url, a, c)
        r3 = step(RELOAD, str(data), url, a, c)
        f = step(FLOOR, url)
        e = step(FILES, str(data), "", a, c)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
    if (r["persons"], r["holdings"]) != (int(b["person_count"]), int(b["holdings"])):
        sys.exit(f"loaded {r['persons']} persons / {r['holdings']} holdings, built {b['person_count']} / "
                 f"{b['holdings']}")
    if r["sample"] != e["sample"]:
        sys.exit("the front-end loaded from PostgreSQL translates differently from the embedded core")
    if (r2["holdings"], r2["sample"]) != (r["holdings_after"], r["sample_after"]) or r3["sample"] != r2["sample"]:
        sys.exit("the front-end loaded through patches differs from the front-end that made the changes")
    load_s, floor_s, reload_s = float(r["load_s"]), float(f["floor_s"]), float(e["reload_s"])  # type: ignore[arg-type]
    scat, base = r["snapshot_scattered"], r["snapshot_bases"]
    rounds = r["rounds"]
    assert isinstance(scat, dict) and isinstance(base, dict) and isinstance(rounds, list)
    round_s = sorted(float(x[0]) for x in rounds)
    folded = sum(int(x[1]["folded"]) for x in rounds)
    scat_s, base_s = float(r["snapshot_scattered_s"]), float(r["snapshot_bases_s"])  # type: ignore[arg-type]
    n = args.scattered
    print()
    print("| what | value | target |")
    print("| --- | ---: | --- |")
    print(f"| persons (random 16-byte link ids) | {int(b['person_count']):,} | 125,000,000 |")
    print(f"| holdings | {int(b['holdings']):,} | 750,000,000 |")
    print(f"| snapshot ranges (rows of 65,536 persons) | {w['ranges']:,} | |")
    print(f"| write: import as one snapshot (binary COPY, synchronous standby) | {w['write_s']:.1f} s | |")
    print(f"| peak RSS of the writer (embedded core open + import) | {w['peak_rss_mib']:,.0f} MiB | |")
    print(f"| PostgreSQL database size | {db_bytes / 2**20:,.0f} MiB | |")
    print(f"| of which holdings_chunk (with TOAST) | {chunk_bytes / 2**20:,.0f} MiB | |")
    print(f"| **load into a fresh front-end** | **{load_s:.1f} s** | ≤ 300 s |")
    print(f"| peak RSS of the loaded front-end | {r['peak_rss_mib']:,.0f} MiB | ≤ 6,144 MiB |")
    print(f"| floor: the same rows read, not decoded (same run) | {floor_s:.1f} s | |")
    print(f"| embedded core reopening its snapshot.bin (same run) | {reload_s:.1f} s | |")
    print(f"| then: acquire 10,000 new persons (one transaction) | {r['acquire_10k_new_s']:.3f} s | |")
    print(f"| incremental snapshot after it (ranges written: {r['snapshot_clustered_ranges']:,}) | "
          f"{r['snapshot_clustered_s']:.2f} s | |")
    print(f"| then: release {n:,} persons scattered over the population | {r['release_scattered_s']:.3f} s | |")
    print(f"| **incremental snapshot after it: a patch per range touched** ({scat['ranges']:,} ranges, "
          f"{scat['patches']:,} patches, {scat['bytes']:,} bytes) | **{scat_s:.2f} s** | |")
    print(f"| same-run baseline: {n:,} more scattered releases, every touched range rewritten as a base "
          f"(the first layout; {base['ranges']:,} ranges, {base['bytes'] / 2**20:,.0f} MiB) | {base_s:.1f} s | |")
    print(f"| patch snapshot ÷ base rewrite | {scat_s / base_s:.4f} | |")
    if round_s:
        print(f"| {len(round_s)} more scattered rounds, a snapshot each: median / max ({folded:,} ranges' "
              f"patches folded) | {round_s[len(round_s) // 2]:.2f} / {round_s[-1]:.2f} s | |")
    print(f"| rows after the rounds: patches / all; holdings_chunk size | {patch_rows:,} / {all_rows:,}; "
          f"{chunk_after / 2**20:,.0f} MiB | |")
    again = sorted((float(r2["load_s"]), float(r3["load_s"])))  # type: ignore[arg-type]
    patch_s = max(float(r2["loaded"]["patch_seconds"]), float(r3["loaded"]["patch_seconds"]))  # type: ignore[index]
    print(f"| **load again, through bases + {r2['loaded']['patch_rows']:,} patches** (two fresh processes) | "  # type: ignore[index]
          f"**{again[0]:.1f} / {again[1]:.1f} s** | ≤ 300 s |")
    print(f"| of which applying the patches (the larger) | {patch_s:.2f} s | |")
    print(f"| load through patches (the faster) ÷ the first load (bases only) | {again[0] / load_s:.2f} | |")
    print("| its sample of translations = the changing front-end's | yes | |")
    print(f"| load ÷ floor | {load_s / floor_s:.2f} | |")
    print(f"| load ÷ embedded reopen | {load_s / reload_s:.2f} | |")
    print("| 200,000 translations after the load = the embedded core's | yes | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
