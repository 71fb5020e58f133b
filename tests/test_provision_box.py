"""Provision end to end across real processes (``renkei up --demo``: the core, J-LIS, two
intermediate servers, all over mutual TLS): a business system asks its intermediate server, the
core decides and records the 照会, the provider's intermediate server answers from its 副本,
sealed to the requester and signed, the core relays the ciphertext and records the 提供, the
requester's intermediate server opens and checks it.

Also: the core never holds the plaintext (a canary value is looked for in its files, logs,
metrics and memory, and found where it must be), a core that alters what it relays is caught,
and every failure (provider offline, provider slow, a forged answer, an unknown item) is
answered with a clear status and recorded.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import secrets
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from renkei import client
from renkei._proto.renkei.v1 import intermediate_service_pb2 as ipb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei._proto.renkei.v1 import provision_service_pb2 as ppb
from renkei._proto.renkei.v1.intermediate_service_pb2_grpc import IntermediateServiceStub
from renkei._proto.renkei.v1.provision_service_pb2_grpc import ProvisionServiceStub
from renkei.service.demo import _duplicates, atena_number
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box

T = 30
PERSONS = 60  # 千代田区 holds persons 0–29, 横浜市 30–59, the national bodies all
CHIYODA, YOKOHAMA, PENSION, MINISTER, GOVERNOR = 1, 2, 3, 4, 6
LOCAL_TAX = "TM00000000000002"  # 地方税関係情報
AFFAIR_1 = "JT01010000000001"  # 別表第二 項1 (B2.1)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("provision") / "box", persons=PERSONS)
    yield b
    b.terminate()


def _mid(box: RunningBox, agency: int) -> Any:
    name = "mid-municipal" if agency in (CHIYODA, YOKOHAMA, GOVERNOR) else "mid-national"
    return box.channel(f"business-{agency}", name)


def _ask(box: RunningBox, person: int, provider: int = CHIYODA, requester: int = MINISTER, item: str = LOCAL_TAX,
         affair: str = AFFAIR_1, timeout: float = T, **kw: Any) -> ipb.MidInquireResponse:
    with _mid(box, requester) as ch:
        return IntermediateServiceStub(ch).Inquire(ipb.MidInquireRequest(
            integrated_address_number=atena_number(requester, person), affair=affair, provider_agency_id=provider,
            items=[item], **kw), timeout=timeout)


def _fails(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as e:
        call()
    info = error_info(e.value)
    return e.value.code(), info.reason if info else ""


def _records(box: RunningBox, after: int = -1) -> list[opb.ProvisionRecord]:
    out: list[opb.ProvisionRecord] = []
    token = ""
    with box.channel("oversight") as ch:
        stub = client.OversightServiceStub(ch)
        while True:
            r = stub.ListRecords(opb.ListRecordsRequest(page_size=1000, page_token=token), timeout=T)
            out += [x for x in r.records if x.sequence > after]
            token = r.next_page_token
            if not token:
                return out


def _size(box: RunningBox) -> int:
    with box.channel("oversight") as ch:
        return int(client.OversightServiceStub(ch).GetLatestCheckpoint(opb.GetLatestCheckpointRequest(),
                                                                       timeout=T).tree_size)


def _exchanges(box: RunningBox, agency: int) -> list[ipb.ExchangeRecord]:
    with _mid(box, agency) as ch:
        return list(IntermediateServiceStub(ch).ListExchanges(ipb.ListExchangesRequest(page_size=1000),
                                                              timeout=T).records)


def test_one_exchange_end_to_end(box: RunningBox) -> None:
    size = _size(box)
    r = _ask(box, 7, conditions=ipb.InquiryConditions(fiscal_year=2025))
    # The requester gets exactly the 副本 the provider registered for that 年度.
    expected = [json.loads(d.payload_json) for d in _duplicates(CHIYODA, range(7, 8))
                if d.item == "local_tax_info" and d.fiscal_year == 2025]
    assert r.outcome == "provided" and [json.loads(x.payload_json) for x in r.records] == expected
    assert r.records[0].item == "local_tax_info" and r.records[0].record_key == "T2025-000007"
    # The core recorded both: the 照会 (照会日時) and the 提供 (提供日時) that answers it.
    inquiry, provision = _records(box, size - 1)
    assert (inquiry.sequence, provision.sequence) == (r.inquiry_record_sequence, r.provision_record_sequence)
    assert (inquiry.kind, inquiry.outcome, provision.kind, provision.outcome) == (
        "inquiry", "permitted", "provision", "provided")
    assert provision.inquiry_sequence == inquiry.sequence and provision.permit_id == inquiry.permit_id
    assert provision.person_pseudonym == inquiry.person_pseudonym
    assert inquiry.time.ToDatetime() <= provision.time.ToDatetime() == r.provided_at.ToDatetime()
    assert (inquiry.requester_agency_id, inquiry.provider_agency_id, inquiry.affair) == (MINISTER, CHIYODA, "B2.1")
    # Both sides' 記録管理 name the exchange and the same ciphertext the core hashed.
    mine = _exchanges(box, MINISTER)[-1]
    theirs = _exchanges(box, CHIYODA)[-1]
    assert (mine.role, mine.counterpart_agency_id, mine.outcome) == ("requester", CHIYODA, "provided")
    assert (theirs.role, theirs.counterpart_agency_id, theirs.outcome) == ("provider", MINISTER, "provided")
    assert mine.ciphertext_sha256 == theirs.ciphertext_sha256 == provision.ciphertext_sha256
    assert mine.ledger_sequence == theirs.ledger_sequence == inquiry.sequence
    assert mine.permit_id == theirs.permit_id == inquiry.permit_id[:12]
    # The provider learned the minister's identity from the permit, never the minister's code;
    # the requester got data, never the provider's code (no field carries one).
    assert theirs.integrated_address_number == atena_number(CHIYODA, 7)


def test_no_data_unknown_items_and_refusals_are_clear(box: RunningBox) -> None:
    r = _ask(box, 7, conditions=ipb.InquiryConditions(fiscal_year=2019))
    assert r.outcome == "no data" and not r.records and r.provision_record_sequence
    assert _fails(lambda: _ask(box, 7, item="TM99999999999999"))[0] is grpc.StatusCode.INVALID_ARGUMENT
    # 横浜市 does not hold person 7: refused by the core, recorded, no 提供.
    size = _size(box)
    assert _fails(lambda: _ask(box, 7, provider=YOKOHAMA)) == (grpc.StatusCode.PERMISSION_DENIED,
                                                               "PROVIDER_NOT_HOLDING")
    assert [x.outcome for x in _records(box, size - 1)] == ["PROVIDER_NOT_HOLDING"]
    assert _exchanges(box, MINISTER)[-1].outcome == "PROVIDER_NOT_HOLDING"
    # Pension benefits are not something a mayor is asked for under 項1.
    assert _fails(lambda: _ask(box, 7, item="pension_benefit_info"))[1] == "ROW_NOT_PERMITTED"


def test_withheld_and_delegated_inquiries_are_recorded_so(box: RunningBox) -> None:
    size = _size(box)
    _ask(box, 8, withheld_until="2031-04-01", delegator_agency_id=PENSION)
    inquiry, provision = _records(box, size - 1)
    assert inquiry.withheld and provision.withheld
    assert inquiry.delegator_agency_id == provision.delegator_agency_id == PENSION


def test_batch_provision(box: RunningBox) -> None:
    people = range(20, 40)  # 20–29 are 千代田区's, 30–39 are not
    with _mid(box, MINISTER) as ch:
        r = IntermediateServiceStub(ch).BatchInquire(ipb.MidBatchInquireRequest(
            integrated_address_numbers=[atena_number(MINISTER, p) for p in people], affair="B2.1",
            provider_agency_id=CHIYODA, items=["local_tax_info", "resident_record_info"],
            conditions=ipb.InquiryConditions(fiscal_year=2025)), timeout=T)
    got = {a.integrated_address_number: a for a in r.answers}
    for p in people:
        a = got[atena_number(MINISTER, p)]
        if p < 30:
            assert a.outcome == "provided", (p, a.outcome)
            assert sorted(x.item for x in a.records) == ["local_tax_info", "resident_record_info"]
            income = json.loads(next(x for x in a.records if x.item == "local_tax_info").payload_json)["総所得金額"]
            want = next(json.loads(d.payload_json) for d in _duplicates(CHIYODA, range(p, p + 1))
                        if d.item == "local_tax_info" and d.fiscal_year == 2025)["総所得金額"]
            assert income == want
        else:
            assert a.outcome == "PROVIDER_NOT_HOLDING"
    provisions = [x for x in _records(box, r.first_inquiry_record_sequence - 1) if x.kind == "provision"]
    assert len(provisions) == 10 and {x.outcome for x in provisions} == {"provided"}
    assert len({x.ciphertext_sha256 for x in provisions}) == 1  # one sealed answer for the batch


def _files(folder: Path) -> Iterator[Path]:
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            yield p


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable mapping of process ``pid`` contains ``needle`` (root reads
    /proc/<pid>/mem of its own children)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if not m or "r" not in m.group(3) or "[vvar]" in line or "[vsyscall]" in line:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            for at in range(start, end, 64 << 20):
                try:
                    mem.seek(at)
                    chunk = mem.read(min(64 << 20, end - at) + len(needle))
                except (OSError, ValueError, OverflowError):
                    break
                if needle in chunk:
                    return True
    return False


def test_the_core_never_holds_the_plaintext(box: RunningBox) -> None:
    canary = f"CANARY-{secrets.token_hex(12)}"
    person = 11
    with _mid(box, CHIYODA) as ch:
        done = IntermediateServiceStub(ch).RegisterDuplicates(ipb.RegisterDuplicatesRequest(records=[
            ipb.DuplicateRecord(integrated_address_number=atena_number(CHIYODA, person), item="local_tax_info",
                                dataset="0001", version=1, record_key=f"T2031-{person:06d}", valid_from="2031-06-01",
                                fiscal_year=2031, published="2031-06-01",
                                payload_json=json.dumps({"備考": canary, "総所得金額": 1}))]), timeout=T)
    assert done.registered == 1
    for _ in range(3):
        r = _ask(box, person, conditions=ipb.InquiryConditions(fiscal_year=2031))
        assert canary in r.records[0].payload_json  # the requester got it
    needle = canary.encode()
    # Where it must be: the provider's store (so the search below can find what is there).
    assert any(needle in p.read_bytes() for p in _files(box.data_dir("mid-municipal")))
    # The core: none of its files, none of its log lines, not its metrics, not its memory.
    for p in _files(box.data_dir("core")):
        assert needle not in p.read_bytes(), p
    core_lines = [ln for ln in box.output().splitlines() if ln.startswith("[core]")]
    assert core_lines and not any(canary in ln for ln in core_lines)
    port = box.metrics_port("core")
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=T).read()
    assert b"renkei_provision_exchanges_total" in metrics and needle not in metrics
    assert not _memory_holds(box.pid("core"), needle)
    assert _memory_holds(box.pid("mid-national"), needle), "the requester's server opened it (control)"


class _Impostor:
    """A provider's attendance stream opened by the test with the agency's certificate (the core
    lets the newest stream of an agency replace the older): it answers each call with
    ``answer(call)``, or never when that returns None."""

    def __init__(self, box: RunningBox, agency: int, answer: Any) -> None:
        self.calls: list[ppb.ProvisionCall] = []
        self._out: queue.Queue[ppb.ProviderMessage | None] = queue.Queue()
        self._out.put(ppb.ProviderMessage(ready=ppb.ProviderReady()))
        self._ch = box.channel(f"agency-{agency}")
        self._stream = ProvisionServiceStub(self._ch).Attend(iter(self._out.get, None))
        self._answer = answer
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        time.sleep(0.3)  # the core has taken the stream

    def _run(self) -> None:
        try:
            for call in self._stream:
                self.calls.append(call)
                reply = self._answer(call)
                if reply is not None:
                    self._out.put(reply)
        except grpc.RpcError:
            pass

    def close(self) -> None:
        self._out.put(None)
        self._stream.cancel()
        self._ch.close()


def test_a_forged_answer_and_a_slow_provider(box: RunningBox) -> None:
    # The municipal platform goes down: 千代田区 cannot be asked. Then an impostor attends with
    # 千代田区's TLS certificate but signs with a key of its own: the requester refuses its answer.
    os.kill(box.pid("mid-municipal"), signal.SIGKILL)
    time.sleep(0.5)
    size = _size(box)
    code, reason = _fails(lambda: _ask(box, 5, provider=CHIYODA))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "PROVIDER_OFFLINE")
    assert [(x.kind, x.outcome) for x in _records(box, size - 1)] == [("inquiry", "permitted"),
                                                                      ("provision", "provider unavailable")]
    assert _exchanges(box, MINISTER)[-1].outcome == "PROVIDER_OFFLINE"

    from cryptography.hazmat.primitives.asymmetric import ec

    from renkei.mid import sealing

    def forged(call: ppb.ProvisionCall) -> ppb.ProviderMessage:
        header = sealing.ProvisionHeader(bytes(call.permit_id), call.requester_agency_id, CHIYODA, "beppyo2-1",
                                         ("local_tax_info",), 1, "provided")
        sealed = sealing.seal(header, b'{"persons":[{"index":0,"records":[]}]}', bytes(call.recipient_public_key))
        signature = sealing.sign(header, sealed, ec.generate_private_key(ec.SECP256R1()))
        return ppb.ProviderMessage(answer=lpb.SealedProvision(call_id=call.call_id, header=header.encode(),
                                                              sealed=sealed, signature=signature))

    impostor = _Impostor(box, CHIYODA, forged)
    try:
        assert _fails(lambda: _ask(box, 5, provider=CHIYODA)) == (grpc.StatusCode.DATA_LOSS, "PROVISION_TAMPERED")
        assert impostor.calls and len(impostor.calls[0].provider_agency_codes) == 16
        assert _exchanges(box, MINISTER)[-1].outcome == "PROVISION_TAMPERED"
    finally:
        impostor.close()

    slow = _Impostor(box, CHIYODA, lambda call: None)
    try:
        size = _size(box)
        started = time.monotonic()
        assert _fails(lambda: _ask(box, 6, provider=CHIYODA, timeout=3)) == (grpc.StatusCode.DEADLINE_EXCEEDED,
                                                                             "PROVIDER_TIMED_OUT")
        assert time.monotonic() - started < 3
        assert [x.outcome for x in _records(box, size - 1)] == ["permitted", "timed out"]
    finally:
        slow.close()


def test_a_core_that_alters_what_it_relays_is_caught(tmp_path_factory: pytest.TempPathFactory) -> None:
    b = start_box(tmp_path_factory.mktemp("tamper") / "box", persons=10, env={"RENKEI_FAULT_TAMPER_RELAY": "1"})
    try:
        code, reason = _fails(lambda: _ask(b, 3))
        assert (code, reason) == (grpc.StatusCode.DATA_LOSS, "PROVISION_TAMPERED")
        mine = _exchanges(b, MINISTER)[-1]
        theirs = _exchanges(b, CHIYODA)[-1]
        assert mine.outcome == "PROVISION_TAMPERED" and theirs.outcome == "provided"
        # What arrived is not what the provider sealed: the hashes differ, and the core's own
        # record holds what it (wrongly) relayed.
        assert mine.ciphertext_sha256 != theirs.ciphertext_sha256
        assert "alters every answer it relays" in b.output()
    finally:
        b.terminate()


def test_the_hash_in_the_ledger_is_of_the_relayed_ciphertext(box: RunningBox) -> None:
    """A requester can prove what it received: SHA-256 of the sealed bytes = the 提供 record's."""
    rows = [e for e in _exchanges(box, MINISTER) if e.outcome == "provided"]
    by_seq = {x.sequence: x for x in _records(box)}
    for e in rows:
        provision = next(x for x in by_seq.values() if x.kind == "provision" and x.inquiry_sequence ==
                         e.ledger_sequence)
        assert provision.ciphertext_sha256 == e.ciphertext_sha256
    assert rows and hashlib.sha256(b"").digest() not in {e.ciphertext_sha256 for e in rows}

