"""The commission's PIA review end to end across the real processes of ``renkei up --demo``: the demo
agencies come up approved through the commission's path; a new agency submits, is returned, revises,
is approved and revoked, each decision reaching the core (which admits or refuses it) and visible to
the agency with proofs; nobody but the commission can set a PIA's state at the core."""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from collections.abc import Callable, Iterator

import grpc
import pytest

from renkei import client
from renkei._proto.renkei.v1 import admin_service_pb2 as A
from renkei._proto.renkei.v1 import linkage_service_pb2 as L
from renkei._proto.renkei.v1 import pia_decision_service_pb2 as D
from renkei._proto.renkei.v1 import pia_review_service_pb2 as R
from renkei._proto.renkei.v1.pia_decision_service_pb2_grpc import PiaDecisionServiceStub
from renkei._proto.renkei.v1.pia_review_service_pb2_grpc import PiaReviewServiceStub
from renkei.datadir import DataDir
from renkei.errors import PiaNotApprovedError
from renkei.ledger import verify_checkpoint, verify_inclusion
from renkei.linkage.registry import AgencyRegistry
from renkei.pki.ca import DevelopmentCA, ServiceTls
from renkei.ppc.review import LOG_ORIGIN, leaf_hash
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box

T = 30


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    b = start_box(tmp_path_factory.mktemp("ppcbox") / "box")
    yield b
    code, out = b.terminate()
    assert code == 0, out


def ppc(box: RunningBox, principal: str, method: str, request: object) -> object:
    with box.channel(principal, "ppc") as ch:
        return getattr(PiaReviewServiceStub(ch), method)(request, timeout=T)


def reserve(box: RunningBox, agency: int) -> str:
    """"ok" or the refusal's reason token, for a call the core admits only with an approved PIA."""
    with box.channel(f"agency-{agency}") as ch:
        try:
            client.LinkageServiceStub(ch).ReserveAcquisitionNumbers(L.ReserveAcquisitionNumbersRequest(count=1),
                                                                    timeout=T)
            return "ok"
        except grpc.RpcError as e:
            info = error_info(e)
            return info.reason if info else e.code().name


