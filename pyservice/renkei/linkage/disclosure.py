"""A person's own records (情報提供等記録の開示, マイナポータル), behind DisclosureService.

The person logs in with a signature of their card key (registered by J-LIS, forwarded to the
core with the person's link id) over a single-use challenge; the session then reads the
records about the person — found by the portal pseudonym, an HMAC of the core's person index —
newest first, each with an inclusion proof. 不開示 records are held back.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from renkei._core import inquiry as _inq
from renkei.errors import NotFoundError, UnauthenticatedError
from renkei.ledger import Ledger, PersonPage
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


CHALLENGE_TTL = timedelta(minutes=2)
SESSION_TTL = timedelta(minutes=15)


@dataclass
class _Session:
    pseudonym: bytes
    expires: datetime


class Disclosure:
    """Card-key login and a person's own records (マイナポータル's view of the ledger)."""

    def __init__(self, registry: AgencyRegistry, ledger: Ledger, pseudonym_key: bytes) -> None:
        self._registry = registry
        self._ledger = ledger
        self._key = pseudonym_key
        self._challenges: dict[bytes, tuple[bytes, datetime]] = {}
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()

    def _expire(self, now: datetime) -> None:
        for c in [c for c, (_k, t) in self._challenges.items() if t <= now]:
            del self._challenges[c]
        for s in [s for s, v in self._sessions.items() if v.expires <= now]:
            del self._sessions[s]

    def create_challenge(self, card_key_id: bytes) -> Challenge:
        now = datetime.now(UTC)
        challenge = secrets.token_bytes(32)
        with self._lock:
            self._expire(now)
            if len(self._challenges) > 100_000:
                raise UnauthenticatedError("too many pending challenges; try again shortly")
            self._challenges[challenge] = (bytes(card_key_id), now + CHALLENGE_TTL)
        return Challenge(challenge, now + CHALLENGE_TTL)

    def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> Session:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        now = datetime.now(UTC)
        refused = UnauthenticatedError(
            "login refused: unknown card key, unknown or expired challenge, or bad signature"
        )
        with self._lock:
            pending = self._challenges.pop(bytes(challenge), None)  # single use, even when it fails
        if pending is None or pending[0] != bytes(card_key_id) or pending[1] <= now:
            raise refused
        try:
            public_key, person_id = self._registry.card_key(card_key_id)
        except NotFoundError:
            raise refused from None
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, login_message(challenge))
        except (InvalidSignature, ValueError):
            raise refused from None
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[token] = _Session(bytes(_inq.pseudonym(self._key, person_id)), now + SESSION_TTL)
        return Session(token, now + SESSION_TTL)

    def my_records(self, session_token: str, before_sequence: int | None, limit: int) -> PersonPage:
        now = datetime.now(UTC)
        with self._lock:
            s = self._sessions.get(session_token)
        if s is None or s.expires <= now:
            raise UnauthenticatedError("no such session or the session has expired; log in again")
        return self._ledger.records_for_pseudonym(s.pseudonym, limit, before_sequence)


def login_message(challenge: bytes) -> bytes:
    """What a card signs to log in: a domain-separated challenge."""
    return b"renkei-disclosure-login\0" + challenge


def card_key_id(public_key: bytes) -> bytes:
    return hashlib.sha256(public_key).digest()


__all__ = ["Challenge", "Disclosure", "Session", "card_key_id", "login_message", "portal_pseudonym"]
