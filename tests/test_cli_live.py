"""The `renkei` command against a running box: administration goes through the core's
AdminService / OversightService (found from the box's ready files), and a permission table
installed, activated or removed while the core runs decides the very next inquiry."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from renkei import client, proto
from renkei.cli.app import main
from renkei.permissions.engine import default_table_path
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import inquiry

T = 10
MINISTER, CHIYODA = 4, 1


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    s = start_box(tmp_path_factory.mktemp("cli-live") / "box")
    yield s
    rc, out = s.terminate()
    assert rc == 0, out


@pytest.fixture(scope="module")
def minister_code(box: RunningBox) -> bytes:
    with box.channel("jlis", "jlis") as ch:
        people = np.frombuffer(client.NumberServiceStub(ch).RegisterTestPopulation(
            proto.numbers.RegisterTestPopulationRequest(count=2, seed=3), timeout=T).individual_numbers, dtype="<u8")
    codes = {}
    for agency in (MINISTER, CHIYODA):
        with box.channel(f"agency-{agency}") as core, box.channel(f"agency-{agency}", "jlis") as jlis:
            out, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                               people, timeout=T)
        assert (status == 0).all()
        codes[agency] = out[:16]
    return codes[MINISTER]


def cli(capsys: pytest.CaptureFixture[str], box: RunningBox, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(box.data_dir("core"))])
    out, err = capsys.readouterr()
    return code, out, err


def ppc(capsys: pytest.CaptureFixture[str], box: RunningBox, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--data-dir", str(box.data_dir("ppc"))])
    out, err = capsys.readouterr()
    return code, out, err


def inquire(box: RunningBox, code: bytes) -> str:
    """"permit" (the provider answered) or the refusal's reason."""
    with box.channel(f"agency-{MINISTER}") as ch:
        try:
            client.LinkageServiceStub(ch).Inquire(inquiry(code, "B2.1", CHIYODA, ["B2.1.2.1"]), timeout=T)
        except grpc.RpcError as e:
            info = error_info(e)
            assert info is not None
            return info.reason
    return "permit"


def without_item_1(label: str, start: str) -> dict[str, Any]:
    """The bundled table from ``start`` without 別表第二 項1's rows: the minister may no longer
    ask a mayor for 地方税関係情報."""
    doc = json.loads(default_table_path().read_text(encoding="utf-8"))
    doc.update(label=label, effective_from=start, effective_until=None)
    doc["rows"] = [r for r in doc["rows"] if r["affair"] != "beppyo2-1"]
    return dict(doc)


def test_table_install_and_remove_take_effect_live(box: RunningBox, minister_code: bytes, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert inquire(box, minister_code) == "permit"
    table = tmp_path / "no-item-1.json"
    table.write_text(json.dumps(without_item_1("test-no-item-1", "2025-04-01T00:00:00+09:00"), ensure_ascii=False))

    code, out, err = cli(capsys, box, "permissions", "install", str(table), "--actor", "山田", "--note", "test")
    assert code == 0, err
    assert "installed test-no-item-1" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("in force now (the running core at") and "): test-no-item-1 from 2025-04-01" in last
    assert inquire(box, minister_code) == "ROW_NOT_PERMITTED"  # the very next inquiry, no restart

    code, out, _ = cli(capsys, box, "permissions", "versions")
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if not line.startswith("in force")}
    assert "in force" in rows["test-no-item-1"] and "active" in rows["beppyo2-2015"]
    assert "2025-04-01 00:00 JST" in rows["test-no-item-1"]  # tables start at JST midnight

    code, out, err = cli(capsys, box, "permissions", "remove", "test-no-item-1", "--actor", "山田")
    assert code == 0, err
    assert "in force now" in out and "beppyo2-2015" in out.splitlines()[-1]
    assert inquire(box, minister_code) == "permit"

    # Staged: stored, not enforced, until activated.
    staged = tmp_path / "staged.json"
    staged.write_text(json.dumps(without_item_1("test-staged", "2024-10-01T00:00:00+09:00"), ensure_ascii=False))
    code, out, err = cli(capsys, box, "permissions", "install", str(staged), "--staged", "--actor", "山田")
    assert code == 0, err and "staged test-staged" in out
    assert inquire(box, minister_code) == "permit"
    code, out, _ = cli(capsys, box, "--json", "permissions", "versions")
    states = {json.loads(line)["label"]: json.loads(line)["state"] for line in out.splitlines()}
    # The demo box's own version (the portal's 自己情報表示 rows) is in force; 2015's stays installed.
    assert states == {"beppyo2-2015": "active", "beppyo2-2015+self-disclosure": "in force", "test-staged": "staged"}
    code, out, err = cli(capsys, box, "permissions", "activate", "test-staged", "--actor", "山田")
    assert code == 0, err
    assert inquire(box, minister_code) == "ROW_NOT_PERMITTED"
    assert cli(capsys, box, "permissions", "remove", "test-staged", "--actor", "山田")[0] == 0
    assert inquire(box, minister_code) == "permit"

    code, out, _ = cli(capsys, box, "--json", "permissions", "history")
    history = [json.loads(line) for line in out.splitlines()]
    assert [(h["action"], h["label"]) for h in history] == [
        ("install", "beppyo2-2015+self-disclosure"),  # by `renkei up --demo`, before the core started
        ("install", "test-no-item-1"), ("remove", "test-no-item-1"), ("stage", "test-staged"),
        ("activate", "test-staged"), ("remove", "test-staged")]
    assert history[0]["actor"] == "renkei up --demo" and "附則第6条" in history[0]["note"]
    assert all(h["actor"] == "山田 (operator)" for h in history[1:])

    # Refusals from the running core come back as one line.
    code, _, err = cli(capsys, box, "permissions", "remove", "beppyo2-2015", "--actor", "x")
    assert code == 1 and err.count("\n") == 1 and "bundled table" in err
    code, _, err = cli(capsys, box, "permissions", "activate", "nope", "--actor", "x")
    assert code == 1 and err.startswith("renkei: no staged table version")


