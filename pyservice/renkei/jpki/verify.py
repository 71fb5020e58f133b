"""The relying party's check of a JPKI card (what the portal and agencies import).

Login (利用者証明)::

    challenge = new_challenge()                      # the relying party's, single use, short-lived
    signed = card.sign_challenge(pin, challenge)     # on the holder's side
    verifier = AuthVerifier(auth_ca_pem, "http://127.0.0.1:50060/ocsp/auth")
    who = verifier.verify_login(challenge, signed.signature, signed.certificate_der)
    # who.issuer, who.serial, who.card_id: look the person up in YOUR binding table

:meth:`AuthVerifier.verify_login` checks, in this order, and raises a
:class:`~renkei.errors.CardRejectedError` subclass naming the first failure:

1. the certificate parses and is signed by a pinned CA (``ca_pem``: one or more PEM certificates,
   e.g. the 2015 and 2023 roots) — else :class:`~renkei.errors.CardUntrustedError`;
2. it is a 利用者証明用 certificate (policy 1.2.392.200149.8.5.1.3.30, digitalSignature) —
   else ``CardUntrustedError``;
3. now lies within its validity and its CA's — else :class:`~renkei.errors.CardExpiredError`;
4. the signature over the challenge verifies (RSA PKCS#1 v1.5, SHA-256) — else
   :class:`~renkei.errors.CardSignatureError`;
5. revocation by OCSP (:class:`OcspChecker`) — ``revoked`` raises
   :class:`~renkei.errors.CardRevokedError`, ``unknown`` ``CardUntrustedError``.

**OCSP caching and the grace period.** A good answer is cached until
``min(nextUpdate, fetched + cache_seconds)``; within that no request is made. After it, the
responder is asked again. When the responder cannot be used (connection refused, timeout, HTTP
error, ``tryLater``, a response that does not verify), a cached *good* answer is still accepted
for ``grace_seconds`` past its freshness — the login succeeds with
``revocation.source == "grace"`` so the caller can log it — and refused after that with
:class:`~renkei.errors.RevocationUnavailableError`. No cached answer: refused at once. A
revocation is cached for good (a suspension, ``certificateHold``, only until its freshness
ends). Defaults: 300 s cache, 3,600 s grace — a responder outage of up to an hour does not stop
logins of cards seen in the five minutes before it (X-Road's operators report all traffic
stopping when their OCSP responder was unreachable); a card revoked during an outage can still
log in until the grace ends. That is the stated trade-off.

The certificate carries no personal data: map it to a person only through a binding you store
(for example (issuer, serial) or the card id, created when the person registered with a
署名用 signature checked by :class:`SignVerifier`).

The calls are synchronous (a cache hit costs no I/O; a miss makes one HTTP request with
``timeout``); an asyncio server calls them in a worker thread (``anyio.to_thread.run_sync`` or
``loop.run_in_executor``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from renkei.errors import (
    CardExpiredError,
    CardRevokedError,
    CardSignatureError,
    CardUntrustedError,
    InvalidArgumentError,
    RevocationUnavailableError,
)
from renkei.jpki import profile
from renkei.jpki.ocsp import issuer_hashes
from renkei.jpki.profile import AUTH, SIGN, BasicFacts

DEFAULT_CACHE_SECONDS = 300.0
DEFAULT_GRACE_SECONDS = 3600.0
DEFAULT_TIMEOUT = 3.0
CHALLENGE_BYTES = 32
MAX_CLOCK_SKEW = dt.timedelta(minutes=5)
MAX_RESPONSE_BYTES = 64 * 1024

Clock = Callable[[], dt.datetime]


def new_challenge() -> bytes:
    """32 random bytes for a login. Keep it server-side, accept it once, expire it quickly."""
    return secrets.token_bytes(CHALLENGE_BYTES)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class RevocationStatus:
    """How the certificate was found not revoked.

    ``source``: ``"ocsp"`` (asked the responder now), ``"cache"`` (a fresh cached answer) or
    ``"grace"`` (a stale cached good answer, accepted because the responder could not be used —
    ``problem`` says why). ``fresh_until`` is when the cached answer stops being fresh."""

    source: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    fresh_until: dt.datetime
    problem: str | None = None


@dataclass(frozen=True)
class VerifiedCard:
    """A login that verified: which certificate (never who — see the module docstring)."""

    serial: int
    issuer: str  # the CA's subject, RFC 4514
    card_id: str  # the auth certificate's opaque CN
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: bytes  # SHA-256 of the certificate's DER
    revocation: RevocationStatus


@dataclass(frozen=True)
class VerifiedSignature:
    """A 署名用 signature that verified, with the 基本4情報 its certificate carries."""

    serial: int
    issuer: str
    facts: BasicFacts
    not_before: dt.datetime
    not_after: dt.datetime
    fingerprint: bytes
    revocation: RevocationStatus


@dataclass
class _Cached:
    status: ocsp.OCSPCertStatus
    reason: x509.ReasonFlags | None
    this_update: dt.datetime
    next_update: dt.datetime | None
    fresh_until: dt.datetime


class _Unusable(Exception):
    """The responder could not be used (down, refused, or an answer that does not verify)."""


class OcspChecker:
    """OCSP for one CA kind: fetch over HTTP POST, verify, cache, fall back within the grace period.
    Thread-safe; shared by every login of a verifier."""

    def __init__(self, url: str, cache_seconds: float = DEFAULT_CACHE_SECONDS,
                 grace_seconds: float = DEFAULT_GRACE_SECONDS, *, nonce: bool = False,
                 timeout: float = DEFAULT_TIMEOUT, clock: Clock | None = None, max_entries: int = 1_000_000) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidArgumentError("the OCSP URL must be http:// or https://")
        if cache_seconds < 0 or grace_seconds < 0 or timeout <= 0 or max_entries < 1:
            raise InvalidArgumentError("cache_seconds and grace_seconds must be ≥ 0, timeout and max_entries > 0")
        self.url = url
        self.cache = dt.timedelta(seconds=cache_seconds)
        self.grace = dt.timedelta(seconds=grace_seconds)
        self.nonce = nonce
        self.timeout = timeout
        self.clock = clock or _utc_now
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[bytes, int], _Cached] = OrderedDict()
        self._lock = threading.Lock()
        # No proxies: the responder is named exactly by the URL.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self.fetches = 0

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()

    def check(self, cert: x509.Certificate, issuer: x509.Certificate,
              issuer_fingerprint: bytes | None = None) -> RevocationStatus:
        """The revocation status of ``cert`` (issued by ``issuer``, whose SHA-256 fingerprint may be
        passed precomputed); raises when it is revoked, unknown, or cannot be established."""
        key = (issuer_fingerprint or issuer.fingerprint(hashes.SHA256()), cert.serial_number)
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is not None and (now < cached.fresh_until or _permanent(cached)):
            return _outcome(cached, "cache")
        try:
            fresh = self._fetch(cert, issuer, now)
        except _Unusable as e:
            if cached is not None and cached.status is ocsp.OCSPCertStatus.GOOD and \
                    now < cached.fresh_until + self.grace:
                return _outcome(cached, "grace", f"OCSP responder unusable ({e}); cached good answer accepted "
                                                 f"within the {self.grace.total_seconds():.0f} s grace period")
            age = "" if cached is None else (f"; the last good answer went stale at "
                                             f"{cached.fresh_until.isoformat(timespec='seconds')}")
            raise RevocationUnavailableError(
                f"no usable OCSP answer ({e}) and no cached good answer within the "
                f"{self.grace.total_seconds():.0f} s grace period{age}: the login is refused") from None
        if fresh.status is not ocsp.OCSPCertStatus.UNKNOWN:
            with self._lock:
                self._cache[key] = fresh
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
        return _outcome(fresh, "ocsp")

    def _fetch(self, cert: x509.Certificate, issuer: x509.Certificate, now: dt.datetime) -> _Cached:
        builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
        sent_nonce = None
        if self.nonce:
            sent_nonce = secrets.token_bytes(32)
            builder = builder.add_extension(x509.OCSPNonce(sent_nonce), critical=False)
        body = builder.build().public_bytes(serialization.Encoding.DER)
        request = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/ocsp-request", "Accept": "application/ocsp-response"})
        self.fetches += 1
        try:
            with self._opener.open(request, timeout=self.timeout) as reply:
                kind = reply.headers.get("Content-Type", "")
                data = reply.read(MAX_RESPONSE_BYTES + 1)
        except urllib.error.HTTPError as e:
            raise _Unusable(f"HTTP {e.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as e:
            raise _Unusable(f"cannot reach {self.url}: {getattr(e, 'reason', e)}") from None
        if kind.split(";")[0].strip() != "application/ocsp-response":
            raise _Unusable(f"not an OCSP response (Content-Type {kind!r})")
        if len(data) > MAX_RESPONSE_BYTES:
            raise _Unusable("response too large")
        return _verify_response(data, cert, issuer, sent_nonce, now, self.cache)


def _permanent(c: _Cached) -> bool:
    return c.status is ocsp.OCSPCertStatus.REVOKED and c.reason is not x509.ReasonFlags.certificate_hold


def _outcome(c: _Cached, source: str, problem: str | None = None) -> RevocationStatus:
    if c.status is ocsp.OCSPCertStatus.REVOKED:
        reason = c.reason.value if c.reason else "unspecified"
        raise CardRevokedError(f"the certificate is revoked ({reason})", revocation_reason=reason)
    if c.status is ocsp.OCSPCertStatus.UNKNOWN:
        raise CardUntrustedError("the CA's responder does not know this certificate")
    return RevocationStatus(source, c.this_update, c.next_update, c.fresh_until, problem)


def _response_signer(resp: ocsp.OCSPResponse, issuer: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    """The certificate that signed the response: the CA itself, or a delegated responder the CA
    issued (id-kp-OCSPSigning, valid now), matched by the ResponderID."""
    def named(c: x509.Certificate) -> bool:
        if resp.responder_key_hash is not None:
            return bool(x509.SubjectKeyIdentifier.from_public_key(c.public_key()).digest == resp.responder_key_hash)
        return bool(resp.responder_name == c.subject)

    if named(issuer):
        return issuer
    for c in resp.certificates:
        if not named(c):
            continue
        try:
            c.verify_directly_issued_by(issuer)
            eku = c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
            continue
        if ExtendedKeyUsageOID.OCSP_SIGNING in eku and c.not_valid_before_utc <= now <= c.not_valid_after_utc:
            return c
    raise _Unusable("the response is not signed by the CA or a responder it authorised")


def _verify_response(data: bytes, cert: x509.Certificate, issuer: x509.Certificate, sent_nonce: bytes | None,
                     now: dt.datetime, cache: dt.timedelta) -> _Cached:
    try:
        resp = ocsp.load_der_ocsp_response(data)
    except ValueError:
        raise _Unusable("the response does not parse") from None
    if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise _Unusable(f"the responder answered {resp.response_status.name}")
    signer = _response_signer(resp, issuer, now)
    key = signer.public_key()
    algorithm = resp.signature_hash_algorithm
    if not isinstance(key, rsa.RSAPublicKey) or algorithm is None:
        raise _Unusable("the response is not RSA-signed")
    try:
        key.verify(resp.signature, resp.tbs_response_bytes, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise _Unusable("the response's signature does not verify") from None
    if sent_nonce is not None:
        echoed = next((e.value.nonce for e in resp.extensions if isinstance(e.value, x509.OCSPNonce)), None)
        if echoed != sent_nonce:
            raise _Unusable("the response does not echo our nonce")
    for single in resp.responses:
        try:
            expected = issuer_hashes(issuer, single.hash_algorithm)
        except UnsupportedAlgorithm:
            continue
        if single.serial_number != cert.serial_number or \
                (single.issuer_name_hash, single.issuer_key_hash) != expected:
            continue
        this_update, next_update = single.this_update_utc, single.next_update_utc
        if this_update > now + MAX_CLOCK_SKEW:
            raise _Unusable("the response is from the future (clock skew?)")
        if next_update is not None and next_update <= now:
            raise _Unusable("the response is stale (nextUpdate has passed)")
        fresh_until = now + cache if next_update is None else min(next_update, now + cache)
        return _Cached(single.certificate_status, single.revocation_reason if single.certificate_status is
                       ocsp.OCSPCertStatus.REVOKED else None, this_update, next_update, fresh_until)
    raise _Unusable("the response does not answer for this certificate")


def load_pinned(ca_pem: bytes | str | Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The pinned CA certificates: PEM text with one or more certificates, or certificates."""
    if isinstance(ca_pem, (bytes, str)):
        try:
            cas = x509.load_pem_x509_certificates(ca_pem.encode() if isinstance(ca_pem, str) else ca_pem)
        except ValueError:
            raise InvalidArgumentError("ca_pem holds no PEM certificate") from None
    else:
        cas = list(ca_pem)
    for ca in cas:
        try:
            is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise InvalidArgumentError(f"the pinned certificate {ca.subject.rfc4514_string()} is not a CA")
    if not cas:
        raise InvalidArgumentError("no pinned CA certificate")
    return cas


