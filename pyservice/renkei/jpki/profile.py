"""The JPKI certificate profile: names, object identifiers, the 基本4情報 and validity.

What is copied from the real J-LIS roots (``tests/data/jpki-roots/``, checked by
``tests/test_jpki_ca.py``):

* CA subjects ``C=JP, O=JPKI, OU=JPKI for user authentication | JPKI for digital signature,
  OU=Japan Agency for Local Authority Information Systems`` (C a PrintableString, the rest
  UTF8String, one attribute per RDN);
* CA extensions, in this order: KeyUsage (critical: keyCertSign, cRLSign), SubjectAltName (a
  directory name in Japanese), BasicConstraints (critical, CA, no path length),
  CRLDistributionPoints (a directory name: the CA's own subject), SubjectKeyIdentifier.

What comes from public secondary sources (marked ⚠ in docs/arch/jpki.md where unchecked against a
real card certificate): the 4情報 otherName OIDs ``1.2.392.200149.8.5.5.{1,3,4,5}`` as
UTF8String, 生年月日 as ``EYYYYMMDD`` (era digit + Gregorian date), the certificate policies
``1.2.392.200149.8.5.1.1.20`` (署名用) and ``1.2.392.200149.8.5.1.3.30`` (利用者証明用), and the
card certificates' opaque subjects.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat import asn1
from cryptography.x509.oid import NameOID

from renkei.errors import InvalidArgumentError

AUTH = "auth"
SIGN = "sign"
KINDS = (AUTH, SIGN)

JST = dt.timezone(dt.timedelta(hours=9), "JST")

_OU = {AUTH: "JPKI for user authentication", SIGN: "JPKI for digital signature"}
_OU_JA = {AUTH: "公的個人認証サービス利用者証明用", SIGN: "公的個人認証サービス署名用"}
JLIS_EN = "Japan Agency for Local Authority Information Systems"
JLIS_JA = "地方公共団体情報システム機構"
SERVICE_JA = "公的個人認証サービス"

# 基本4情報 in the signing certificate's subjectAltName (otherName, UTF8String).
OID_NAME = x509.ObjectIdentifier("1.2.392.200149.8.5.5.1")  # 氏名
OID_NAME_SUBSTITUTE = x509.ObjectIdentifier("1.2.392.200149.8.5.5.2")  # 代替文字氏名 (not used here)
OID_SEX = x509.ObjectIdentifier("1.2.392.200149.8.5.5.3")  # 性別
OID_BIRTH = x509.ObjectIdentifier("1.2.392.200149.8.5.5.4")  # 生年月日 EYYYYMMDD
OID_ADDRESS = x509.ObjectIdentifier("1.2.392.200149.8.5.5.5")  # 住所
OID_ADDRESS_SUBSTITUTE = x509.ObjectIdentifier("1.2.392.200149.8.5.5.6")  # 代替文字住所 (not used here)

# Certificate policies (jpki-cp-sign-class20, jpki-cp-auth-class30).
POLICY = {
    SIGN: x509.ObjectIdentifier("1.2.392.200149.8.5.1.1.20"),
    AUTH: x509.ObjectIdentifier("1.2.392.200149.8.5.1.3.30"),
}

#: 性別 as the 住民基本台帳 codes it: 1 男, 2 女, 3 不明 (⚠ the card's exact coding is unchecked).
SEXES = {"1": "男", "2": "女", "3": "不明"}

#: Era digits of EYYYYMMDD with each era's first day (明治 from the day the calendar changed).
ERAS = ((5, dt.date(2019, 5, 1)), (4, dt.date(1989, 1, 8)), (3, dt.date(1926, 12, 25)),
        (2, dt.date(1912, 7, 30)), (1, dt.date(1873, 1, 1)))

#: A person gets a 署名用 certificate from this age on (under 15: the card carries none).
SIGNING_MIN_AGE = 15
#: Both certificates run until this birthday after issue (発行日後5回目の誕生日).
VALID_BIRTHDAYS = 5
MAX_FACT_CHARS = 200


def ca_subject(kind: str) -> x509.Name:
    """The subject (and issuer) of the JPKI CA for ``kind`` (``"auth"`` or ``"sign"``)."""
    _kind(kind)
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "JPKI"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _OU[kind]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JLIS_EN),
    ])


def ca_alt_name(kind: str) -> x509.Name:
    """The directory name in the real CA's subjectAltName (Japanese)."""
    _kind(kind)
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, SERVICE_JA),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, _OU_JA[kind]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, JLIS_JA),
    ])


def card_subject(opaque: str) -> x509.Name:
    """A card certificate's subject: ``C=JP, CN=<opaque>`` — no personal data."""
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                      x509.NameAttribute(NameOID.COMMON_NAME, opaque)])


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidArgumentError(f"unknown JPKI certificate kind {kind!r}; expected 'auth' or 'sign'")
    return kind


def end_of_day_jst(day: dt.date) -> dt.datetime:
    """23:59:59 JST of ``day`` in UTC (the real certificates end at 14:59:59Z)."""
    return dt.datetime(day.year, day.month, day.day, 23, 59, 59, tzinfo=JST).astimezone(dt.UTC)


def birthday_in(year: int, birth: dt.date) -> dt.date:
    """The birthday in ``year``; a 29 February birthday falls on 28 February in common years
    (as 運転免許 and most Japanese administration count it)."""
    try:
        return birth.replace(year=year)
    except ValueError:
        return dt.date(year, 2, 28)


