"""A person's own records (情報提供等記録の開示, マイナポータル), behind DisclosureService.

The person logs in with a signature of their card key (registered by J-LIS, forwarded to the
core with the person's link id) over a single-use, stateless challenge; the session then reads the
records about the person — found by the portal pseudonym, an HMAC of the core's person index —
newest first, each with an inclusion proof. 不開示 records are held back.

Every core front-end on one store serves the same logins (docs/arch/store.md): the challenge's
HMAC key is a key file of the core's data directory (``keys/disclosure-challenge.key``, the same
file on every front-end), and sessions and used challenges are rows of the core's store
(component ``disclosure``: ``disclosure.sqlite3`` embedded, schema ``disclosure`` on
PostgreSQL) — a session made at one front-end reads at another, a challenge used at one is
refused at every other, and a front-end's death logs no one out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import struct
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from renkei._core import inquiry as _inq
from renkei.datadir import DataDir
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
from renkei.store import Database, Tx, open_database, register_component

log = logging.getLogger("renkei.linkage")

PSEUDONYM_KEY = "portal-pseudonym"
#: The HMAC key of login challenges: a key file so that every front-end verifies every other's.
CHALLENGE_KEY = "disclosure-challenge"


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
#: Used challenges remembered (each until its challenge expires, plus CLOCK_SKEW) so a challenge
#: is used once, on every front-end.
MAX_USED_CHALLENGES = 1_000_000
#: Sessions at once, over every front-end; only successful logins (a card's signature) make one.
MAX_SESSIONS = 1_000_000
#: Expired rows each login deletes (of sessions, and of used challenges): bounded work per call,
#: many times the one row of each a login adds, so the tables follow the live logins.
SWEEP = 64
#: A used challenge is kept this long past its expiry: front-ends whose clocks differ by less
#: can never accept a challenge another front-end has used and already forgotten.
CLOCK_SKEW = timedelta(seconds=60)
_CHALLENGE_LABEL = b"renkei-disclosure-challenge-v2\0"
_SESSION_LABEL = b"renkei-disclosure-session\0"
_KEY_ID = 4
_NONCE = 16
_TAG = 32
_BODY = 8 + _KEY_ID + _NONCE
CHALLENGE_LEN = _BODY + _TAG

SCHEMA = register_component("disclosure", {
    "sqlite": """
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    pseudonym  BLOB NOT NULL,
    person     INTEGER NOT NULL,
    expires    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires);
