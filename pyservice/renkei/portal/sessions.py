"""Portal sessions and pending logins, in memory.

A session is a random 256-bit token (the cookie) with its own CSRF token, the person's pseudonym
and the core's session token; it ends after ``idle`` without a request or ``absolute`` after the
login, whichever comes first (the absolute limit is the core's session life, so the portal never
holds a session the core has ended). A pending login is the challenge shown on the login page,
keyed by a random id in its own cookie; taking it removes it, so a form posted twice is refused.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from renkei.errors import ResourceExhaustedError

IDLE_SECONDS = 600.0
ABSOLUTE_SECONDS = 900.0
PENDING_SECONDS = 120.0  # the core's challenge lives two minutes
MAX_SESSIONS = 100_000
MAX_PENDING = 100_000


@dataclass
class Session:
    token: str
    csrf: str
    pseudonym: bytes
    core_token: str
    created: float
    seen: float
    #: Whose records this session reads when acting as an agent (代理人), else None.
    acting_for: bytes | None = None
    cache: dict[str, object] = field(default_factory=dict)

    def csrf_ok(self, value: str | None) -> bool:
        return value is not None and hmac.compare_digest(self.csrf.encode(), value.encode())


@dataclass(frozen=True)
class Pending:
    challenge: bytes
    csrf: str
    expires: float
    #: Where to go after the login (an app's authorization request), else "".
    next: str = ""


class Sessions:
    def __init__(self, idle: float = IDLE_SECONDS, absolute: float = ABSOLUTE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle = idle
        self.absolute = absolute
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._pending: dict[str, Pending] = {}
        self._lock = threading.Lock()
        self._swept = 0.0

    def _now(self) -> float:
        return self._clock()

    def _sweep(self, now: float) -> None:
        if now - self._swept < 5:
            return
        self._swept = now
        for k in [k for k, s in self._sessions.items() if not self._alive(s, now)]:
            del self._sessions[k]
        for k in [k for k, p in self._pending.items() if p.expires <= now]:
            del self._pending[k]

    def _alive(self, s: Session, now: float) -> bool:
        return now - s.seen < self.idle and now - s.created < self.absolute

    # -- pending logins ------------------------------------------------------------------------

    def begin_login(self, challenge: bytes, next_url: str = "") -> tuple[str, Pending]:
        now = self._now()
        key = secrets.token_urlsafe(32)
        p = Pending(challenge, secrets.token_urlsafe(32), now + PENDING_SECONDS, next_url)
        with self._lock:
            self._sweep(now)
            if len(self._pending) >= MAX_PENDING:
                raise ResourceExhaustedError("ログイン手続きが混み合っています。少し待ってからやり直してください")
            self._pending[key] = p
        return key, p

    def take_login(self, key: str | None) -> Pending | None:
        """The pending login, removed (None when unknown, used or expired)."""
        if not key:
            return None
        with self._lock:
            p = self._pending.pop(key, None)
        return p if p is not None and p.expires > self._now() else None

    # -- sessions ------------------------------------------------------------------------------

    def create(self, pseudonym: bytes, core_token: str) -> Session:
        now = self._now()
        s = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), pseudonym, core_token, now, now)
        with self._lock:
            self._sweep(now)
            if len(self._sessions) >= MAX_SESSIONS:
                raise ResourceExhaustedError("ログイン中の利用者が多すぎます。少し待ってからやり直してください")
            self._sessions[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie (its idle clock restarted), or None."""
        if not token:
            return None
        now = self._now()
        with self._lock:
            s = self._sessions.get(token)
            if s is None:
                return None
            if not self._alive(s, now):
                del self._sessions[token]
                return None
            s.seen = now
            return s

    def peek(self, token: str) -> Session | None:
        """The session for an app's fetch (its token acts within the session's absolute life),
        without restarting the person's idle clock."""
        with self._lock:
            s = self._sessions.get(token)
        return s if s is not None and self._now() - s.created < self.absolute else None

    def remaining(self, token: str) -> float | None:
        """Seconds left of the session's absolute life (None: no such live session)."""
        with self._lock:
            s = self._sessions.get(token)
        if s is None or not self._alive(s, self._now()):
            return None
        return self.absolute - (self._now() - s.created)

    def end(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)


__all__ = ["ABSOLUTE_SECONDS", "IDLE_SECONDS", "Pending", "Session", "Sessions"]
