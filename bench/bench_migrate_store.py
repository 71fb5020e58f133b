"""``renkei core migrate-store`` at a stated scale: an embedded core moved onto PostgreSQL.

    python -m bench.bench_migrate_store                                # 200,000 persons, 1 M holdings, 100 k records
    python -m bench.bench_migrate_store --persons 20000 --records 10000   # a quick run

1. Builds an embedded core (``renkei core init --demo``): ``--persons`` random link ids held by 5
   agencies each (``--persons`` × 5 holdings, through the engine's acquisition), ``--records``
   provision records in the file ledger (batches of 10,000, pseudonyms drawn from the persons),
   then stops it (the holdings checkpointed).
2. Starts a PostgreSQL 15 primary + synchronous standby for the run (tests/pg_cluster.py, both on
   this machine) and times ``renkei core migrate-store`` in a fresh process: every component, the
   holdings as one snapshot plus the load that checks them, the ledger's tiles, openings, history
   and person index plus its checks (the root at every stored checkpoint, every record and opening
   compared, the PostgreSQL ledger's own verify).
3. Same-run baseline (the floor): the embedded core's ``ledger/`` and ``holdings/`` files, byte for
   byte, sent with binary ``COPY`` into one table of another database on the same cluster — what
   moving these bytes into PostgreSQL costs at all, with no checks.

Prints the Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine
from tests.pg_cluster import PgCluster

ROOT = Path(__file__).resolve().parent.parent
AGENCIES = (1, 2, 3, 4, 5)

BUILD = """
import hashlib, json, sys, time
from datetime import UTC, datetime
import numpy as np
from renkei.ledger import Ledger, LedgerRecord
from renkei.linkage.codes import AgencyCodes
from renkei.linkage.registry import AgencyRegistry
from renkei.service.core import init_data_dir
persons, records = int(sys.argv[2]), int(sys.argv[3])
agencies = [int(a) for a in sys.argv[4].split(",")]
d = init_data_dir(sys.argv[1], demo=True)
rng = np.random.default_rng(16)
links = rng.integers(0, 256, size=16 * persons, dtype=np.uint8).tobytes()
registry = AgencyRegistry(d)
codes = AgencyCodes(d, registry)
for a in agencies:
    for lo in range(0, persons, 50_000):
        codes.engine.acquire_links(a, links[16 * lo:16 * min(persons, lo + 50_000)])
holdings = codes.engine.total()
codes.checkpoint()
codes.close()
registry.close()
ledger = Ledger(d)
table = hashlib.sha256(b"table").digest()
pool = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(min(persons, 50_000))]
at = datetime(2026, 1, 1, 9, tzinfo=UTC)
for lo in range(0, records, 10_000):
    batch = [LedgerRecord(requester=agencies[i % 5], provider=agencies[(i + 1) % 5], affair="B2.1",
                          items=("B2.1.2.1",), table_hash=table, pseudonym=pool[i % len(pool)],
                          permit_id=(i + 1).to_bytes(16, "big"), time=at) for i in range(lo, min(records, lo + 10_000))]
    ledger.append_batch(batch)