CREATE TABLE IF NOT EXISTS used_challenges (
    challenge_hash BLOB PRIMARY KEY,
    expires        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS used_challenges_expiry ON used_challenges(expires);
CREATE TABLE IF NOT EXISTS login_counts (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    sessions INTEGER NOT NULL,
    used     INTEGER NOT NULL
);
INSERT INTO login_counts VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;
""",
    "postgresql": """
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BYTEA PRIMARY KEY,
    pseudonym  BYTEA NOT NULL,
    person     BIGINT NOT NULL,
    expires    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions(expires);
CREATE TABLE IF NOT EXISTS used_challenges (
    challenge_hash BYTEA PRIMARY KEY,
    expires        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS used_challenges_expiry ON used_challenges(expires);
CREATE TABLE IF NOT EXISTS login_counts (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    sessions BIGINT NOT NULL,
    used     BIGINT NOT NULL
);
INSERT INTO login_counts VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING
""",
})


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def session_hash(token: str) -> bytes:
    """What the store keeps of a session token (never the token: a copy of the store logs no one in)."""
    return hashlib.sha256(_SESSION_LABEL + token.encode()).digest()


class LoginStore:
    """Sessions and used challenges on the core's store, shared by every front-end (either
    driver: the same statements). A session row holds the token's SHA-256, the portal
    pseudonym, the core's person index (the core's own: never returned) and the expiry; a
    used challenge its SHA-256 and expiry. ``login_counts`` keeps both counts exact inside the
    transactions that change them, so the limits cost no table scan."""

    def __init__(self, data_dir: DataDir) -> None:
        self._db: Database = open_database(data_dir, "disclosure", SCHEMA)

    def close(self) -> None:
        self._db.close()

    def _sweep(self, tx: Tx, now: datetime) -> None:
        gone = tx.execute("DELETE FROM sessions WHERE token_hash IN (SELECT token_hash FROM sessions "
                          "WHERE expires <= ? ORDER BY expires LIMIT ?)", (_ms(now), SWEEP))
        forgot = tx.execute("DELETE FROM used_challenges WHERE challenge_hash IN (SELECT challenge_hash FROM "
                            "used_challenges WHERE expires <= ? ORDER BY expires LIMIT ?)",
                            (_ms(now - CLOCK_SKEW), SWEEP))
        if gone or forgot:
            tx.execute("UPDATE login_counts SET sessions = sessions - ?, used = used - ? WHERE id = 1",
                       (gone, forgot))

    def open_session(self, challenge: bytes, challenge_expires: datetime, token: str, pseudonym: bytes,
                     person: int, expires: datetime, now: datetime) -> bool:
        """Use ``challenge`` and make the session, in one transaction (durable on return).
        False: the challenge was used already (here or at another front-end); nothing changed."""
        with self._db.transaction() as tx:
            self._sweep(tx, now)
            if tx.execute("INSERT INTO used_challenges VALUES (?, ?) ON CONFLICT (challenge_hash) DO NOTHING",
                          (hashlib.sha256(challenge).digest(), _ms(challenge_expires))) == 0:
                return False
            row = tx.one("UPDATE login_counts SET sessions = sessions + 1, used = used + 1 WHERE id = 1 "
                         "RETURNING sessions, used")
            assert row is not None, "login_counts is made with the schema"
            if int(row[1]) > MAX_USED_CHALLENGES or int(row[0]) > MAX_SESSIONS:
                # Raising rolls the transaction back: the challenge stays unused, the counts as they were.
                raise ResourceExhaustedError("too many logins at this moment; try again in a minute")
            tx.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)",
                       (session_hash(token), bytes(pseudonym), int(person), _ms(expires)))
        return True

    def session(self, token: str, now: datetime) -> tuple[bytes, int] | None:
        """(pseudonym, person index) of a live session; one indexed read."""
        row = self._db.one("SELECT pseudonym, person, expires FROM sessions WHERE token_hash = ?",
                           (session_hash(token),))
        if row is None or int(row[2]) <= _ms(now):
            return None
        return bytes(row[0]), int(row[1])

    def end_session(self, token: str) -> bool:
        """Log out: the session ends at every front-end at once."""
        with self._db.transaction() as tx:
            gone: int = tx.execute("DELETE FROM sessions WHERE token_hash = ?", (session_hash(token),))
            if gone:
                tx.execute("UPDATE login_counts SET sessions = sessions - ? WHERE id = 1", (gone,))
        return gone > 0

    def counts(self) -> tuple[int, int]:
        """(sessions, used challenges) kept, expired ones not yet swept included."""
        row = self._db.one("SELECT sessions, used FROM login_counts WHERE id = 1")
        assert row is not None
        return int(row[0]), int(row[1])


#: How often a login with another front-end's challenge key is logged (it is also what a forger sends).
_FOREIGN_LOG_S = 60.0


class Disclosure:
    """Card-key login and a person's own records (マイナポータル's view of the ledger).

    Challenges keep no state: one is the expiry, the challenge key's id, a nonce and an HMAC
    (the ``disclosure-challenge`` key file, the same at every front-end) over the card key id,
    expiry, key id and nonce. So asking for challenges costs no memory and can never lock anyone
    out; they are issued only for registered card keys. A challenge is used once: a successful
    login records it on the store until it expires (only a card's signature can make one, so
    that table grows with real logins only), in the transaction that makes the session.
    """

    def __init__(self, registry: AgencyRegistry, ledger: Ledger, pseudonym_key: bytes, logins: LoginStore,
                 challenge_key: bytes, notices: NoticeBox | None = None,
                 delegations: DelegationBook | None = None) -> None:
        if len(challenge_key) != 32:
            raise InvalidArgumentError("the disclosure-challenge key is 32 bytes")
        self.notices = notices
        self.delegations = delegations
        self.logins = logins
        self._registry = registry
        self._ledger = ledger
        self._key = pseudonym_key
        self._challenge_key = bytes(challenge_key)
        self._key_id = hashlib.sha256(b"renkei-disclosure-challenge-key-id\0" + self._challenge_key).digest()[:_KEY_ID]
        self._foreign_logged = float("-inf")

    def _tag(self, card_key_id: bytes, body: bytes) -> bytes:
        return hmac.new(self._challenge_key, _CHALLENGE_LABEL + bytes(card_key_id) + body, hashlib.sha256).digest()

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
        body = struct.pack(">q", int(expires.timestamp())) + self._key_id + secrets.token_bytes(_NONCE)
        return Challenge(body + self._tag(card_key_id, body), datetime.fromtimestamp(int(expires.timestamp()), UTC))

    def _foreign(self) -> None:
        now = time.monotonic()
        if now - self._foreign_logged >= _FOREIGN_LOG_S:
            self._foreign_logged = now
            log.warning("a login's challenge names another disclosure-challenge key: every core front-end needs "
                        "the same keys/%s.key (or it was replaced in the last two minutes)", CHALLENGE_KEY)

    def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> Session:
        from cryptography.exceptions import InvalidSignature

        now = datetime.now(UTC)
        refused = UnauthenticatedError(
            "login refused: unknown card key, unknown or expired challenge, or bad signature"
        )
        challenge = bytes(challenge)
        if len(challenge) != CHALLENGE_LEN:
            raise refused
        body, tag = challenge[:_BODY], challenge[_BODY:]
        if not (hmac.compare_digest(tag, self._tag(card_key_id, body))
                or hmac.compare_digest(tag, self._tag(b"", body))):
            if body[8:8 + _KEY_ID] != self._key_id:
                self._foreign()
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
        pseudonym = bytes(_inq.pseudonym(self._key, person_id))
        if not self.logins.open_session(challenge, expires, token, pseudonym, int(person_id), now + SESSION_TTL,
                                        now):
            raise refused
        return Session(token, now + SESSION_TTL, pseudonym)

    def logout(self, session_token: str) -> bool:
        """End a session at every front-end (False: there was none)."""
        return self.logins.end_session(session_token)

    def _session(self, session_token: str) -> tuple[bytes, int]:
        s = self.logins.session(session_token, datetime.now(UTC))
        if s is None:
            raise UnauthenticatedError("no such session or the session has expired; log in again")
        return s

    def _pseudonym(self, session_token: str) -> bytes:
        return self._session(session_token)[0]

    def person_of(self, session_token: str) -> int:
        """The core's person index behind a live session (the core's own use only: it never
        leaves the core)."""
        return self._session(session_token)[1]

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


__all__ = ["CHALLENGE_KEY", "Challenge", "Disclosure", "LoginStore", "Session", "card_key_id", "check_card_key",
           "login_message", "portal_pseudonym", "session_hash", "verify_card_signature"]
