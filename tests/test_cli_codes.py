"""The `renkei agency ...` and `renkei codes ...` commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from renkei.cli.app import main
from renkei.jlis.authority import NumberAuthority
from renkei.linkage.core import Core
from renkei.linkage.registry import AgencyRegistry
from tests.datadirs import InProcess


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_agency_pia_codes_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = ["--data-dir", str(tmp_path / "core")]
    code, _, err = run(capsys, "agency", "list", *d)
    assert code == 1 and "renkei core init" in err and not (tmp_path / "core").exists()
    assert run(capsys, "core", "init", *d)[0] == 0
    code, out, _ = run(capsys, "--json", "agency", "register", "--name", "横浜市長", "--type", "municipal_mayor",
                       "--corporate-number", "3000020141003", "--municipality-code", "141003", *d)
    assert code == 0 and json.loads(out)["agency_id"] == 1
    run(capsys, "agency", "register", "--name", "日本年金機構", "--type", "japan_pension_service",
        "--corporate-number", "5010405001703", *d)
    # No commission in this core (an embedder's): the PIAs are filed with the library. A deployed core
    # is bound to the commission's decision log and takes them from there (test_ppc_box.py).
    with AgencyRegistry(tmp_path / "core") as registry:
        for agency in (1, 2):
            registry.add_pia(agency, "全項目評価書", approved_on="2025-01-01", expires_on="2099-01-01")
    # Codes come from the services (J-LIS's link ids); in one process for this test.
    jlis = NumberAuthority.init(tmp_path / "jlis")
    number = jlis.assign("24727059608")
    world = InProcess(Core(tmp_path / "core"), jlis)
    city_code = world.acquire(1, number)
    world.acquire(2, number)
    world.close()
    code, out, _ = run(capsys, "codes", "translate", "1", city_code, "2", *d)
    assert code == 0 and len(out.strip()) == 26 and out.strip() != city_code
    code, out, _ = run(capsys, "codes", "holders", "1", city_code, *d)
    assert out.split() == ["HOLDER", "1", "2"]
    code, out, _ = run(capsys, "codes", "stats", "--json", *d)
    assert [json.loads(line) for line in out.splitlines()] == [{"agency_id": 1, "holdings": 1},
                                                                {"agency_id": 2, "holdings": 1}]
    code, out, _ = run(capsys, "codes", "rotate-epoch", *d)
    assert code == 0 and "2" in out
    code, _, _ = run(capsys, "codes", "retire-epoch", "1", *d)
    assert code == 0
    code, _, err = run(capsys, "codes", "translate", "1", city_code, "2", *d)
    assert code == 1 and "refused" in err
    code, out, _ = run(capsys, "codes", "epochs", *d)
    assert "retired" in out and "current" in out
    code, out, _ = run(capsys, "agency", "show", "1", "--json", *d)
    assert json.loads(out)["pia_status"] == "approved"
    code, out, _ = run(capsys, "agency", "list", *d)
    assert len(out.splitlines()) == 3 and out.splitlines()[0].split()[:3] == ["ID", "STATUS", "PIA"]
    assert run(capsys, "codes", "checkpoint", *d)[0] == 0
    code, _, err = run(capsys, "agency", "register", "--name", "x", "--type", "nope",
                       "--corporate-number", "5010405001703", *d)
    assert code == 1 and "unknown agency type" in err
