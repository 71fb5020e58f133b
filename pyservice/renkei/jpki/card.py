"""The マイナンバーカード's JPKI application as a software token.

A card has up to two keys, each with its certificate:

* ``auth`` — 利用者証明用: login. PIN of 4 digits, **3** wrong tries lock it.
* ``sign`` — 署名用: signing documents; carries the 基本4情報. PIN of 6–16 upper-case letters
  and digits (at least one of each), **5** wrong tries lock it. Not issued under 15.

and, when J-LIS issued it with one, the 券面事項入力補助AP (``kenmen``): the holder's 個人番号 and
基本4情報 signed by J-LIS (:mod:`renkei.jpki.kenmen`), sealed like a key behind its own 4-digit PIN
(**3** tries) — what an agency's counter reads for 番号確認.

Both sign as the card does: RSA-2048, PKCS#1 v1.5 over SHA-256.

**The token file** (``card.json``, 0600, the holder's) holds per key the certificate, the private
key (PKCS#8 DER) encrypted with AES-256-GCM under a random data key, and that data key wrapped
with AES-256-GCM under ``HKDF(scrypt(PIN), salt=slot_secret)``. It holds no PIN.

**The chip** is J-LIS's registry (:mod:`renkei.jpki.store`): it keeps the PIN verifier, the
failure counter and ``slot_secret``. Every use goes through :class:`Card`, which asks the chip to
check the PIN — the chip counts a failure durably *before* answering — and only a right PIN on an
unlocked key releases ``slot_secret``. Without it the file cannot be decrypted, so copying the file
gives no extra guesses (the file alone cannot even be brute-forced offline: ``slot_secret`` is 256
random bits). A copy of the registry alone holds no private key.

What a software token is **not**: a chip never lets its key out; here the key is decrypted in the
signing process's memory for the moment of the signature, and anyone with both the token file and
the JPKI's registry (a J-LIS insider plus the holder's disk) can guess a 4-digit PIN offline.
docs/arch/jpki.md states the trade-off.

**The municipality's reset** (:func:`reset_pin`): with the card present (its file) and J-LIS's
``keys/card-reset.key``, which wraps each key's data key a second time, an operator sets a new PIN
and clears the counter. The key and certificate stay.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from renkei.datadir import DataDir, make_private_dir, write_atomic
from renkei.errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PinLockedError,
    StorageError,
    WrongPinError,
)
from renkei.jpki import profile
from renkei.jpki.ca import RSA_BITS, SERVICE, Jpki
from renkei.jpki.kenmen import SignedKenmen
from renkei.jpki.profile import AUTH, SIGN, BasicFacts
from renkei.jpki.store import ChipSlot, JpkiStore

TOKEN_FORMAT = "renkei-jpki-card/1"
#: The 券面事項入力補助AP's slot on the chip (no certificate: its "serial" is 0).
KENMEN = "kenmen"
MAX_TRIES = {AUTH: 3, SIGN: 5, KENMEN: 3}
SCRYPT_N = 2**14
MIN_CHALLENGE = 16
MAX_CHALLENGE = 1024
MAX_SIGNED_DATA = 16 * 1024 * 1024
_AUTH_PIN = re.compile(r"[0-9]{4}")
_SIGN_PIN = re.compile(r"[A-Z0-9]{6,16}")


def check_pin(kind: str, pin: str) -> str:
    """``pin`` if it has the form the card accepts for ``kind``; a malformed PIN is refused here,
    before the chip, and is not counted (as card software checks the form before VERIFY)."""
    if not isinstance(pin, str):
        raise InvalidArgumentError("a PIN is a string")
    if kind == AUTH and not _AUTH_PIN.fullmatch(pin):
        raise InvalidArgumentError("the 利用者証明用 PIN is 4 digits")
    if kind == KENMEN and not _AUTH_PIN.fullmatch(pin):
        raise InvalidArgumentError("the 券面事項入力補助 PIN is 4 digits")
    if kind == SIGN and not (_SIGN_PIN.fullmatch(pin) and re.search("[A-Z]", pin) and re.search("[0-9]", pin)):
        raise InvalidArgumentError("the 署名用 PIN is 6 to 16 upper-case letters and digits, with at least one of each")
    return pin


def _aad(card_id: str, slot: str, serial: int) -> bytes:
    return f"{TOKEN_FORMAT}|{card_id}|{slot}|{serial}".encode()


def _stretch(pin: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(pin.encode())


def _verifier(stretched: bytes) -> bytes:
    return hmac.new(stretched, b"renkei-jpki-pin-verifier/1", hashlib.sha256).digest()


def _kek(stretched: bytes, slot_secret: bytes, card_id: str, slot: str) -> bytes:
    info = f"renkei-jpki-pin-kek/1|{card_id}|{slot}".encode()
    return HKDF(hashes.SHA256(), 32, salt=slot_secret, info=info).derive(stretched)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: object) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except ValueError:
        raise StorageError("the card file is damaged (bad base64)") from None


@dataclass(frozen=True)
class CardSignature:
    """What the card hands a relying party: the signature and the certificate (DER)."""

    signature: bytes
    certificate_der: bytes


@dataclass(frozen=True)
class PinState:
    failures: int
    max_failures: int

    @property
    def locked(self) -> bool:
        return self.failures >= self.max_failures

    @property
    def remaining(self) -> int:
        return max(0, self.max_failures - self.failures)


class Chip:
    """The chip side of the cards: PIN checks against J-LIS's registry (no CA key needed)."""

    def __init__(self, jpki_dir: str | os.PathLike[str]) -> None:
        self.store = JpkiStore(DataDir(jpki_dir, SERVICE))

    def close(self) -> None:
        self.store.close()

    def state(self, card_id: str, slot: str) -> PinState:
        s = self.store.slot(card_id, slot)
        return PinState(s.failures, s.max_failures)

    def verify_pin(self, card_id: str, slot: str, pin: str) -> bytes:
        """The key-encryption key of the slot for a right PIN. A wrong one is counted durably
        before :class:`~renkei.errors.WrongPinError` is raised; a locked slot refuses any PIN."""
        for _ in range(3):  # a reset may change the salt between the read and the check
            before = self.store.slot(card_id, slot)
            if before.locked:
                raise PinLockedError(f"the {slot} key of this card is locked after {before.max_failures} wrong PINs: "
                                     f"the municipality can reset it")
            stretched = _stretch(pin, before.pin_salt, before.scrypt_n)
            with self.store.transaction() as db:
                s = self.store.slot(card_id, slot, db)
                if s.pin_salt != before.pin_salt:
                    continue
                if s.locked:
                    outcome: str | None = "locked"
                elif hmac.compare_digest(_verifier(stretched), s.pin_verifier):
                    outcome = None
                    if s.failures:
                        self.store.set_failures(db, card_id, slot, 0)
                else:
                    outcome = "wrong"
                    self.store.set_failures(db, card_id, slot, s.failures + 1)
            if outcome == "locked":
                raise PinLockedError(f"the {slot} key of this card is locked: the municipality can reset it")
            if outcome == "wrong":
                left = max(0, s.max_failures - s.failures - 1)
                raise WrongPinError(f"wrong PIN for the {slot} key; {left} tries left"
                                    + (" (now locked: the municipality can reset it)" if not left else ""),
                                    remaining=left)
            return _kek(stretched, s.slot_secret, card_id, slot)
        raise FailedPreconditionError("the PIN of this card is being reset; try again")


