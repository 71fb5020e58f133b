"""The load benchmark's pieces that can be checked in seconds (the load run itself is not a test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import load, micro
from bench.aiodriver import Step, peak_under
from bench.loadprep import (
    AGENCY_USERS,
    INQUIRY_PLANS,
    PUBLIC_USERS,
    Prep,
    acquisition_error,
    assign_corporations,
    batch_outcome_error,
)
from renkei.proto import linkage as lpb

REPO = Path(__file__).resolve().parent.parent


def test_locustfile_imports_with_the_user_classes_the_orchestrator_names() -> None:
    # In a subprocess: importing the locustfile patches the process for gevent.
    code = (
        "import json, bench.locustfile as m\n"
        "from locust import User\n"
        "users = {n: c for n, c in vars(m).items() if isinstance(c, type) and issubclass(c, User)"
        " and not c.abstract and c is not User}\n"
        "print(json.dumps({n: [len(c.tasks), getattr(c, 'agency_id', 0), c.public] for n, c in users.items()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    users = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(users) == set(AGENCY_USERS) | set(PUBLIC_USERS)
    for name, (tasks, agency, public) in users.items():
        assert tasks > 0, name
        assert public == (name in PUBLIC_USERS)
        assert public or agency in (1, 2, 3, 5)


def test_inquiry_plans_are_rows_of_the_bundled_table() -> None:
    table = json.loads((REPO / "pyservice/renkei/data/permissions/beppyo2-2015.json").read_text())
    types = {1: {"municipal_mayor"}, 2: {"municipal_mayor"}, 3: {"japan_pension_service"},
             5: {"japan_health_insurance_association", "medical_insurers"}}
    rows = {r["ref"]: r for r in table["rows"]}
    for plan in INQUIRY_PLANS.values():
        row = rows[plan.row]
        assert row["affair"] == plan.affair
        assert types[plan.requester] & set(row["requesters"])
        assert types[plan.provider] & set(row["providers"])
        assert set(plan.items) <= set(row["items"])


def test_load_arguments() -> None:
    args = load.parse_args(["--users", "8", "--seconds", "5", "--levels", "1,2,8"])
    assert (args.users, args.seconds, args.levels, args.spawn_rate) == (8, 5, [1, 2, 8], 1.6)
    assert load.parse_args([]).users == 20
    for bad in (["--users", "0"], ["--levels", "1,x"], ["--levels", "0"], ["--persons", "10"],
                ["--users", "1001"], ["--levels", "1,2000"]):
        with pytest.raises(SystemExit):
            load.parse_args(bad)


def test_country_arithmetic() -> None:
    c = load.country(1000.0)
    assert c["minutes_for_fy2022"] == pytest.approx(30_290_000 / 1000 / 60)
    assert c["times_the_fy2022_average"] == pytest.approx(1000 / (30_290_000 / (365 * 86400)))


def test_peak_under_the_latency_bound() -> None:
    def step(c: int, rate: float, p99: float, failures: int = 0) -> Step:
        return Step("Inquire", c, 1.0, int(rate), int(rate), failures, rate, rate, 1.0, 1.0, p99)

    steps = [step(1, 100, 2), step(4, 300, 20), step(16, 500, 49), step(64, 600, 80), step(32, 700, 10, 1)]
    best = peak_under(steps, "Inquire", 50)
    assert best is not None and best.concurrency == 16
    assert peak_under(steps, "BatchInquire", 50) is None


def test_batch_outcomes() -> None:
    ok = lpb.BatchInquireResponse(outcomes=bytes(5))
    assert batch_outcome_error(ok) is None
    bad = lpb.BatchInquireResponse(outcomes=bytes([0, 4, 0, 5, 4]))
    assert batch_outcome_error(bad) == "3 of 5 items refused (denial codes [4, 5])"


def test_acquisition_outcomes() -> None:
    assert acquisition_error(bytes(3), 3) is None
    assert acquisition_error(np.zeros(1, dtype=np.uint8), 1) is None
    assert acquisition_error(bytes([0, 2, 2]), 3) == "2 of 3 codes not issued (acquisition statuses [2])"
    assert acquisition_error(b"", 1) == "0 acquisition statuses for 1 numbers"


def test_prep_round_trip(tmp_path: Path) -> None:
    np.save(tmp_path / "numbers.npy", np.arange(3, dtype=np.uint64))
    np.save(tmp_path / "codes-1.npy", np.zeros((3, 16), dtype=np.uint8))
    p = Prep(core_target="127.0.0.1:1", jlis_target="127.0.0.1:2", nta_target="127.0.0.1:3", pki="/box/pki",
             ca="/box/pki/ca.pem", batch_size=10, corporate_numbers=["1"], linkage=True, directory=str(tmp_path))
    saved = json.loads(p.save().read_text())
    assert {"core_target", "jlis_target", "nta_target", "pki", "ca"} <= set(saved)
    q = Prep.load(tmp_path / "prep.json")
    assert (q.core_target, q.jlis_target, q.nta_target, q.pki, q.batch_size, q.linkage) == (
        "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "/box/pki", 10, True)
    assert q.numbers.tolist() == [0, 1, 2] and q.codes(1).shape == (3, 16)


def test_box_is_renkei_up_pinned_to_cpu_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load.shutil, "which", lambda name: "/usr/bin/taskset")
    monkeypatch.setattr(load.os, "cpu_count", lambda: 2)
    cmd = load.box_command(tmp_path / "box", tmp_path / "box.json", pin=True)
    assert cmd[:3] == ["taskset", "-c", "0"]  # the services renkei up starts inherit the CPU
    up = cmd[cmd.index("renkei.cli") + 1:]
    assert up[0] == "up" and "--demo" in up
    assert up[up.index("--base-port") + 1] == "0" and up[up.index("--dir") + 1] == str(tmp_path / "box")
    assert load.box_command(tmp_path / "box", tmp_path / "box.json", pin=False)[0] == sys.executable


def test_corporations_are_assigned_in_the_boxs_nta_directory(tmp_path: Path) -> None:
    from renkei.nta.registry import CorporateNumberRegistry

    numbers = assign_corporations(tmp_path / "box" / "nta", 3, seed=1)
    assert len(set(numbers)) == 3
    with CorporateNumberRegistry(tmp_path / "box" / "nta") as nta:
        assert sorted(r.corporate_number for r in nta.get(numbers)) == sorted(numbers)


def test_micro_headlines_take_rows_with_ratios() -> None:
    text = "| what | rate | note |\n| --- | ---: | --- |\n| a | 5/s | 3× the reference |\n| b | 1/s | baseline |\n"
    assert micro.headline_rows("x", text) == [("x", "a", "5/s", "3× the reference")]
    assert micro.parse_args(["--only", "numbers"]).only == ["numbers"]
    with pytest.raises(SystemExit):
        micro.parse_args(["--only", "nope"])


def test_report_carries_the_country_rows() -> None:
    step = Step("Inquire", 16, 4.0, 8000, 8000, 0, 2000.0, 2000.0, 5.0, 9.0, 12.0)
    rows = load.country_rows([step], None)
    (label, figures), = rows.items()
    assert "c=16" in label and figures["minutes_for_fy2022"] == pytest.approx(30_290_000 / 2000 / 60)
    summary = {
        "command": "python -m bench.load", "machine": "m", "load_average_end": 1.0, "pinned": True,
        "wall_seconds": 10.0, "persons": 100, "corporations": 3, "failed_requests": 0,
        "args": {"users": 1, "seconds": 1, "batch_size": 10},
        "aio": [vars(step)], "country": {"fy2022_average_per_s": 0.96, "rows": rows},
    }
    text = load.report(summary)
    assert "| Inquire | 16 | 2,000 | 2,000 |" in text
    assert "252.4" in text  # 30.29 million inquiries at 2,000/s: 252.4 minutes
    assert "Failed requests: 0." in text


def test_bench_grpc_starts_the_box() -> None:
    from bench import bench_grpc

    assert bench_grpc.start_box.__module__ == "grpc_server"  # tests/grpc_server.py: renkei up --demo
    assert callable(bench_grpc.prepare) and callable(bench_grpc.run)