size = ledger.size
ledger.close()
print(json.dumps({"holdings": holdings, "records": size}))
"""

FLOOR = """
import json, sys, time
from pathlib import Path
import psycopg
root = Path(sys.argv[1])
files = [p for sub in ("ledger", "holdings") for p in sorted((root / sub).rglob("*")) if p.is_file()]
t = time.perf_counter()
total = 0
with psycopg.connect(sys.argv[2]) as conn:
    conn.execute("CREATE TABLE floor (path TEXT PRIMARY KEY, data BYTEA NOT NULL)")
    conn.execute("ALTER TABLE floor ALTER COLUMN data SET STORAGE EXTERNAL")
    with conn.cursor() as cur, cur.copy("COPY floor (path, data) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(["text", "bytea"])
        for p in files:
            data = p.read_bytes()
            total += len(data)
            cp.write_row((str(p.relative_to(root)), data))
    conn.commit()
print(json.dumps({"floor_s": time.perf_counter() - t, "bytes": total, "files": len(files)}))
"""


def step(code: str, *args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code, *args], check=False, capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": _pythonpath()})
    if out.returncode != 0:
        sys.exit(f"a step failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _pythonpath() -> str:
    return os.pathsep.join([str(ROOT / "pyservice"), str(ROOT), os.environ.get("PYTHONPATH", "")])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--persons", type=int, default=200_000)
    p.add_argument("--records", type=int, default=100_000)
    args = p.parse_args(argv)
    data = Path(tempfile.mkdtemp(prefix="renkei-migrate-bench-"))
    cluster: PgCluster | None = None
    try:
        print(f"machine: {machine()}")
        core = data / "core"
        print(f"building an embedded core: {args.persons:,} persons × {len(AGENCIES)} agencies, "
              f"{args.records:,} ledger records", flush=True)
        b = step(BUILD, str(core), str(args.persons), str(args.records), ",".join(map(str, AGENCIES)))
        ledger_bytes = sum(f.stat().st_size for f in (core / "ledger").rglob("*") if f.is_file())
        cluster = PgCluster.start()
        url = cluster.create_database("bench")
        print("migrating", flush=True)
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "renkei.cli", "--json", "core", "migrate-store", "--data-dir",
                               str(core), "--store", url], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": _pythonpath()}, check=False)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            sys.exit(f"migrate-store failed: {proc.stderr.strip()}")
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        with cluster.primary.connect("bench") as conn:
            row = conn.execute("SELECT pg_database_size('bench')").fetchone()
            assert row is not None
            db_bytes = int(row[0])
        floor_url = cluster.create_database("floor")
        f = step(FLOOR, str(core), floor_url)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(data, ignore_errors=True)
    if (report["persons"], report["holdings"], report["ledger_records"]) != (args.persons, b["holdings"], b["records"]):
        sys.exit(f"moved {report['persons']} / {report['holdings']} / {report['ledger_records']}, built "
                 f"{args.persons} / {b['holdings']} / {b['records']}")
    s = report["seconds"]
    total, floor_s = float(s["total"]), float(f["floor_s"])  # type: ignore[arg-type]
    components = sum(float(v) for k, v in s.items() if k not in ("holdings", "ledger", "ledger_check", "total"))
    print()
    print("| what | value |")
    print("| --- | ---: |")
    print(f"| persons (random 16-byte link ids) | {args.persons:,} |")
    print(f"| holdings | {int(b['holdings']):,} |")  # type: ignore[call-overload]
    print(f"| ledger records | {int(b['records']):,} |")  # type: ignore[call-overload]
    print(f"| embedded ledger/ (tiles, openings, index, history) | {ledger_bytes / 2**20:,.1f} MiB |")
    print(f"| components (registry, permissions, cosignatures) | {components:.2f} s |")
    print(f"| holdings: import as one snapshot + load and compare | {float(s['holdings']):.1f} s |")
    print(f"| ledger: tiles, openings, history, person index + every check | {float(s['ledger']):.1f} s |")
    print(f"| of which the checks (roots, every record and opening compared, verify) | "
          f"{float(s['ledger_check']):.1f} s |")
    print(f"| **migrate-store, total** (in the process) | **{total:.1f} s** |")
    print(f"| the command's wall time (interpreter start included) | {wall:.1f} s |")
    print(f"| PostgreSQL database size after | {db_bytes / 2**20:,.0f} MiB |")
    print(f"| floor: ledger/ + holdings/ files COPYed as bytes, no checks (same run) | {floor_s:.1f} s "
          f"({int(f['bytes']) / 2**20:,.0f} MiB, {f['files']:,} files) |")  # type: ignore[call-overload]
    print(f"| migrate ÷ floor | {total / floor_s:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
