"""Shared helpers for the benchmarks: timing, machine description, markdown output.

Every figure is a rate measured in this run, printed beside the baselines measured in the same
run, because the machines are shared and noisy: ratios travel, absolute numbers less so.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable


def best_rate(fn: Callable[[], object], items: int, repeat: int = 5, min_time: float = 0.2) -> float:
    """Items per second of the fastest of `repeat` runs (each run repeated to last min_time)."""
    best = float("inf")
    for _ in range(repeat):
        loops = 0
        start = time.perf_counter()
        while True:
            fn()
            loops += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / loops)
    return items / best


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    system = f"{platform.system()} {platform.release()}"
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {system}"


def table(rows: list[tuple[str, float, str]], header: str = "rate") -> str:
    """Markdown table of (what, items/s, note)."""
    out = [f"| what | {header} | note |", "| --- | ---: | --- |"]
    for what, rate, note in rows:
        out.append(f"| {what} | {rate:,.0f}/s | {note} |")
    return "\n".join(out)
