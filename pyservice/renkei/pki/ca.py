"""The development PKI: a CA, the server certificate and per-agency client certificates.

Layout under the data directory (directories 0700, private keys 0600, written atomically)::

    pki/ca.pem  pki/ca.key                      the development CA (ECDSA P-256, 10 years)
    pki/server.pem  pki/server.key              the server: localhost, 127.0.0.1, ::1
    pki/clients/<principal>/cert.pem, key.pem   one client certificate per principal
    pki/clients.json                            what was issued (id, name, role, paths)

A client certificate names its holder in two places that the server reads back (see
:mod:`renkei.service.auth`): URIs in the subject alternative name,
``urn:renkei:role:<role>`` and ``urn:renkei:agency:<id>`` (agencies only), and the subject
(CN = name, OU = role, UID = agency id). The server trusts only certificates its own CA signed,
so a caller is whoever its certificate says, never a field of a request.

Roles: ``agency`` (an agency's intermediate server, 中間サーバー), ``jlis`` (J-LIS),
``oversight`` (the Personal Information Protection Commission), ``operator`` (administration).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from renkei.datadir import DataDir, fsync_dir
from renkei.errors import InvalidArgumentError

ROLES = ("agency", "jlis", "oversight", "operator")
AGENCY_URI = "urn:renkei:agency:"
ROLE_URI = "urn:renkei:role:"
MAX_AGENCY_ID = 2**32 - 1
_CA_YEARS = 10
_LEAF_DAYS = 825
_lock = threading.Lock()


@dataclass(frozen=True)
class CertificatePaths:
    """Where an issued certificate and its key are."""

    principal: str
    role: str
    name: str
    agency_id: int | None
    certificate: Path
    private_key: Path

    def to_json(self) -> dict[str, object]:
        d = asdict(self)
        d["certificate"], d["private_key"] = str(self.certificate), str(self.private_key)
        return d


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Serialize PKI changes across threads and processes (``renkei serve`` and ``renkei pki``)."""
    with _lock:
        fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


class DevelopmentCA:
    """The CA of one data directory, created on first use."""

    def __init__(self, data_dir: DataDir | str | os.PathLike[str] | None = None) -> None:
        self.data_dir = data_dir if isinstance(data_dir, DataDir) else DataDir(data_dir)
        self.root = self.data_dir.path / "pki"
        self.clients_dir = self.root / "clients"
        self.ca_cert_path = self.root / "ca.pem"
        self.ca_key_path = self.root / "ca.key"
        self.server_cert_path = self.root / "server.pem"
        self.server_key_path = self.root / "server.key"
        self.manifest_path = self.root / "clients.json"
        self.root.mkdir(mode=0o700, exist_ok=True)
        self.clients_dir.mkdir(mode=0o700, exist_ok=True)
        with _locked(self.root):
            if not self.ca_cert_path.exists():
                self._create_ca()
            self._ca_key = serialization.load_pem_private_key(self.ca_key_path.read_bytes(), None)
            self._ca_cert = x509.load_pem_x509_certificate(self.ca_cert_path.read_bytes())
            if not self.server_cert_path.exists():
                self._create_server()

    # -- creation -----------------------------------------------------------------------------

    def _create_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "renkei"),
                x509.NameAttribute(NameOID.COMMON_NAME, "renkei development CA"),
            ]
        )
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
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        # Key first: a CA certificate on disk always has its key beside it.
        _write_atomic(self.ca_key_path, _key_pem(key), 0o600)
        _write_atomic(self.ca_cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)

    def _leaf(self, subject: x509.Name, sans: list[x509.GeneralName], server: bool) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _now()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
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
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
            )
            .sign(self._ca_key, hashes.SHA256())  # type: ignore[arg-type]
        )
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def _create_server(self) -> None:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "renkei"),
                x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            ]
        )
        sans: list[x509.GeneralName] = [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        cert, key = self._leaf(subject, sans, server=True)
        _write_atomic(self.server_key_path, key, 0o600)
        _write_atomic(self.server_cert_path, cert, 0o644)

    # -- clients ------------------------------------------------------------------------------

    def issue_client_certificate(
        self, role: str, name: str, agency_id: int | None = None
    ) -> CertificatePaths:
        """Issue (or re-issue, replacing the old files) a client certificate.

        ``agency_id`` is required for role ``agency`` and refused for the others.
        """
        if role not in ROLES:
            raise InvalidArgumentError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise InvalidArgumentError("name must be a non-empty string of at most 64 characters")
        if role == "agency":
            if (
                isinstance(agency_id, bool)
                or not isinstance(agency_id, int)
                or not 0 < agency_id <= MAX_AGENCY_ID
            ):
                raise InvalidArgumentError("an agency certificate needs an agency id 1..2^32-1")
            principal = f"agency-{agency_id}"
        else:
            if agency_id is not None:
                raise InvalidArgumentError(f"a {role} certificate carries no agency id")
            principal = role
        attrs = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "renkei"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
        sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ROLE_URI + role)]
        if agency_id is not None:
            attrs.append(x509.NameAttribute(NameOID.USER_ID, str(agency_id)))
            sans.append(x509.UniformResourceIdentifier(f"{AGENCY_URI}{agency_id}"))
        cert, key = self._leaf(x509.Name(attrs), sans, server=False)
        with _locked(self.root):
            folder = self.clients_dir / principal
            folder.mkdir(mode=0o700, exist_ok=True)
            paths = CertificatePaths(
                principal, role, name, agency_id, folder / "cert.pem", folder / "key.pem"
            )
            _write_atomic(paths.private_key, key, 0o600)
            _write_atomic(paths.certificate, cert, 0o644)
            manifest = self._read_manifest()
            manifest[principal] = paths.to_json()
            _write_atomic(
                self.manifest_path, json.dumps(manifest, ensure_ascii=False, indent=1).encode(), 0o600
            )
        return paths

    def issue_agency_certificate(self, agency_id: int, name: str) -> CertificatePaths:
        """The client certificate of an agency's intermediate server (中間サーバー)."""
        return self.issue_client_certificate("agency", name, agency_id)

    def _read_manifest(self) -> dict[str, dict[str, object]]:
        if not self.manifest_path.exists():
            return {}
        return dict(json.loads(self.manifest_path.read_text()))

    def issued(self) -> list[CertificatePaths]:
        """Every client certificate issued so far."""
        out = []
        for d in self._read_manifest().values():
            out.append(
                CertificatePaths(
                    str(d["principal"]),
                    str(d["role"]),
                    str(d["name"]),
                    None if d["agency_id"] is None else int(d["agency_id"]),  # type: ignore[call-overload]
                    Path(str(d["certificate"])),
                    Path(str(d["private_key"])),
                )
            )
        return out

    def client(self, principal: str) -> CertificatePaths:
        for c in self.issued():
            if c.principal == principal:
                return c
        raise InvalidArgumentError(f"no client certificate issued for {principal!r}")


def issue_agency_certificate(
    data_dir: DataDir | str | os.PathLike[str], agency_id: int, name: str
) -> CertificatePaths:
    """Issue the client certificate of agency ``agency_id`` (the hook for ``renkei agency add``)."""
    return DevelopmentCA(data_dir).issue_agency_certificate(agency_id, name)


__all__ = ["ROLES", "CertificatePaths", "DevelopmentCA", "issue_agency_certificate"]
