"""ワンストップ申請: the application document the person signs with their card (docs/arch/onestop.md).

Shared by the portal (which builds the document from the form and shows it to be signed) and the
intermediate server (which checks the signature again and hands the document to the
municipality's business side). The document is canonical JSON (sorted keys, no spaces, UTF-8),
so that the bytes signed are the bytes delivered; it carries no My Number: the applicant is the
holder of the 署名用 certificate, whose 基本4情報 the municipality matches to its 宛名.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from renkei.errors import InvalidArgumentError
from renkei.numbers import parse_individual_number

FORMAT = "renkei-onestop-application/1"
MAX_DOCUMENT = 16 * 1024
MAX_FIELD = 200


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | date | number
    required: bool = True


@dataclass(frozen=True)
class Procedure:
    """An affair a municipality accepts online, and the 別表第二 affair its inquiries go under."""

    id: str
    title: str
    affair: str  # the permission table's affair id (the 事務 the municipality's inquiries use)
    fields: tuple[Field, ...]


#: The catalogue (one procedure for now): 児童手当 認定請求 (児童手当法 第7条). Its income check
#: is 別表第二 74の項 (市町村長 ← 市町村長, 地方税関係情報): the municipality fetches the tax
#: information itself, so the person attaches no 課税証明書.
PROCEDURES: dict[str, Procedure] = {p.id: p for p in (
    Procedure("child-allowance-claim", "児童手当 認定請求", "beppyo2-74", (
        Field("child_name", "児童の氏名"),
        Field("child_birth", "児童の生年月日", "date"),
        Field("relationship", "請求者との続柄"),
        Field("bank_account", "振込先口座（金融機関名・支店名・口座番号）"),
    )),
)}


def procedure(pid: str) -> Procedure:
    try:
        return PROCEDURES[pid]
    except KeyError:
        raise InvalidArgumentError("procedure: not one the portal offers") from None


def _contains_my_number(text: str) -> bool:
    digits = re.sub(r"\D", "", text.translate(str.maketrans("０１２３４５６７８９", "0123456789")))
    for i in range(len(digits) - 11):
        try:
            parse_individual_number(digits[i:i + 12])
        except InvalidArgumentError:
            continue
        return True
    return False


def build(pid: str, municipality: int, values: dict[str, str], now: dt.datetime | None = None) -> bytes:
    """The canonical document for a form's values; refuses a missing, malformed or over-long field,
    and any value carrying a My Number (the application must not hold one)."""
    p = procedure(pid)
    fields: dict[str, str] = {}
    for f in p.fields:
        value = values.get(f.name, "").strip()
        if not value:
            if f.required:
                raise InvalidArgumentError(f"{f.label}を入力してください")
            continue
        if len(value) > MAX_FIELD:
            raise InvalidArgumentError(f"{f.label}は{MAX_FIELD}文字以内で入力してください")
        if f.kind == "date":
            try:
                value = dt.date.fromisoformat(value).isoformat()
            except ValueError:
                raise InvalidArgumentError(f"{f.label}は YYYY-MM-DD で入力してください") from None
        if _contains_my_number(value):
            raise InvalidArgumentError(f"{f.label}に個人番号を書かないでください")
        fields[f.name] = value
    doc = {"format": FORMAT, "procedure": p.id, "title": p.title, "affair": p.affair,
           "municipality": municipality, "fields": fields, "nonce": secrets.token_hex(16),
           "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")}
    return canonical(doc)


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def parse(document: bytes) -> dict[str, Any]:
    """The document, checked to be canonical and of this format (anything else is refused)."""
    if not 0 < len(document) <= MAX_DOCUMENT:
        raise InvalidArgumentError(f"an application document is 1 to {MAX_DOCUMENT} bytes")
    try:
        doc = json.loads(document)
    except ValueError:
        raise InvalidArgumentError("the application document is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or canonical(doc) != document:
        raise InvalidArgumentError("the application document is not a canonical renkei application")
    if not isinstance(doc.get("municipality"), int) or not isinstance(doc.get("fields"), dict):
        raise InvalidArgumentError("the application document names no municipality or fields")
    procedure(str(doc.get("procedure")))
    return doc


def check_signed(document: bytes, signature: bytes, certificate_der: bytes, municipality: int) -> dict[str, Any]:
    """The intermediate server's own check: the document is well formed and addressed here, and
    the signature verifies with the certificate's key (the chain and revocation were the portal's
    check; this one makes sure the portal delivered the bytes the person signed)."""
    doc = parse(document)
    if doc["municipality"] != municipality:
        raise InvalidArgumentError("the application is addressed to another municipality")
    try:
        key = x509.load_der_x509_certificate(certificate_der).public_key()
    except ValueError:
        raise InvalidArgumentError("the 署名用 certificate is not DER") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise InvalidArgumentError("the 署名用 certificate's key is not RSA")
    try:
        key.verify(signature, document, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise InvalidArgumentError("the application's signature does not verify") from None
    return doc


__all__ = ["FORMAT", "PROCEDURES", "Field", "Procedure", "build", "canonical", "check_signed", "parse", "procedure"]
