"""Core micro-benchmarks, all domains in one run: each figure a ratio to a same-run baseline.

    .venv/bin/python -m bench.micro [--only numbers,codes,permissions,ledger] [--build-peers]

Runs the per-domain benches in-process-free subprocesses, one after another (never two at once
on this shared machine), and prints

* each bench's own Markdown table, with its baselines: the pure-Python reference
  (``tests/reference/``), OpenSSL through ``cryptography`` / hashlib for the physical floor,
  and the peers that are built here: cedar-policy for permission checks (``bench/cedar/``) and
  ct-merkle for the ledger's RFC 6962 tree (``bench/ctmerkle/``); ``--build-peers`` builds
  them first (Cedar takes about 3.5 minutes, ct-merkle seconds);
* a headline table gathering every row that states a ratio (a "×").

The same text goes to ``bench/results/micro.md``. Exit status 1 if a bench failed.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from bench.common import machine

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

#: Domain → (module, arguments, what it measures). Arguments bound the run to tens of seconds.
BENCHES: dict[str, tuple[str, list[str], str]] = {
    "numbers": ("bench.bench_numbers", [], "個人番号/法人番号 validation, J-LIS FF1 assignment"),
    "codes": ("bench.bench_codes", [], "agency codes: translation and acquisition"),
    "permissions": ("bench.bench_permissions", [], "別表第二 permission checks and PASETO permits"),
    "ledger": ("bench.bench_ledger", ["--batches", "20", "--repeat", "3"], "durable ledger appends and proofs"),
    "ledger-peer": ("bench.bench_peers", [], "the ledger beside ct-merkle (RFC 6962, Rust), same records"),
}
#: Peer bench crates, outside the workspace: (manifest, target directory).
PEERS = [
    (REPO / "bench" / "cedar" / "Cargo.toml", REPO / "target" / "cedar-bench"),
    (REPO / "bench" / "ctmerkle" / "Cargo.toml", REPO / "target" / "ctmerkle-bench"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {', '.join(BENCHES)}")
    ap.add_argument("--build-peers", action="store_true", help="build the peer bench binaries first")
    ap.add_argument("--results", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.only = [d.strip() for d in args.only.split(",") if d.strip()]
    unknown = [d for d in args.only if d not in BENCHES]
    if unknown or not args.only:
        ap.error(f"unknown domain(s) {unknown}; choose from {', '.join(BENCHES)}")
    return args


_ROW = re.compile(r"^\|(?P<cells>.+)\|\s*$")


def headline_rows(domain: str, text: str) -> list[tuple[str, str, str, str]]:
    """(domain, what, figure, ratio note) for every table row of ``text`` that states a ratio."""
    rows = []
    for line in text.splitlines():
        m = _ROW.match(line.strip())
        if not m:
            continue
        cells = [c.strip() for c in m.group("cells").split("|")]
        if len(cells) < 2 or set(cells[0]) <= set("-: ") or "×" not in line:
            continue
        ratio = next((c for c in reversed(cells) if "×" in c), "")
        figure = cells[1] if len(cells) > 2 else ""
        rows.append((domain, cells[0], figure, ratio))
    return rows


def run_bench(module: str, extra: list[str]) -> tuple[int, str, float]:
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *extra], cwd=REPO, capture_output=True, text=True, check=False
    )
    out = proc.stdout + (f"\n[stderr]\n{proc.stderr}" if proc.returncode else "")
    return proc.returncode, out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.build_peers:
        for manifest, target in PEERS:
            print(f"building the peer bench {manifest.parent.name} (separate crate, outside the workspace)", flush=True)
            subprocess.run(
                ["cargo", "build", "--release", "--manifest-path", str(manifest), "--target-dir", str(target)],
                check=True,
            )
    parts = [f"# Core micro-benchmarks\n\nmachine: {machine()}\n"]
    headlines: list[tuple[str, str, str, str]] = []
    failed = []
    for domain in args.only:
        module, extra, what = BENCHES[domain]
        print(f"[{domain}] running python -m {module} {' '.join(extra)}", flush=True)
        code, out, seconds = run_bench(module, extra)
        command = " ".join(["python -m", module, *extra])
        section = f"## {domain}: {what}\n\nCommand: `{command}` ({seconds:.0f} s, exit {code})\n\n{out.strip()}\n"
        print(section, flush=True)
        parts.append(section)
        if code:
            failed.append(domain)
        else:
            headlines += headline_rows(domain, out)
    summary = ["## Headline ratios (every row above that states one)", "",
               "| domain | what | figure | against the same-run baseline |", "| --- | --- | ---: | --- |"]
    summary += [f"| {d} | {w} | {f} | {r} |" for d, w, f, r in headlines]
    text = "\n".join(parts) + "\n" + "\n".join(summary) + "\n"
    if failed:
        text += f"\nFAILED: {', '.join(failed)}\n"
    print("\n".join(summary))
    (args.results / "micro.md").write_text(text)
    print(f"\nwritten {args.results / 'micro.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
