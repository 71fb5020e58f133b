"""The portal's pieces without HTTP: session timeouts and single-use logins, the card reader's
answers, and how the card answer is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from renkei.errors import InvalidArgumentError
from renkei.portal.login import LoginRefused, parse_card_response
from renkei.portal.oauth import AuthorizationServer, Client, OAuthError, check_redirect_uri, s256
from renkei.portal.sessions import Sessions


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_sessions_end_after_idle_or_absolute_time() -> None:
    clock = Clock()
    s = Sessions(idle=60, absolute=300, clock=clock)
    a = s.create(b"p" * 32, "core-token")
    assert a.csrf and a.token != a.csrf
    for _ in range(4):  # active: each request restarts the idle clock ...
        clock.t += 59
        assert s.get(a.token) is a
    clock.t += 70  # ... but not past the absolute limit (306 s after the login)
    assert s.get(a.token) is None
    b = s.create(b"q" * 32, "t")
    clock.t += 61  # idle too long
    assert s.get(b.token) is None
    c = s.create(b"r" * 32, "t")
    s.end(c.token)
    assert s.get(c.token) is None and s.get(None) is None and s.get("nope") is None
    assert c.csrf_ok(c.csrf) and not c.csrf_ok(None) and not c.csrf_ok(c.csrf + "x")


def test_a_pending_login_is_taken_once_and_expires() -> None:
    clock = Clock()
    s = Sessions(clock=clock)
    key, p = s.begin_login(b"challenge")
    assert s.take_login(key) == p
    assert s.take_login(key) is None  # used
    key2, _p2 = s.begin_login(b"c2")
    clock.t += 121
    assert s.take_login(key2) is None  # expired
    assert s.take_login(None) is None


@pytest.mark.parametrize(("answer", "reason"), [
    ('{"result": "pin-locked"}', "pin_locked"),
    ('{"result": "wrong-pin", "remaining": "1"}', "wrong_pin"),
    ('{"result": "9"}', "reader_error"),
    ("[]", "malformed"),
    ("{", "malformed"),
    ('{"signature": "!!", "certificate": "AA=="}', "malformed"),
    ('{"signature": "", "certificate": "AA=="}', "malformed"),
    ("x" * 20000, "malformed"),
])
def test_card_answers_that_are_not_a_signature_are_refused(answer: str, reason: str) -> None:
    with pytest.raises(LoginRefused) as e:
        parse_card_response(answer)
    assert e.value.reason == reason and e.value.title and e.value.advice


def test_a_card_answer_is_read() -> None:
    assert parse_card_response('{"result": "0", "signature": "AAE=", "certificate": "AgM="}') == (b"\0\1", b"\2\3")


# -- 自己情報取得API: OAuth 2.0 authorization code + PKCE ------------------------------------------

def _server(clock: Clock) -> tuple[AuthorizationServer, Client]:
    app = Client("app-1", "家計簿アプリ", ("https://app.example/cb", "http://127.0.0.1:8123/cb"))
    return AuthorizationServer({app.client_id: app}.get, clock=clock), app


def _params(verifier: str, **kw: str) -> dict[str, str]:
    return {"client_id": "app-1", "redirect_uri": "https://app.example/cb", "response_type": "code",
            "scope": "records", "state": "xyz", "code_challenge": s256(verifier), "code_challenge_method": "S256",
            **kw}


VERIFIER = "v" * 43


def test_pkce_code_flow_and_its_refusals() -> None:
    clock = Clock()
    server, app = _server(clock)
    req = server.validate(_params(VERIFIER, scope="records notices records"))
    assert req.scopes == ("records", "notices") and req.client is app
    code = server.grant(req, "session-1")
    exchange = {"grant_type": "authorization_code", "code": code, "client_id": "app-1",
                "redirect_uri": "https://app.example/cb", "code_verifier": VERIFIER}
    alive = {"session-1": 900.0}.get
    t = server.exchange(exchange, alive)
    assert t.expires - clock.t == 300.0 and server.token(t.token, "notices").client is app
    with pytest.raises(OAuthError) as e:
        server.exchange(exchange, alive)  # a code is used once
    assert e.value.error == "invalid_grant"
    clock.t += 301
    with pytest.raises(OAuthError) as e:
        server.token(t.token, "records")  # short-lived
    assert e.value.error == "invalid_token"

    def refused(params: dict[str, str], change: dict[str, str], error: str, left: float | None = 900.0) -> None:
        code = server.grant(server.validate(params), "session-1")
        with pytest.raises(OAuthError) as e:
            server.exchange({**exchange, "code": code, **change}, {"session-1": left}.get)
        assert e.value.error == error

    refused(_params(VERIFIER), {"code_verifier": "w" * 43}, "invalid_grant")  # another verifier
    refused(_params(VERIFIER), {"code_verifier": "short"}, "invalid_grant")
    refused(_params(VERIFIER), {"redirect_uri": "http://127.0.0.1:8123/cb"}, "invalid_grant")
    refused(_params(VERIFIER), {"client_id": "app-2"}, "invalid_grant")
    refused(_params(VERIFIER), {"grant_type": "password"}, "unsupported_grant_type")
    refused(_params(VERIFIER), {}, "invalid_grant", left=None)  # the person logged out
    code = server.grant(server.validate(_params(VERIFIER)), "session-1")
    clock.t += 61
    with pytest.raises(OAuthError):
        server.exchange({**exchange, "code": code}, alive)  # codes live a minute
    # A token never outlives the person's session.
    t = server.exchange({**exchange, "code": server.grant(server.validate(_params(VERIFIER)), "session-1")},
                        {"session-1": 42.0}.get)
    assert t.expires - clock.t == 42.0
    with pytest.raises(OAuthError) as e:
        server.token(t.token, "notices")
    assert e.value.error == "insufficient_scope"


@pytest.mark.parametrize(("change", "error"), [
    ({"client_id": "nope"}, "invalid_client"),
    ({"redirect_uri": "https://evil.example/cb"}, "invalid_redirect_uri"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "records my_number"}, "invalid_scope"),
    ({"scope": ""}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge": "abc"}, "invalid_request"),
])
def test_authorization_requests_that_are_refused(change: dict[str, str], error: str) -> None:
    server, _app = _server(Clock())
    with pytest.raises(OAuthError) as e:
        server.validate(_params(VERIFIER, **change))
    assert e.value.error == error


@pytest.mark.parametrize("uri", ["http://app.example/cb", "https://app.example/cb#x", "ftp://a/b", "/relative"])
def test_redirect_uris_must_be_https_or_loopback(uri: str) -> None:
    with pytest.raises(InvalidArgumentError):
        check_redirect_uri(uri)
    assert check_redirect_uri("http://127.0.0.1:8123/cb") and check_redirect_uri("https://app.example/cb")


def test_self_info_sources_follow_the_entitlement_rows_and_the_agencies_types() -> None:
    from renkei.portal.self_info import Source, sources

    types = {1: ("municipal_mayor",), 3: ("japan_pension_service",), 4: ("mhlw_minister",),
             5: ("japan_health_insurance_association", "medical_insurers"), 7: ("information_disclosure_system",)}
    assert sources(types) == [Source(1, ("local_tax_info", "resident_record_info")),
                              Source(3, ("pension_benefit_info",)), Source(5, ("medical_insurance_benefit_info",))]
    assert sources({}) == [] and Source(3, ()).key == "a3"


@pytest.mark.parametrize(("reason", "code", "state"), [
    ("PROVIDER_NOT_HOLDING", "PERMISSION_DENIED", "not_holding"),
    ("PROVIDER_OFFLINE", "UNAVAILABLE", "unavailable"),
    ("PROVIDER_TIMED_OUT", "DEADLINE_EXCEEDED", "unavailable"),
    ("", "UNAVAILABLE", "unavailable"),
    ("ROW_NOT_PERMITTED", "PERMISSION_DENIED", "refused"),
    ("CODE_REFUSED", "PERMISSION_DENIED", "refused"),
    ("PROVIDER_REFUSED", "FAILED_PRECONDITION", "refused"),
])
def test_self_info_refusals_become_states(reason: str, code: str, state: str) -> None:
    import grpc

    from renkei.portal.self_info import _state_of

    assert _state_of(reason, grpc.StatusCode[code]) == state


def test_the_portals_agency_is_read_from_its_certificate(tmp_path: Path) -> None:
    from renkei.pki.ca import DevelopmentCA
    from renkei.portal.self_info import agency_of_certificate

    ca = DevelopmentCA.init(tmp_path / "pki")
    ca.issue_agency_certificate(7, "マイナポータル（デジタル庁）")
    ca.issue_client_certificate("portal", "マイナポータル")
    assert agency_of_certificate(ca.client("agency-7").certificate.read_bytes()) == 7
    with pytest.raises(InvalidArgumentError):
        agency_of_certificate(ca.client("portal").certificate.read_bytes())
