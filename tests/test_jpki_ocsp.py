"""Revocation over real HTTP: ``renkei jpki serve`` answers OCSP (RFC 6960, POST) and serves CRLs;
revocation, suspension and the automatic revocation of the 署名用 certificate on a 住所 move."""

from __future__ import annotations

import datetime as dt
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from renkei.errors import FailedPreconditionError
from renkei.jpki.ca import Jpki
from renkei.jpki.card import Card
from renkei.jpki.profile import AUTH, SIGN
from tests.jpki_helpers import Responder, new_card, start_responder


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Jpki, Responder, Path]]:
    root = tmp_path_factory.mktemp("ocsp")
    jpki = Jpki.init(root / "jpki")
    responder = start_responder(root / "jpki")
    yield jpki, responder, root
    assert responder.stop() == 0
    jpki.close()


def _post(url: str, body: bytes, content_type: str = "application/ocsp-request") -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _ask(responder: Responder, kind: str, cert: x509.Certificate, issuer: x509.Certificate,
         algorithm: hashes.HashAlgorithm | None = None, nonce: bytes | None = None) -> ocsp.OCSPResponse:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm or hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    status, ctype, body = _post(responder.url(kind), builder.build().public_bytes(serialization.Encoding.DER))
    assert status == 200 and ctype == "application/ocsp-response"
    return ocsp.load_der_ocsp_response(body)


def _crl(responder: Responder, kind: str) -> x509.CertificateRevocationList:
    with urllib.request.urlopen(f"{responder.base()}/crl/{kind}.crl", timeout=10) as reply:
        assert reply.headers["Content-Type"] == "application/pkix-crl"
        return x509.load_der_x509_crl(reply.read())


def _checked(resp: ocsp.OCSPResponse, jpki: Jpki, kind: str) -> ocsp.OCSPResponse:
    """A successful response, signed by the CA's delegated responder (which it carries)."""
    assert resp.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    signer = resp.certificates[0]
    signer.verify_directly_issued_by(jpki.ca_certificate(kind))
    key = signer.public_key()
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    assert isinstance(key, rsa.RSAPublicKey) and resp.signature_hash_algorithm is not None
    key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), resp.signature_hash_algorithm)
    assert resp.responder_key_hash == x509.SubjectKeyIdentifier.from_public_key(key).digest
    return resp


def test_good_then_revoked_over_http(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "c1.json")
    auth, ca = card.certificate(AUTH), jpki.ca_certificate(AUTH)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    resp = _checked(_ask(responder, AUTH, auth, ca), jpki, AUTH)
    assert resp.certificate_status is ocsp.OCSPCertStatus.GOOD and resp.serial_number == auth.serial_number
    assert resp.this_update_utc >= before - dt.timedelta(seconds=1)
    assert resp.next_update_utc is not None and resp.next_update_utc - resp.this_update_utc == dt.timedelta(minutes=10)
    jpki.revoke(auth.serial_number, "keyCompromise")  # the card was lost
    resp = _checked(_ask(responder, AUTH, auth, ca, hashes.SHA1()), jpki, AUTH)
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.key_compromise
    assert resp.revocation_time_utc is not None and resp.revocation_time_utc >= before
    # the other certificate of the card is untouched
    sign = _checked(_ask(responder, SIGN, card.certificate(SIGN), jpki.ca_certificate(SIGN)), jpki, SIGN)
    assert sign.certificate_status is ocsp.OCSPCertStatus.GOOD
    with pytest.raises(FailedPreconditionError):
        jpki.revoke(auth.serial_number, "cessationOfOperation")


def test_nonce_unknown_unauthorized_malformed(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "c2.json")
    auth, ca = card.certificate(AUTH), jpki.ca_certificate(AUTH)
    nonce = os.urandom(32)
    resp = _checked(_ask(responder, AUTH, auth, ca, nonce=nonce), jpki, AUTH)
    assert resp.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    # the auth certificate asked of the sign CA's responder: another issuer → unauthorized
    resp = _ask(responder, SIGN, auth, ca)
    assert resp.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED
    # a certificate of this CA's name and key that the registry never recorded → unknown
    other = Jpki.init(root / "other-jpki")
    stray = new_card(other, root / "stray.json").certificate(AUTH)
    forged = x509.CertificateBuilder().subject_name(stray.subject).issuer_name(ca.subject).public_key(
        stray.public_key()).serial_number(x509.random_serial_number()).not_valid_before(
        stray.not_valid_before_utc).not_valid_after(stray.not_valid_after_utc).sign(
        other._ca_key[AUTH], hashes.SHA256())
    resp = _checked(_ask(responder, AUTH, forged, ca), jpki, AUTH)
    assert resp.certificate_status is ocsp.OCSPCertStatus.UNKNOWN
    status, _, body = _post(responder.url(AUTH), b"not DER")
    assert status == 200 and ocsp.load_der_ocsp_response(body).response_status is \
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST
    assert _post(responder.url(AUTH), b"x", "text/plain")[0] == 415
    assert _post(f"{responder.base()}/ocsp/nope", b"x")[0] == 404
    assert _post(responder.url(AUTH), b"x" * (65 * 1024))[0] == 413


