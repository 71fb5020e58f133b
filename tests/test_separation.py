"""The authorities are separated: each service its own process, data directory and keys.

Tried as an insider would (the finding of the separation issue): with one data directory alone,
map agency codes back to My Numbers or resident codes, reverse ledger pseudonyms, or mint a
certificate. Here every service runs as its own process (``renkei up --demo``); afterwards each
data directory is examined on its own.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

from renkei import client
from renkei._proto.renkei.v1 import linkage_service_pb2 as L
from renkei._proto.renkei.v1 import number_service_pb2 as N
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box
from tests.provision_helpers import inquiry, opened

T = 30
MINISTER, MAYOR = 4, 1  # 厚生労働大臣, 千代田区長 (demo agencies)
PEOPLE = 300


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("sep") / "box")
    yield b
    b.terminate()


def _files(folder: Path) -> Iterator[Path]:
    for p in folder.rglob("*"):
        if p.is_file():
            yield p


def _people(box: RunningBox) -> tuple[np.ndarray, dict[str, bytes]]:
    with box.channel("jlis", "jlis") as ch:
        nums = np.frombuffer(client.NumberServiceStub(ch).RegisterTestPopulation(
            N.RegisterTestPopulationRequest(count=PEOPLE, seed=5), timeout=T).individual_numbers, dtype="<u8")
    codes = {}
    for agency in (MINISTER, MAYOR):
        with box.channel(f"agency-{agency}") as core, box.channel(f"agency-{agency}", "jlis") as jlis:
            got, status = client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis),
                                               nums.astype(np.uint64), timeout=T)
        assert (status == 0).all()
        codes[f"agency-{agency}"] = got
    return nums.astype(np.uint64), codes


def test_the_box_runs_every_service_as_its_own_process(box: RunningBox) -> None:
    services = box.info["services"]
    assert set(services) >= {"core", "jlis", "nta"}
    pids = {s["pid"] for s in services.values()}
    assert len(pids) == len(services) and os.getpid() not in pids
    dirs = {Path(s["data_dir"]) for s in services.values()}
    assert dirs == {(box.root / name).resolve() for name in services}
    assert services["core"]["grpc"] and services["core"]["public_grpc"] and services["jlis"]["grpc"]
    assert services["nta"]["public_grpc"] and services["nta"]["grpc"] is None
    assert Path(box.info["pki"]) == (box.root / "pki").resolve()


def test_full_flow_across_processes_and_an_insider_with_one_directory_links_nothing(box: RunningBox) -> None:
    nums, codes = _people(box)
    with box.channel(f"agency-{MINISTER}") as ch:
        stub = client.LinkageServiceStub(ch)
        code = codes[f"agency-{MINISTER}"][:16]
        r = stub.Inquire(inquiry(code, "B2.1", MAYOR, ["B2.1.2.1"]), timeout=T)
        header, _answer = opened(r, box.pki, MINISTER, MAYOR)  # the mayor's intermediate server answered
        assert header.outcome == "no data" and r.provision_record_sequence > r.record_sequence
    rc, _ = box.terminate()
    assert rc == 0

    core, jlis, nta, pki, witness = (box.root / n for n in ("core", "jlis", "nta", "pki", "witness"))
    # Each service holds exactly its own keys; no service holds the CA key.
    assert sorted(p.name for p in (core / "keys").iterdir()) == sorted(
        f"{k}.key" for k in ("agency-code", "permit-signing", "ledger-log", "portal-pseudonym", "acquisition-number",
                             "disclosure-challenge"))
    assert sorted(p.name for p in (jlis / "keys").iterdir()) == ["jlis-link.key", "jlis-log.key", "jlis-number.key",
                                                                 "kenmen-ap.key"]
    assert [p.name for p in (box.root / "ppc" / "keys").iterdir()] == ["ppc-log.key"]
    assert not (nta / "keys").exists() or not any((nta / "keys").iterdir())
    assert [p.name for p in (witness / "keys").iterdir()] == ["witness-key.key"]
    ca_key = (pki / "ca.key").read_bytes()
    secrets = {
        "core": [(core / "keys" / f).read_bytes() for f in os.listdir(core / "keys")],
        "jlis": [(jlis / "keys" / f).read_bytes() for f in os.listdir(jlis / "keys")],
        "witness": [(witness / "keys" / "witness-key.key").read_bytes()],
    }
    for service, folder in (("core", core), ("jlis", jlis), ("nta", nta), ("witness", witness)):
        assert {p.name for p in (folder / "tls").iterdir()} <= {"ca.pem", "server.pem", "server.key", "client.pem",
                                                                 "client.key"}
        others = [k for s, ks in secrets.items() if s != service for k in ks]
        for f in _files(folder):
            data = f.read_bytes()
            assert b"PRIVATE KEY" not in data or f.parent.name == "tls", f
            assert ca_key not in data, f"{f} holds the CA key"
            for k in others:
                assert k not in data, f"{f} holds another service's key"

    # The core's directory: no My Number and no resident code, in any form.
    needles = []
    for n in nums.tolist():
        needles += [f"{n:012d}".encode(), int(n).to_bytes(8, "little"), int(n).to_bytes(8, "big")]
    for f in _files(core):
        data = f.read_bytes()
        assert not any(x in data for x in needles), f"{f} holds a My Number"
    # J-LIS's directory: no agency code of any agency.
    all_codes = [c[i:i + 16] for c in codes.values() for i in range(0, len(c), 16)]
    for f in _files(jlis):
        data = f.read_bytes()
        assert not any(c in data for c in all_codes), f"{f} holds an agency code"
    # The witness's directory: checkpoints only — no number, no code.
    for f in _files(witness):
        data = f.read_bytes()
        assert not any(x in data for x in needles) and not any(c in data for c in all_codes), f

    # What an insider with the core's directory alone can do: decrypt a code to the core's
    # person index and find the link id the holdings keep for it. The link id is J-LIS's keyed
    # PRF of the resident code: without J-LIS's key it names no one.
    link_key = (jlis / "keys" / "jlis-link.key").read_bytes()
    core_bytes = b"".join(f.read_bytes() for f in _files(core / "holdings"))
    from renkei.jlis.authority import NumberAuthority

    with NumberAuthority(jlis) as authority:
        links, found = authority.link_ids(nums)
        assert found.all()
        # The holdings keep the link ids (that is how the core recognises a person) ...
        assert all(links[i:i + 16] in core_bytes for i in range(0, 16 * 20, 16))
        # ... and they are HMACs under J-LIS's key of the resident code: no function of the
        # number or the resident code an insider could compute without that key.
        resident = int(authority.resolve(int(nums[0])))
        assert links[:16] == hmac.digest(link_key, b"renkei-link-id-v1\0" + resident.to_bytes(8, "big"),
                                         "sha256")[:16]
        assert links[:16] != hashlib.sha256(resident.to_bytes(8, "big")).digest()[:16]


def test_killing_jlis_leaves_inquiries_working_and_acquisitions_unavailable(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    box = start_box(tmp_path_factory.mktemp("kill") / "box")
    try:
        nums, codes = _people(box)
        os.kill(box.pid("jlis"), signal.SIGKILL)
        time.sleep(0.5)
        with box.channel(f"agency-{MINISTER}") as ch:
            r = client.LinkageServiceStub(ch).Inquire(
                inquiry(codes[f"agency-{MINISTER}"][16:32], "B2.1", MAYOR, ["B2.1.2.1"]), timeout=T)
            assert opened(r, box.pki, MINISTER, MAYOR)[0].outcome == "no data"
        with (
            box.channel(f"agency-{MINISTER}") as core,
            box.channel(f"agency-{MINISTER}", "jlis") as jlis,
            pytest.raises(grpc.RpcError) as e,
        ):
            client.acquire_codes(client.LinkageServiceStub(core), client.NumberServiceStub(jlis), nums[:3], timeout=5)
        assert e.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "jlis exited" in box.output() or box.proc.poll() is None  # the box keeps the others up
    finally:
        box.terminate()


def test_killing_the_core_makes_jlis_answer_a_clear_unavailable(tmp_path_factory: pytest.TempPathFactory) -> None:
    box = start_box(tmp_path_factory.mktemp("killcore") / "box")
    try:
        nums, _ = _people(box)
        with box.channel(f"agency-{MAYOR}") as core:
            acq = client.LinkageServiceStub(core).ReserveAcquisitionNumbers(
                L.ReserveAcquisitionNumbersRequest(count=2), timeout=T).acquisition_numbers
        os.kill(box.pid("core"), signal.SIGKILL)
        time.sleep(0.5)
        with box.channel(f"agency-{MAYOR}", "jlis") as ch, pytest.raises(grpc.RpcError) as e:
            client.NumberServiceStub(ch).RelayAcquisitions(N.RelayAcquisitionsRequest(
                individual_numbers=nums[:2].astype("<u8").tobytes(), acquisition_numbers=acq), timeout=T)
        assert e.value.code() is grpc.StatusCode.UNAVAILABLE
        info = error_info(e.value)
        assert info is not None and info.reason == "UNAVAILABLE" and "linkage core" in (e.value.details() or "")
    finally:
        box.terminate()


def test_a_service_missing_a_key_refuses_to_start_and_names_it(tmp_path: Path) -> None:
    box = start_box(tmp_path / "box")
    box.terminate()
    key = box.root / "core" / "keys" / "agency-code.key"
    key.unlink()
    out = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "core", "serve", "--data-dir", str(box.root / "core"), "--port", "0",
         "--public-port", "0"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "agency-code.key is missing" in out.stderr and "Traceback" not in out.stderr
    assert not key.exists()
