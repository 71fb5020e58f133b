"""Who is calling: the identity in a verified client certificate (mutual TLS).

The mTLS port verifies client certificates against the development CA during the TLS
handshake (a caller without one, or with one from another CA, never gets a connection). The
identity is then read from the certificate's subject alternative name URIs
(``urn:renkei:role:…``, ``urn:renkei:agency:<id>``), never from a request field, and the
certificate's serial must be the current one issued to that principal (``pki/clients.json``):
a re-issued certificate replaces the old one, which then gets UNAUTHENTICATED. The public port
asks for no certificate, so calls arriving there carry no identity at all.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import grpc
from cryptography import x509

from renkei.errors import PermissionDeniedError, UnauthenticatedError
from renkei.pki.ca import AGENCY_URI, ROLE_URI, ROLES, DevelopmentCA

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

    def __init__(self, ca: DevelopmentCA) -> None:
        self._ca = ca
        self._serials: dict[str, int] = {}
        self._loaded_mtime = -1.0
        self._checked_at = 0.0
        self._cache: dict[bytes, Identity | str] = {}
        self._lock = threading.Lock()
        self._reload()

    def _reload(self) -> None:
        try:
            mtime = self._ca.manifest_path.stat().st_mtime
        except FileNotFoundError:
            mtime = 0.0
        if mtime == self._loaded_mtime:
            return
        serials = {}
        for issued in self._ca.issued():
            cert = x509.load_pem_x509_certificate(issued.certificate.read_bytes())
            serials[issued.principal] = cert.serial_number
        with self._lock:
            self._serials, self._loaded_mtime = serials, mtime
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
            # A certificate not seen before may have just been issued (AdminService.CreateAgency):
            # look at the manifest again (one stat) before judging it.
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
        if self._serials.get(principal) != cert.serial_number:
            return "the client certificate is not the current certificate of a registered principal"
        return Identity(role, agency_id, principal)

    def require(self, context: grpc.aio.ServicerContext, *roles: str) -> Identity:
        """The caller, who must hold one of ``roles``."""
        who = self.identify(context)
        if who.role not in roles:
            raise PermissionDeniedError(
                f"{who.principal} may not call this method (needs role {' or '.join(roles)})"
            )
        return who


__all__ = ["Authenticator", "Identity"]
