"""The JPKI's OCSP responder (RFC 6960), independent of HTTP (``renkei.service.jpki`` serves it).

One responder per CA, each signing with its delegated responder certificate (issued by the CA,
id-kp-OCSPSigning, id-pkix-ocsp-nocheck), which rides in every response. Answers:

* ``good`` / ``revoked`` (with time and reason; a suspension is ``revoked`` with
  ``certificateHold``) / ``unknown`` for a serial the CA never issued;
* ``thisUpdate`` = now, ``nextUpdate`` = now + ``validity`` (default 10 minutes): a relying
  party may cache the answer until then;
* the request's nonce (RFC 8954) echoed when it sent one;
* ``malformedRequest`` for what does not parse, ``unauthorized`` for a certificate of another
  issuer. CertID hashes SHA-1 and SHA-2 are accepted.
"""

from __future__ import annotations

import datetime as dt
import threading

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import ocsp

from renkei.jpki import profile
from renkei.jpki.ca import Jpki

RESPONSE_VALIDITY = dt.timedelta(minutes=10)
_CERT_ID_HASHES = (hashes.SHA1, hashes.SHA256, hashes.SHA384, hashes.SHA512)
_RELOAD_SECONDS = 60.0


def issuer_hashes(ca: x509.Certificate, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
    """(issuerNameHash, issuerKeyHash) of a CA for a CertID: the hash of the subject's DER and of
    the subjectPublicKey bits (for RSA, the PKCS#1 RSAPublicKey DER)."""
    def digest(data: bytes) -> bytes:
        h = hashes.Hash(algorithm)
        h.update(data)
        return h.finalize()

    key = ca.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return digest(ca.subject.public_bytes()), digest(key)


class OcspResponder:
    """Answers OCSP requests for both JPKI CAs from the registry (thread-safe)."""

    def __init__(self, jpki: Jpki, validity: dt.timedelta = RESPONSE_VALIDITY) -> None:
        if validity <= dt.timedelta(0):
            raise ValueError("validity must be positive")
        self.jpki = jpki
        self.validity = validity
        self._lock = threading.Lock()
        self._signers: dict[str, tuple[x509.Certificate, rsa.RSAPrivateKey]] = {}
        self._loaded_at = 0.0

    def _signer(self, kind: str, now: dt.datetime) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The responder certificate and key, re-read now and then (``maintain`` renews them)."""
        with self._lock:
            stamp = now.timestamp()
            if kind not in self._signers or stamp - self._loaded_at > _RELOAD_SECONDS:
                for k in profile.KINDS:
                    self._signers[k] = self.jpki.responder(k)
                self._loaded_at = stamp
            return self._signers[kind]

    def respond(self, kind: str, request_der: bytes, now: dt.datetime | None = None) -> bytes:
        """The DER response to a DER request for the CA ``kind`` (``auth`` or ``sign``)."""
        now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
        ca = self.jpki.ca_certificate(kind)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            serial = request.serial_number
            name_hash, key_hash = request.issuer_name_hash, request.issuer_key_hash
            nonce = next((e.value for e in request.extensions if isinstance(e.value, x509.OCSPNonce)), None)
        except (ValueError, UnsupportedAlgorithm):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if not isinstance(algorithm, _CERT_ID_HASHES):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (name_hash, key_hash) != issuer_hashes(ca, algorithm):
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        record = self.jpki.store.certificate(serial, kind)
        revocation_time: dt.datetime | None = None
        reason: x509.ReasonFlags | None = None
        if record is None:
            status = ocsp.OCSPCertStatus.UNKNOWN
        elif record.status == "good":
            status = ocsp.OCSPCertStatus.GOOD
        else:
            status = ocsp.OCSPCertStatus.REVOKED
            revocation_time = record.revoked_at or now
            reason = x509.ReasonFlags(record.reason) if record.reason else None
        cert, key = self._signer(kind, now)
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(name_hash, key_hash, serial, algorithm, status, now, now + self.validity,
                                  revocation_time, reason)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
            .certificates([cert])
        )
        if nonce is not None:
            builder = builder.add_extension(nonce, critical=False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


__all__ = ["RESPONSE_VALIDITY", "OcspResponder", "issuer_hashes"]
