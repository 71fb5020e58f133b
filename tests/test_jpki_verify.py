"""The relying party's check (renkei.jpki.verify) against a real responder process: good, wrong CA,
expired, revoked, tampered, the wrong kind of certificate, and a responder outage within and
beyond the grace period."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from renkei.errors import (
    CardExpiredError,
    CardRevokedError,
    CardSignatureError,
    CardUntrustedError,
    InvalidArgumentError,
    RevocationUnavailableError,
)
from renkei.jpki.ca import Jpki
from renkei.jpki.profile import AUTH, SIGN
from renkei.jpki.verify import AuthVerifier, SignVerifier, new_challenge
from tests.jpki_helpers import FACTS, Responder, new_card, start_responder


class Clock:
    """Real time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta(0)

    def __call__(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC) + self.offset


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Jpki, Responder, Path]]:
    root = tmp_path_factory.mktemp("verify")
    jpki = Jpki.init(root / "jpki")
    responder = start_responder(root / "jpki")
    yield jpki, responder, root
    responder.stop()
    jpki.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_good_login_then_cached(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "good.json")
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=300, grace_seconds=3600, nonce=True)
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    who = verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert who.card_id == card.card_id and who.serial == card.certificate(AUTH).serial_number
    assert who.issuer == jpki.ca_certificate(AUTH).subject.rfc4514_string()
    assert who.revocation.source == "ocsp" and verifier.ocsp.fetches == 1
    again = new_challenge()
    signed = card.sign_challenge("1234", again)
    assert verifier.verify_login(again, signed.signature, signed.certificate_der).revocation.source == "cache"
    assert verifier.ocsp.fetches == 1
    # the freshness ends at nextUpdate at the latest (the responder gives 10 minutes)
    assert who.revocation.next_update is not None
    assert who.revocation.fresh_until <= who.revocation.next_update


def test_wrong_ca_is_untrusted(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    other = Jpki.init(root / "other")
    stranger = new_card(other, root / "stranger.json")
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH))
    challenge = new_challenge()
    signed = stranger.sign_challenge("1234", challenge)
    with pytest.raises(CardUntrustedError, match="pinned"):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    # the right CA pinned among several (2015 and 2023 roots side by side) is found
    both = other.ca_pem(AUTH) + jpki.ca_pem(AUTH)
    assert AuthVerifier(both, responder.url(AUTH)).verify_login(
        *(lambda c, s: (c, s.signature, s.certificate_der))(challenge, new_card(jpki, root / "mine.json")
                                                           .sign_challenge("1234", challenge)))


def test_signing_certificate_cannot_log_in(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "kind.json")
    challenge = new_challenge()
    signed = card.sign("ABC123", challenge)
    # the sign CA is not pinned for logins, and with it pinned the policy still says 署名用
    with pytest.raises(CardUntrustedError):
        AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH)).verify_login(challenge, signed.signature,
                                                                          signed.certificate_der)
    with pytest.raises(CardUntrustedError, match="利用者証明用"):
        AuthVerifier(jpki.ca_pem(SIGN), responder.url(SIGN)).verify_login(challenge, signed.signature,
                                                                          signed.certificate_der)


def test_expired_and_not_yet_valid(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "expiring.json")
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    clock = Clock()
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), clock=clock)
    clock.offset = card.certificate(AUTH).not_valid_after_utc - dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    with pytest.raises(CardExpiredError, match="expired"):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    clock.offset = -dt.timedelta(days=1)
    with pytest.raises(CardExpiredError, match="not valid yet"):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert verifier.ocsp.fetches == 0  # refused before any network call


def test_revoked_card_is_refused_and_stays_refused(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "lost.json")
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=0)
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    assert verifier.verify_login(challenge, signed.signature, signed.certificate_der).revocation.source == "ocsp"
    jpki.revoke(card.certificate(AUTH).serial_number, "keyCompromise")
    with pytest.raises(CardRevokedError) as e:
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert e.value.revocation_reason == "keyCompromise"
    fetches = verifier.ocsp.fetches
    with pytest.raises(CardRevokedError):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert verifier.ocsp.fetches == fetches  # a revocation is final: cached


def test_tampered_signature_challenge_and_certificate(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "tamper.json")
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH))
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    bad = bytearray(signed.signature)
    bad[10] ^= 1
    with pytest.raises(CardSignatureError):
        verifier.verify_login(challenge, bytes(bad), signed.certificate_der)
    with pytest.raises(CardSignatureError):
        verifier.verify_login(new_challenge(), signed.signature, signed.certificate_der)  # another challenge
    # someone else's valid certificate with this signature
    other = new_card(jpki, root / "tamper2.json")
    with pytest.raises(CardSignatureError):
        verifier.verify_login(challenge, signed.signature, other.certificate_der(AUTH))
    # a certificate altered after issue no longer chains
    der = bytearray(signed.certificate_der)
    pos = der.find(card.card_id.encode())
    der[pos] = ord("0") if der[pos] != ord("0") else ord("1")
    with pytest.raises(CardUntrustedError):
        verifier.verify_login(challenge, signed.signature, bytes(der))
    with pytest.raises(CardUntrustedError):
        verifier.verify_login(challenge, signed.signature, b"\x30\x03junk")
    with pytest.raises(InvalidArgumentError):
        verifier.verify_login(b"short", signed.signature, signed.certificate_der)