def nth_birthday_after(issued: dt.date, birth: dt.date, n: int = VALID_BIRTHDAYS) -> dt.date:
    """The ``n``-th birthday strictly after ``issued`` (a birthday on the issue day does not count)."""
    first = issued.year if birthday_in(issued.year, birth) > issued else issued.year + 1
    return birthday_in(first + n - 1, birth)


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years on ``day`` (a 29 February child is a year older on 28 February in common years)."""
    return day.year - birth.year - (1 if day < birthday_in(day.year, birth) else 0)


def certificate_not_after(issued_at: dt.datetime, birth: dt.date) -> dt.datetime:
    """Validity end of a card certificate issued at ``issued_at``: the end (JST) of the 5th
    birthday after the issue date (JST)."""
    return end_of_day_jst(nth_birthday_after(issued_at.astimezone(JST).date(), birth))


def encode_birth(birth: dt.date) -> str:
    """生年月日 as ``EYYYYMMDD``: the era digit (1 明治 … 5 令和), then the Gregorian date."""
    for era, start in ERAS:
        if birth >= start:
            return f"{era}{birth:%Y%m%d}"
    raise InvalidArgumentError("birth dates before 1873 (the Gregorian calendar in Japan) are not supported")


def decode_birth(text: str) -> dt.date:
    if not re.fullmatch(r"[1-5]\d{8}", text):
        raise InvalidArgumentError("生年月日 is not EYYYYMMDD")
    try:
        day = dt.date(int(text[1:5]), int(text[5:7]), int(text[7:9]))
    except ValueError:
        raise InvalidArgumentError("生年月日 is not a calendar date") from None
    if encode_birth(day) != text:
        raise InvalidArgumentError("生年月日: the era digit does not match the date")
    return day


@dataclass(frozen=True)
class BasicFacts:
    """基本4情報: 氏名, 生年月日, 性別 (``"1"`` 男, ``"2"`` 女, ``"3"`` 不明), 住所.

    ``repr`` shows none of them (they are personal data and must not reach a log)."""

    name: str
    birth: dt.date
    sex: str
    address: str

    def __post_init__(self) -> None:
        for what, value in (("name", self.name), ("address", self.address)):
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_FACT_CHARS:
                raise InvalidArgumentError(f"{what} must be a non-empty string of at most {MAX_FACT_CHARS} characters")
        if not isinstance(self.birth, dt.date) or isinstance(self.birth, dt.datetime):
            raise InvalidArgumentError("birth must be a date")
        if self.sex not in SEXES:
            raise InvalidArgumentError("sex must be '1' (男), '2' (女) or '3' (不明)")
        encode_birth(self.birth)

    def __repr__(self) -> str:
        return "BasicFacts(<personal data withheld>)"

    @classmethod
    def parse(cls, name: str, birth: str, sex: str, address: str) -> BasicFacts:
        """From command-line text: birth ``YYYY-MM-DD``; sex ``1``/``2``/``3``, ``M``/``F`` or 男/女/不明."""
        try:
            day = dt.date.fromisoformat(birth)
        except ValueError:
            raise InvalidArgumentError("birth must be a date YYYY-MM-DD") from None
        aliases = {"M": "1", "F": "2", "男": "1", "女": "2", "不明": "3", "U": "3"}
        return cls(name, day, aliases.get(sex.upper() if sex.isascii() else sex, sex), address)

    def changed(self, name: str | None = None, birth: dt.date | None = None, sex: str | None = None,
                address: str | None = None) -> BasicFacts:
        return BasicFacts(name if name is not None else self.name, birth if birth is not None else self.birth,
                          sex if sex is not None else self.sex, address if address is not None else self.address)


def facts_alt_name(facts: BasicFacts) -> x509.SubjectAlternativeName:
    """The signing certificate's subjectAltName: 氏名, 性別, 生年月日, 住所 as otherName UTF8String
    (DER from cryptography's own ASN.1 encoder)."""
    return x509.SubjectAlternativeName([
        x509.OtherName(OID_NAME, asn1.encode_der(facts.name)),
        x509.OtherName(OID_SEX, asn1.encode_der(facts.sex)),
        x509.OtherName(OID_BIRTH, asn1.encode_der(encode_birth(facts.birth))),
        x509.OtherName(OID_ADDRESS, asn1.encode_der(facts.address)),
    ])


def signing_facts(cert: x509.Certificate) -> BasicFacts:
    """The 基本4情報 of a 署名用 certificate (its subjectAltName)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise InvalidArgumentError("the certificate carries no 基本4情報 (no subjectAltName)") from None
    found: dict[x509.ObjectIdentifier, str] = {}
    for other in san.get_values_for_type(x509.OtherName):
        if other.type_id in (OID_NAME, OID_SEX, OID_BIRTH, OID_ADDRESS):
            try:
                found[other.type_id] = asn1.decode_der(str, other.value)
            except ValueError:
                raise InvalidArgumentError("a 基本4情報 entry is not a UTF8String") from None
    missing = [str(o.dotted_string) for o in (OID_NAME, OID_SEX, OID_BIRTH, OID_ADDRESS) if o not in found]
    if missing:
        raise InvalidArgumentError(f"the certificate lacks 基本4情報 entries {', '.join(missing)}")
    return BasicFacts(found[OID_NAME], decode_birth(found[OID_BIRTH]), found[OID_SEX], found[OID_ADDRESS])


__all__ = [
    "AUTH", "JST", "KINDS", "POLICY", "SEXES", "SIGN", "SIGNING_MIN_AGE", "VALID_BIRTHDAYS", "BasicFacts",
    "age_on", "birthday_in", "ca_alt_name", "ca_subject", "card_subject", "certificate_not_after", "decode_birth",
    "encode_birth", "end_of_day_jst", "facts_alt_name", "nth_birthday_after", "signing_facts",
]
