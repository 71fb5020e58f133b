"""PNG plots of a load run (matplotlib, Agg backend), one question per panel, linear value axes.

* ``aio_ramp.png`` — the grpc.aio ramp: one row per workload; left, throughput against calls
  outstanding (calls/s, or inquiries/s for BatchInquire: never both on one axis); right, p50 and
  p99 latency against calls outstanding with the p99 bound and the chosen peak (the step with
  the most throughput whose p99 stays under the bound, as ``bench.aiodriver.peak_under``) marked.
  Concurrency levels are powers of two, so that axis is logarithmic with the measured levels as
  plain integer ticks; rates and latencies are on linear axes from zero.
* ``locust_throughput.png`` — requests/s per RPC and in total over time, failures; below it the
  number of users (integer axis).
* ``locust_latency.png`` — p50/p95/p99 of all RPCs and p99 per RPC over time, with the bound.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

#: Series colours; red is kept for failures and the latency bound.
PALETTE = ["C0", "C1", "C2", "C4", "C5", "C6", "C8", "C9"]
BOUND_MS = 50.0
#: What one item of a workload is, for its throughput axis.
ITEM_UNITS = {"BatchInquire": "inquiries/s"}


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:  # locust writes "N/A" before the first answer
        return math.nan


def _thousands(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}"


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


def locust_throughput_figure(series: dict[str, dict[str, list[float]]], title: str) -> Figure:
    agg = series["Aggregated"]
    names = sorted(n for n in series if n != "Aggregated")
    fig, (rate, users) = plt.subplots(2, 1, figsize=(10, 7), sharex=True, height_ratios=[3, 1])
    rate.plot(agg["t"], agg["Requests/s"], label="all RPCs", color="black", linewidth=2)
    for i, name in enumerate(names):
        rate.plot(series[name]["t"], series[name]["Requests/s"], label=name, linewidth=1, color=PALETTE[i % 8])
    rate.plot(agg["t"], agg["Failures/s"], label="failures", color="red", linestyle=":")
    rate.set_ylabel("requests/s")
    rate.set_ylim(bottom=0)
    rate.yaxis.set_major_formatter(FuncFormatter(_thousands))
    rate.grid(alpha=0.3)
    rate.legend(loc="upper left", fontsize=8, ncol=2)
    rate.set_title(f"Requests per second under locust, by RPC — {title}", fontsize=10)
    users.step(agg["t"], agg["User Count"], where="post", color="grey", label="users (simulated clients)")
    users.set_ylabel("users")
    users.set_ylim(bottom=0, top=max([v for v in agg["User Count"] if not math.isnan(v)] or [1]) * 1.15)
    users.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    users.grid(alpha=0.3)
    users.legend(loc="lower right", fontsize=8)
    users.set_xlabel("seconds since start")
    fig.tight_layout()
    return fig


def locust_latency_figure(series: dict[str, dict[str, list[float]]], title: str, bound_ms: float) -> Figure:
    agg = series["Aggregated"]
    names = sorted(n for n in series if n != "Aggregated")
    fig, ax = plt.subplots(figsize=(10, 6))
    for column, style in (("50%", "-"), ("95%", "--"), ("99%", ":")):
        ax.plot(agg["t"], agg[column], label=f"all RPCs p{column[:-1]}", color="black", linestyle=style)
    for i, name in enumerate(names):
        ax.plot(series[name]["t"], series[name]["99%"], label=f"{name} p99", linewidth=1, color=PALETTE[i % 8])
    ax.axhline(bound_ms, color="red", linewidth=1, linestyle="-.", label=f"{bound_ms:g} ms bound")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("latency, ms (locust, 10 s window)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=4, fontsize=8)
    ax.set_title(f"Latency under locust — {title}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_locust(results: Path, title: str, bound_ms: float = BOUND_MS) -> list[Path]:
    series = _history(results)
    if "Aggregated" not in series:
        return []
    out = []
    for name, fig in (("locust_throughput.png", locust_throughput_figure(series, title)),
                      ("locust_latency.png", locust_latency_figure(series, title, bound_ms))):
        path = results / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        out.append(path)
    return out


def peak(steps: list[dict[str, Any]], bound_ms: float) -> dict[str, Any] | None:
    """The step with the most items/s whose p99 is under the bound and that had no failure
    (the rule of ``bench.aiodriver.peak_under``)."""
    ok = [s for s in steps if s["p99_ms"] < bound_ms and s["failures"] == 0]
    return max(ok, key=lambda s: s["items_per_s"]) if ok else None


def _concurrency_axis(ax: Any, levels: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(levels))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:.0f}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlim(levels[0] / 1.3, levels[-1] * 1.3)


def ramp_figure(steps: list[dict[str, Any]], title: str, bound_ms: float = BOUND_MS) -> Figure:
    by: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in steps:
        by[s["workload"]].append(s)
    levels = sorted({int(s["concurrency"]) for s in steps})
    fig, axes = plt.subplots(len(by), 2, figsize=(11, 2.9 * len(by) + 0.8), squeeze=False)
    for row, (workload, ss) in enumerate(by.items()):
        ss = sorted(ss, key=lambda s: s["concurrency"])
        c = [s["concurrency"] for s in ss]
        color = PALETTE[row % 8]
        best = peak(ss, bound_ms)
        rate, lat = axes[row]
        unit = ITEM_UNITS.get(workload, "calls/s")
        values = [s["items_per_s"] if workload in ITEM_UNITS else s["calls_per_s"] for s in ss]
        rate.plot(c, values, marker="o", color=color, label=unit)
        if best is not None:
            v = best["items_per_s"] if workload in ITEM_UNITS else best["calls_per_s"]
            rate.plot([best["concurrency"]], [v], marker="*", markersize=16, color="red", linestyle="none",
                      label=f"peak with p99 < {bound_ms:g} ms: {v:,.0f} at c={best['concurrency']}")
        rate.set_ylim(bottom=0, top=max(values) * 1.25)
        rate.yaxis.set_major_formatter(FuncFormatter(_thousands))
        rate.set_ylabel(unit)
        rate.set_title(f"{workload}: throughput", fontsize=9, loc="left")
        rate.legend(fontsize=7, loc="lower right")
        lat.plot(c, [s["p50_ms"] for s in ss], marker="s", markersize=4, color=color, linestyle="--", label="p50")
        lat.plot(c, [s["p99_ms"] for s in ss], marker="o", color=color, label="p99")
        lat.axhline(bound_ms, color="red", linewidth=1, linestyle="-.", label=f"{bound_ms:g} ms bound")
        if best is not None:
            lat.axvline(best["concurrency"], color="red", linewidth=0.8, linestyle=":",
                        label=f"chosen peak (c={best['concurrency']})")
            lat.plot([best["concurrency"]], [best["p99_ms"]], marker="*", markersize=16, color="red", linestyle="none")
        top = max(max(s["p99_ms"] for s in ss), bound_ms)
        lat.set_ylim(bottom=0, top=top * 1.15)
        lat.set_ylabel("latency, ms")
        lat.set_title(f"{workload}: latency", fontsize=9, loc="left")
        lat.legend(fontsize=7, loc="upper left", handlelength=3.5)
        for ax in (rate, lat):
            _concurrency_axis(ax, levels)
            ax.grid(alpha=0.3)
            ax.set_xlabel("calls outstanding (concurrency)" if row == len(by) - 1 else "")
    fig.suptitle(f"grpc.aio driver, each workload alone: throughput and latency against calls outstanding\n{title}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_ramp(results: Path, steps: list[dict[str, Any]], title: str, bound_ms: float = BOUND_MS) -> list[Path]:
    if not steps:
        return []
    fig = ramp_figure(steps, title, bound_ms)
    path = results / "aio_ramp.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def plot_all(results: Path, summary: dict[str, Any]) -> list[Path]:
    parts = [p.strip() for p in summary["machine"].split(",")]
    title = ", ".join(parts[:2])
    bound = float(summary.get("country", {}).get("p99_bound_ms", BOUND_MS))
    return plot_locust(results, title, bound) + plot_ramp(results, summary.get("aio", []), title, bound)
