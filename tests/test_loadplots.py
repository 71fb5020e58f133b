"""The load run's plots read clearly: one question per panel, linear rate and latency axes, the
measured concurrency levels as integer ticks, the p99 bound and the chosen peak marked, integer
user counts with the users line in a legend. Rendered from a small synthetic run."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from bench import loadplots

#: (workload, concurrency, calls/s, items/s, p50, p99) as in docs/BENCHMARKS.md's ramp table.
RAMP = [
    ("Inquire", 1, 585, 585, 1.7, 2.9), ("Inquire", 4, 1263, 1263, 3.1, 4.9), ("Inquire", 16, 2631, 2631, 5.9, 9.6),
    ("Inquire", 32, 2776, 2776, 11.3, 16.0), ("Inquire", 64, 2877, 2877, 22.2, 28.7),
    ("Inquire", 128, 2758, 2758, 46.0, 81.3),
    ("BatchInquire", 1, 541, 54086, 1.8, 3.0), ("BatchInquire", 4, 1024, 102415, 3.7, 6.0),
    ("BatchInquire", 16, 1149, 114923, 13.9, 20.2), ("BatchInquire", 32, 1208, 120750, 27.0, 33.1),
    ("BatchInquire", 64, 1345, 134536, 47.0, 66.3), ("BatchInquire", 128, 1330, 133005, 96.3, 123.1),
    ("AcquireCode", 1, 1442, 1442, 0.7, 1.2), ("AcquireCode", 32, 2167, 2167, 14.6, 20.7),
    ("AcquireCode", 128, 2060, 2060, 60.9, 68.5),
]


def steps() -> list[dict[str, Any]]:
    return [{"workload": w, "concurrency": c, "calls_per_s": cps, "items_per_s": ips, "p50_ms": p50,
             "p95_ms": p99 * 0.9, "p99_ms": p99, "failures": 0, "seconds": 5.0, "calls": 1, "items": 1}
            for w, c, cps, ips, p50, p99 in RAMP]


def write_history(results: Path) -> None:
    """Locust's stats history: users ramp 0 → 20 by 2 a second, then hold."""
    fields = ["Timestamp", "User Count", "Type", "Name", "Requests/s", "Failures/s", "50%", "95%", "99%"]
    with (results / "locust_stats_history.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for t in range(60):
            users = min(20, 2 * t)
            for name, share in (("Inquire", 0.45), ("AcquireCode", 0.26), ("BatchInquire[100]", 0.08),
                                ("Aggregated", 1.0)):
                rate = 72.0 * users * share
                w.writerow({"Timestamp": 1_700_000_000 + t, "User Count": users, "Type": "grpc", "Name": name,
                            "Requests/s": rate if t else "N/A", "Failures/s": 0, "50%": 13, "95%": 20,
                            "99%": 25 + (t % 7)})


def test_ramp_panels_answer_one_question_each() -> None:
    fig = loadplots.ramp_figure(steps(), "AMD EPYC, 2 cores")
    axes = fig.axes
    assert len(axes) == 6  # three workloads × (throughput, latency)
    for ax in axes:
        assert ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels == ["1", "4", "16", "32", "64", "128"], labels
    rate_labels = {ax.get_title(loc="left"): ax.get_ylabel() for ax in axes[0::2]}
    assert rate_labels == {"Inquire: throughput": "calls/s", "BatchInquire: throughput": "inquiries/s",
                           "AcquireCode: throughput": "calls/s"}
    legends = [" | ".join(t.get_text() for t in ax.get_legend().get_texts()) for ax in axes]
    assert "peak with p99 < 50 ms: 120,750 at c=32" in legends[2]  # c=64 is faster but over the bound
    assert "peak with p99 < 50 ms: 2,877 at c=64" in legends[0]
    for latency_legend in legends[1::2]:
        assert "p50" in latency_legend and "p99" in latency_legend and "50 ms bound" in latency_legend
        assert "chosen peak" in latency_legend
    plt.close(fig)


def test_locust_users_are_whole_and_in_the_legend(tmp_path: Path) -> None:
    write_history(tmp_path)
    fig = loadplots.locust_throughput_figure(loadplots._history(tmp_path), "AMD EPYC, 2 cores")
    rate, users = fig.axes
    assert rate.get_yscale() == "linear" and users.get_ylabel() == "users"
    fig.canvas.draw()
    ticks = [float(t) for t in users.get_yticks() if 0 <= t <= users.get_ylim()[1]]
    assert ticks and all(t.is_integer() for t in ticks), ticks
    assert any("users" in t.get_text() for t in users.get_legend().get_texts())
    assert {t.get_text() for t in rate.get_legend().get_texts()} >= {"all RPCs", "Inquire", "failures"}
    plt.close(fig)


def test_plot_all_writes_the_three_pngs(tmp_path: Path) -> None:
    write_history(tmp_path)
    summary = {"machine": "AMD EPYC, 2 cores, Python 3.11.7", "aio": steps(), "country": {"p99_bound_ms": 50.0}}
    paths = loadplots.plot_all(tmp_path, summary)
    assert sorted(p.name for p in paths) == ["aio_ramp.png", "locust_latency.png", "locust_throughput.png"]
    assert all(p.stat().st_size > 10_000 and p.read_bytes()[:4] == b"\x89PNG" for p in paths)
