"""マイナポータル's sessions on the core's store (issue #16): what a portal call's session lookup and
a login's durable write cost, on each driver, beside a same-run baseline on the same driver.

    .venv/bin/python -m bench.bench_disclosure_store [--sessions 2000] [--no-postgresql]

For the embedded driver (a temporary core data directory) and PostgreSQL (a fresh database on a
primary + synchronous standby made here by tests/pg_cluster.py, both on this machine):

* **session lookup** — ``LoginStore.session``: the one indexed SELECT every portal call now
  makes (before #16 a dict look-up in the front-end's memory), among ``--sessions`` live ones;
* **baseline read** — ``AgencyRegistry.card_key``: the one-row indexed SELECT every login
  already made, on the same database;
* **open a session** — ``LoginStore.open_session``: the login's transaction (bounded sweep, the
  used challenge, the counts, the session row), durable on return;
* **baseline write** — one-row INSERT in a transaction of the same database (the registry's
  card key registration, which is the same shape).

Prints the Markdown rows for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from renkei.linkage.disclosure import SESSION_TTL, LoginStore
from renkei.linkage.registry import AgencyRegistry
from renkei.service.core import init_data_dir


def per_call(fn: Callable[[int], object], n: int) -> float:
    """Microseconds per call of ``fn(i)`` for i in range(n) (the median of three runs)."""
    runs = []
    for r in range(3):
        start = time.perf_counter()
        for i in range(n):
            fn(r * n + i)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return sorted(runs)[1]


def measure(root: Path, store: str | None, sessions: int) -> list[tuple[str, float]]:
    d = init_data_dir(root, store=store)
    registry, logins = AgencyRegistry(d), LoginStore(d)
    try:
        now = datetime.now(UTC)
        tokens = [secrets.token_urlsafe(32) for _ in range(sessions)]
        for i, t in enumerate(tokens):
            logins.open_session(secrets.token_bytes(60), now + SESSION_TTL, t, b"p" * 32, i, now + SESSION_TTL, now)
        keys = [secrets.token_bytes(32) for _ in range(sessions)]
        for i, k in enumerate(keys):
            registry.register_card_key(k, b"k" * 32, i)
        n = min(sessions, 1000)
        lookup = per_call(lambda i: logins.session(tokens[i % sessions], now), n)
        read = per_call(lambda i: registry.card_key(keys[i % sessions]), n)
        writes = min(n, 200)
        opened = per_call(lambda i: logins.open_session(secrets.token_bytes(60), now + SESSION_TTL,
                                                        secrets.token_urlsafe(32), b"p" * 32, i, now + SESSION_TTL,
                                                        now), writes)
        write = per_call(lambda i: registry.register_card_key(secrets.token_bytes(32), b"k" * 32, i), writes)
        return [("session lookup", lookup), ("baseline read: card key", read), ("open a session (login)", opened),
                ("baseline write: card key", write)]
    finally:
        logins.close()
        registry.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=2000)
    ap.add_argument("--no-postgresql", action="store_true")
    args = ap.parse_args()
    results: dict[str, list[tuple[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["embedded"] = measure(Path(tmp) / "embedded", None, args.sessions)
        if not args.no_postgresql:
            from tests.pg_cluster import PgCluster

            cluster = PgCluster.start()
            try:
                url = cluster.create_database("bench_disclosure")
                results["PostgreSQL (sync standby)"] = measure(Path(tmp) / "pg", url, args.sessions)
            finally:
                cluster.stop()
    print(f"\n`python -m bench.bench_disclosure_store --sessions {args.sessions}` — {machine()}\n")
    print("| driver | what | µs per call | / baseline |")
    print("| --- | --- | ---: | ---: |")
    for driver, rows in results.items():
        base = {"session lookup": rows[1][1], "open a session (login)": rows[3][1]}
        for what, us in rows:
            ratio = f"{us / base[what]:.2f}×" if what in base else "1×"
            print(f"| {driver} | {what} | {us:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