def test_admin_commands_work_while_the_core_runs(box: RunningBox, minister_code: bytes,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, box, "agency", "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "STATUS", "PIA"] and len(lines) == 8  # the seven demo agencies
    code, out, _ = cli(capsys, box, "--json", "agency", "show", "4")
    assert json.loads(out)["name"] == "厚生労働大臣" and json.loads(out)["pia_status"] == "approved"

    code, out, err = cli(capsys, box, "--json", "agency", "add", "--name", "テスト市長", "--type", "municipal_mayor",
                         "--municipality-code", "131024", "--pki", str(box.pki))
    assert code == 0, err
    added = json.loads(out)
    assert added["pia_status"] == "not_submitted" and Path(added["certificate"]).exists()
    # Its PIA is the commission's: the agency submits, a reviewer approves, the core hears of it.
    document = Path(added["certificate"]).parent / "pia.txt"
    document.write_text("全項目評価書")
    code, out, err = ppc(capsys, box, "--json", "ppc", "submit", "--agency", str(added["agency_id"]), "--level",
                         "full", "--title", "テスト市 全項目評価書", "--file", "住民基本台帳ファイル",
                         "--document", str(document))
    assert code == 0, err
    code, _, err = ppc(capsys, box, "ppc", "approve", str(json.loads(out)["pia_id"]), "--expires-on", "2099-01-01")
    assert code == 1 and "at most 5 years" in err
    code, _, err = ppc(capsys, box, "ppc", "approve", str(json.loads(out)["pia_id"]), "--expires-on",
                       (date.today() + timedelta(days=365)).isoformat())
    assert code == 0, err
    deadline = time.monotonic() + 10
    while json.loads(cli(capsys, box, "--json", "agency", "show", str(added["agency_id"]))[1])["pia_status"] != \
            "approved":
        assert time.monotonic() < deadline, "the core never heard of the approval"
        time.sleep(0.2)
    with box.channel(f"agency-{added['agency_id']}") as ch:  # the new agency can call at once
        keys = client.LinkageServiceStub(ch).GetPublicKeys(proto.linkage.GetPublicKeysRequest(), timeout=T)
        assert keys.keys

    code, out, _ = cli(capsys, box, "--json", "agency", "set-status", str(CHIYODA), "suspended")
    assert json.loads(out)["status"] == "suspended"
    assert inquire(box, minister_code) != "permit"  # a suspended provider is not asked
    assert cli(capsys, box, "agency", "set-status", str(CHIYODA), "active")[0] == 0
    assert inquire(box, minister_code) == "permit"

    code, out, _ = cli(capsys, box, "--json", "codes", "stats")
    stats = {json.loads(line)["agency_id"]: json.loads(line)["holdings"] for line in out.splitlines()}
    assert stats[MINISTER] >= 1 and stats[CHIYODA] >= 1

    code, out, _ = cli(capsys, box, "codes", "rotate-epoch")
    assert code == 0 and "key epoch 2 is now current" in out
    code, out, _ = cli(capsys, box, "--json", "codes", "epochs")
    assert [json.loads(line)["state"] for line in out.splitlines()] == ["live", "current"]
    assert inquire(box, minister_code) == "permit"  # epoch 1 still decodes
    assert cli(capsys, box, "codes", "retire-epoch", "1")[0] == 0
    assert inquire(box, minister_code) == "CODE_REFUSED"  # retired live: refused at once

    # Ledger proofs from OversightService (the ledger is held open by the core).
    code, out, err = cli(capsys, box, "ledger", "prove-inclusion", "0")
    assert code == 0, err
    assert json.loads(out)["seq"] == 0
    code, out, _ = cli(capsys, box, "ledger", "checkpoint")
    assert code == 0 and out.splitlines()[1].isdigit()

    # What reads the holdings itself refuses while the core runs, in one line.
    code, _, err = cli(capsys, box, "codes", "holders", "1", "0" * 26)
    assert code == 1 and err.count("\n") == 1 and "stop the core first" in err

    # A target given by hand, and a ready file given by hand, reach the same core.
    code, out, _ = cli(capsys, box, "--target", box.target("core"), "--pki", str(box.pki), "--json", "codes", "epochs")
    assert code == 0 and len(out.splitlines()) == 2
    ready = box.root.parent / f"{box.root.name}.ready.json"
    code, out, _ = cli(capsys, box, "--ready-file", str(ready), "--json", "codes", "epochs")
    assert code == 0 and len(out.splitlines()) == 2


def test_number_commands_go_through_the_running_jlis(box: RunningBox, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "codes.txt"
    f.write_text("24727059608\n", encoding="utf-8")
    jlis = ["--data-dir", str(box.data_dir("jlis"))]
    assert main(["number", "assign", "--file", str(f), *jlis]) == 0
    number = capsys.readouterr().out.strip()
    assert len(number) == 12 and number.isdigit()
    with box.channel("jlis", "jlis") as ch:  # the running J-LIS knows it at once
        status = client.NumberServiceStub(ch).GetNumberStatus(
            proto.numbers.GetNumberStatusRequest(individual_number=number), timeout=T)
        assert status.state == proto.numbers.NumberStatus.STATE_CURRENT
    assert main(["number", "change", number, *jlis]) == 0
    assert capsys.readouterr().out.strip() != number
