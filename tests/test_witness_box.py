"""The witness and the commission's audit on a real box (``renkei up``: witness, core, J-LIS and
NTA as processes): checkpoints are cosigned; the audit verifies the cosigned tree and finds a
record planted into the ledger that the permission table does not allow; a forked ledger is
refused by the witness and raises the core's split-view alarm."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from renkei import client
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.datadir import DataDir
from renkei.ledger import Ledger, LedgerRecord
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import inquiry
from tests.tlog_witness_spec import WitnessKey

T = 10
MINISTER, CHIYODA = 4, 1
AFFAIR, ITEM = "B2.1", "B2.1.2.1"  # 別表第二 項1: 厚生労働大臣 asks a 市町村長 for 地方税関係情報


class State:
    box: RunningBox
    root: Path
    planted: int = -1


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    s = State()
    s.root = tmp_path_factory.mktemp("witnessbox") / "box"
    s.box = start_box(s.root)
    yield s
    if s.box.proc.poll() is None:
        rc, out = s.box.terminate()
        assert rc == 0, out


def _inquiries(box: RunningBox) -> None:
    with box.channel("jlis", "jlis") as ch:
        raw = client.NumberServiceStub(ch).RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=12, seed=11), timeout=T).individual_numbers
    people = [f"{int.from_bytes(raw[i:i + 8], 'little'):012d}" for i in range(0, len(raw), 8)]
    for agency in (f"agency-{CHIYODA}", f"agency-{MINISTER}"):
        with box.channel(agency) as core, box.channel(agency, "jlis") as jlis:
            codes, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                                 people, timeout=T)
            assert (status == 0).all()
            if agency.endswith(str(MINISTER)):
                minister_codes = [codes[i:i + 16] for i in range(0, len(codes), 16)]
    with box.channel(f"agency-{MINISTER}") as ch:
        stub = client.LinkageServiceStub(ch)
        for code in minister_codes:
            stub.Inquire(inquiry(code, AFFAIR, CHIYODA, [ITEM]), timeout=T)
        with pytest.raises(grpc.RpcError):  # a refused code: recorded as denied
            stub.Inquire(inquiry(bytes(16), AFFAIR, CHIYODA, [ITEM]), timeout=T)


def _audit(box: RunningBox, out: Path, *extra: str) -> tuple[int, str, dict[str, object]]:
    ready = box.root.parent / f"{box.root.name}.ready.json"
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "oversight", "audit", "--box", str(ready),
                        "--out", str(out), *extra], capture_output=True, text=True, timeout=300)
    data = json.loads((out / "audit.json").read_text()) if (out / "audit.json").exists() else {}
    return r.returncode, r.stdout + r.stderr, data


def _metric(box: RunningBox, line: str) -> float | None:
    text = urllib.request.urlopen(f"http://{box.service('core')['metrics']}/metrics", timeout=5).read().decode()
    m = re.search("^" + re.escape(line) + r" (\S+)$", text, re.MULTILINE)
    return None if m is None else float(m.group(1))


def test_checkpoints_are_cosigned(state: State) -> None:
    box = state.box
    assert box.service("witness")["http"] and box.service("witness")["vkey"]
    _inquiries(box)
    witness = WitnessKey.from_vkey(box.service("witness")["vkey"])
    log_vkey = (state.root / "core" / "ledger" / "vkey").read_text().strip()
    with box.channel("oversight") as ch:
        cp = client.OversightServiceStub(ch).GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
    from renkei.ledger import verify_checkpoint

    assert verify_checkpoint(cp.note, log_vkey).size == cp.tree_size >= 13
    note = cp.note.decode()
    cut = note.rindex("\n\n")
    witness.verify_cosignatures(note[cut + 2:].encode(), note[:cut + 1], now=time.time())
    # The witness serves the same cosigned checkpoint to monitors.
    import hashlib

    origin = note.split("\n", 1)[0]
    url = f"http://{box.service('witness')['http']}/{hashlib.sha256(origin.encode()).hexdigest()}/checkpoint"
    monitored = urllib.request.urlopen(url, timeout=5).read().decode()
    assert monitored.split("\n")[1] == str(cp.tree_size)
    assert _metric(box, f'renkei_witness_split_view_total{{witness="{witness.name}"}}') == 0
    assert (_metric(box, f'renkei_witness_submissions_total{{outcome="cosigned",witness="{witness.name}"}}') or 0) >= 1


def test_audit_of_an_honest_ledger_finds_no_violation(state: State, tmp_path: Path) -> None:
    rc, out, data = _audit(state.box, tmp_path / "report", "--fail-on-findings")
    assert rc == 0, out
    assert data["tree_verified"] is True and data["findings"] == []
    cp = data["checkpoint"]
    assert isinstance(cp, dict) and cp["witnesses"] and cp["size"] == data["records"]
    agencies = {a["agency_id"]: a for a in data["agencies"]}  # type: ignore[attr-defined]
    assert agencies[MINISTER]["inquiries"] == 13 and agencies[MINISTER]["refused_codes"] == 1
    assert {p.name for p in (tmp_path / "report").iterdir()} >= {"report.md", "audit.json", "volume.png",
                                                                "denials.png", "hours.png"}


def test_audit_finds_a_planted_out_of_table_record(state: State, tmp_path: Path) -> None:
    rc, out = state.box.terminate()
    assert rc == 0, out
    core = DataDir(state.root / "core", "core")
    shutil.copytree(core.path / "ledger", tmp_path / "ledger-before")  # for the fork below
    with Ledger(core) as ledger:
        honest = ledger.get(0)
        assert honest is not None and honest.permitted
        # The mayor "asks" the minister under 項1 — the table lets only the minister ask the mayor.
        state.planted = ledger.append(LedgerRecord(
            requester=CHIYODA, provider=MINISTER, affair=AFFAIR, items=[ITEM], table_hash=honest.table_hash,
            pseudonym=secrets.token_bytes(32), permit_id=secrets.token_bytes(16)))
    shutil.copytree(tmp_path / "ledger-before", state.root.parent / "ledger-before")
    state.box = start_box(state.root)
    rc, out, data = _audit(state.box, tmp_path / "report", "--fail-on-findings")
    assert rc == 3, out
    [finding] = data["findings"]  # type: ignore[misc]
    assert finding["seq"] == state.planted and finding["kind"] == "not_permitted"
    assert finding["severity"] == "violation" and (finding["requester"], finding["provider"]) == (CHIYODA, MINISTER)
    assert f"record {state.planted}: not_permitted" in out
    assert "not_permitted" in (tmp_path / "report" / "report.md").read_text()


def test_a_forked_ledger_raises_the_split_view_alarm(state: State) -> None:
    rc, out = state.box.terminate()
    assert rc == 0, out
    ledger_dir = state.root / "core" / "ledger"
    shutil.rmtree(ledger_dir)
    shutil.copytree(state.root.parent / "ledger-before", ledger_dir)
    with Ledger(DataDir(state.root / "core", "core")) as ledger:  # same key, same size, another record
        honest = ledger.get(0)
        assert honest is not None
        assert ledger.append(LedgerRecord(
            requester=MINISTER, provider=CHIYODA, affair=AFFAIR, items=[ITEM], table_hash=honest.table_hash,
            pseudonym=secrets.token_bytes(32), permit_id=secrets.token_bytes(16))) == state.planted
    state.box = start_box(state.root)
    name = WitnessKey.from_vkey(state.box.service("witness")["vkey"]).name
    deadline = time.monotonic() + 30
    alarm = f'renkei_witness_split_view_total{{witness="{name}"}}'
    while not _metric(state.box, alarm):
        assert time.monotonic() < deadline, state.box.output()
        time.sleep(0.2)
    assert "SPLIT VIEW ALARM" in state.box.output()
    time.sleep(2.5)  # retried with backoff meanwhile, counted once
    assert _metric(state.box, alarm) == 1
    # The commission is not shown the fork as witnessed: the checkpoint it gets has no cosignature.
    with state.box.channel("oversight") as ch:
        cp = client.OversightServiceStub(ch).GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)
    assert cp.tree_size == state.planted + 1 and list(cp.cosignatures) == []