class Card:
    """A card (its token file) with its chip (the JPKI data directory named in the file, or
    ``jpki_dir``). Every private-key use checks the PIN on the chip first."""

    def __init__(self, path: str | os.PathLike[str], jpki_dir: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path)
        self._token = _read_token(self.path)
        self.card_id = str(self._token["card_id"])
        self.jpki_dir = Path(jpki_dir) if jpki_dir is not None else Path(str(self._token["jpki_dir"]))
        self.chip = Chip(self.jpki_dir)

    def close(self) -> None:
        self.chip.close()

    def __enter__(self) -> Card:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def has(self, kind: str) -> bool:
        return kind in self._token["keys"]

    def _entry(self, kind: str) -> dict[str, Any]:
        profile._kind(kind)
        if not self.has(kind):
            raise NotFoundError(f"this card has no {kind} key" + (" (holders under 15 get no 署名用 certificate)"
                                                                   if kind == SIGN else ""))
        return dict(self._token["keys"][kind])

    def certificate(self, kind: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(str(self._entry(kind)["certificate"]).encode())

    def certificate_der(self, kind: str) -> bytes:
        return self.certificate(kind).public_bytes(serialization.Encoding.DER)

    def pin_state(self, kind: str) -> PinState:
        self._entry(kind)
        return self.chip.state(self.card_id, kind)

    def _private_key(self, kind: str, pin: str) -> rsa.RSAPrivateKey:
        entry = self._entry(kind)
        check_pin(kind, pin)
        kek = self.chip.verify_pin(self.card_id, kind, pin)
        aad = _aad(self.card_id, kind, int(entry["serial"]))
        try:
            dek = _open(kek, _unb64(entry["wrap"]), aad)
            der = _open(dek, _unb64(entry["key"]), aad)
        except InvalidTag:
            raise StorageError("the card file does not match its chip (damaged, replaced, or a PIN reset did not "
                               "finish: the municipality can run the reset again)") from None
        key = serialization.load_der_private_key(der, None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def has_kenmen(self) -> bool:
        return KENMEN in self._token

    def read_kenmen(self, pin: str) -> SignedKenmen:
        """The 券面事項入力補助AP: the 個人番号 and 基本4情報 as J-LIS signed them, after the AP's
        4-digit PIN (a wrong one counts against its 3 tries on the chip)."""
        entry = self._token.get(KENMEN)
        if not isinstance(entry, dict):
            raise NotFoundError("this card carries no 券面事項入力補助AP")
        check_pin(KENMEN, pin)
        kek = self.chip.verify_pin(self.card_id, KENMEN, pin)
        aad = _aad(self.card_id, KENMEN, 0)
        try:
            dek = _open(kek, _unb64(entry["wrap"]), aad)
            data = _open(dek, _unb64(entry["data"]), aad)
        except InvalidTag:
            raise StorageError("the card file does not match its chip (damaged, or a rewrite did not finish: the "
                               "municipality can write the AP again)") from None
        return SignedKenmen.from_json(json.loads(data))

    def sign_challenge(self, pin: str, challenge: bytes) -> CardSignature:
        """Log in: sign a relying party's challenge with the 利用者証明用 key (RSA PKCS#1 v1.5,
        SHA-256). A wrong PIN counts against the 3 tries."""
        if not isinstance(challenge, bytes) or not MIN_CHALLENGE <= len(challenge) <= MAX_CHALLENGE:
            raise InvalidArgumentError(f"a challenge is {MIN_CHALLENGE} to {MAX_CHALLENGE} bytes")
        key = self._private_key(AUTH, pin)
        return CardSignature(key.sign(challenge, padding.PKCS1v15(), hashes.SHA256()), self.certificate_der(AUTH))

    def sign(self, pin: str, data: bytes) -> CardSignature:
        """Sign a document with the 署名用 key (RSA PKCS#1 v1.5, SHA-256); the certificate that
        comes with it carries the 基本4情報. A wrong PIN counts against the 5 tries."""
        if not isinstance(data, bytes) or not 0 < len(data) <= MAX_SIGNED_DATA:
            raise InvalidArgumentError(f"signed data is 1 byte to {MAX_SIGNED_DATA} bytes")
        key = self._private_key(SIGN, pin)
        return CardSignature(key.sign(data, padding.PKCS1v15(), hashes.SHA256()), self.certificate_der(SIGN))


def _read_token(path: Path) -> dict[str, Any]:
    try:
        token = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(f"no card file {path}") from None
    except ValueError:
        raise StorageError(f"{path} is not a card file (not JSON)") from None
    if not isinstance(token, dict) or token.get("format") != TOKEN_FORMAT or not isinstance(token.get("keys"), dict):
        raise StorageError(f"{path} is not a {TOKEN_FORMAT} card file")
    return token


def _write_token(path: Path, token: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(token, ensure_ascii=False, indent=1).encode(), 0o600)


def _new_slot(jpki: Jpki, card_id: str, kind: str, pin: str, facts: BasicFacts, now: dt.datetime
              ) -> tuple[dict[str, str], ChipSlot, x509.Certificate]:
    key = rsa.generate_private_key(65537, RSA_BITS)
    cert = jpki.build_card_certificate(kind, card_id, key.public_key(), facts.birth,
                                       facts if kind == SIGN else None, now)
    aad = _aad(card_id, kind, cert.serial_number)
    dek = AESGCM.generate_key(256)
    pkcs8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
    salt, slot_secret = secrets.token_bytes(16), secrets.token_bytes(32)
    stretched = _stretch(pin, salt, SCRYPT_N)
    entry = {
        "serial": str(cert.serial_number),
        "certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "key": _b64(_seal(dek, pkcs8, aad)),
        "wrap": _b64(_seal(_kek(stretched, slot_secret, card_id, kind), dek, aad)),
    }
    chip = ChipSlot(card_id, kind, cert.serial_number, SCRYPT_N, salt, _verifier(stretched), slot_secret,
                    _seal(jpki.reset_key, dek, aad), 0, MAX_TRIES[kind])
    return entry, chip, cert


def new_card_id() -> str:
    """A fresh card id: 128 random bits (the 利用者証明用 certificate's CN)."""
    return secrets.token_hex(16)


def _kenmen_slot(jpki: Jpki, card_id: str, pin: str, signed: SignedKenmen) -> tuple[dict[str, str], ChipSlot]:
    aad = _aad(card_id, KENMEN, 0)
    dek = AESGCM.generate_key(256)
    salt, slot_secret = secrets.token_bytes(16), secrets.token_bytes(32)
    stretched = _stretch(pin, salt, SCRYPT_N)
    entry = {"serial": "0", "data": _b64(_seal(dek, json.dumps(signed.to_json()).encode(), aad)),
             "wrap": _b64(_seal(_kek(stretched, slot_secret, card_id, KENMEN), dek, aad))}
    chip = ChipSlot(card_id, KENMEN, 0, SCRYPT_N, salt, _verifier(stretched), slot_secret,
                    _seal(jpki.reset_key, dek, aad), 0, MAX_TRIES[KENMEN])
    return entry, chip


def issue_card(jpki: Jpki, out: str | os.PathLike[str], facts: BasicFacts, auth_pin: str, sign_pin: str | None,
               now: dt.datetime | None = None, *, card_id: str | None = None, kenmen: SignedKenmen | None = None,
               kenmen_pin: str | None = None) -> Card:
    """Issue a card at the municipality: fresh key pairs, the 利用者証明用 certificate (no personal
    data) and — from age 15 and when ``sign_pin`` is given — the 署名用 certificate with the
    基本4情報; with ``kenmen`` (J-LIS's signed AP data for ``card_id``) the 券面事項入力補助AP behind
    ``kenmen_pin``; the token written to ``out`` (never over an existing file), the chip registered."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    path = Path(out)
    if path.exists():
        raise AlreadyExistsError(f"{path} exists: a card file is never overwritten")
    check_pin(AUTH, auth_pin)
    if facts.birth > now.astimezone(profile.JST).date():
        raise InvalidArgumentError("the birth date is in the future")
    with_sign = sign_pin is not None and profile.age_on(facts.birth, now.astimezone(profile.JST).date()) >= \
        profile.SIGNING_MIN_AGE
    if with_sign:
        check_pin(SIGN, sign_pin)  # type: ignore[arg-type]
    if (kenmen is None) != (kenmen_pin is None):
        raise InvalidArgumentError("the 券面事項入力補助AP needs both its data and its PIN")
    if kenmen_pin is not None:
        check_pin(KENMEN, kenmen_pin)
    card_id = card_id or new_card_id()
    slots = [_new_slot(jpki, card_id, AUTH, auth_pin, facts, now)]
    if with_sign:
        slots.append(_new_slot(jpki, card_id, SIGN, sign_pin, facts, now))  # type: ignore[arg-type]
    token: dict[str, Any] = {"format": TOKEN_FORMAT, "card_id": card_id,
                             "jpki_dir": str(jpki.data_dir.path.resolve()),
                             "keys": {chip.slot: entry for entry, chip, _ in slots}}
    ap: tuple[dict[str, str], ChipSlot] | None = None
    if kenmen is not None and kenmen_pin is not None:
        ap = _kenmen_slot(jpki, card_id, kenmen_pin, kenmen)
        token[KENMEN] = ap[0]
    make_private_dir(path.parent)
    # The file first: a crash before the registry commits leaves a card nobody trusts (unknown
    # serials, no chip), never recorded certificates without their card.
    _write_token(path, token)
    try:
        with jpki.store.transaction() as db:
            for _, chip, cert in slots:
                jpki.store.add_certificate(db, chip.slot, card_id, cert.serial_number, cert.not_valid_before_utc,
                                           cert.not_valid_after_utc, cert.public_bytes(serialization.Encoding.DER))
                jpki.store.put_slot(db, chip)
            if ap is not None:
                jpki.store.put_slot(db, ap[1])
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Card(path, jpki.data_dir.path)


def write_kenmen(jpki: Jpki, card_path: str | os.PathLike[str], signed: SignedKenmen) -> None:
    """The municipality rewrites the 券面事項入力補助AP (after a move or a new 氏名, with the card
    present): the new signed data is sealed under the AP's data key, recovered with J-LIS's reset
    key; the PIN and its counter stay. Safe to run again if interrupted."""
    path = Path(card_path)
    token = _read_token(path)
    card_id = str(token["card_id"])
    entry = token.get(KENMEN)
    if not isinstance(entry, dict):
        raise NotFoundError("this card carries no 券面事項入力補助AP")
    s = jpki.store.slot(card_id, KENMEN)
    aad = _aad(card_id, KENMEN, 0)
    try:
        dek = _open(jpki.reset_key, s.reset_wrap, aad)
    except InvalidTag:
        raise StorageError("the JPKI's record of this card's AP is damaged: the card must be re-issued") from None
    entry["data"] = _b64(_seal(dek, json.dumps(signed.to_json()).encode(), aad))
    token[KENMEN] = entry
    _write_token(path, token)


def reset_pin(jpki: Jpki, card_path: str | os.PathLike[str], kind: str, new_pin: str) -> PinState:
    """The municipality's reset (暗証番号の初期化): with the card present and J-LIS's reset key, set
    a new PIN and clear the counter; key and certificate stay. Safe to run again if interrupted."""
    path = Path(card_path)
    token = _read_token(path)
    card_id = str(token["card_id"])
    profile._kind(kind)
    check_pin(kind, new_pin)
    entry = token["keys"].get(kind)
    if entry is None:
        raise NotFoundError(f"this card has no {kind} key")
    s = jpki.store.slot(card_id, kind)
    if int(entry["serial"]) != s.serial:
        raise FailedPreconditionError("the card file holds another key than the one the JPKI registered for it")
    aad = _aad(card_id, kind, s.serial)
    try:
        dek = _open(jpki.reset_key, s.reset_wrap, aad)
        _open(dek, _unb64(entry["key"]), aad)  # the file's key is the registered one
    except InvalidTag:
        raise StorageError("the card file or the JPKI's reset record is damaged: the card must be re-issued") from None
    salt = secrets.token_bytes(16)
    stretched = _stretch(new_pin, salt, SCRYPT_N)
    entry["wrap"] = _b64(_seal(_kek(stretched, s.slot_secret, card_id, kind), dek, aad))
    with jpki.store.transaction() as db:
        jpki.store.put_slot(db, ChipSlot(card_id, kind, s.serial, SCRYPT_N, salt, _verifier(stretched),
                                         s.slot_secret, s.reset_wrap, 0, MAX_TRIES[kind]))
    _write_token(path, token)
    return PinState(0, MAX_TRIES[kind])


def issue_demo_card(jpki: Jpki, cards_dir: str | os.PathLike[str], facts: BasicFacts, *, auth_pin: str,
                    sign_pin: str | None, file_name: str | None = None) -> Path:
    """Issue a card for ``facts`` into ``cards_dir`` (``renkei-data/cards/`` in the box) as
    ``file_name`` or ``card-<random>.json``; returns the file's path."""
    folder = make_private_dir(Path(cards_dir))
    name = file_name or f"card-{secrets.token_hex(8)}.json"
    if os.sep in name or not name.endswith(".json"):
        raise InvalidArgumentError("a card file name is a plain name ending in .json")
    issue_card(jpki, folder / name, facts, auth_pin, sign_pin).close()
    return folder / name

__all__ = ["KENMEN", "MAX_TRIES", "TOKEN_FORMAT", "Card", "CardSignature", "Chip", "PinState", "check_pin",
           "issue_card", "issue_demo_card", "new_card_id", "reset_pin", "write_kenmen"]
