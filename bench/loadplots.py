"""PNG plots of a load run (matplotlib, Agg backend): throughput and latency over time, the ramp."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

#: Series colours; red is kept for failures and the 50 ms bound.
PALETTE = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9"]


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # locust writes "N/A" before the first answer
        return math.nan


def _history(results: Path) -> dict[str, dict[str, list[float]]]:
    """Name → column → values over time, from locust's stats history (one row per second)."""
    path = results / "locust_stats_history.csv"
    series: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    if not path.exists():
        return {}
    rows = list(csv.DictReader(path.open()))
    if not rows:
        return {}
    t0 = float(rows[0]["Timestamp"])
    for r in rows:
        s = series[r["Name"]]
        s["t"].append(float(r["Timestamp"]) - t0)
        for column in ("User Count", "Requests/s", "Failures/s", "50%", "95%", "99%"):
            s[column].append(_num(r[column]))
    return series


def plot_locust(results: Path, title: str) -> list[Path]:
    series = _history(results)
    if "Aggregated" not in series:
        return []
    out: list[Path] = []
    agg = series["Aggregated"]

    fig, ax = plt.subplots(figsize=(10, 6))
    ax.plot(agg["t"], agg["Requests/s"], label="all RPCs", color="black", linewidth=2)
    names = sorted(n for n in series if n != "Aggregated")
    for i, name in enumerate(names):
        ax.plot(series[name]["t"], series[name]["Requests/s"], label=name, linewidth=1, color=PALETTE[i % 8])
    ax.plot(agg["t"], agg["Failures/s"], label="failures", color="red", linestyle=":")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("requests/s (locust, current)")
    ax.set_ylim(bottom=0)
    users = ax.twinx()
    users.plot(agg["t"], agg["User Count"], color="grey", linestyle="--", label="users")
    users.set_ylabel("users")
    users.set_ylim(bottom=0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)
    ax.set_title(f"Throughput under locust — {title}", fontsize=10)
    fig.tight_layout()
    path = results / "locust_throughput.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append(path)

    fig, ax = plt.subplots(figsize=(10, 6))
    for column, style in (("50%", "-"), ("95%", "--"), ("99%", ":")):
        ax.plot(agg["t"], agg[column], label=f"all RPCs p{column[:-1]}", color="black", linestyle=style)
    for i, name in enumerate(names):
        ax.plot(series[name]["t"], series[name]["99%"], label=f"{name} p99", linewidth=1, color=PALETTE[i % 8])
    ax.axhline(50, color="red", linewidth=1, linestyle="-.", label="50 ms bound")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("latency ms (locust, 10 s window)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)
    ax.set_title(f"Latency percentiles under locust — {title}", fontsize=10)
    fig.tight_layout()
    path = results / "locust_latency.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append(path)
    return out


def plot_ramp(results: Path, steps: list[dict[str, Any]], title: str) -> list[Path]:
    if not steps:
        return []
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        by[s["workload"]].append(s)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
    for n, (workload, ss) in enumerate(by.items()):
        c = [s["concurrency"] for s in ss]
        color = PALETTE[n % 8]  # one colour per workload in both panels
        top.plot(c, [s["items_per_s"] for s in ss], marker="o", color=color, label=workload)
        bottom.plot(c, [s["p99_ms"] for s in ss], marker="o", color=color, label=f"{workload} p99")
        bottom.plot(c, [s["p50_ms"] for s in ss], marker=".", color=color, linestyle=":", label=f"{workload} p50")
    top.set_yscale("log")
    top.set_ylabel("items/s (BatchInquire: inquiries)")
    top.legend(fontsize=8)
    top.set_title(f"grpc.aio driver: rate and latency against calls outstanding — {title}", fontsize=10)
    bottom.axhline(50, color="red", linewidth=1, linestyle="-.", label="50 ms bound")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency ms")
    bottom.set_xscale("log", base=2)
    bottom.set_xlabel("calls outstanding (concurrency)")
    bottom.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = results / "aio_ramp.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_all(results: Path, summary: dict[str, Any]) -> list[Path]:
    title = f"{summary['machine'].split(',')[0]}, {summary['machine'].split(',')[1].strip()}"
    return plot_locust(results, title) + plot_ramp(results, summary.get("aio", []), title)