def test_crl_contents_and_suspension(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "c3.json")
    auth, sign = card.certificate(AUTH), card.certificate(SIGN)
    first = _crl(responder, AUTH)
    jpki.revoke(auth.serial_number, "certificateHold")  # suspended (一時停止)
    crl = _crl(responder, AUTH)
    assert crl.is_signature_valid(jpki.ca_certificate(AUTH).public_key())  # type: ignore[arg-type]
    assert crl.issuer == jpki.ca_certificate(AUTH).subject
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > first.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    entry = crl.get_revoked_certificate_by_serial_number(auth.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is x509.ReasonFlags.certificate_hold
    assert crl.next_update_utc is not None and crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=24)
    resp = _ask(responder, AUTH, auth, jpki.ca_certificate(AUTH))
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.certificate_hold
    # released: good again, and gone from the CRL
    jpki.release_hold(auth.serial_number)
    assert _ask(responder, AUTH, auth, jpki.ca_certificate(AUTH)).certificate_status is ocsp.OCSPCertStatus.GOOD
    assert _crl(responder, AUTH).get_revoked_certificate_by_serial_number(auth.serial_number) is None
    # the sign CA's CRL is its own
    sign_crl = _crl(responder, SIGN)
    assert sign_crl.issuer == jpki.ca_certificate(SIGN).subject
    assert sign_crl.get_revoked_certificate_by_serial_number(sign.serial_number) is None


def test_address_move_revokes_the_signing_certificate(box: tuple[Jpki, Responder, Path]) -> None:
    jpki, responder, root = box
    card = new_card(jpki, root / "c4.json")
    auth, sign = card.certificate(AUTH), card.certificate(SIGN)
    assert jpki.change_facts(card.card_id, address="東京都千代田区霞が関二丁目1番2号") is None  # the same 住所
    assert jpki.store.certificate(sign.serial_number).status == "good"  # type: ignore[union-attr]
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "renkei.cli", "jpki", "change-facts", "--data-dir",
                        str(root / "jpki"), "--card-id", card.card_id, "--address", "大阪府大阪市北区中之島1-3-20"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "大阪" not in r.stdout  # the new address is not echoed
    resp = _ask(responder, SIGN, sign, jpki.ca_certificate(SIGN))
    assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
    assert resp.revocation_reason is x509.ReasonFlags.affiliation_changed
    entry = _crl(responder, SIGN).get_revoked_certificate_by_serial_number(sign.serial_number)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is \
        x509.ReasonFlags.affiliation_changed
    # the 利用者証明用 certificate carries no facts and survives the move
    assert _ask(responder, AUTH, auth, jpki.ca_certificate(AUTH)).certificate_status is ocsp.OCSPCertStatus.GOOD
    with Card(root / "c4.json") as again:
        again.sign_challenge("1234", b"x" * 32)
    assert jpki.change_facts(card.card_id, address="北海道") is None  # revoked already: nothing more


def test_revoke_a_lost_card_by_cli(box: tuple[Jpki, Responder, Path]) -> None:
    import subprocess
    import sys

    jpki, responder, root = box
    card = new_card(jpki, root / "c5.json")
    r = subprocess.run([sys.executable, "-m", "renkei.cli", "jpki", "revoke", "--data-dir", str(root / "jpki"),
                        "--card-id", card.card_id, "--reason", "keyCompromise"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("revoked keyCompromise") == 2
    for kind in (AUTH, SIGN):
        resp = _ask(responder, kind, card.certificate(kind), jpki.ca_certificate(kind))
        assert resp.certificate_status is ocsp.OCSPCertStatus.REVOKED
        assert _crl(responder, kind).get_revoked_certificate_by_serial_number(card.certificate(kind).serial_number)


def test_responder_socket_is_tcp_so_answers_are_not_held_for_a_delayed_ack(
        box: tuple[Jpki, Responder, Path]) -> None:
    # asyncio sets TCP_NODELAY on accepted connections only when the listening socket's proto
    # is IPPROTO_TCP; with proto 0 every OCSP answer waited ≈ 40 ms for the client's ACK.
    import socket

    from renkei.service.jpki import JpkiServer

    sock = JpkiServer(box[0])._socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
