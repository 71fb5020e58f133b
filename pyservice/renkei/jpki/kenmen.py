"""The card's 券面事項入力補助AP (card-surface input support application) and the counter's 番号確認.

A real マイナンバーカード carries, besides the two JPKI keys, an application that yields the
holder's 個人番号 and 基本4情報 after a 4-digit PIN (券面事項入力補助用暗証番号, 3 tries): what an
agency's counter application reads for 番号確認 instead of copying the card by hand. The data is
written at issuance and signed by J-LIS so the reader can tell it is genuine.

Here:

* :class:`KenmenData` — what the AP holds: the card id (the 利用者証明用 certificate's CN), the
  number, the 基本4情報, when it was written and until when the card is valid; encoded as
  canonical JSON (``renkei-kenmen/1``);
* :class:`KenmenSigner` — J-LIS's AP key (Ed25519, ``jlis/keys/kenmen-ap.key``) signs it at
  issuance (and again when the municipality rewrites it after a move);
* the token side is :meth:`renkei.jpki.card.Card.read_kenmen`: the data is sealed in the card file
  under a key only a right PIN releases, counted by the chip (J-LIS's registry), like the JPKI keys;
* :class:`CounterVerifier` — the agency's side of 本人確認 in one flow: the card signs the
  counter's fresh challenge with its 利用者証明用 key (PIN, OCSP: a suspended card fails here) and
  hands over the signed AP data; the verifier checks J-LIS's signature, that the AP belongs to the
  card that just signed (same card id), that the card has not expired, and returns the number and
  the 4情報 (番号確認 + 身元確認).

The AP data alone is replayable (it is static, as on a real card); the login signature over the
counter's own challenge is what proves the card is present and live.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from renkei.errors import CardExpiredError, CardSignatureError, CardUntrustedError, InvalidArgumentError
from renkei.jpki.profile import JST, BasicFacts
from renkei.numbers import format_individual_number, parse_individual_number

FORMAT = "renkei-kenmen/1"
MAX_DOCUMENT = 4096


@dataclass(frozen=True)
class KenmenData:
    """The 券面事項入力補助AP's contents (``repr`` hides the personal data)."""

    card_id: str
    individual_number: str
    facts: BasicFacts
    written_at: dt.datetime
    card_expires: dt.date

    def __repr__(self) -> str:
        return f"KenmenData(card_id={self.card_id!r}, <personal data withheld>)"

    def encode(self) -> bytes:
        doc = {"format": FORMAT, "card_id": self.card_id, "individual_number": self.individual_number,
               "name": self.facts.name, "birth": self.facts.birth.isoformat(), "sex": self.facts.sex,
               "address": self.facts.address, "written_at": self.written_at.astimezone(dt.UTC).isoformat(
                   timespec="seconds"), "card_expires": self.card_expires.isoformat()}
        return json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, document: bytes) -> KenmenData:
        try:
            doc = json.loads(document)
            if doc.get("format") != FORMAT:
                raise ValueError("format")
            return cls(str(doc["card_id"]), format_individual_number(parse_individual_number(
                str(doc["individual_number"]))), BasicFacts(str(doc["name"]), dt.date.fromisoformat(doc["birth"]),
                                                            str(doc["sex"]), str(doc["address"])),
                dt.datetime.fromisoformat(doc["written_at"]), dt.date.fromisoformat(doc["card_expires"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CardUntrustedError("the 券面事項入力補助 data is not a renkei-kenmen/1 document") from None


@dataclass(frozen=True)
class SignedKenmen:
    """The AP data as the card hands it out: the document and J-LIS's Ed25519 signature."""

    document: bytes
    signature: bytes

    def to_json(self) -> dict[str, str]:
        import base64

        return {"document": base64.b64encode(self.document).decode(),
                "signature": base64.b64encode(self.signature).decode()}

    @classmethod
    def from_json(cls, d: dict[str, object]) -> SignedKenmen:
        import base64

        try:
            return cls(base64.b64decode(str(d["document"]), validate=True),
                       base64.b64decode(str(d["signature"]), validate=True))
        except (KeyError, ValueError):
            raise InvalidArgumentError("signed 券面事項 data is {document, signature} in base64") from None


class KenmenSigner:
    """J-LIS's key for the 券面事項入力補助AP (Ed25519 from a 32-byte seed)."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise InvalidArgumentError("the AP key seed is 32 bytes")
        self._key = Ed25519PrivateKey.from_private_bytes(seed)

    def public_pem(self) -> bytes:
        return public_pem(self._key.public_key())

    def sign(self, data: KenmenData) -> SignedKenmen:
        document = data.encode()
        return SignedKenmen(document, self._key.sign(document))


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class KenmenVerifier:
    """Checks J-LIS's signature on AP data (the public key pinned, PEM)."""

    def __init__(self, public_key_pem: bytes) -> None:
        try:
            key = serialization.load_pem_public_key(public_key_pem)
        except ValueError:
            raise InvalidArgumentError("the 券面事項入力補助AP key is not a PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidArgumentError("the 券面事項入力補助AP key is Ed25519")
        self._key = key

    def verify(self, signed: SignedKenmen) -> KenmenData:
        if len(signed.document) > MAX_DOCUMENT:
            raise CardUntrustedError("the 券面事項入力補助 data is too large")
        try:
            self._key.verify(signed.signature, signed.document)
        except InvalidSignature:
            raise CardSignatureError("the 券面事項入力補助 data is not signed by J-LIS's AP key") from None
        return KenmenData.decode(signed.document)


@dataclass(frozen=True)
class Identified:
    """An agency's 本人確認 at the counter: the number and 4情報 from the card's AP, checked
    against a live login of the same card (``repr`` hides the personal data)."""

    individual_number: str
    facts: BasicFacts
    card_id: str
    written_at: dt.datetime
    card_expires: dt.date
    revocation_source: str

    def __repr__(self) -> str:
        return f"Identified(card_id={self.card_id!r}, <personal data withheld>)"


class CounterVerifier:
    """The agency's counter application: 番号確認 + 身元確認 from one card presentation.

    ``auth`` is an :class:`renkei.jpki.verify.AuthVerifier` (pinned 利用者証明用 CA and the OCSP
    responder: a suspended or revoked card fails there); build it with ``cache_seconds=0`` so a
    counter always asks the responder. ``kenmen_key_pem`` is J-LIS's AP public key."""

    def __init__(self, auth: object, kenmen_key_pem: bytes) -> None:
        from renkei.jpki.verify import AuthVerifier

        if not isinstance(auth, AuthVerifier):
            raise InvalidArgumentError("auth must be a renkei.jpki.verify.AuthVerifier")
        self.auth = auth
        self.kenmen = KenmenVerifier(kenmen_key_pem)

    def identify(self, challenge: bytes, login_signature: bytes, certificate_der: bytes, signed: SignedKenmen,
                 today: dt.date | None = None) -> Identified:
        card = self.auth.verify_login(challenge, login_signature, certificate_der)
        data = self.kenmen.verify(signed)
        if data.card_id != card.card_id:
            raise CardUntrustedError("the 券面事項入力補助 data belongs to another card than the one that signed in")
        day = today or dt.datetime.now(JST).date()
        if data.card_expires < day:
            raise CardExpiredError(f"the card expired on {data.card_expires.isoformat()}")
        return Identified(data.individual_number, data.facts, data.card_id, data.written_at, data.card_expires,
                          card.revocation.source)


__all__ = ["FORMAT", "CounterVerifier", "Identified", "KenmenData", "KenmenSigner", "KenmenVerifier",
           "SignedKenmen", "public_pem"]
