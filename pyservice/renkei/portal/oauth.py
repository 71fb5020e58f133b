"""自己情報取得API: OAuth 2.0 authorization code with PKCE (RFC 6749 §4.1, RFC 7636 S256) for
apps the person chooses.

* Apps are registered by the portal's operator (``renkei portal add-client``): a name shown on
  the consent screen and exact redirect URIs. They are public clients: no secret, PKCE required
  (S256 only; ``plain`` is refused).
* ``/oauth/authorize`` needs a logged-in person and shows a consent screen naming the app and
  the data (やりとり履歴, お知らせ). Consent (a CSRF-protected POST) yields a code: 128 random
  bits, valid 60 s, used once, bound to the app, the redirect URI, the PKCE challenge, the scope
  and the person's session.
* ``/oauth/token`` exchanges the code and the verifier for an access token: 256 random bits,
  valid 5 minutes (never longer than the person's session), no refresh token.
* Every fetch with a token is recorded in the person's 操作履歴 at the portal (app, data, time).

The codes and tokens live in memory (a restart ends them, as it ends sessions); registered apps
and the fetch log are in ``portal.sqlite3``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from renkei.errors import InvalidArgumentError

SCOPES = {"records": "やりとり履歴（情報提供等記録）", "notices": "お知らせ",
          # 自己情報表示: fetched from the agencies at each call (a 照会 and a 提供 in the ledger each).
          "myinfo": "あなたの情報（各機関が保有するあなたの地方税関係情報・住民票関係情報・年金給付関係情報・"
                    "医療保険給付関係情報。取得のたびに各機関へ照会し、やりとり履歴に記録されます）"}
CODE_SECONDS = 60.0
TOKEN_SECONDS = 300.0
MAX_PENDING = 100_000
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")  # RFC 7636 §4.1
_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")  # base64url(SHA-256), no padding


class OAuthError(Exception):
    """An RFC 6749 error: ``error`` is the token (invalid_request, invalid_grant, …)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    redirect_uris: tuple[str, ...]


@dataclass(frozen=True)
class AuthorizationRequest:
    client: Client
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str


@dataclass(frozen=True)
class _Code:
    request: AuthorizationRequest
    session_token: str
    expires: float


@dataclass(frozen=True)
class AccessToken:
    token: str
    client: Client
    scopes: tuple[str, ...]
    session_token: str
    expires: float


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def check_redirect_uri(uri: str) -> str:
    """https, or http on loopback (RFC 8252 §7.3, native apps); no fragment."""
    parts = urlsplit(uri)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    bad_scheme = parts.scheme not in ("https", "http") or (parts.scheme == "http" and not loopback)
    if bad_scheme or parts.fragment or not parts.netloc:
        raise InvalidArgumentError("a redirect URI is https (or http on loopback), without a fragment")
    return uri


class AuthorizationServer:
    def __init__(self, lookup: Callable[[str], Client | None], clock: Callable[[], float] = time.monotonic) -> None:
        self._lookup = lookup
        self._clock = clock
        self._codes: dict[str, _Code] = {}
        self._tokens: dict[str, AccessToken] = {}
        self._lock = threading.Lock()

    def _sweep(self, now: float) -> None:
        for k in [k for k, c in self._codes.items() if c.expires <= now]:
            del self._codes[k]
        for k in [k for k, t in self._tokens.items() if t.expires <= now]:
            del self._tokens[k]

    def validate(self, params: dict[str, str]) -> AuthorizationRequest:
        """The authorization request's parameters. Errors about the client or the redirect URI
        must be shown to the person (never redirected: RFC 6749 §4.1.2.1); the others may be
        redirected to the app."""
        client = self._lookup(params.get("client_id", ""))
        if client is None:
            raise OAuthError("invalid_client", "登録されていないアプリです")
        redirect = params.get("redirect_uri", "")
        if redirect not in client.redirect_uris:
            raise OAuthError("invalid_redirect_uri", "アプリの戻り先が登録と一致しません")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type は code のみです")
        scopes = tuple(dict.fromkeys(params.get("scope", "").split()))
        if not scopes or any(s not in SCOPES for s in scopes):
            raise OAuthError("invalid_scope", f"scope は {' '.join(SCOPES)} から選びます")
        if params.get("code_challenge_method") != "S256" or not _CHALLENGE.match(params.get("code_challenge", "")):
            raise OAuthError("invalid_request", "PKCE (code_challenge_method=S256) が必要です")
        state = params.get("state", "")
        if len(state) > 512:
            raise OAuthError("invalid_request", "state が長すぎます")
        return AuthorizationRequest(client, redirect, scopes, state, params["code_challenge"])

    def grant(self, request: AuthorizationRequest, session_token: str) -> str:
        """The person consented: a code for the app."""
        now = self._clock()
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._sweep(now)
            if len(self._codes) >= MAX_PENDING:
                raise OAuthError("temporarily_unavailable", "混み合っています")
            self._codes[code] = _Code(request, session_token, now + CODE_SECONDS)
        return code

    def exchange(self, params: dict[str, str], session_alive: Callable[[str], float | None]) -> AccessToken:
        """The token endpoint: grant_type=authorization_code, code, redirect_uri, client_id,
        code_verifier. ``session_alive`` gives the person's session's remaining seconds (None: ended)."""
        if params.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "grant_type は authorization_code のみです")
        with self._lock:
            c = self._codes.pop(params.get("code", ""), None)  # used once, whatever follows
        now = self._clock()
        if c is None or c.expires <= now:
            raise OAuthError("invalid_grant", "the code is unknown, used or expired")
        r = c.request
        if params.get("client_id") != r.client.client_id or params.get("redirect_uri") != r.redirect_uri:
            raise OAuthError("invalid_grant", "the code was issued to another client or redirect URI")
        verifier = params.get("code_verifier", "")
        if not _VERIFIER.match(verifier) or not hmac.compare_digest(s256(verifier), r.code_challenge):
            raise OAuthError("invalid_grant", "the code_verifier does not match the code_challenge")
        left = session_alive(c.session_token)
        if left is None or left <= 0:
            raise OAuthError("invalid_grant", "the person's session has ended")
        token = AccessToken(secrets.token_urlsafe(32), r.client, r.scopes, c.session_token,
                            now + min(TOKEN_SECONDS, left))
        with self._lock:
            self._tokens[token.token] = token
        return token

    def token(self, value: str, scope: str) -> AccessToken:
        with self._lock:
            t = self._tokens.get(value)
        if t is None or t.expires <= self._clock():
            raise OAuthError("invalid_token", "the access token is unknown or expired")
        if scope not in t.scopes:
            raise OAuthError("insufficient_scope", f"the token does not cover {scope}")
        return t


__all__ = ["SCOPES", "AccessToken", "AuthorizationRequest", "AuthorizationServer", "Client", "OAuthError",
           "check_redirect_uri", "s256"]
