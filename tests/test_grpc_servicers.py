"""The handler code of the servicers whose engines are wired later (linkage, oversight, admin,
disclosure), run in-process over real mutual TLS against recording test doubles of the engine
interfaces: the caller comes from the certificate, limits are enforced before the engine is
called, engine refusals become the right status, page tokens round-trip. Also: shutdown hooks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from renkei import client
from renkei._proto.renkei.v1 import admin_service_pb2 as apb
from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import oversight_service_pb2 as opb
from renkei.datadir import DataDir
from renkei.errors import NotFoundError, PermissionDeniedError, UnauthenticatedError
from renkei.service import engines as e
from renkei.service.server import RenkeiServer, ServerConfig
from renkei.service.status import error_info

T = 10
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PERMIT = e.Permit(b"body", b"s" * 64, "permit-1")


class ForeignCodeError(PermissionDeniedError):
    reason = "CODE_REFUSED"


class Linkage:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def acquire_code(self, agency_id: int, number: str, acquisition: bytes) -> bytes:
        self.calls.append(("acquire", agency_id, number))
        return agency_id.to_bytes(16, "big")

    def acquire_codes(self, agency_id: int, numbers: Any) -> bytes:
        return b"".join(int(n).to_bytes(16, "big") for n in numbers)

    def release_holding(self, agency_id: int, code: bytes) -> None:
        raise NotFoundError("the agency holds no such person")

    def inquire(
        self, requester: int, code: bytes, affair: str, provider: int, items: Sequence[str], request_id: str
    ) -> e.InquiryResult:
        self.calls.append(("inquire", requester, affair, provider, tuple(items)))
        if code != requester.to_bytes(16, "big"):
            raise ForeignCodeError("the code was not issued to the requester")
        return e.InquiryResult(PERMIT, provider.to_bytes(16, "big"), 41, NOW)

    def batch_inquire(
        self, requester: int, codes: bytes, affair: str, provider: int, items: Sequence[str], request_id: str
    ) -> e.BatchInquiryResult:
        n = len(codes) // 16
        self.calls.append(("batch", requester, n))
        return e.BatchInquiryResult(PERMIT, bytes(16 * n), bytes(n), 100, NOW)

    def public_keys(self) -> Sequence[e.PublicKeyInfo]:
        return [e.PublicKeyInfo("permit-1", "permit", "ed25519", b"k" * 32, NOW)]


def _record(seq: int) -> e.RecordInfo:
    return e.RecordInfo(seq, NOW, 1, 3, "2-1", ["item"], b"h" * 32, "permitted", b"p", b"x", False, b"leaf")


class Oversight:
    def latest_checkpoint(self) -> e.CheckpointInfo:
        return e.CheckpointInfo(b"note", "renkei.example/ledger", 10, b"r" * 32)

    def checkpoint_at(self, tree_size: int) -> e.CheckpointInfo:
        return self.latest_checkpoint()

    def consistency_proof(self, first: int, second: int) -> Sequence[bytes]:
        return [b"c" * 32]

    def inclusion_proof(self, leaf: int, size: int | None) -> e.InclusionProofInfo:
        return e.InclusionProofInfo(leaf, size or 10, b"l" * 32, [b"a" * 32])

    def records(
        self, agency: int | None, start: datetime | None, end: datetime | None, after: int, limit: int
    ) -> Sequence[e.RecordInfo]:
        return [_record(s) for s in range(after + 1, 10)][:limit]

    def agency_statistics(
        self, agency: int, start: datetime | None, end: datetime | None
    ) -> e.AgencyStatisticsInfo:
        return e.AgencyStatisticsInfo(agency, 5, 1, 2, [("2-1", 5, 1)], {"CODE_REFUSED": 1})


class Admin:
    def __init__(self) -> None:
        self.agencies: dict[int, e.AgencyInfo] = {}

    def create_agency(self, name: str, type_ids: Sequence[str], lg: str, corporate_number: str = "") -> e.AgencyInfo:
        a = e.AgencyInfo(100 + len(self.agencies), name, list(type_ids), lg, "not_submitted", NOW)
        self.agencies[a.agency_id] = a
        return a

    def get_agency(self, agency_id: int) -> e.AgencyInfo:
        if agency_id not in self.agencies:
            raise NotFoundError("no such agency")
        return self.agencies[agency_id]

    def list_agencies(self, after: int, limit: int) -> Sequence[e.AgencyInfo]:
        return [a for i, a in sorted(self.agencies.items()) if i > after][:limit]

    def set_pia_status(self, agency_id: int, status: str) -> e.AgencyInfo:
        a = self.get_agency(agency_id)
        self.agencies[agency_id] = e.AgencyInfo(
            a.agency_id, a.name, a.type_ids, a.local_government_code, status, a.created_at
        )
        return self.agencies[agency_id]

    def load(self, table: bytes, start: str, end: str, description: str) -> e.TableVersionInfo:
        return e.TableVersionInfo("ab" * 32, start, end, 259, NOW, description)

    def versions(self) -> Sequence[e.TableVersionInfo]:
        return [self.load(b"", "2015-10-05", "", "")]

    def diff(self, a: str, b: str) -> tuple[Sequence[e.PermissionRowInfo], Sequence[e.PermissionRowInfo]]:
        return [e.PermissionRowInfo("municipal_mayor", "9-1", "japan_pension_service", "pension")], []


class Disclosure:
    def create_challenge(self, key: bytes) -> e.ChallengeInfo:
        return e.ChallengeInfo(b"c" * 32, NOW)

    def login(self, key: bytes, challenge: bytes, signature: bytes) -> e.SessionInfo:
        return e.SessionInfo("tok", NOW)

    def my_records(self, token: str, before: int | None, limit: int) -> e.DisclosurePage:
        if token != "tok":
            raise UnauthenticatedError("unknown session")
        proof = e.InclusionProofInfo(3, 10, b"l" * 32, [])
        return e.DisclosurePage([(_record(3), proof)], Oversight().latest_checkpoint(), 3)


def _fails(code: grpc.StatusCode, reason: str | None = None) -> Any:
    class Check:
        def __enter__(self) -> None:
            pass

        def __exit__(self, typ: Any, exc: Any, tb: Any) -> bool:
            assert isinstance(exc, grpc.aio.AioRpcError), f"expected {code}, got {exc!r}"
            assert exc.code() is code, (exc.code(), exc.details())
            if reason is not None:
                assert error_info(exc).reason == reason  # type: ignore[union-attr,arg-type]
            return True

    return Check()


def test_servicers_over_mtls_with_engine_doubles(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    server = RenkeiServer(ServerConfig(data, port=0, public_port=0, metrics_port=0, grace_seconds=2))
    for role, name in [("oversight", "個人情報保護委員会"), ("operator", "op")]:
        server.ca.issue_client_certificate(role, name)
    server.ca.issue_agency_certificate(1, "千代田区長")
    server.auth._reload()
    linkage, admin = Linkage(), Admin()
    server.add_linkage(linkage)
    server.add_oversight(Oversight())
    server.add_admin(admin, admin)
    server.add_disclosure(Disclosure())
    flushed: list[bool] = []
    server.add_shutdown_hook(lambda: flushed.append(True))
    await server.start()
    target = f"localhost:{server.bound_port}"
    try:
        async with client.agency_channel(1, data_dir=data.path, target=target, aio=True) as ch:
            s = client.LinkageServiceStub(ch)
            code = (
                await s.AcquireCode(
                    lpb.AcquireCodeRequest(individual_number="621498320257", acquisition_number=b"a" * 16),
                    timeout=T,
                )
            ).agency_code
            assert code == (1).to_bytes(16, "big") and linkage.calls[0] == ("acquire", 1, "621498320257")
            r = await s.Inquire(
                lpb.InquireRequest(
                    agency_code=code, affair="2-1", provider_agency_id=3, information_items=["item"]
                ),
                timeout=T,
            )
            assert r.record_sequence == 41 and r.permit.key_id == "permit-1"
            assert r.expires_at.ToDatetime(tzinfo=UTC) == NOW
            assert linkage.calls[-1] == ("inquire", 1, "2-1", 3, ("item",))  # requester from the certificate
            with _fails(grpc.StatusCode.PERMISSION_DENIED, "CODE_REFUSED"):
                await s.Inquire(
                    lpb.InquireRequest(
                        agency_code=b"\1" * 16, affair="2-1", provider_agency_id=3, information_items=["item"]
                    ),
                    timeout=T,
                )
            with _fails(grpc.StatusCode.INVALID_ARGUMENT):
                await s.Inquire(
                    lpb.InquireRequest(agency_code=code, affair="2-1", provider_agency_id=3), timeout=T
                )
            b = await s.BatchInquire(
                lpb.BatchInquireRequest(
                    agency_codes=code * 1000, affair="2-1", provider_agency_id=3, information_items=["i"]
                ),
                timeout=T,
            )
            assert len(b.outcomes) == 1000 and linkage.calls[-1] == ("batch", 1, 1000)
            before = len(linkage.calls)
            with _fails(grpc.StatusCode.RESOURCE_EXHAUSTED, "BATCH_TOO_LARGE"):
                await s.BatchInquire(
                    lpb.BatchInquireRequest(
                        agency_codes=code * 100_001,
                        affair="2-1",
                        provider_agency_id=3,
                        information_items=["i"],
                    ),
                    timeout=T,
                )
            assert len(linkage.calls) == before  # refused before the engine
            with _fails(grpc.StatusCode.NOT_FOUND):
                await s.ReleaseHolding(lpb.ReleaseHoldingRequest(agency_code=code), timeout=T)
            assert (await s.GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T)).keys[
                0
            ].algorithm == "ed25519"
            with _fails(grpc.StatusCode.PERMISSION_DENIED):
                await client.OversightServiceStub(ch).GetLatestCheckpoint(
                    opb.GetLatestCheckpointRequest(), timeout=T
                )

        async with client.principal_channel("oversight", data_dir=data.path, target=target, aio=True) as ch:
            o = client.OversightServiceStub(ch)
            assert (await o.GetLatestCheckpoint(opb.GetLatestCheckpointRequest(), timeout=T)).tree_size == 10
            with _fails(grpc.StatusCode.INVALID_ARGUMENT):
                await o.GetConsistencyProof(
                    opb.GetConsistencyProofRequest(first_size=5, second_size=4), timeout=T
                )
            seen, token = [], ""
            while True:
                page = await o.ListRecords(
                    opb.ListRecordsRequest(agency_id=1, page_size=4, page_token=token), timeout=T
                )
                seen += [r.sequence for r in page.records]
                token = page.next_page_token
                if not token:
                    break
            assert seen == list(range(10))
            with _fails(grpc.StatusCode.INVALID_ARGUMENT):  # a token of another query
                await o.ListRecords(
                    opb.ListRecordsRequest(agency_id=2, page_token=token or "AAAAAAAAAAAAAAAAAAAAAA"),
                    timeout=T,
                )
            stats = await o.GetAgencyStatistics(opb.GetAgencyStatisticsRequest(agency_id=1), timeout=T)
            assert stats.denials_by_reason["CODE_REFUSED"] == 1 and stats.by_affair[0].affair == "2-1"
            with _fails(grpc.StatusCode.PERMISSION_DENIED):
                await client.LinkageServiceStub(ch).Inquire(lpb.InquireRequest(), timeout=T)

        async with client.principal_channel("operator", data_dir=data.path, target=target, aio=True) as ch:
            a = client.AdminServiceStub(ch)
            created = await a.CreateAgency(
                apb.CreateAgencyRequest(name="日本年金機構", type_ids=["japan_pension_service"]), timeout=T
            )
            assert (
                Path(created.certificate_path).exists() and created.pia_status == apb.PIA_STATUS_NOT_SUBMITTED
            )
            approved = await a.SetPiaStatus(
                apb.SetPiaStatusRequest(agency_id=created.agency_id, pia_status=apb.PIA_STATUS_APPROVED),
                timeout=T,
            )
            assert approved.pia_status == apb.PIA_STATUS_APPROVED
            listed = await a.ListAgencies(apb.ListAgenciesRequest(), timeout=T)
            assert [x.agency_id for x in listed.agencies] == [
                created.agency_id
            ] and not listed.next_page_token
            with _fails(grpc.StatusCode.NOT_FOUND):
                await a.GetAgency(apb.GetAgencyRequest(agency_id=999), timeout=T)
            with _fails(grpc.StatusCode.INVALID_ARGUMENT):
                await a.LoadPermissionTable(
                    apb.LoadPermissionTableRequest(table_json=b"[]", effective_from="x"), timeout=T
                )
            v = await a.LoadPermissionTable(
                apb.LoadPermissionTableRequest(table_json=b"[]", effective_from="2015-10-05"), timeout=T
            )
            diff = await a.DiffPermissionTables(
                apb.DiffPermissionTablesRequest(
                    from_version_hash=v.version_hash, to_version_hash=v.version_hash
                ),
                timeout=T,
            )
            assert diff.added[0].affair == "9-1"
        # The newly created agency can connect at once with its issued certificate.
        await asyncio.sleep(1.1)
        async with client.agency_channel(
            created.agency_id, data_dir=data.path, target=target, aio=True
        ) as ch:
            await client.LinkageServiceStub(ch).AcquireCode(
                lpb.AcquireCodeRequest(individual_number="621498320257", acquisition_number=b"b" * 16),
                timeout=T,
            )
            assert linkage.calls[-1][1] == created.agency_id

        async with client.public_channel(
            f"localhost:{server.bound_public_port}", data_dir=data.path, aio=True
        ) as ch:
            d = client.DisclosureServiceStub(ch)
            with _fails(grpc.StatusCode.INVALID_ARGUMENT):
                await d.CreateChallenge(dpb.CreateChallengeRequest(card_key_id=b"short"), timeout=T)
            login = await d.Login(
                dpb.LoginRequest(card_key_id=b"k" * 32, challenge=b"c" * 32, signature=b"s" * 64), timeout=T
            )
            with _fails(grpc.StatusCode.UNAUTHENTICATED):
                await d.ListMyRecords(dpb.ListMyRecordsRequest(), timeout=T)
            mine = await d.ListMyRecords(
                dpb.ListMyRecordsRequest(),
                timeout=T,
                metadata=[("authorization", f"Bearer {login.session_token}")],
            )
            assert (
                mine.records[0].record.sequence == 3
                and mine.checkpoint.tree_size == 10
                and mine.next_page_token
            )
            with _fails(grpc.StatusCode.UNAUTHENTICATED):  # agency-only service on the public port
                await client.LinkageServiceStub(ch).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T)
    finally:
        await server.stop()
    assert flushed == [True]


@pytest.mark.parametrize("role", ["agency", "bogus"])
def test_agency_certificates_need_an_id_and_roles_are_closed(tmp_path: Path, role: str) -> None:
    from renkei.errors import InvalidArgumentError
    from renkei.pki.ca import DevelopmentCA

    ca = DevelopmentCA(tmp_path)
    with pytest.raises(InvalidArgumentError):
        ca.issue_client_certificate(role, "x")
    assert oct((tmp_path / "pki" / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "pki" / "server.key").stat().st_mode & 0o777) == "0o600"
