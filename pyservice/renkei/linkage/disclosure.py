"""A person's own records (情報提供等記録の開示, マイナポータル), behind DisclosureService.

The person logs in with a signature of their card key (registered by J-LIS, forwarded to the
core with the person's link id) over a single-use, stateless challenge; the session then reads the
records about the person — found by the portal pseudonym, an HMAC of the core's person index —
newest first, each with an inclusion proof. 不開示 records are held back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from renkei._core import inquiry as _inq
from renkei.errors import (
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
)
from renkei.ledger import Ledger, PersonPage
from renkei.linkage.delegation import DelegationBook
from renkei.linkage.notices import NoticeBox, StoredNotice
from renkei.linkage.registry import AgencyRegistry

PSEUDONYM_KEY = "portal-pseudonym"


def portal_pseudonym(key: bytes, person: int) -> bytes:
    """HMAC-SHA256(portal-pseudonym key, person index as u32 BE): how a person appears in records."""
    return bytes(_inq.pseudonym(key, int(person)))


@dataclass(frozen=True)
class Challenge:
    challenge: bytes
    expires_at: datetime


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: datetime
    #: How the person appears in their records (never a number or a person index).
    pseudonym: bytes = b""


CHALLENGE_TTL = timedelta(minutes=2)
SESSION_TTL = timedelta(minutes=15)
#: Successful logins remembered (each until its challenge expires) so a challenge is used once.
MAX_USED_CHALLENGES = 1_000_000
#: Sessions at once; only successful logins (a card's signature) make one.
MAX_SESSIONS = 1_000_000
_CHALLENGE_LABEL = b"renkei-disclosure-challenge-v1\0"
_NONCE = 16
_TAG = 32
CHALLENGE_LEN = 8 + _NONCE + _TAG


@dataclass
class _Session:
    pseudonym: bytes
    expires: datetime
    #: The core's person index (never leaves the core): 自己情報表示 issues the portal's code by it.
    person: int = -1


class Disclosure:
    """Card-key login and a person's own records (マイナポータル's view of the ledger).

    Challenges keep no state: one is the expiry, a nonce and an HMAC (a key of this process)
    over the card key id, expiry and nonce. So asking for challenges costs no memory and can
    never lock anyone out; they are issued only for registered card keys. A challenge is used
    once: a successful login remembers it until it expires (only a card's signature can make
    one, so that memory grows with real logins only).
    """

    def __init__(self, registry: AgencyRegistry, ledger: Ledger, pseudonym_key: bytes,
                 notices: NoticeBox | None = None, delegations: DelegationBook | None = None) -> None:
        self.notices = notices
        self.delegations = delegations
        self._registry = registry
        self._ledger = ledger
        self._key = pseudonym_key
        self._challenge_key = secrets.token_bytes(32)
        self._used: dict[bytes, datetime] = {}
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._swept = datetime.now(UTC)

    def _expire(self, now: datetime) -> None:
        if now - self._swept < timedelta(seconds=5):
            return
        self._swept = now
        for c in [c for c, t in self._used.items() if t <= now]:
            del self._used[c]
        for s in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[s]

    def _tag(self, card_key_id: bytes, expiry_and_nonce: bytes) -> bytes:
        return hmac.new(self._challenge_key, _CHALLENGE_LABEL + bytes(card_key_id) + expiry_and_nonce,
                        hashlib.sha256).digest()

    def create_challenge(self, card_key_id: bytes) -> Challenge:
        """A challenge for a registered card key (UnauthenticatedError for any other), or, for an
        empty id, one bound to no key: a relying party such as the portal shows it before it
        knows which card will sign (the 利用者証明用 certificate comes with the signature)."""
        if card_key_id:
            try:
                self._registry.card_key(card_key_id)
            except NotFoundError:
                raise UnauthenticatedError("this card key is not registered (J-LIS registers card keys)") from None
        now = datetime.now(UTC)
        expires = now + CHALLENGE_TTL
        body = struct.pack(">q", int(expires.timestamp())) + secrets.token_bytes(_NONCE)
        return Challenge(body + self._tag(card_key_id, body), datetime.fromtimestamp(int(expires.timestamp()), UTC))

    def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> Session:
        from cryptography.exceptions import InvalidSignature

        now = datetime.now(UTC)
        refused = UnauthenticatedError(
            "login refused: unknown card key, unknown or expired challenge, or bad signature"
        )
        challenge = bytes(challenge)
        if len(challenge) != CHALLENGE_LEN:
            raise refused
        body, tag = challenge[: 8 + _NONCE], challenge[8 + _NONCE :]
        if not (hmac.compare_digest(tag, self._tag(card_key_id, body))
                or hmac.compare_digest(tag, self._tag(b"", body))):
            raise refused
        expires = datetime.fromtimestamp(struct.unpack(">q", body[:8])[0], UTC)
        if expires <= now:
            raise refused
        try:
            public_key, person_id = self._registry.card_key(card_key_id)
        except NotFoundError:
            raise refused from None
        try:
            verify_card_signature(public_key, signature, login_message(challenge))
        except (InvalidSignature, ValueError, TypeError):
            raise refused from None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._expire(now)
            if challenge in self._used:
                raise refused
            if len(self._used) >= MAX_USED_CHALLENGES or len(self._sessions) >= MAX_SESSIONS:
                raise ResourceExhaustedError("too many logins at this moment; try again in a minute")
            self._used[challenge] = expires
            pseudonym = bytes(_inq.pseudonym(self._key, person_id))
            self._sessions[token] = _Session(pseudonym, now + SESSION_TTL, int(person_id))
        return Session(token, now + SESSION_TTL, pseudonym)

    def _pseudonym(self, session_token: str) -> bytes:
        now = datetime.now(UTC)
        with self._lock:
            s = self._sessions.get(session_token)
        if s is None or s.expires <= now:
            raise UnauthenticatedError("no such session or the session has expired; log in again")
        return s.pseudonym

    def person_of(self, session_token: str) -> int:
        """The core's person index behind a live session (the core's own use only: it never
        leaves the core)."""
        now = datetime.now(UTC)
        with self._lock:
            s = self._sessions.get(session_token)
        if s is None or s.expires <= now or s.person < 0:
            raise UnauthenticatedError("no such session or the session has expired; log in again")
        return s.person

    def whose(self, session_token: str, delegation_id: int, what: str) -> bytes:
        """The pseudonym a read is about: the caller's, or (``delegation_id`` set) the principal's
        of an active delegation to the caller covering ``what`` — logged in both 操作履歴."""
        me = self._pseudonym(session_token)
        if not delegation_id:
            return me
        if self.delegations is None:
            raise PermissionDeniedError("this core keeps no delegations")
        return self.delegations.authorize(me, delegation_id, what)

    def my_records(self, session_token: str, before_sequence: int | None, limit: int,
                   delegation_id: int = 0) -> tuple[PersonPage, bytes]:
        who = self.whose(session_token, delegation_id, "records")
        return self._ledger.records_for_pseudonym(who, limit, before_sequence), who

    def my_notices(self, session_token: str, before: int | None, limit: int,
                   delegation_id: int = 0) -> tuple[list[StoredNotice], int | None]:
        """The person's お知らせ newest first (LinkageService.SendNotice)."""
        who = self.whose(session_token, delegation_id, "notices")
        if self.notices is None:
            return [], None
        return self.notices.of(who, limit, before)

    def book(self, session_token: str) -> tuple[DelegationBook, bytes]:
        if self.delegations is None:
            raise PermissionDeniedError("this core keeps no delegations")
        return self.delegations, self._pseudonym(session_token)


