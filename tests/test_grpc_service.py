"""NumberService (J-LIS), CorporateNumberService (NTA), mTLS identity, errors, health, reflection,
metrics: against a real box (``renkei up``, each service its own process) on loopback with real TLS."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renkei import CorporateNumberRegistry, client, numbers
from renkei._proto.renkei.v1 import corporate_number_service_pb2 as cpb
from renkei._proto.renkei.v1 import linkage_service_pb2 as lpb
from renkei._proto.renkei.v1 import number_service_pb2 as npb
from renkei.pki.ca import DevelopmentCA
from renkei.service.status import error_info
from tests.grpc_server import RunningBox, start_box

T = 10  # seconds: every call gets a deadline


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBox]:
    root = tmp_path_factory.mktemp("grpc") / "box"
    with CorporateNumberRegistry.init(root / "nta") as nta:  # published before the box starts
        nta.assign(
            name="デジタル庁",
            kind="101",
            furigana="デジタルチョウ",
            en_name="Digital Agency",
            prefecture_code="13",
            prefecture_name="東京都",
            city_name="千代田区",
            assignment_date="2021-09-01",
        )
        nta.assign(
            name="株式会社テスト商事",
            kind="301",
            base="010401000001",
            furigana="テストショウジ",
            prefecture_code="27",
            assignment_date="2022-04-01",
        )
        nta.change_name("2010401000001", name="株式会社新テスト商事", change_date="2023-05-01")
    s = start_box(root)
    yield s
    _rc, out = s.terminate()
    print(out)


def _code(e: grpc.RpcError) -> grpc.StatusCode:
    return e.code()  # type: ignore[no-any-return]


def _reason(e: grpc.RpcError) -> str:
    info = error_info(e)
    assert info is not None, f"no ErrorInfo in {e}"
    assert info.domain == "renkei"
    return info.reason


# -- corporate numbers: public, no client certificate ----------------------------------------------


def test_corporate_lookups_need_no_client_certificate(server: RunningBox) -> None:
    with server.public("nta") as ch:
        stub = client.CorporateNumberServiceStub(ch)
        page = stub.SearchCorporations(cpb.SearchCorporationsRequest(name="でじたる"), timeout=T)
        assert page.total_count == 1 and page.corporations[0].name == "デジタル庁"
        number = page.corporations[0].corporate_number
        assert numbers.is_valid_corporate_number(number)
        got = stub.BatchGetCorporations(
            cpb.BatchGetCorporationsRequest(corporate_numbers=[number]), timeout=T
        )
        assert [c.en_name for c in got.corporations] == ["Digital Agency"] and got.corporations[0].latest
        hist = stub.BatchGetCorporations(
            cpb.BatchGetCorporationsRequest(corporate_numbers=["2010401000001"], include_history=True),
            timeout=T,
        )
        assert [(c.process, c.latest) for c in hist.corporations] == [("01", False), ("11", True)]
        former = stub.SearchCorporations(
            cpb.SearchCorporationsRequest(
                name="株式会社テスト", target=cpb.NAME_TARGET_EXACT, include_former_names=True
            ),
            timeout=T,
        )
        assert [c.name for c in former.corporations] == ["株式会社新テスト商事"]
        assert (
            stub.SearchCorporations(
                cpb.SearchCorporationsRequest(name="株式会社テスト", target=cpb.NAME_TARGET_EXACT), timeout=T
            ).total_count
            == 0
        )
        changes = stub.ListCorporationChanges(
            cpb.ListCorporationChangesRequest(from_date="2000-01-01", to_date="2999-12-31", kinds=["301"]),
            timeout=T,
        )
        assert changes.total_count == 2 and changes.page == 1 and changes.page_count == 1
        with pytest.raises(grpc.RpcError) as e:
            stub.BatchGetCorporations(
                cpb.BatchGetCorporationsRequest(corporate_numbers=["1234567890123"]), timeout=T
            )
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT and _reason(e.value) == "INVALID_NUMBER"
        with pytest.raises(grpc.RpcError) as e:
            stub.BatchGetCorporations(
                cpb.BatchGetCorporationsRequest(corporate_numbers=[number] * 11), timeout=T
            )
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT


def test_each_port_serves_and_lists_only_its_own_services(server: RunningBox) -> None:
    def listed(ch: grpc.Channel) -> set[str]:
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T))
        return {s.name for s in replies[0].list_services_response.service} - {
            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}

    with server.public("nta") as ch:
        assert listed(ch) == {"renkei.v1.CorporateNumberService"}
        page = client.CorporateNumberServiceStub(ch).SearchCorporations(
            cpb.SearchCorporationsRequest(name="digital", target=cpb.NAME_TARGET_ENGLISH), timeout=T
        )
        assert page.total_count == 1
    with server.public("core") as ch:
        assert listed(ch) == {"renkei.v1.DisclosureService"}
    with server.channel("operator", "core") as ch:
        assert listed(ch) == {"renkei.v1.LinkageService", "renkei.v1.OversightService", "renkei.v1.AdminService",
                              "renkei.v1.PersonLinkService", "renkei.v1.ProvisionService",
                              "renkei.v1.PiaDecisionService"}
    with server.channel("operator", "jlis") as ch:
        assert listed(ch) == {"renkei.v1.NumberService", "renkei.v1.PersonInfoService", "renkei.v1.CardService"}
        with pytest.raises(grpc.RpcError) as e:  # the core's services are not J-LIS's
            client.LinkageServiceStub(ch).GetPublicKeys(lpb.GetPublicKeysRequest(), timeout=T)
        assert _code(e.value) is grpc.StatusCode.UNIMPLEMENTED


# -- NumberService with J-LIS and agency certificates -------------------------------------------------


def test_number_service_as_jlis(server: RunningBox) -> None:
    with server.channel("jlis", "jlis") as ch:
        stub = client.NumberServiceStub(ch)
        first = stub.AssignNumber(
            npb.AssignNumberRequest(resident_code="24727059608"), timeout=T
        ).individual_number
        assert numbers.is_valid_individual_number(first)
        again = stub.AssignNumber(npb.AssignNumberRequest(resident_code="2472-7059-608"), timeout=T)
        assert again.individual_number == first
        status = stub.GetNumberStatus(npb.GetNumberStatusRequest(individual_number=first), timeout=T)
        assert status.state == npb.NumberStatus.STATE_CURRENT
        new = stub.ChangeNumber(
            npb.ChangeNumberRequest(individual_number=first, change_date="2026-01-05"), timeout=T
        ).individual_number
        assert new != first and numbers.is_valid_individual_number(new)
        assert (
            stub.GetNumberStatus(npb.GetNumberStatusRequest(individual_number=first), timeout=T).state
            == npb.NumberStatus.STATE_FORMER
        )
        with pytest.raises(grpc.RpcError) as e:
            stub.ChangeNumber(npb.ChangeNumberRequest(individual_number=first), timeout=T)
        assert _code(e.value) is grpc.StatusCode.FAILED_PRECONDITION
        unknown = next(
            f"{b:011d}{numbers.individual_check_digit(f'{b:011d}')}"
            for b in range(10**10, 10**11)
            if f"{b:011d}{numbers.individual_check_digit(f'{b:011d}')}" not in (first, new)
        )
        with pytest.raises(grpc.RpcError) as e:
            stub.GetNumberStatus(npb.GetNumberStatusRequest(individual_number=unknown), timeout=T)
        assert _code(e.value) is grpc.StatusCode.NOT_FOUND and _reason(e.value) == "NOT_FOUND"

        population = stub.RegisterTestPopulation(
            npb.RegisterTestPopulationRequest(count=2000, seed=7), timeout=30
        )
        nums = np.frombuffer(population.individual_numbers, dtype="<u8")
        assert len(nums) == 2000 and len(np.unique(nums)) == 2000
        assert numbers.validate_individual_numbers(nums.astype(np.uint64)).all()
        same = stub.RegisterTestPopulation(npb.RegisterTestPopulationRequest(count=2000, seed=7), timeout=30)
        assert same.individual_numbers == population.individual_numbers  # registered once, same numbers

        codes = np.array([24727059608, 24727059608], dtype="<u8")
        batch = stub.BatchAssignNumbers(
            npb.BatchAssignNumbersRequest(resident_codes=codes.tobytes()), timeout=T
        )
        assert np.frombuffer(batch.individual_numbers, dtype="<u8").tolist() == [int(new)] * 2
        with pytest.raises(grpc.RpcError) as e:
            stub.BatchAssignNumbers(
                npb.BatchAssignNumbersRequest(resident_codes=b"\0" * (8 * 100_001)), timeout=T
            )
        assert _code(e.value) is grpc.StatusCode.RESOURCE_EXHAUSTED and _reason(e.value) == "BATCH_TOO_LARGE"
        with pytest.raises(grpc.RpcError) as e:
            stub.AssignNumber(npb.AssignNumberRequest(resident_code="24727059609"), timeout=T)
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT and _reason(e.value) == "INVALID_NUMBER"
        assert error_info(e.value).metadata["problem"] == "wrong_check_digit"  # type: ignore[union-attr]


def test_agency_may_validate_but_not_assign(server: RunningBox) -> None:
    with server.channel("agency-1", "jlis") as ch:
        stub = client.NumberServiceStub(ch)
        res = stub.ValidateNumbers(
            npb.ValidateNumbersRequest(
                kind=npb.NUMBER_KIND_INDIVIDUAL,
                numbers=["6214 9832 0257", "621498320258", "12", "６２１４９８３２０２５７"],
            ),
            timeout=T,
        )
        assert [(r.valid, r.problem) for r in res.results] == [
            (True, ""),
            (False, "wrong_check_digit"),
            (False, "wrong_length"),
            (True, ""),
        ]
        with pytest.raises(grpc.RpcError) as e:
            stub.AssignNumber(npb.AssignNumberRequest(resident_code="24727059608"), timeout=T)
        assert _code(e.value) is grpc.StatusCode.PERMISSION_DENIED and _reason(e.value) == "PERMISSION_DENIED"
        with pytest.raises(grpc.RpcError) as e:
            stub.ValidateNumbers(npb.ValidateNumbersRequest(numbers=["1"]), timeout=T)
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT


# -- authentication ---------------------------------------------------------------------------------


def test_public_port_calls_needing_identity_are_unauthenticated(server: RunningBox) -> None:
    from renkei._proto.renkei.v1 import disclosure_service_pb2 as dpb

    with server.public("core") as ch, pytest.raises(grpc.RpcError) as e:
        client.DisclosureServiceStub(ch).ListMyRecords(dpb.ListMyRecordsRequest(), timeout=T)
    assert _code(e.value) is grpc.StatusCode.UNAUTHENTICATED and _reason(e.value) == "UNAUTHENTICATED"


def _refused_at_handshake(server: RunningBox, creds: grpc.ChannelCredentials) -> grpc.RpcError:
    with grpc.secure_channel(server.target("jlis"), creds) as ch, pytest.raises(grpc.RpcError) as e:
        client.NumberServiceStub(ch).ValidateNumbers(
            npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_INDIVIDUAL, numbers=["621498320257"]), timeout=T
        )
    return e.value


def test_mtls_port_refuses_callers_without_a_certificate_of_the_ca(
    server: RunningBox, tmp_path: Path
) -> None:
    ca = (server.pki / "ca.pem").read_bytes()
    # grpcio's server credentials can only require-and-verify a client certificate, so these
    # callers are refused by the TLS handshake itself and never reach a handler.
    e = _refused_at_handshake(server, grpc.ssl_channel_credentials(ca))
    assert _code(e) is grpc.StatusCode.UNAVAILABLE
    foreign = DevelopmentCA.init(tmp_path / "other").issue_agency_certificate(1, "千代田区長")
    e = _refused_at_handshake(
        server,
        grpc.ssl_channel_credentials(ca, foreign.private_key.read_bytes(), foreign.certificate.read_bytes()),
    )
    assert _code(e) is grpc.StatusCode.UNAVAILABLE


def test_replaced_certificate_is_unauthenticated(server: RunningBox, tmp_path: Path) -> None:
    ca = DevelopmentCA(server.pki)
    old = ca.client("agency-6")
    saved = tmp_path / "old"
    saved.mkdir()
    (saved / "cert.pem").write_bytes(old.certificate.read_bytes())
    (saved / "key.pem").write_bytes(old.private_key.read_bytes())
    ca.issue_agency_certificate(6, "東京都知事")  # re-issue: the old certificate is revoked (crl.pem)
    import time

    time.sleep(1.2)  # the services re-read the CRL at most once a second
    with (
        client.mtls_channel(
            server.target("jlis"), certificate=saved / "cert.pem", private_key=saved / "key.pem",
            ca=ca.ca_cert_path
        ) as ch,
        pytest.raises(grpc.RpcError) as e,
    ):
        client.NumberServiceStub(ch).ValidateNumbers(
            npb.ValidateNumbersRequest(  # type: ignore[arg-type]
                kind=npb.NUMBER_KIND_INDIVIDUAL, numbers=["621498320257"]
            ),
            timeout=T,
        )
    assert _code(e.value) is grpc.StatusCode.UNAUTHENTICATED
    with server.channel("agency-6", "jlis") as ch:
        assert (
            client.NumberServiceStub(ch)
            .ValidateNumbers(
                npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_INDIVIDUAL, numbers=["621498320257"]),
                timeout=T,
            )
            .results[0]
            .valid
        )


# -- malformed requests, health, reflection, metrics -------------------------------------------------


def test_undecodable_request_bytes_are_invalid_argument(server: RunningBox) -> None:
    with server.channel("jlis", "jlis") as ch:
        raw = ch.unary_unary("/renkei.v1.NumberService/AssignNumber")
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\x0a\x05\xff\xfe\xfd\xfc\xfb", timeout=T)  # field 1 (string) that is not UTF-8
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT and _reason(e.value) == "MALFORMED_REQUEST"
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\x0a\xff", timeout=T)  # truncated length
        assert _code(e.value) is grpc.StatusCode.INVALID_ARGUMENT


def test_health_reflection_and_metrics(server: RunningBox) -> None:
    with server.public("nta") as ch:
        health = health_pb2_grpc.HealthStub(ch)
        for name in ("", "renkei.v1.CorporateNumberService"):
            assert (
                health.Check(health_pb2.HealthCheckRequest(service=name), timeout=T).status
                == health_pb2.HealthCheckResponse.SERVING
            )
        refl = reflection_pb2_grpc.ServerReflectionStub(ch)
        replies = list(
            refl.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=T
            )
        )
        names = {s.name for s in replies[0].list_services_response.service}
        assert {
            "renkei.v1.CorporateNumberService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        } <= names
        client.CorporateNumberServiceStub(ch).ListCorporationChanges(
            cpb.ListCorporationChangesRequest(from_date="2020-01-01", to_date="2020-01-02"), timeout=T
        )
    body = (
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port('nta')}/metrics", timeout=T).read().decode()
    )
    assert (
        'renkei_grpc_requests_total{method="/renkei.v1.CorporateNumberService/ListCorporationChanges",code="OK"}'
        in body
    )
    assert (
        'renkei_grpc_request_duration_seconds_bucket{method="/renkei.v1.CorporateNumberService/'
        'ListCorporationChanges",le="+Inf"}' in body
    )


# -- fuzz: thousands of malformed requests, never INTERNAL ---------------------------------------

_ALLOWED = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
}
_NUMBER_METHODS = [m.name for m in npb.DESCRIPTOR.services_by_name["NumberService"].methods]
_CORP_METHODS = [m.name for m in cpb.DESCRIPTOR.services_by_name["CorporateNumberService"].methods]
# 4,000 raw + 3,000 + 3,000 structured = 10,000 malformed or odd requests.
_FUZZ = settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_FUZZ_RAW = settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789０１２３４５６７８９ -‐－", max_size=16),
    st.sampled_from(["", "0", "2010401000001", "24727059608", "621498320257", "2023-02-30", "9999-99-99"]),
)


def _check(call: object, request: bytes) -> None:
    try:
        call(request, timeout=T)  # type: ignore[operator]
    except grpc.RpcError as e:
        assert _code(e) in _ALLOWED, (_code(e), e.details())
        _reason(e)  # every refusal carries an ErrorInfo


def _number_request(draw: st.DrawFn, method: str) -> bytes:
    big = st.integers(0, 2**32 - 1)
    msg: object
    if method in ("BatchAssignNumbers",):
        msg = npb.BatchAssignNumbersRequest(resident_codes=draw(st.binary(max_size=96)))
    elif method == "RegisterTestPopulation":  # valid sizes would register real people: keep to refusals
        msg = npb.RegisterTestPopulationRequest(
            count=draw(st.sampled_from([0, 100_001, 2**32 - 1])), seed=draw(big)
        )
    elif method == "ValidateNumbers":
        msg = npb.ValidateNumbersRequest(
            kind=draw(st.integers(0, 6)), numbers=draw(st.lists(_text, max_size=5))
        )
    elif method == "ChangeNumber":
        msg = npb.ChangeNumberRequest(individual_number=draw(_text), change_date=draw(_text))
    elif method == "GetNumberStatus":
        msg = npb.GetNumberStatusRequest(individual_number=draw(_text))
    else:
        msg = npb.AssignNumberRequest(resident_code=draw(_text))
    return msg.SerializeToString()  # type: ignore[attr-defined]


def _corp_request(draw: st.DrawFn, method: str) -> bytes:
    msg: object
    kinds = st.lists(st.one_of(st.sampled_from(["101", "301", "999", ""]), st.text(max_size=4)), max_size=3)
    pages = st.one_of(st.integers(0, 3), st.integers(0, 2**32 - 1))
    if method == "BatchGetCorporations":
        msg = cpb.BatchGetCorporationsRequest(
            corporate_numbers=draw(st.lists(_text, max_size=12)), include_history=draw(st.booleans())
        )
    elif method == "SearchCorporations":
        msg = cpb.SearchCorporationsRequest(
            name=draw(st.one_of(_text, st.text(min_size=250, max_size=300))),
            match=draw(st.integers(0, 4)),
            target=draw(st.integers(0, 5)),
            prefecture_code=draw(st.one_of(_text, st.just("13"))),
            kinds=draw(kinds),
            exclude_closed=draw(st.booleans()),
            include_former_names=draw(st.booleans()),
            page=draw(pages),
        )
    else:
        msg = cpb.ListCorporationChangesRequest(
            from_date=draw(_text),
            to_date=draw(_text),
            prefecture_code=draw(_text),
            kinds=draw(kinds),
            page=draw(pages),
        )
    return msg.SerializeToString()  # type: ignore[attr-defined]


def _served(server: RunningBox) -> tuple[int, str]:
    body = "".join(
        urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port(s)}/metrics", timeout=T).read().decode()
        for s in ("jlis", "nta")
    )
    lines = body.splitlines()
    return sum(
        int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("renkei_grpc_requests_total{")
    ), body


def test_fuzz_never_internal_and_server_stays_healthy(server: RunningBox) -> None:
    served_before, _ = _served(server)
    with server.channel("jlis", "jlis") as jlis, server.public("nta") as public:
        number_calls = {m: jlis.unary_unary(f"/renkei.v1.NumberService/{m}") for m in _NUMBER_METHODS}
        corp_calls = {m: public.unary_unary(f"/renkei.v1.CorporateNumberService/{m}") for m in _CORP_METHODS}
        every = [*number_calls.values(), *corp_calls.values()]

        @_FUZZ_RAW
        @given(st.integers(0, len(every) - 1), st.binary(max_size=64))
        def raw_bytes(which: int, data: bytes) -> None:
            _check(every[which], data)

        @_FUZZ
        @given(st.sampled_from(_NUMBER_METHODS), st.data())
        def number_fields(method: str, data: st.DataObject) -> None:
            _check(number_calls[method], _number_request(data.draw, method))

        @_FUZZ
        @given(st.sampled_from(_CORP_METHODS), st.data())
        def corporate_fields(method: str, data: st.DataObject) -> None:
            _check(corp_calls[method], _corp_request(data.draw, method))

        raw_bytes()
        number_fields()
        corporate_fields()

        health = health_pb2_grpc.HealthStub(public)
        assert (
            health.Check(health_pb2.HealthCheckRequest(), timeout=T).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        assert (
            client.CorporateNumberServiceStub(public)
            .SearchCorporations(cpb.SearchCorporationsRequest(name="デジタル"), timeout=T)
            .total_count
            == 1
        )
    served, body = _served(server)
    assert 'code="INTERNAL"' not in body and 'code="UNKNOWN"' not in body
    assert served - served_before >= 10_000  # every generated request reached a handler


def test_up_provisioned_keys_0600_and_pki_lists_them(server: RunningBox, tmp_path: Path) -> None:
    pki = server.pki
    keys = [pki / "ca.key", *pki.glob("clients/*/key.pem")]
    # CA; J-LIS, oversight, operator, seven demo agencies (the portal is agency 7), the six others' business
    # systems, the portal (toward the mids)
    assert len(keys) == 1 + 10 + 6 + 1
    service_keys = [*server.root.glob("*/tls/*.key"), *server.root.glob("*/keys/*.key"),
                    *server.root.glob("mid-*/tenants/*/key.pem"), *server.root.glob("portal/mid-client/key.pem"),
                    *server.root.glob("portal/agency/key.pem")]
    # server keys (core, J-LIS, NTA, the PIA review, two intermediate servers), client keys (J-LIS's, the PIA
    # review's), core keys (agency-code, permit, ledger, pseudonym, acquisition-number, disclosure-challenge),
    # J-LIS keys (number, link, query log, AP), the witness's key, the JPKI's card-reset key, the PIA review's
    # decision-log key, the six agencies' keys at their intermediate servers, the portal's toward the mids and its
    # agency key toward the core (あなたの情報)
    assert len(service_keys) == 6 + 2 + 6 + 4 + 1 + 1 + 1 + 6 + 1 + 1
    jpki_keys = list(server.root.glob("jpki/keys/*.pem"))
    assert len(jpki_keys) == 4  # the JPKI's two CA keys and two OCSP responder keys
    assert all(k.stat().st_mode & 0o777 == 0o600 for k in [*keys, *service_keys, *jpki_keys])
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "pki", "list", "--dir", str(pki)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "agency-4" in out and "厚生労働大臣" in out and str(pki / "ca.pem") in out
    bad = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "pki", "issue", "--dir", str(pki), "--name", "x"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "agency id" in bad.stderr
    missing = subprocess.run(
        [sys.executable, "-m", "renkei.cli", "pki", "list", "--dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 1 and "renkei pki init" in missing.stderr
    assert not (tmp_path / "none").exists()


def test_deadline_exceeded_and_no_deadline_both_handled(server: RunningBox) -> None:
    with server.channel("jlis", "jlis") as ch:
        stub = client.NumberServiceStub(ch)
        with pytest.raises(grpc.RpcError) as e:
            stub.RegisterTestPopulation(
                npb.RegisterTestPopulationRequest(count=100_000, seed=99), timeout=0.02
            )
        assert _code(e.value) is grpc.StatusCode.DEADLINE_EXCEEDED
        # A call without a deadline is served too (the server never assumes one).
        ok = stub.ValidateNumbers(
            npb.ValidateNumbersRequest(kind=npb.NUMBER_KIND_CORPORATE, numbers=["5835678256246"])
        )
        assert ok.results[0].valid