def test_responder_outage_within_and_beyond_grace(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, _, root = box
    responder = start_responder(root / "jpki")  # a responder of its own, to stop
    card = new_card(jpki, root / "outage.json")
    clock = Clock()
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=60, grace_seconds=600,
                            timeout=2, clock=clock)
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    first = verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert first.revocation.source == "ocsp"
    assert responder.stop() == 0
    # still fresh: no request at all
    clock.offset = dt.timedelta(seconds=30)
    assert verifier.verify_login(challenge, signed.signature, signed.certificate_der).revocation.source == "cache"
    # stale, responder down, within the grace period: accepted, and the verifier says so
    clock.offset = dt.timedelta(seconds=60 + 300)
    late = verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    assert late.revocation.source == "grace" and "unusable" in (late.revocation.problem or "")
    assert late.revocation.fresh_until == first.revocation.fresh_until
    # beyond the grace period: refused, saying why
    clock.offset = dt.timedelta(seconds=60 + 600 + 5)
    with pytest.raises(RevocationUnavailableError, match="grace"):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    # a card never seen before gets no grace at all
    fresh = AuthVerifier(jpki.ca_pem(AUTH), f"http://127.0.0.1:{_free_port()}/ocsp/auth", timeout=2)
    with pytest.raises(RevocationUnavailableError):
        fresh.verify_login(challenge, signed.signature, signed.certificate_der)


def test_grace_never_covers_a_revocation_seen_before(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, _, root = box
    responder = start_responder(root / "jpki")
    card = new_card(jpki, root / "held.json")
    clock = Clock()
    verifier = AuthVerifier(jpki.ca_pem(AUTH), responder.url(AUTH), cache_seconds=60, grace_seconds=600,
                            clock=clock)
    challenge = new_challenge()
    signed = card.sign_challenge("1234", challenge)
    jpki.revoke(card.certificate(AUTH).serial_number, "certificateHold")
    with pytest.raises(CardRevokedError):
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    responder.stop()
    clock.offset = dt.timedelta(seconds=120)
    with pytest.raises(RevocationUnavailableError):  # a cached suspension is no good answer to fall back on
        verifier.verify_login(challenge, signed.signature, signed.certificate_der)


def test_a_foreign_responder_is_not_believed(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, _, root = box
    other_dir = root / "impostor"
    Jpki.init(other_dir).close()
    impostor = start_responder(other_dir)  # answers with another CA's responder key
    try:
        card = new_card(jpki, root / "victim.json")
        verifier = AuthVerifier(jpki.ca_pem(AUTH), impostor.url(AUTH), timeout=2)
        challenge = new_challenge()
        signed = card.sign_challenge("1234", challenge)
        with pytest.raises(RevocationUnavailableError, match="UNAUTHORIZED"):
            verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    finally:
        impostor.stop()
    # an answer for our certificate that the impostor signed itself is not believed either
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509 import ocsp

    from renkei.jpki import verify

    with Jpki(other_dir) as other:
        cert, key = other.responder(AUTH)
        now = dt.datetime.now(dt.UTC)
        forged = ocsp.OCSPResponseBuilder().add_response(
            card.certificate(AUTH), jpki.ca_certificate(AUTH), hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now,
            now + dt.timedelta(minutes=5), None, None).responder_id(ocsp.OCSPResponderEncoding.HASH, cert).certificates(
            [cert]).sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    with pytest.raises(verify._Unusable, match="not signed by the CA"):
        verify._verify_response(forged, card.certificate(AUTH), jpki.ca_certificate(AUTH), None, now,
                                dt.timedelta(minutes=5))
    genuine_signer, genuine_key = jpki.responder(AUTH)
    stale = ocsp.OCSPResponseBuilder().add_response(
        card.certificate(AUTH), jpki.ca_certificate(AUTH), hashes.SHA256(), ocsp.OCSPCertStatus.GOOD,
        now - dt.timedelta(hours=2), now - dt.timedelta(hours=1), None, None).responder_id(
        ocsp.OCSPResponderEncoding.HASH, genuine_signer).certificates([genuine_signer]).sign(
        genuine_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    with pytest.raises(verify._Unusable, match="stale"):
        verify._verify_response(stale, card.certificate(AUTH), jpki.ca_certificate(AUTH), None, now,
                                dt.timedelta(minutes=5))
    no_nonce = ocsp.OCSPResponseBuilder().add_response(
        card.certificate(AUTH), jpki.ca_certificate(AUTH), hashes.SHA256(), ocsp.OCSPCertStatus.GOOD, now,
        now + dt.timedelta(minutes=5), None, None).responder_id(ocsp.OCSPResponderEncoding.HASH,
                                                                genuine_signer).certificates([genuine_signer]).sign(
        genuine_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    assert verify._verify_response(no_nonce, card.certificate(AUTH), jpki.ca_certificate(AUTH), None, now,
                                   dt.timedelta(minutes=5)).status is ocsp.OCSPCertStatus.GOOD
    with pytest.raises(verify._Unusable, match="nonce"):
        verify._verify_response(no_nonce, card.certificate(AUTH), jpki.ca_certificate(AUTH), b"n" * 32, now,
                                dt.timedelta(minutes=5))


def test_sign_verifier_returns_the_facts(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "signer.json")
    verifier = SignVerifier(jpki.ca_pem(SIGN), responder.url(SIGN))
    doc = b"registration: bind this card to my portal account"
    signed = card.sign("ABC123", doc)
    result = verifier.verify_signature(doc, signed.signature, signed.certificate_der)
    assert result.facts == FACTS and result.serial == card.certificate(SIGN).serial_number
    jpki.change_facts(card.card_id, address="福岡県福岡市中央区天神1-8-1")
    verifier.ocsp.clear()
    with pytest.raises(CardRevokedError) as e:
        verifier.verify_signature(doc, signed.signature, signed.certificate_der)
    assert e.value.revocation_reason == "affiliationChanged"
    with pytest.raises(CardUntrustedError):  # an auth certificate is no signing certificate
        verifier.verify_signature(doc, signed.signature, card.certificate(AUTH).public_bytes(
            serialization.Encoding.DER))
