"""The JPKI double's CAs and card certificates against the real J-LIS roots and the profile."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from renkei.errors import InvalidArgumentError, KeyFileError, NotInitializedError
from renkei.jpki import profile
from renkei.jpki.ca import Jpki
from renkei.jpki.profile import AUTH, SIGN, BasicFacts
from tests.jpki_helpers import FACTS, new_card

ROOTS = Path(__file__).parent / "data" / "jpki-roots"
REAL = {AUTH: ["auth_ca_2015.pem", "auth_ca_2023.pem"], SIGN: ["sign_ca_2023.pem"]}


def _real(name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((ROOTS / name).read_bytes())


def _layout(name: x509.Name) -> list[tuple[str, object, str]]:
    """(OID, ASN.1 string type, value) per RDN, one attribute each."""
    assert all(len(rdn) == 1 for rdn in name.rdns)
    return [(a.oid.dotted_string, a._type, a.value) for a in name]


@pytest.fixture(scope="module")
def jpki(tmp_path_factory: pytest.TempPathFactory) -> Jpki:
    return Jpki.init(tmp_path_factory.mktemp("jpki") / "jpki")


@pytest.mark.parametrize("kind", [AUTH, SIGN])
def test_ca_copies_the_real_roots_layout(jpki: Jpki, kind: str) -> None:
    ours = jpki.ca_certificate(kind)
    for real in map(_real, REAL[kind]):
        assert _layout(ours.subject) == _layout(real.subject)
        assert ours.issuer == ours.subject and real.issuer == real.subject
        # the same extensions, in the same order, with the same criticality and values
        assert [(e.oid, e.critical) for e in ours.extensions] == [(e.oid, e.critical) for e in real.extensions]
        for oid in (x509.KeyUsage.oid, x509.BasicConstraints.oid, x509.CRLDistributionPoints.oid):
            assert ours.extensions.get_extension_for_oid(oid).value == real.extensions.get_extension_for_oid(oid).value
        ours_alt = ours.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        real_alt = real.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert [_layout(n) for n in ours_alt.get_values_for_type(x509.DirectoryName)] == \
            [_layout(n) for n in real_alt.get_values_for_type(x509.DirectoryName)]
        # RSA-2048, sha256WithRSAEncryption, the validity ending 23:59:59 JST
        for cert in (ours, real):
            key = cert.public_key()
            assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048 and key.public_numbers().e == 65537
            assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA256
            assert cert.not_valid_after_utc.time() == dt.time(14, 59, 59)
        assert 9 <= (ours.not_valid_after_utc - ours.not_valid_before_utc).days / 365 <= 10.01
    ours.verify_directly_issued_by(ours)
    usage = ours.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature


def test_the_two_cas_differ_only_in_their_ou(jpki: Jpki) -> None:
    a, s = jpki.ca_certificate(AUTH), jpki.ca_certificate(SIGN)
    assert a.public_key() != s.public_key()
    ou = [[v.value for v in c.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)] for c in (a, s)]
    assert ou == [["JPKI for user authentication", profile.JLIS_EN], ["JPKI for digital signature", profile.JLIS_EN]]


def test_responder_certificates_are_delegated_by_each_ca(jpki: Jpki) -> None:
    for kind in (AUTH, SIGN):
        cert, key = jpki.responder(kind)
        cert.verify_directly_issued_by(jpki.ca_certificate(kind))
        assert x509.oid.ExtendedKeyUsageOID.OCSP_SIGNING in cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
        assert cert.extensions.get_extension_for_class(x509.OCSPNoCheck)
        assert cert.public_key() == key.public_key()


def test_auth_certificate_carries_no_personal_data(jpki: Jpki, tmp_path: Path) -> None:
    card = new_card(jpki, tmp_path / "card.json")
    auth = card.certificate(AUTH)
    der = card.certificate_der(AUTH)
    assert [a.oid for a in auth.subject] == [NameOID.COUNTRY_NAME, NameOID.COMMON_NAME]
    assert auth.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == card.card_id
    with pytest.raises(x509.ExtensionNotFound):
        auth.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    for fact in (FACTS.name, FACTS.address, "山田", "東京都", profile.encode_birth(FACTS.birth), "19840229"):
        assert fact.encode() not in der
    assert auth.issuer == jpki.ca_certificate(AUTH).subject
    auth.verify_directly_issued_by(jpki.ca_certificate(AUTH))
    assert profile.POLICY[AUTH] in [p.policy_identifier for p in
                                    auth.extensions.get_extension_for_class(x509.CertificatePolicies).value]
    usage = auth.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.content_commitment and not usage.key_cert_sign
    key = auth.public_key()
    assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048


def test_signing_certificate_carries_the_four_facts(jpki: Jpki, tmp_path: Path) -> None:
    card = new_card(jpki, tmp_path / "card.json")
    sign = card.certificate(SIGN)
    sign.verify_directly_issued_by(jpki.ca_certificate(SIGN))
    assert profile.signing_facts(sign) == FACTS
    others = sign.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.OtherName)
    by_oid = {o.type_id.dotted_string: o.value for o in others}
    assert set(by_oid) == {"1.2.392.200149.8.5.5.1", "1.2.392.200149.8.5.5.3", "1.2.392.200149.8.5.5.4",
                           "1.2.392.200149.8.5.5.5"}
    # UTF8String (tag 12) with the values as the profile writes them; 1984 is 昭和 (era digit 3)
    assert by_oid["1.2.392.200149.8.5.5.4"] == bytes([12, 9]) + b"319840229"
    assert by_oid["1.2.392.200149.8.5.5.3"] == bytes([12, 1]) + b"1"
    assert by_oid["1.2.392.200149.8.5.5.1"][0] == 12
    assert card.card_id not in sign.subject.rfc4514_string()  # the two certificates are not linked by name
    usage = sign.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment


def test_validity_until_the_fifth_birthday_after_issue(jpki: Jpki, tmp_path: Path) -> None:
    issued = dt.datetime(2026, 3, 1, 3, 0, tzinfo=dt.UTC)  # 12:00 JST on 1 March 2026
    card = new_card(jpki, tmp_path / "card.json", now=issued)
    for kind in (AUTH, SIGN):
        cert = card.certificate(kind)
        # born 29 Feb: birthdays after 2026-03-01 are 2027-02-28 … the fifth 2031-02-28 (a common year)
        assert cert.not_valid_after_utc == dt.datetime(2031, 2, 28, 14, 59, 59, tzinfo=dt.UTC)
        assert cert.not_valid_before_utc == issued


@pytest.mark.parametrize(("issued", "birth", "fifth"), [
    (dt.date(2026, 6, 1), dt.date(1990, 7, 1), dt.date(2030, 7, 1)),  # birthday later this year counts
    (dt.date(2026, 6, 1), dt.date(1990, 5, 1), dt.date(2031, 5, 1)),
    (dt.date(2026, 6, 1), dt.date(1990, 6, 1), dt.date(2031, 6, 1)),  # issued on the birthday: not counted
    (dt.date(2026, 1, 10), dt.date(2000, 2, 29), dt.date(2030, 2, 28)),
    (dt.date(2027, 3, 1), dt.date(2000, 2, 29), dt.date(2032, 2, 29)),  # 2032 is a leap year
    (dt.date(2028, 2, 29), dt.date(2000, 2, 29), dt.date(2033, 2, 28)),  # issued on a 29 Feb birthday
    (dt.date(2028, 2, 28), dt.date(2000, 2, 29), dt.date(2032, 2, 29)),
])
def test_fifth_birthday(issued: dt.date, birth: dt.date, fifth: dt.date) -> None:
    assert profile.nth_birthday_after(issued, birth) == fifth


def test_age_and_era_digits() -> None:
    assert profile.age_on(dt.date(2000, 2, 29), dt.date(2015, 2, 28)) == 15
    assert profile.age_on(dt.date(2000, 2, 29), dt.date(2015, 2, 27)) == 14
    assert [profile.encode_birth(d) for d in (dt.date(1926, 12, 24), dt.date(1926, 12, 25), dt.date(1989, 1, 7),
                                              dt.date(1989, 1, 8), dt.date(2019, 4, 30), dt.date(2019, 5, 1),
                                              dt.date(1912, 7, 29))] == [
        "219261224", "319261225", "319890107", "419890108", "420190430", "520190501", "119120729"]
    assert profile.decode_birth("420190430") == dt.date(2019, 4, 30)
    for bad in ("520190430", "4201904", "X20190430", "420190231"):
        with pytest.raises(InvalidArgumentError):
            profile.decode_birth(bad)


def test_no_signing_certificate_under_fifteen(jpki: Jpki, tmp_path: Path) -> None:
    today = dt.datetime.now(dt.UTC).astimezone(profile.JST).date()
    child = BasicFacts("山田 花子", today.replace(year=today.year - 10), "2", FACTS.address)
    card = new_card(jpki, tmp_path / "child.json", child)
    assert card.has(AUTH) and not card.has(SIGN)
    assert {r.kind for r in jpki.store.certificates_of(card.card_id)} == {AUTH}


def test_facts_are_validated_and_never_repr(tmp_path: Path) -> None:
    assert "山田" not in repr(FACTS) and "東京" not in repr(FACTS)
    for bad in (dict(sex="M"), dict(name=""), dict(address="x" * 201)):
        with pytest.raises(InvalidArgumentError):
            FACTS.changed(**bad)  # type: ignore[arg-type]
    assert BasicFacts.parse("a", "2000-01-02", "F", "b").sex == "2"


def test_data_directory_modes_and_opening_never_creates(tmp_path: Path) -> None:
    with pytest.raises(NotInitializedError):
        Jpki(tmp_path / "none")
    assert not (tmp_path / "none").exists()
    root = tmp_path / "jpki"
    Jpki.init(root).close()
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    ca_pem = (root / "ca" / "auth-ca.pem").read_bytes()
    Jpki.init(root).close()  # idempotent: the CA is kept
    assert (root / "ca" / "auth-ca.pem").read_bytes() == ca_pem
    os.unlink(root / "keys" / "sign-ca.pem")
    with pytest.raises(KeyFileError, match=r"sign-ca\.pem is missing"):
        Jpki(root)
    with pytest.raises(KeyFileError):
        Jpki.init(root)  # a deleted CA key is never replaced
    assert not (root / "keys" / "sign-ca.pem").exists()


def test_card_signatures_are_pkcs1_v15_sha256(jpki: Jpki, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import hashes

    card = new_card(jpki, tmp_path / "card.json")
    challenge = os.urandom(32)
    signed = card.sign_challenge("1234", challenge)
    key = x509.load_der_x509_certificate(signed.certificate_der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signed.signature, challenge, padding.PKCS1v15(), hashes.SHA256())
    doc = b"application form"
    signed = card.sign("ABC123", doc)
    key = card.certificate(SIGN).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(signed.signature, doc, padding.PKCS1v15(), hashes.SHA256())
