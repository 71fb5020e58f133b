"""Who is calling: the identity in a verified client certificate (mutual TLS).

The mTLS port verifies client certificates against the CA certificate during the TLS
handshake (a caller without one, or with one from another CA, never gets a connection). The
identity is then read from the certificate's subject alternative name URIs
(``urn:renkei:role:…``, ``urn:renkei:agency:<id>``), never from a request field, and the
certificate must not be on the CA's revocation list (``crl.pem``, re-read when it changes): a
re-issued certificate revokes the old one, which then gets UNAUTHENTICATED. The public port
asks for no certificate, so calls arriving there carry no identity at all. Which roles may call
a method is declared on the method (``@rpc``) and checked by the wrapper in
:mod:`renkei.service.runtime` before the request's body is read.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509

from renkei.errors import UnauthenticatedError
from renkei.pki.ca import AGENCY_URI, ROLE_URI, ROLES

#: The caller of the call being handled, once a handler identified it (for the call's log line
#: and metrics in renkei.service.runtime; each call runs in its own task context).

_RELOAD_SECONDS = 1.0
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Identity:
    """A verified caller."""

    role: str
    agency_id: int | None
    principal: str

    def __str__(self) -> str:
        return self.principal


class Authenticator:
    """Maps a call's TLS auth context to an :class:`Identity` (cached per certificate)."""

    def __init__(self, crl_path: Path | None = None) -> None:
        self._crl_path = crl_path
        self._revoked: frozenset[int] = frozenset()
        self._loaded_mtime = -1.0
        self._checked_at = 0.0
        self._cache: dict[bytes, Identity | str] = {}
        self._lock = threading.Lock()
        self._reload()

    def _reload(self) -> None:
        if self._crl_path is None:
            return
        try:
            mtime = self._crl_path.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime == self._loaded_mtime:
            return
        revoked: frozenset[int] = frozenset()
        if mtime:
            crl = x509.load_pem_x509_crl(self._crl_path.read_bytes())
            revoked = frozenset(r.serial_number for r in crl)
        with self._lock:
            self._revoked, self._loaded_mtime = revoked, mtime
            self._cache.clear()

    def identify(self, context: grpc.aio.ServicerContext) -> Identity:
        """The caller, or UnauthenticatedError."""
        now = time.monotonic()
        if now - self._checked_at > _RELOAD_SECONDS:
            self._checked_at = now
            self._reload()
        auth = context.auth_context()
        pems = auth.get("x509_pem_cert")
        if not pems:
            raise UnauthenticatedError("a client certificate is required: connect to the mutual-TLS port")
        pem = pems[0]
        hit = self._cache.get(pem)
        if hit is None:
            # A certificate not seen before may replace a revoked one: look at the CRL again
            # (one stat) before judging it.
            self._reload()
            hit = self._verify(pem)
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[pem] = hit
        if isinstance(hit, str):
            raise UnauthenticatedError(hit)
        return hit

    def _verify(self, pem: bytes) -> Identity | str:
        cert = x509.load_pem_x509_certificate(pem)
        try:
            uris = cert.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            uris = []
        roles = [u[len(ROLE_URI) :] for u in uris if u.startswith(ROLE_URI)]
        agencies = [u[len(AGENCY_URI) :] for u in uris if u.startswith(AGENCY_URI)]
        if len(roles) != 1 or roles[0] not in ROLES:
            return "the client certificate names no renkei role"
        role = roles[0]
        agency_id: int | None = None
        if role == "agency":
            if len(agencies) != 1 or not agencies[0].isdigit():
                return "the agency certificate names no agency id"
            agency_id = int(agencies[0])
            principal = f"agency-{agency_id}"
        else:
            principal = role
        if cert.serial_number in self._revoked:
            return "the client certificate has been revoked or replaced"
        return Identity(role, agency_id, principal)


__all__ = ["Authenticator", "Identity"]