def eventually(check: Callable[[], bool], what: str, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_the_demo_agencies_are_approved_through_the_commission(box: RunningBox) -> None:
    assert box.service("ppc")["grpc"]
    listed = ppc(box, "oversight", "ListPias", R.ListPiasRequest())
    assert {(p.agency_id, p.state) for p in listed.pias} >= {(a, R.PIA_STATE_APPROVED) for a in range(1, 8)}
    assert reserve(box, 4) == "ok"
    with AgencyRegistry(DataDir(box.root / "core", "core"), read_only=True) as registry:
        assert registry.commission is not None and registry.commission.vkey.startswith(LOG_ORIGIN + "+")
        assert registry.commission.in_force(4, dt.date.today()) is not None
        assert registry.pias(4) == []  # nothing of the core's own


def test_submit_return_revise_approve_revoke_flows_to_the_core(box: RunningBox) -> None:
    with box.channel("operator") as ch:
        agency = client.AdminServiceStub(ch).CreateAgency(A.CreateAgencyRequest(
            name="テスト町長", type_ids=["municipal_mayor"], local_government_code="131024"), timeout=T)
    DevelopmentCA(box.pki).issue_agency_certificate(agency.agency_id, "テスト町長")
    me = f"agency-{agency.agency_id}"
    assert reserve(box, agency.agency_id) == "PIA_NOT_APPROVED"
    doc = hashlib.sha256("全項目評価書 第1版".encode()).digest()
    first = ppc(box, me, "SubmitPia", R.SubmitPiaRequest(level=R.PIA_LEVEL_FULL, title="住民基本台帳事務 全項目評価書",
                                                         files=["住民基本台帳ファイル"], linked_data=["住民票関係情報"],
                                                         document_sha256=doc))
    assert first.state == R.PIA_STATE_SUBMITTED and first.agency_id == agency.agency_id  # from the certificate
    # An agency sees its own PIAs only; it cannot decide; a reviewer cannot submit.
    own = ppc(box, me, "ListPias", R.ListPiasRequest())
    assert [p.pia_id for p in own.pias] == [first.pia_id]
    with pytest.raises(grpc.RpcError) as e:
        ppc(box, me, "GetPia", R.GetPiaRequest(pia_id=1))
    assert e.value.code() is grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as e:
        ppc(box, me, "DecidePia", R.DecidePiaRequest(pia_id=first.pia_id, kind=R.PIA_DECISION_KIND_APPROVED,
                                                     expires_on="2030-01-01"))
    assert e.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as e:
        ppc(box, "oversight", "SubmitPia", R.SubmitPiaRequest(level=R.PIA_LEVEL_FULL, title="x", files=["f"],
                                                              document_sha256=doc))
    assert e.value.code() is grpc.StatusCode.PERMISSION_DENIED
    returned = ppc(box, "oversight", "DecidePia", R.DecidePiaRequest(
        pia_id=first.pia_id, kind=R.PIA_DECISION_KIND_RETURNED, reason="しきい値評価の記載が不足しています"))
    assert returned.state == R.PIA_STATE_RETURNED
    assert ppc(box, me, "GetPia", R.GetPiaRequest(pia_id=first.pia_id)).reason == "しきい値評価の記載が不足しています"
    second = ppc(box, me, "SubmitPia", R.SubmitPiaRequest(level=R.PIA_LEVEL_FULL, title="住民基本台帳事務 全項目評価書",
                                                          files=["住民基本台帳ファイル"], document_sha256=doc,
                                                          revises=first.pia_id))
    until = (dt.date.today() + dt.timedelta(days=700)).isoformat()
    ppc(box, "oversight", "DecidePia", R.DecidePiaRequest(pia_id=second.pia_id, kind=R.PIA_DECISION_KIND_APPROVED,
                                                          expires_on=until))
    eventually(lambda: reserve(box, agency.agency_id) == "ok", "the core never admitted the approved agency")
    with box.channel("operator") as ch:
        shown = client.AdminServiceStub(ch).GetAgency(A.GetAgencyRequest(agency_id=agency.agency_id), timeout=T)
    assert shown.pia_status == A.PIA_STATUS_APPROVED
    # Every decision is visible to the agency, each with its proof against the signed checkpoint.
    seen = ppc(box, me, "ListPiaDecisions", R.ListPiaDecisionsRequest())
    cp = verify_checkpoint(seen.checkpoint, seen.vkey, LOG_ORIGIN)
    assert [(d.pia_id, d.kind) for d in seen.decisions] == [
        (first.pia_id, R.PIA_DECISION_KIND_SUBMITTED), (first.pia_id, R.PIA_DECISION_KIND_RETURNED),
        (second.pia_id, R.PIA_DECISION_KIND_SUBMITTED), (second.pia_id, R.PIA_DECISION_KIND_APPROVED)]
    for d in seen.decisions:
        verify_inclusion(d.sequence, cp.size, leaf_hash(d.entry), list(d.inclusion_proof), cp.root)
    assert seen.decisions[3].expires_on == until and {d.agency_id for d in seen.decisions} == {agency.agency_id}
    # Revoked: the core refuses the agency from its next call (the admission cache lasts 2 s at most).
    ppc(box, "oversight", "DecidePia", R.DecidePiaRequest(pia_id=second.pia_id, kind=R.PIA_DECISION_KIND_REVOKED,
                                                          reason="安全管理措置の重大な不備"))
    eventually(lambda: reserve(box, agency.agency_id) == "PIA_NOT_APPROVED", "the core still admits a revoked PIA")


def test_nobody_but_the_commission_sets_a_pia_at_the_core(box: RunningBox) -> None:
    # The operator's old method is gone.
    with box.channel("operator") as ch:
        gone = ch.unary_unary("/renkei.v1.AdminService/SetPiaStatus", request_serializer=lambda b: b,
                              response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            gone(b"\x08\x01\x10\x03", timeout=T)
    assert e.value.code() is grpc.StatusCode.UNIMPLEMENTED
    # PiaDecisionService takes the commission's service only, and only what its key signed.
    request = D.ApplyPiaDecisionsRequest(checkpoint="x", decisions=[])
    for principal in ("operator", "oversight", "agency-4"):
        with box.channel(principal) as ch, pytest.raises(grpc.RpcError) as e:
            PiaDecisionServiceStub(ch).ApplyPiaDecisions(request, timeout=T)
        assert e.value.code() is grpc.StatusCode.PERMISSION_DENIED
    tls = ServiceTls(box.root / "ppc" / "tls")
    creds = grpc.ssl_channel_credentials(tls.ca.read_bytes(), tls.client_key.read_bytes(), tls.client_cert.read_bytes())
    with grpc.secure_channel(box.target("core"), creds) as ch, pytest.raises(grpc.RpcError) as e:
        PiaDecisionServiceStub(ch).ApplyPiaDecisions(request, timeout=T)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT  # an unsigned "checkpoint"
    # The core's registry refuses a PIA set at the core itself.
    with AgencyRegistry(DataDir(box.root / "core", "core")) as registry:
        with pytest.raises(Exception, match="commission"):
            registry.add_pia(5, "x", approved_on=dt.date.today(), expires_on=dt.date.today())
        with pytest.raises(PiaNotApprovedError):
            registry.require_active(8)  # the revoked one above (after the 7 demo agencies)
