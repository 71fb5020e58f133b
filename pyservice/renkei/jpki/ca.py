"""The JPKI certification authority of J-LIS (公的個人認証サービス) as a test double: two CAs with
the real structure, card certificates, revocation and CRLs, in one data directory.

Layout (``renkei jpki init --data-dir D``; directories 0700, every file 0600)::

    renkei-service.json        written last by init
    keys/auth-ca.pem           the 利用者証明用 CA key (RSA-2048, PKCS#8)
    keys/sign-ca.pem           the 署名用 CA key
    keys/ocsp-auth.pem         the delegated OCSP responder keys, one per CA
    keys/ocsp-sign.pem
    keys/card-reset.key        32 random bytes: wraps each card key's data key for the
                               municipality's PIN reset (renkei.jpki.card)
    ca/auth-ca.pem ca/sign-ca.pem          the CA certificates (what relying parties pin)
    ca/ocsp-auth.pem ca/ocsp-sign.pem      the responder certificates (id-kp-OCSPSigning, ocsp-nocheck)
    crl/auth.crl crl/sign.crl              the current CRLs (DER), re-signed on every revocation
                                            and by the responder before half their life is gone
    jpki.sqlite3               certificates, statuses, CRL numbers, card chips (renkei.jpki.store)

Opening never creates keys: a missing key or CA certificate is an error naming the file (a new
CA key would orphan every card). Only ``init`` creates them, and only in a directory that has no
``renkei-service.json`` yet.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from renkei.datadir import MARKER, DataDir, connect_sqlite, make_private_dir, write_atomic
from renkei.errors import (
    FailedPreconditionError,
    InvalidArgumentError,
    KeyFileError,
    NotFoundError,
    NotInitializedError,
    StorageError,
)
from renkei.jpki import profile
from renkei.jpki.profile import AUTH, KINDS, SIGN, BasicFacts
from renkei.jpki.store import DB_NAME, CertificateRecord, JpkiStore

SERVICE = "jpki"
KEYS = {"card-reset": 32}
RSA_BITS = 2048
CA_YEARS = 10
RESPONDER_DAYS = 365
RESPONDER_RENEW_DAYS = 30
CRL_LIFETIME = dt.timedelta(hours=24)

#: Revocation reasons accepted by ``revoke`` (RFC 5280 names, as ``x509.ReasonFlags`` values).
REASONS = {
    "keyCompromise": x509.ReasonFlags.key_compromise,  # the card was lost or stolen
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,  # 基本4情報 changed (署名用)
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,  # the holder gave the card up
    "certificateHold": x509.ReasonFlags.certificate_hold,  # suspended (一時停止), can be released
    "superseded": x509.ReasonFlags.superseded,  # a new certificate replaced it
    "unspecified": x509.ReasonFlags.unspecified,
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _load_private(path: Path) -> rsa.RSAPrivateKey:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise KeyFileError(f"{path} is missing: restore it from the backup (a new key would orphan every "
                           f"certificate it signed; never re-run init to replace it)") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); expected 0600")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), None)
    except ValueError:
        raise KeyFileError(f"{path} is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path} is not an RSA key")
    return key


def _load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        raise KeyFileError(f"{path} is missing: restore it from the backup") from None
    except ValueError:
        raise KeyFileError(f"{path} is not a PEM certificate") from None


def _usage(*, digital_signature: bool = False, content_commitment: bool = False, key_cert_sign: bool = False,
           crl_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=digital_signature, content_commitment=content_commitment,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=key_cert_sign, crl_sign=crl_sign, encipher_only=False, decipher_only=False)


def _ca_certificate(kind: str, key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    """A self-signed CA certificate shaped like the real J-LIS roots (extensions in their order)."""
    name = profile.ca_subject(kind)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(profile.end_of_day_jst((now + dt.timedelta(days=365 * CA_YEARS)).date()))
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(profile.ca_alt_name(kind))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint([x509.DirectoryName(name)], None, None,
                                                                          None)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _responder_certificate(kind: str, key: rsa.RSAPrivateKey, ca: x509.Certificate, ca_key: rsa.RSAPrivateKey,
                           now: dt.datetime) -> x509.Certificate:
    """The delegated OCSP signer of one CA (RFC 6960 §4.2.2.2): id-kp-OCSPSigning, ocsp-nocheck."""
    subject = x509.Name([*profile.ca_subject(kind), x509.NameAttribute(NameOID.COMMON_NAME, "OCSP Responder")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=RESPONDER_DAYS))
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), critical=False)
        .add_extension(x509.OCSPNoCheck(), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


@dataclass(frozen=True)
class Paths:
    root: Path

    def ca_key(self, kind: str) -> Path:
        return self.root / "keys" / f"{kind}-ca.pem"

    def ca_cert(self, kind: str) -> Path:
        return self.root / "ca" / f"{kind}-ca.pem"

    def responder_key(self, kind: str) -> Path:
        return self.root / "keys" / f"ocsp-{kind}.pem"

    def responder_cert(self, kind: str) -> Path:
        return self.root / "ca" / f"ocsp-{kind}.pem"

    def crl(self, kind: str) -> Path:
        return self.root / "crl" / f"{kind}.crl"


def _generate_pair(key_path: Path, cert_path: Path, make: object) -> None:
    """Key first, then its certificate (an interrupted init leaves a key, never a lone certificate)."""
    if cert_path.exists():
        if not key_path.exists():
            raise KeyFileError(f"{key_path} is missing next to {cert_path}: restore it from the backup")
        return
    if not key_path.exists():
        write_atomic(key_path, _key_pem(rsa.generate_private_key(65537, RSA_BITS)), 0o600)
    key = _load_private(key_path)
    cert = make(key)  # type: ignore[operator]
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o600)


class Jpki:
    """J-LIS's JPKI: the 利用者証明用 and 署名用 CAs, their OCSP responder keys, the registry."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.data_dir = DataDir(path, SERVICE)
        self.paths = Paths(self.data_dir.path)
        self._ca: dict[str, x509.Certificate] = {}
        self._ca_key: dict[str, rsa.RSAPrivateKey] = {}
        for kind in KINDS:
            self._ca_key[kind] = _load_private(self.paths.ca_key(kind))
            self._ca[kind] = _load_cert(self.paths.ca_cert(kind))
        if not self.data_dir.file(DB_NAME).exists():
            raise StorageError(f"{self.data_dir.file(DB_NAME)} is missing: restore it from the backup (it holds "
                               f"every revocation)")
        self.reset_key = self.data_dir.secret_key("card-reset", KEYS["card-reset"])
        self.store = JpkiStore(self.data_dir)

    @classmethod
    def init(cls, path: str | os.PathLike[str]) -> Jpki:
        """Create the JPKI data directory (both CAs, responder certificates, registry, CRLs); on an
        initialised directory only open it and renew what is due (responders, CRLs)."""
        root = make_private_dir(Path(path))
        if not (root / MARKER).exists():
            if any(p.name not in ("keys", "ca", "crl", "tls", DB_NAME) and not p.name.startswith(".")
                   for p in root.iterdir()):
                raise NotInitializedError(f"{root} holds other files: not a place for a new JPKI data directory")
            paths = Paths(root)
            for sub in ("keys", "ca", "crl"):
                make_private_dir(root / sub)
            now = _now()
            for kind in KINDS:
                _generate_pair(paths.ca_key(kind), paths.ca_cert(kind), lambda k, kind=kind: _ca_certificate(kind, k,
                                                                                                              now))
                ca, ca_key = _load_cert(paths.ca_cert(kind)), _load_private(paths.ca_key(kind))
                _generate_pair(paths.responder_key(kind), paths.responder_cert(kind),
                               lambda k, kind=kind, ca=ca, ca_key=ca_key: _responder_certificate(kind, k, ca, ca_key,
                                                                                                  now))
            db = root / DB_NAME
            if not db.exists():
                os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
                connect_sqlite(db).close()
            DataDir.init(root, SERVICE, KEYS)  # the card-reset key, then the marker, last
        jpki = cls(root)
        jpki.maintain()
        return jpki

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Jpki:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the CAs ------------------------------------------------------------------------------------

    def ca_certificate(self, kind: str) -> x509.Certificate:
        return self._ca[profile._kind(kind)]

    def ca_pem(self, kind: str) -> bytes:
        return self.ca_certificate(kind).public_bytes(serialization.Encoding.PEM)

    def responder(self, kind: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """The current delegated OCSP responder certificate and key of a CA."""
        return _load_cert(self.paths.responder_cert(kind)), _load_private(self.paths.responder_key(kind))

    def maintain(self, now: dt.datetime | None = None) -> None:
        """Renew responder certificates within 30 days of expiry, re-sign CRLs past half their life."""
        now = now or _now()
        for kind in KINDS:
            cert = _load_cert(self.paths.responder_cert(kind))
            if cert.not_valid_after_utc - now < dt.timedelta(days=RESPONDER_RENEW_DAYS):
                key = rsa.generate_private_key(65537, RSA_BITS)
                new = _responder_certificate(kind, key, self._ca[kind], self._ca_key[kind], now)
                with self._locked():
                    write_atomic(self.paths.responder_key(kind), _key_pem(key), 0o600)
                    write_atomic(self.paths.responder_cert(kind), new.public_bytes(serialization.Encoding.PEM), 0o600)
            crl = self.current_crl(kind)
            if crl is None or crl.next_update_utc is None or crl.next_update_utc - now < CRL_LIFETIME / 2:
                self.write_crl(kind, now)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialise CRL and responder writes across processes."""
        fd = os.open(self.data_dir.path / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    # -- issuing ------------------------------------------------------------------------------------

    def build_card_certificate(self, kind: str, card_id: str, public_key: rsa.RSAPublicKey, birth: dt.date,
                               facts: BasicFacts | None, now: dt.datetime | None = None) -> x509.Certificate:
        """A card certificate (not yet recorded: :meth:`record_certificate` in the issuing transaction).

        利用者証明用 (``auth``): subject ``C=JP, CN=<card id>``, no personal data at all.
        署名用 (``sign``): subject ``C=JP, CN=<random>``, the 基本4情報 as subjectAltName otherNames.
        Both: RSA-2048 / SHA-256, valid until the end (JST) of the 5th birthday after issue.
        """
        profile._kind(kind)
        if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size != RSA_BITS:
            raise InvalidArgumentError("a JPKI card key is RSA-2048")
        if (kind == SIGN) != (facts is not None):
            raise InvalidArgumentError("the 署名用 certificate, and only it, carries the 基本4情報")
        now = now or _now()
        ca, ca_key = self._ca[kind], self._ca_key[kind]
        opaque = card_id if kind == AUTH else secrets.token_hex(16).upper()
        not_after = profile.certificate_not_after(now, birth)
        usage = (_usage(digital_signature=True) if kind == AUTH
                 else _usage(digital_signature=True, content_commitment=True))
        builder = (
            x509.CertificateBuilder()
            .subject_name(profile.card_subject(opaque))
            .issuer_name(ca.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(not_after)
            .add_extension(usage, critical=True)
            .add_extension(x509.CertificatePolicies([x509.PolicyInformation(profile.POLICY[kind], None)]),
                           critical=True)
            .add_extension(x509.IssuerAlternativeName([x509.DirectoryName(profile.ca_alt_name(kind))]),
                           critical=False)
            .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint([x509.DirectoryName(ca.subject)], None,
                                                                              None, None)]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        )
        if facts is not None:
            builder = builder.add_extension(profile.facts_alt_name(facts), critical=False)
        return builder.sign(ca_key, hashes.SHA256())

    # -- revocation -----------------------------------------------------------------------------

    def certificate(self, serial: int) -> CertificateRecord:
        record = self.store.certificate(serial)
        if record is None:
            raise NotFoundError("the JPKI issued no certificate with this serial number")
        return record

    def revoke(self, serial: int, reason: str, now: dt.datetime | None = None) -> CertificateRecord:
        """Revoke (or, with ``certificateHold``, suspend) a certificate; the CRL is re-signed at once
        and the responder answers ``revoked`` from the next request on."""
        if reason not in REASONS:
            raise InvalidArgumentError(f"unknown revocation reason {reason!r}; expected one of {', '.join(REASONS)}")
        now = now or _now()
        with self.store.transaction() as db:
            record = self.store.certificate(serial)
            if record is None:
                raise NotFoundError("the JPKI issued no certificate with this serial number")
            if record.status == "revoked":
                raise FailedPreconditionError("this certificate is revoked already")
            if record.status == "hold" and reason == "certificateHold":
                raise FailedPreconditionError("this certificate is suspended already")
            status = "hold" if reason == "certificateHold" else "revoked"
            self.store.set_status(db, serial, status, REASONS[reason].value, now)
        self.write_crl(record.kind, now)
        return self.certificate(serial)

    def release_hold(self, serial: int, now: dt.datetime | None = None) -> CertificateRecord:
        """Lift a suspension (certificateHold): the certificate is good again and leaves the CRL."""
        with self.store.transaction() as db:
            record = self.store.certificate(serial)
            if record is None:
                raise NotFoundError("the JPKI issued no certificate with this serial number")
            if record.status != "hold":
                raise FailedPreconditionError("only a suspended (certificateHold) certificate can be released")
            self.store.set_status(db, serial, "good", None, None)
        self.write_crl(record.kind, now)
        return self.certificate(serial)

    def current_certificates(self, card_id: str) -> dict[str, CertificateRecord]:
        """The newest certificate of each kind of a card (whatever its status)."""
        out: dict[str, CertificateRecord] = {}
        for record in self.store.certificates_of(card_id):
            out[record.kind] = record
        return out

    def revoke_card(self, card_id: str, reason: str, kinds: tuple[str, ...] = KINDS,
                    now: dt.datetime | None = None) -> list[CertificateRecord]:
        """Revoke the card's current certificates of ``kinds`` that are not revoked yet (loss:
        ``keyCompromise``; giving the card back: ``cessationOfOperation``)."""
        current = self.current_certificates(card_id)
        if not current:
            raise NotFoundError("the JPKI knows no card with this id")
        return [self.revoke(r.serial, reason, now) for kind, r in current.items()
                if kind in kinds and r.status != "revoked"]

    def change_facts(self, card_id: str, *, name: str | None = None, birth: dt.date | None = None,
                     sex: str | None = None, address: str | None = None,
                     now: dt.datetime | None = None) -> CertificateRecord | None:
        """A change of the holder's 基本4情報 (a 住所 move, a new 氏名, …) as J-LIS hears it from
        the resident register: the card's good 署名用 certificate is revoked with
        ``affiliationChanged`` when any fact differs from the certificate's. The 利用者証明用
        certificate carries no facts and stays valid. Returns the revoked record, or None when
        nothing changed or there is no good signing certificate."""
        record = self.current_certificates(card_id).get(SIGN)
        if record is None or record.status == "revoked":
            if not self.current_certificates(card_id):
                raise NotFoundError("the JPKI knows no card with this id")
            return None
        old = profile.signing_facts(x509.load_der_x509_certificate(record.der))
        new = old.changed(name, birth, sex, address)
        if new == old:
            return None
        return self.revoke(record.serial, "affiliationChanged", now)

    # -- CRLs ---------------------------------------------------------------------------------------

    def build_crl(self, kind: str, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        """A fresh CRL of one CA: every revoked or suspended certificate not yet expired, with its reason."""
        now = now or _now()
        ca, ca_key = self._ca[kind], self._ca_key[kind]
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.subject)
            .last_update(now)
            .next_update(now + CRL_LIFETIME)
            .add_extension(x509.CRLNumber(self.store.next_crl_number(kind)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        )
        for record in self.store.revoked(kind, now):
            entry = x509.RevokedCertificateBuilder().serial_number(record.serial).revocation_date(
                record.revoked_at or now)
            if record.reason and record.reason != x509.ReasonFlags.unspecified.value:
                entry = entry.add_extension(x509.CRLReason(x509.ReasonFlags(record.reason)), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(ca_key, hashes.SHA256())

    def write_crl(self, kind: str, now: dt.datetime | None = None) -> x509.CertificateRevocationList:
        with self._locked():  # read the revocations and write the file as one step
            crl = self.build_crl(kind, now)
            write_atomic(self.paths.crl(kind), crl.public_bytes(serialization.Encoding.DER), 0o600)
        return crl

    def current_crl(self, kind: str) -> x509.CertificateRevocationList | None:
        try:
            return x509.load_der_x509_crl(self.paths.crl(profile._kind(kind)).read_bytes())
        except FileNotFoundError:
            return None


__all__ = ["CA_YEARS", "CRL_LIFETIME", "KEYS", "REASONS", "SERVICE", "Jpki", "Paths"]