def login_message(challenge: bytes) -> bytes:
    """What a card signs to log in: a domain-separated challenge."""
    return b"renkei-disclosure-login\0" + challenge


def verify_card_signature(public_key: bytes, signature: bytes, message: bytes) -> None:
    """A card key is a raw Ed25519 key (32 bytes) or the SubjectPublicKeyInfo (DER) of a JPKI
    利用者証明用 RSA key, which signs PKCS#1 v1.5 with SHA-256. Raises InvalidSignature/ValueError."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if len(public_key) == 32:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return
    key = load_der_public_key(public_key)
    if not isinstance(key, RSAPublicKey):
        raise ValueError("a card key is Ed25519 or RSA")
    key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())


def check_card_key(public_key: bytes) -> None:
    """Refuse what cannot be a card key: 32 bytes (Ed25519) or an RSA ≥ 2048-bit SPKI (JPKI)."""
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    if len(public_key) == 32:
        return
    if len(public_key) > MAX_CARD_KEY:
        raise InvalidArgumentError(f"a card key is at most {MAX_CARD_KEY} bytes")
    try:
        key = load_der_public_key(public_key)
    except (ValueError, TypeError):
        raise InvalidArgumentError("a card key is a 32-byte Ed25519 key or an RSA SubjectPublicKeyInfo (DER)") from None
    if not isinstance(key, RSAPublicKey) or key.key_size < 2048:
        raise InvalidArgumentError("a card key is a 32-byte Ed25519 key or an RSA key of at least 2048 bits")


#: An RSA-4096 SubjectPublicKeyInfo is 550 bytes.
MAX_CARD_KEY = 1024


def card_key_id(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()


__all__ = ["Challenge", "Disclosure", "Session", "card_key_id", "check_card_key", "login_message", "portal_pseudonym",
           "verify_card_signature"]