@dataclass(frozen=True)
class _Pinned:
    cert: x509.Certificate
    fingerprint: bytes
    name: str


@dataclass(frozen=True)
class _Chained:
    """A certificate that passed the chain and kind checks (immutable facts, cached by DER)."""

    cert: x509.Certificate
    issuer: _Pinned
    key: rsa.RSAPublicKey
    common_name: str


class _CardVerifier:
    kind = AUTH
    #: Certificates whose chain and kind were checked, by SHA-256 of their DER (validity and
    #: revocation are checked on every call).
    chain_cache_entries = 100_000

    def __init__(self, ca_pem: bytes | str | Sequence[x509.Certificate], ocsp_url: str,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS, grace_seconds: float = DEFAULT_GRACE_SECONDS, *,
                 nonce: bool = False, timeout: float = DEFAULT_TIMEOUT, clock: Clock | None = None) -> None:
        self.cas = load_pinned(ca_pem)
        self._pinned = [_Pinned(ca, ca.fingerprint(hashes.SHA256()), ca.subject.rfc4514_string()) for ca in self.cas]
        self.clock = clock or _utc_now
        self.ocsp = OcspChecker(ocsp_url, cache_seconds, grace_seconds, nonce=nonce, timeout=timeout,
                                clock=self.clock)
        self._chained: OrderedDict[bytes, _Chained] = OrderedDict()
        self._lock = threading.Lock()

    def _chain(self, der: bytes, fingerprint: bytes) -> _Chained:
        """Steps 1–2: parsed, issued by a pinned CA, of the right kind (cached by fingerprint)."""
        with self._lock:
            hit = self._chained.get(fingerprint)
            if hit is not None:
                self._chained.move_to_end(fingerprint)
                return hit
        try:
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, TypeError):
            raise CardUntrustedError("not a DER certificate") from None
        issuer = None
        for pinned in self._pinned:
            try:
                cert.verify_directly_issued_by(pinned.cert)
            except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
                continue
            issuer = pinned
            break
        if issuer is None:
            raise CardUntrustedError("the certificate is not issued by a pinned JPKI CA")
        what = "利用者証明用" if self.kind == AUTH else "署名用"
        try:
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
            usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            raise CardUntrustedError(f"not a {what} certificate (policy or key usage missing)") from None
        if profile.POLICY[self.kind] not in {p.policy_identifier for p in policies} or not usage.digital_signature:
            raise CardUntrustedError(f"not a {what} certificate")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise CardUntrustedError("the certificate's key is not RSA")
        cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        chained = _Chained(cert, issuer, key, str(cn[0].value) if cn else "")
        with self._lock:
            self._chained[fingerprint] = chained
            while len(self._chained) > self.chain_cache_entries:
                self._chained.popitem(last=False)
        return chained

    def _certificate(self, certificate_der: bytes) -> tuple[_Chained, bytes]:
        """Steps 1–3: the chain and kind (cached), then validity now; with the DER's SHA-256."""
        der = bytes(certificate_der)
        fingerprint = hashlib.sha256(der).digest()
        chained = self._chain(der, fingerprint)
        cert, issuer = chained.cert, chained.issuer.cert
        now = self.clock()
        if now < cert.not_valid_before_utc:
            raise CardExpiredError("the certificate is not valid yet")
        if now > cert.not_valid_after_utc:
            raise CardExpiredError("the certificate has expired")
        if not issuer.not_valid_before_utc <= now <= issuer.not_valid_after_utc:
            raise CardExpiredError("the issuing CA certificate is outside its validity")
        return chained, fingerprint

    @staticmethod
    def _check_signature(chained: _Chained, message: bytes, signature: bytes) -> None:
        try:
            chained.key.verify(bytes(signature), bytes(message), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise CardSignatureError("the signature does not verify with the certificate's key") from None


class AuthVerifier(_CardVerifier):
    """Verifies logins with the 利用者証明用 certificate against the pinned JPKI auth CA(s).

    ``AuthVerifier(ca_pem, ocsp_url, cache_seconds=300, grace_seconds=3600, *, nonce=False,
    timeout=3.0, clock=None)``; ``ocsp_url`` is the responder for this CA
    (``http://HOST:PORT/ocsp/auth``); ``nonce=True`` sends a fresh nonce with every OCSP request
    and requires it back."""

    kind = AUTH

    def verify_login(self, challenge: bytes, signature: bytes, certificate_der: bytes) -> VerifiedCard:
        if not isinstance(challenge, bytes) or len(challenge) < 16:
            raise InvalidArgumentError("a login challenge is at least 16 bytes")
        chained, fingerprint = self._certificate(certificate_der)
        self._check_signature(chained, challenge, signature)
        cert, issuer = chained.cert, chained.issuer
        status = self.ocsp.check(cert, issuer.cert, issuer.fingerprint)
        return VerifiedCard(cert.serial_number, issuer.name, chained.common_name, cert.not_valid_before_utc,
                            cert.not_valid_after_utc, fingerprint, status)


class SignVerifier(_CardVerifier):
    """Verifies 署名用 signatures against the pinned JPKI signature CA(s) and returns the
    基本4情報 the certificate carries (same arguments as :class:`AuthVerifier`; the OCSP URL is
    ``…/ocsp/sign``)."""

    kind = SIGN

    def verify_signature(self, data: bytes, signature: bytes, certificate_der: bytes) -> VerifiedSignature:
        chained, fingerprint = self._certificate(certificate_der)
        self._check_signature(chained, data, signature)
        cert, issuer = chained.cert, chained.issuer
        try:
            facts = profile.signing_facts(cert)
        except InvalidArgumentError as e:
            raise CardUntrustedError(f"the 署名用 certificate's 基本4情報 are malformed: {e}") from None
        status = self.ocsp.check(cert, issuer.cert, issuer.fingerprint)
        return VerifiedSignature(cert.serial_number, issuer.name, facts, cert.not_valid_before_utc,
                                 cert.not_valid_after_utc, fingerprint, status)


__all__ = [
    "DEFAULT_CACHE_SECONDS", "DEFAULT_GRACE_SECONDS", "AuthVerifier", "OcspChecker", "RevocationStatus",
    "SignVerifier", "VerifiedCard", "VerifiedSignature", "load_pinned", "new_challenge",
]
