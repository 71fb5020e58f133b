"""The development CA: its own directory, never inside a service's data directory.

Layout of the PKI directory (``renkei pki init --dir D``; directories 0700, keys 0600)::

    ca.pem  ca.key                      the CA (ECDSA P-256, 10 years)
    crl.pem                             revoked certificates (replaced or revoked principals)
    issued.json                         every certificate issued: principal, role, serial, files
    clients/<principal>/cert.pem key.pem ca.pem   client certificates (agencies, operators, …)

A service gets only its own material, written into ``<its data dir>/tls/``: ``server.pem`` /
``server.key`` (and ``client.pem`` / ``client.key`` when it calls another service, as J-LIS
calls the core), and ``ca.pem``. No service ever holds the CA key, so no service can mint
another's certificate.

A client certificate names its holder in the subject alternative name (``urn:renkei:role:<role>``
and, for agencies, ``urn:renkei:agency:<id>``) and in the subject (CN = name, OU = role, UID =
agency id); a server reads the identity from there (:mod:`renkei.service.auth`), never from a
request field. Issuing a principal again revokes its previous certificate (``crl.pem``).

Roles: ``agency`` (an agency's intermediate server, 中間サーバー, toward the core), ``business``
(an agency's business systems, toward its intermediate server), ``jlis`` (J-LIS),
``oversight`` (the Personal Information Protection Commission's people: auditors, PIA reviewers),
``operator`` (administration), ``commission`` (the commission's PIA service delivering its
decisions to the core: a machine principal, apart from the people).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from renkei.datadir import make_private_dir, write_atomic
from renkei.errors import InvalidArgumentError, NotFoundError, NotInitializedError

ROLES = ("agency", "business", "jlis", "oversight", "operator", "commission", "portal")
AGENCY_URI = "urn:renkei:agency:"
ROLE_URI = "urn:renkei:role:"
#: Roles that act for one agency: its intermediate server toward the core ("agency") and its
#: business systems toward its intermediate server ("business").
AGENCY_ROLES = ("agency", "business")
SERVICE_URI = "urn:renkei:service:"
MAX_AGENCY_ID = 2**32 - 1
_CA_YEARS = 10
_LEAF_DAYS = 825
_lock = threading.Lock()


@dataclass(frozen=True)
class CertificatePaths:
    """An issued certificate: who it names and where it and its key are."""

    principal: str
    role: str
    name: str
    agency_id: int | None
    certificate: Path
    private_key: Path
    serial: int = 0

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["certificate"], d["private_key"] = str(self.certificate), str(self.private_key)
        d["serial"] = str(self.serial)
        return d

    @classmethod
    def from_json(cls, d: dict[str, object]) -> CertificatePaths:
        agency = d.get("agency_id")
        return cls(str(d["principal"]), str(d["role"]), str(d["name"]),
                   None if agency is None else int(str(agency)), Path(str(d["certificate"])),
                   Path(str(d["private_key"])), int(str(d.get("serial", 0))))


@dataclass(frozen=True)
class ServiceTls:
    """The TLS material of one service, in its data directory's ``tls/``."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.folder / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.folder / "server.key"

    @property
    def client_cert(self) -> Path:
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.folder / "client.key"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialise changes to the PKI across threads and processes."""
    with _lock:
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def _name(*attrs: tuple[x509.ObjectIdentifier, str]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attrs])


class DevelopmentCA:
    """The development CA in directory ``root`` (which :meth:`init` creates)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.ca_cert_path = self.root / "ca.pem"
        self.ca_key_path = self.root / "ca.key"
        self.crl_path = self.root / "crl.pem"
        self.manifest_path = self.root / "issued.json"
        self.clients_dir = self.root / "clients"
        if self.ca_cert_path.exists() and not self.ca_key_path.exists():
            raise NotInitializedError(
                f"{self.ca_key_path} is missing; restore it from the backup (a new CA would invalidate every "
                f"certificate issued)"
            )
        if not self.ca_cert_path.exists():
            raise NotInitializedError(
                f"{self.root} holds no development CA; run `renkei pki init --dir {self.root}` first"
            )
        self._ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
        self._ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())

    @classmethod
    def init(cls, root: str | os.PathLike[str]) -> DevelopmentCA:
        """Create the CA in ``root`` unless it is there already (then it is only opened)."""
        folder = make_private_dir(Path(root))
        make_private_dir(folder / "clients")
        with _locked(folder):
            if not (folder / "ca.pem").exists():
                _create_ca(folder)
        ca = cls(folder)
        if not ca.crl_path.exists():
            with _locked(folder):
                ca._write_crl(ca._manifest())
        return ca

    # -- issuing ------------------------------------------------------------------------------

    def _leaf(
        self, subject: x509.Name, sans: list[x509.GeneralName], usages: list[x509.ObjectIdentifier]
    ) -> tuple[x509.Certificate, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        ca_ski = self._ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(self._ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return cert, _key_pem(key)

    def _client_leaf(self, role: str, name: str, agency_id: int | None) -> tuple[str, x509.Certificate, bytes]:
        if role not in ROLES:
            raise InvalidArgumentError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise InvalidArgumentError("name must be a non-empty string of at most 64 characters")
        if role in AGENCY_ROLES:
            if isinstance(agency_id, bool) or not isinstance(agency_id, int) or not 0 < agency_id <= MAX_AGENCY_ID:
                raise InvalidArgumentError(f"a {role} certificate needs an agency id 1..2^32-1")
            principal = f"{role}-{agency_id}"
        else:
            if agency_id is not None:
                raise InvalidArgumentError(f"a {role} certificate carries no agency id")
            principal = role
        attrs = [(NameOID.ORGANIZATION_NAME, "renkei"), (NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                 (NameOID.COMMON_NAME, name)]
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ROLE_URI + role)]
        if agency_id is not None:
            attrs.append((NameOID.USER_ID, str(agency_id)))
            sans.append(x509.UniformResourceIdentifier(f"{AGENCY_URI}{agency_id}"))
        cert, key = self._leaf(_name(*attrs), sans, [ExtendedKeyUsageOID.CLIENT_AUTH])
        return principal, cert, key

    def issue_client_certificate(self, role: str, name: str, agency_id: int | None = None) -> CertificatePaths:
        """Issue a client certificate into ``clients/<principal>/``; a previous certificate of the
        same principal is revoked (``crl.pem``)."""
        principal, cert, key = self._client_leaf(role, name, agency_id)
        with _locked(self.root):
            folder = make_private_dir(self.clients_dir / principal)
            paths = CertificatePaths(principal, role, name, agency_id, folder / "cert.pem", folder / "key.pem",
                                     cert.serial_number)
            write_atomic(paths.private_key, key, 0o600)
            write_atomic(paths.certificate, cert.public_bytes(serialization.Encoding.PEM), 0o600)
            write_atomic(folder / "ca.pem", self.ca_cert_path.read_bytes(), 0o600)
            self._record(paths)
        return paths

    def issue_agency_certificate(self, agency_id: int, name: str) -> CertificatePaths:
        """The client certificate of an agency's intermediate server (中間サーバー)."""
        return self.issue_client_certificate("agency", name, agency_id)

    def issue_service(self, service: str, data_dir: str | os.PathLike[str], *,
                      client_role: str | None = None, client_name: str | None = None) -> ServiceTls:
        """A service's server certificate (localhost, 127.0.0.1, ::1), its key and the CA
        certificate, written into ``<data_dir>/tls/``; with ``client_role`` also the client
        certificate the service presents when it calls another service."""
        tls = ServiceTls(make_private_dir(Path(data_dir) / "tls"))
        subject = _name((NameOID.ORGANIZATION_NAME, "renkei"), (NameOID.ORGANIZATIONAL_UNIT_NAME, service),
                        (NameOID.COMMON_NAME, "localhost"))
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            x509.UniformResourceIdentifier(SERVICE_URI + service),
        ]
        cert, key = self._leaf(subject, sans, [ExtendedKeyUsageOID.SERVER_AUTH])
        with _locked(self.root):
            write_atomic(tls.server_key, key, 0o600)
            write_atomic(tls.server_cert, cert.public_bytes(serialization.Encoding.PEM), 0o600)
            write_atomic(tls.ca, self.ca_cert_path.read_bytes(), 0o600)
            self._record(CertificatePaths(f"service-{service}", "service", service, None, tls.server_cert,
                                          tls.server_key, cert.serial_number))
        if client_role is not None:
            _role_principal, ccert, ckey = self._client_leaf(client_role, client_name or service, None)
            with _locked(self.root):
                write_atomic(tls.client_key, ckey, 0o600)
                write_atomic(tls.client_cert, ccert.public_bytes(serialization.Encoding.PEM), 0o600)
                # Recorded apart from the role's people (J-LIS's operators are "jlis" too): re-issuing
                # one must not revoke the other.
                self._record(CertificatePaths(f"service-{service}-client", client_role, client_name or service,
                                              None, tls.client_cert, tls.client_key, ccert.serial_number))
        return tls

    # -- the record of what was issued, and revocation ------------------------------------------

    def _manifest(self) -> dict[str, dict[str, object]]:
        if not self.manifest_path.exists():
            return {"current": {}, "revoked": {}}
        return dict(json.loads(self.manifest_path.read_text()))

    def _record(self, paths: CertificatePaths) -> None:
        """Under the lock: remember the certificate; the principal's previous one is revoked."""
        m = self._manifest()
        current: dict[str, dict[str, object]] = m.setdefault("current", {})  # type: ignore[assignment]
        revoked: dict[str, str] = m.setdefault("revoked", {})  # type: ignore[assignment]
        old = current.get(paths.principal)
        if old is not None and int(str(old.get("serial", 0))) != paths.serial:
            revoked[str(old.get("serial"))] = paths.principal
        current[paths.principal] = paths.to_json()
        write_atomic(self.manifest_path, json.dumps(m, ensure_ascii=False, indent=1).encode(), 0o600)
        self._write_crl(m)

    def _write_crl(self, m: dict[str, dict[str, object]]) -> None:
        now = _now()
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self._ca_cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=365))
        )
        for serial in m.get("revoked", {}):
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(int(serial)).revocation_date(now).build()
            )
        crl = builder.sign(self._ca_key, hashes.SHA256())  # type: ignore[arg-type]
        write_atomic(self.crl_path, crl.public_bytes(serialization.Encoding.PEM), 0o600)  # the box: all 0600

    def revoke(self, principal: str) -> CertificatePaths:
        """Revoke the current certificate of ``principal`` (e.g. a compromised agency server)."""
        with _locked(self.root):
            m = self._manifest()
            current: dict[str, dict[str, object]] = m.get("current", {})  # type: ignore[assignment]
            if principal not in current:
                raise NotFoundError(f"no certificate issued to {principal!r}")
            paths = CertificatePaths.from_json(current.pop(principal))
            m.setdefault("revoked", {})[str(paths.serial)] = principal
            write_atomic(self.manifest_path, json.dumps(m, ensure_ascii=False, indent=1).encode(), 0o600)
            self._write_crl(m)
        return paths

    def issued(self) -> list[CertificatePaths]:
        """Every current certificate (clients and services)."""
        current: dict[str, dict[str, object]] = self._manifest().get("current", {})  # type: ignore[assignment]
        return [CertificatePaths.from_json(d) for d in current.values()]

    def client(self, principal: str) -> CertificatePaths:
        for c in self.issued():
            if c.principal == principal:
                return c
        raise NotFoundError(f"no client certificate issued for {principal!r}")

    def export_client(self, principal: str, folder: str | os.PathLike[str]) -> Path:
        """Copy a client's certificate, key and the CA certificate into ``folder`` (0700)."""
        c = self.client(principal)
        out = make_private_dir(Path(folder))
        for src, dst in ((c.certificate, "cert.pem"), (c.private_key, "key.pem"), (self.ca_cert_path, "ca.pem")):
            shutil.copyfile(src, out / dst)
            os.chmod(out / dst, 0o600)
        return out


def _create_ca(folder: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name((NameOID.ORGANIZATION_NAME, "renkei"), (NameOID.COMMON_NAME, "renkei development CA"))
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          encipher_only=False, decipher_only=False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a CA certificate on disk always has its key beside it.
    write_atomic(folder / "ca.key", _key_pem(key), 0o600)
    write_atomic(folder / "ca.pem", cert.public_bytes(serialization.Encoding.PEM), 0o600)  # the box: all 0600


__all__ = ["ROLES", "CertificatePaths", "DevelopmentCA", "ServiceTls"]
