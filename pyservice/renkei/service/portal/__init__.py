"""The マイナポータル process (``renkei portal serve``): Starlette on uvicorn, Jinja2 pages.

The portal is its own agency toward the core: it talks to the core's public DisclosureService
as the person (their card's signature, relayed; docs/arch/portal.md) and checks every proof
itself. Pages are server-rendered HTML that work without JavaScript; forms carry a CSRF token;
the session cookie is HttpOnly, SameSite=Strict and Secure. CPU work (RSA verification, proof
checks) runs in worker threads, not on the event loop.

    GET  /                      → /records or /login
    GET  /login                 the challenge to sign with the card (利用者証明用)
    POST /login                 the card reader's answer → session, or a page saying why not
    POST /logout
    GET  /records               やりとり履歴 (from, to: dates; agency; page)
    GET  /records/{seq}/proof   the raw proof of one record (JSON, downloadable)
    GET  /myinfo                あなたの情報 (自己情報表示): which agencies to ask
    POST /myinfo                inquire as the portal's agency, open and verify the answers, show them (not stored)
    GET  /notices               お知らせ (read / unread)
    GET  /notices/{id}          one notice (marks it read)
    GET  /delegation            代理人: mine (create, revoke), theirs (accept a code, view)
    POST /delegation            create an offer (shows its one-off code once)
    POST /delegation/accept     accept a code as the agent
    POST /delegation/{id}/revoke
    GET  /delegation/{id}/records   the principal's やりとり履歴, as their agent (proofs checked)
    GET  /delegation/{id}/notices   the principal's お知らせ, as their agent (read-only)
    GET  /operations            操作履歴 (delegations, agents' views, apps' fetches)
    GET  /apply                 ワンストップ申請: the procedures and their forms
    POST /apply                 the form → the canonical application document to sign (kept in the session)
    GET  /apply/document        the document to sign, as a file (exactly the bytes shown)
    POST /apply/submit          the card's 署名用 signature → checked (JPKI) → delivered to the municipality's mid
    GET  /applications          申請状況: each application's status and the exchanges it caused
    GET  /oauth/authorize       自己情報取得API: the consent screen (OAuth 2.0 code + PKCE S256)
    POST /oauth/authorize       the person's decision → redirect to the app with a code (or access_denied)
    POST /oauth/token           code + code_verifier → a short-lived access token (JSON)
    GET  /api/v1/records        やりとり履歴 as JSON (Bearer token, scope records; every fetch recorded)
    GET  /api/v1/notices        お知らせ as JSON (scope notices)
    GET  /api/v1/myinfo         あなたの情報 as JSON (scope myinfo; each call inquires, so each is in the ledger)
    GET  /health
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import grpc
import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renkei import onestop
from renkei.errors import FailedPreconditionError, InvalidArgumentError
from renkei.jpki.verify import AuthVerifier, SignVerifier
from renkei.linkage.disclosure import login_message
from renkei.portal import onestop as desk
from renkei.portal.config import AGENCY_CLIENT, MID_CLIENT, PortalConfig
from renkei.portal.history import JST, Checker, History, affair_name, item_name, rows
from renkei.portal.login import CoreDisclosure, LoginDesk, LoginRefused
from renkei.portal.oauth import SCOPES, AccessToken, AuthorizationRequest, AuthorizationServer, OAuthError
from renkei.portal.self_info import STATES, Fetched, SelfInfo, Source, sources
from renkei.portal.sessions import Session, Sessions
from renkei.portal.store import PortalStore
from renkei.service.metrics import Counter, Histogram, Metrics, MetricsHTTPServer

log = logging.getLogger("renkei.portal")

SESSION_COOKIE = "portal_session"
LOGIN_COOKIE = "portal_login"
PAGE_ROWS = 50
AUTHORIZE = "/oauth/authorize"
MAX_NOTICES = 5000  # the newest shown; older ones stay at the core
MAX_FORM_BYTES = 64 * 1024
TEMPLATES = Path(__file__).resolve().parent / "templates"
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" on the
    # portal's own form posts, and the origin check below needs the real one.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _jst(t: dt.datetime | None) -> str:
    return "" if t is None else t.strftime("%Y年%m月%d日 %H:%M:%S")


@dataclass
class Portal:
    """What the app needs: config, the core, the JPKI verifier, the sessions."""

    config: PortalConfig
    core: CoreDisclosure
    verifier: AuthVerifier
    checker: Checker
    store: PortalStore
    sessions: Sessions = field(default_factory=Sessions)
    secure_cookies: bool = True
    oauth: AuthorizationServer | None = None
    #: ワンストップ申請: the 署名用 verifier and the municipalities' intermediate servers (None: no applications).
    sign_verifier: SignVerifier | None = None
    municipalities: desk.Municipalities | None = None
    #: あなたの情報: the portal as a requester (its agency credentials); None: not offered.
    self_info: SelfInfo | None = None
    metrics: Metrics = field(default_factory=Metrics)
    logins: Counter = field(init=False)
    fetches: Counter = field(init=False)
    pages: Histogram = field(init=False)

    def __post_init__(self) -> None:
        if self.oauth is None:
            self.oauth = AuthorizationServer(self.store.client)
        m = self.metrics
        self.logins = m.counter("renkei_portal_logins_total", "Card logins, by outcome (ok or the refusal's reason).",
                                ("outcome",))
        self.fetches = m.counter("renkei_portal_self_info_fetches_total",
                                 "あなたの情報: inquiries of one agency, by state (provided, no_data, not_holding, "
                                 "unavailable, refused, tampered) and by who asked (page or api).", ("state", "via"))
        self.pages = m.histogram("renkei_portal_request_duration_seconds",
                                 "Server-side time of every HTTP response (the Server-Timing figure), seconds.",
                                 (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        # Known label values start at 0, so rates and dashboards see them before the first event.
        self.logins.inc("ok", n=0)
        for state in STATES:
            for via in ("page", "api"):
                self.fetches.inc(state, via, n=0)

    @property
    def sources(self) -> list[Source]:
        """The agencies あなたの情報 can ask (from the entitlement rows and the agencies' types)."""
        return sources(self.config.agency_types) if self.self_info is not None else []

    @property
    def desk(self) -> LoginDesk:
        return LoginDesk(self.core, self.verifier)


def build_app(portal: Portal) -> ASGIApp:
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html"]),
                      auto_reload=False)
    env.filters["jst"] = _jst
    env.filters["ts_jst"] = lambda t: _jst(t.ToDatetime(tzinfo=dt.UTC).astimezone(JST))
    env.filters["utc_jst"] = lambda t: _jst(t.astimezone(JST))
    env.globals["affair_name"] = affair_name
    env.globals["item_name"] = item_name
    env.globals["agency_name"] = portal.config.agency_name

    def page(name: str, status: int = 200, headers: dict[str, str] | None = None, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**ctx), status_code=status,
                            headers={**_HEADERS, **(headers or {})})

    def session_of(request: Request) -> Session | None:
        return portal.sessions.get(request.cookies.get(SESSION_COOKIE))

    def same_origin(request: Request) -> bool:
        # A second line behind the CSRF token: a browser's cross-site POST names its origin.
        origin = request.headers.get("origin")
        return origin is None or origin.split("://", 1)[-1] == request.headers.get("host")

    async def form(request: Request) -> dict[str, str]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return {}
        data = await request.form(max_files=0, max_fields=20, max_part_size=MAX_FORM_BYTES)
        return {k: v for k, v in data.items() if isinstance(v, str)}

    async def home(request: Request) -> Response:
        return RedirectResponse("/records" if session_of(request) else "/login", status_code=303)

    async def login_page(request: Request) -> Response:
        if session_of(request) is not None:
            return RedirectResponse("/records", status_code=303)
        try:
            challenge = await portal.desk.challenge()
        except grpc.RpcError:
            return page("refused.html", 503, title="ただいまログインできません",
                        advice="情報提供ネットワークシステムに接続できません。しばらくしてからやり直してください。",
                        reason="core_unavailable")
        next_url = request.query_params.get("next", "")
        key, pending = portal.sessions.begin_login(challenge, next_url if next_url.startswith(AUTHORIZE + "?") else "")
        resp = page("login.html", message=login_message(challenge).hex(), csrf=pending.csrf)
        resp.set_cookie(LOGIN_COOKIE, key, max_age=120, httponly=True, secure=portal.secure_cookies,
                        samesite="strict", path="/login")
        return resp

    async def login_post(request: Request) -> Response:
        pending = portal.sessions.take_login(request.cookies.get(LOGIN_COOKIE))
        fields = await form(request)
        if pending is None or not same_origin(request) or not hmac.compare_digest(
                fields.get("csrf", "").encode(), pending.csrf.encode()):
            refusal = LoginRefused("replayed", "このログイン要求は使えません",
                                   "ログイン要求は1回限り、2分間有効です。ログイン画面を開き直して、新しい値に署名してください。")
        else:
            try:
                done = await portal.desk.finish(pending.challenge, fields.get("response", ""))
            except LoginRefused as r:
                refusal = r
            else:
                s = portal.sessions.create(done.pseudonym, done.core_token)
                portal.logins.inc("ok")
                log.info("login (revocation status from %s)", done.revocation_source)
                done_resp = RedirectResponse(pending.next or "/records", status_code=303)
                done_resp.set_cookie(SESSION_COOKIE, s.token, httponly=True, secure=portal.secure_cookies,
                                samesite="strict", path="/")
                done_resp.delete_cookie(LOGIN_COOKIE, path="/login")
                return done_resp
        portal.logins.inc(refusal.reason)
        log.info("login refused: %s", refusal.reason)
        resp = page("refused.html", 401 if refusal.reason != "replayed" else 400, title=refusal.title,
                    advice=refusal.advice, reason=refusal.reason)
        resp.delete_cookie(LOGIN_COOKIE, path="/login")
        return resp

    async def logout(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is not None and not (s.csrf_ok(fields.get("csrf")) and same_origin(request)):
            # A forged logout changes nothing, not even the cookie.
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="画面を開き直してからやり直してください。", reason="csrf")
        if s is not None:
            portal.sessions.end(s.token)
            try:  # the core's session too, at every front-end; the portal's is gone either way
                await portal.core.logout(s.core_token)
            except grpc.RpcError as e:
                log.warning("logout: the core's session was not ended (%s); it expires on its own", e.code().name)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def history_of(s: Session, delegation_id: int = 0) -> History:
        key = f"history-{delegation_id}"
        h = s.cache.get(key)
        if not isinstance(h, History):
            h = History()
            s.cache[key] = h

        async def fetch(token: str, size: int) -> Any:
            return await portal.core.records(s.core_token, token, size, delegation_id)

        await h.refresh(fetch, portal.checker, None if delegation_id else s.pseudonym, run_in_threadpool)
        return h

    def core_refusal(e: grpc.RpcError) -> Response:
        code = e.code()
        if code == grpc.StatusCode.PERMISSION_DENIED:
            return page("refused.html", 403, title="この代理権では閲覧できません",
                        advice="代理権が取り消されたか、期限が切れたか、範囲外です。", reason="delegation_refused")
        if code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION):
            return page("refused.html", 400, title="この操作はできません", advice=str(e.details() or ""),
                        reason=code.name.lower())
        return page("refused.html", 503, title="ただいま処理できません",
                    advice="情報提供ネットワークシステムに接続できません。しばらくしてからやり直してください。",
                    reason="core_unavailable")

    def _date(value: str | None) -> dt.date | None:
        try:
            return dt.date.fromisoformat(value) if value else None
        except ValueError:
            return None

    async def records(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        raw = request.path_params.get("did", "0")
        delegation_id = int(raw) if raw.isdigit() else -1
        if delegation_id < 0:
            return page("refused.html", 404, title="見つかりません", advice="", reason="not_found")
        try:
            h = await history_of(s, delegation_id)
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                portal.sessions.end(s.token)
                return RedirectResponse("/login", status_code=303)
            return core_refusal(e)
        q = request.query_params
        since, until = _date(q.get("from")), _date(q.get("to"))
        agency = int(q["agency"]) if q.get("agency", "").isdigit() else None
        all_rows = rows(h, since=since, until=until, agency=agency)
        pages = max(1, -(-len(all_rows) // PAGE_ROWS))
        n = min(max(int(q["page"]) if q.get("page", "").isdigit() else 1, 1), pages)
        agencies = sorted({a for c in h.records for a in (c.record.requester_agency_id, c.record.provider_agency_id)
                           if a})
        base = {k: v for k, v in (("from", q.get("from", "")), ("to", q.get("to", "")),
                                  ("agency", "" if agency is None else str(agency))) if v}
        here = f"/delegation/{delegation_id}/records" if delegation_id else "/records"
        return page("records.html", s=s, rows=all_rows[(n - 1) * PAGE_ROWS: n * PAGE_ROWS], page=n, pages=pages,
                    here=here, delegation_id=delegation_id,
                    total=len(all_rows), agencies=agencies, since=q.get("from", ""), until=q.get("to", ""),
                    agency=agency, checkpoint=h.checkpoint,
                    prev_url=f"{here}?{urlencode({**base, 'page': n - 1})}" if n > 1 else None,
                    next_url=f"{here}?{urlencode({**base, 'page': n + 1})}" if n < pages else None)

    async def proof(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        did = request.path_params.get("did", "0")
        h = s.cache.get(f"history-{did}")
        raw = request.path_params["seq"]
        c = h.by_sequence.get(int(raw)) if isinstance(h, History) and raw.isdigit() else None
        if c is None:
            return page("refused.html", 404, title="記録が見つかりません",
                        advice="やりとり履歴から開き直してください。", reason="not_found")
        return JSONResponse(c.proof_document(), headers={
            **_HEADERS, "Content-Disposition": f'attachment; filename="renkei-proof-{c.sequence}.json"'})

    async def notices_of(s: Session, delegation_id: int = 0) -> list[Any]:
        out: list[Any] = []
        token = ""
        while len(out) < MAX_NOTICES:
            page = await portal.core.notices(s.core_token, token, 1000, delegation_id)
            out.extend(page.notices)
            token = page.next_page_token
            if not token:
                break
        return out

    async def notices(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        try:
            items = await notices_of(s)
        except grpc.RpcError:
            return page("refused.html", 503, title="お知らせを取得できません",
                        advice="しばらくしてからやり直してください。", reason="core_unavailable")
        read = await run_in_threadpool(portal.store.read_of, s.pseudonym, [n.notice_id for n in items])
        return page("notices.html", s=s, notices=items, read=read,
                    unread=sum(1 for n in items if n.notice_id not in read))

    async def notice(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        raw = request.path_params["nid"]
        try:
            items = await notices_of(s)
        except grpc.RpcError:
            return page("refused.html", 503, title="お知らせを取得できません",
                        advice="しばらくしてからやり直してください。", reason="core_unavailable")
        n = next((x for x in items if raw.isdigit() and x.notice_id == int(raw)), None)
        if n is None:
            return page("refused.html", 404, title="お知らせが見つかりません",
                        advice="お知らせの一覧から開き直してください。", reason="not_found")
        await run_in_threadpool(portal.store.mark_read, s.pseudonym, n.notice_id)
        return page("notice.html", s=s, n=n)

    async def agent_notices(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        raw = request.path_params["did"]
        if not raw.isdigit():
            return page("refused.html", 404, title="見つかりません", advice="", reason="not_found")
        try:
            items = await notices_of(s, int(raw))
        except grpc.RpcError as e:
            return core_refusal(e)
        # Read-only for the agent: the principal's read marks are the principal's.
        return page("notices.html", s=s, notices=items, read=set(), unread=len(items), delegation_id=int(raw))

    async def delegation(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        try:
            both = await portal.core.delegations(s.core_token)
        except grpc.RpcError as e:
            return core_refusal(e)
        return page("delegation.html", s=s, mine=both.as_principal, theirs=both.as_agent, offer_code=None,
                    today=dt.date.today().isoformat())

    async def delegation_post(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="画面を開き直してからやり直してください。", reason="csrf")
        until = _date(fields.get("valid_until"))
        scopes = [x for x in ("records", "notices") if fields.get(f"scope_{x}") == "on"]
        if until is None:
            return page("refused.html", 400, title="有効期限を入力してください", advice="", reason="invalid_argument")
        end = dt.datetime.combine(until, dt.time(23, 59, 59), JST)
        try:
            r = await portal.core.create_delegation(s.core_token, fields.get("label", ""), scopes, end)
            both = await portal.core.delegations(s.core_token)
        except grpc.RpcError as e:
            return core_refusal(e)
        return page("delegation.html", s=s, mine=both.as_principal, theirs=both.as_agent, offer_code=r.offer_code,
                    today=dt.date.today().isoformat())

    async def delegation_accept(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="画面を開き直してからやり直してください。", reason="csrf")
        try:
            await portal.core.accept_delegation(s.core_token, fields.get("code", "")[:64])
        except grpc.RpcError as e:
            return core_refusal(e)
        return RedirectResponse("/delegation", status_code=303)

    async def delegation_revoke(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        raw = request.path_params["did"]
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request) or not raw.isdigit():
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="画面を開き直してからやり直してください。", reason="csrf")
        try:
            await portal.core.revoke_delegation(s.core_token, int(raw))
        except grpc.RpcError as e:
            return core_refusal(e)
        return RedirectResponse("/delegation", status_code=303)

    async def operations(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        try:
            ops = await portal.core.operations(s.core_token)
        except grpc.RpcError as e:
            return core_refusal(e)
        fetches = await run_in_threadpool(portal.store.fetches, s.pseudonym)
        return page("operations.html", s=s, ops=ops.operations, fetches=fetches, scope_names=SCOPES)

    # -- あなたの情報 (自己情報表示, docs/arch/portal.md) ---------------------------------------------

    async def fetch_self_info(s: Session, chosen: list[Source], via: str) -> list[Fetched]:
        """Inquire each chosen agency as the portal's agency (concurrently); the answers are
        returned, never kept. Raises grpc.RpcError when the core issues no code (session ended)."""
        si = portal.self_info
        assert si is not None
        code = s.cache.get("self_info_code")
        if not isinstance(code, bytes):
            code = await si.code(s.core_token)
            s.cache["self_info_code"] = code  # the portal's own code for the person, for this session only
        results = list(await asyncio.gather(*(si.fetch(code, src) for src in chosen)))
        for r in results:
            portal.fetches.inc(r.state, via)
        return results

    async def myinfo(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        srcs = portal.sources
        return page("myinfo.html", s=s, sources=srcs, chosen={x.key for x in srcs}, results=None, error=None)

    async def myinfo_post(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="画面を開き直してからやり直してください。", reason="csrf")
        srcs = portal.sources
        chosen = [x for x in srcs if fields.get(x.key) == "on"]
        if not chosen:
            return page("myinfo.html", 400, s=s, sources=srcs, chosen=set(), results=None, error="nothing_chosen",
                        error_text="照会する機関を1つ以上選んでください。")
        try:
            results = await fetch_self_info(s, chosen, "page")
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAUTHENTICATED:
                portal.sessions.end(s.token)
                return RedirectResponse("/login", status_code=303)
            log.warning("あなたの情報: the core issued no code (%s)", e.code().name)
            down = e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            text = ("情報提供ネットワークシステムに接続できません。しばらくしてからやり直してください。" if down else
                    "マイナポータルは現在、あなたの情報を照会できません（情報提供ネットワークシステムが照会を受け付けませんでした）。")
            return page("myinfo.html", 503, s=s, sources=srcs, chosen={x.key for x in chosen}, results=None,
                        error="core_unavailable" if down else "core_refused", error_text=text)
        return page("myinfo.html", s=s, sources=srcs, chosen={x.key for x in chosen}, results=results, error=None,
                    fetched_at=dt.datetime.now(dt.UTC))

    # -- 自己情報取得API (OAuth 2.0 authorization code + PKCE) ----------------------------------------

    oauth = portal.oauth
    assert oauth is not None

    def to_app(uri: str, params: dict[str, str]) -> Response:
        sep = "&" if urlsplit(uri).query else "?"
        return RedirectResponse(uri + sep + urlencode({k: v for k, v in params.items() if v}), status_code=303)

    def authorize_request(params: dict[str, str]) -> AuthorizationRequest | Response:
        try:
            return oauth.validate(params)
        except OAuthError as e:
            if e.error in ("invalid_client", "invalid_redirect_uri"):
                # Never redirect to an unverified URI (RFC 6749 §4.1.2.1): tell the person.
                return page("refused.html", 400, title="アプリ連携の要求が正しくありません", advice=e.description,
                            reason=e.error)
            return to_app(params["redirect_uri"], {"error": e.error, "error_description": e.description,
                                                   "state": params.get("state", "")})

    async def authorize(request: Request) -> Response:
        params = dict(request.query_params)
        req = authorize_request(params)
        if not isinstance(req, AuthorizationRequest):
            return req
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login?" + urlencode({"next": f"{AUTHORIZE}?{request.url.query}"}),
                                    status_code=303)
        # The consent form's answer is a redirect to the app: CSP form-action must allow its origin.
        app = urlsplit(req.redirect_uri)
        csp = _HEADERS["Content-Security-Policy"].replace(
            "form-action 'self'", f"form-action 'self' {app.scheme}://{app.netloc}")
        return page("consent.html", headers={"Content-Security-Policy": csp}, s=s, req=req, scope_names=SCOPES,
                    request_query=request.url.query)

    async def authorize_post(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return page("refused.html", 400, title="この操作は受け付けられません",
                        advice="アプリ連携をはじめからやり直してください。", reason="csrf")
        req = authorize_request(dict(parse_qsl(fields.get("request", ""))))
        if not isinstance(req, AuthorizationRequest):
            return req
        if fields.get("decision") != "allow":
            return to_app(req.redirect_uri, {"error": "access_denied", "state": req.state})
        return to_app(req.redirect_uri, {"code": oauth.grant(req, s.token), "state": req.state})

    async def token(request: Request) -> Response:
        fields = await form(request)
        no_store = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        try:
            t = oauth.exchange(fields, portal.sessions.remaining)
        except OAuthError as e:
            return JSONResponse({"error": e.error, "error_description": e.description}, status_code=400,
                                headers=no_store)
        return JSONResponse({"access_token": t.token, "token_type": "Bearer",
                             "expires_in": int(t.expires - time.monotonic()), "scope": " ".join(t.scopes)},
                            headers=no_store)

    async def api_session(request: Request, scope: str) -> tuple[Session, AccessToken] | Response:
        auth = request.headers.get("authorization", "")
        try:
            if not auth.startswith("Bearer "):
                raise OAuthError("invalid_token", "send the access token as 'Authorization: Bearer <token>'")
            t = oauth.token(auth[len("Bearer "):], scope)
            s = portal.sessions.peek(t.session_token)
            if s is None:
                raise OAuthError("invalid_token", "the person's session has ended")
        except OAuthError as e:
            return JSONResponse({"error": e.error, "error_description": e.description},
                                status_code=403 if e.error == "insufficient_scope" else 401,
                                headers={"WWW-Authenticate": f'Bearer error="{e.error}"', "Cache-Control": "no-store"})
        return s, t

    async def api_records(request: Request) -> Response:
        got = await api_session(request, "records")
        if isinstance(got, Response):
            return got
        s, t = got
        try:
            h = await history_of(s)
        except grpc.RpcError as e:
            return JSONResponse({"error": "unavailable", "error_description": str(e.code().name)}, status_code=503)
        await run_in_threadpool(portal.store.record_fetch, s.pseudonym, t.client.client_id, "records")
        return JSONResponse({"records": [{
            "inquiry_time": r.inquired_at.isoformat() if r.inquired_at else None,
            "provision_time": r.provided_at.isoformat() if r.provided_at else None,
            "requester": portal.config.agency_name(r.main.record.requester_agency_id),
            "provider": portal.config.agency_name(r.main.record.provider_agency_id),
            "affair": affair_name(r.main.record.affair),
            "information": [item_name(i) for i in r.main.record.information_items],
            "status": r.status,
            "sequences": [p.sequence for p in r.parts],
            "proof_verified": r.verified,
        } for r in rows(h)]}, headers={"Cache-Control": "no-store"})

    async def api_notices(request: Request) -> Response:
        got = await api_session(request, "notices")
        if isinstance(got, Response):
            return got
        s, t = got
        try:
            items = await notices_of(s)
        except grpc.RpcError as e:
            return JSONResponse({"error": "unavailable", "error_description": str(e.code().name)}, status_code=503)
        await run_in_threadpool(portal.store.record_fetch, s.pseudonym, t.client.client_id, "notices")
        return JSONResponse({"notices": [{
            "id": n.notice_id, "from": portal.config.agency_name(n.agency_id), "title": n.title, "body": n.body,
            "time": n.send_time.ToDatetime(tzinfo=dt.UTC).astimezone(JST).isoformat(),
        } for n in items]}, headers={"Cache-Control": "no-store"})

    async def api_myinfo(request: Request) -> Response:
        got = await api_session(request, "myinfo")
        if isinstance(got, Response):
            return got
        s, t = got
        srcs = portal.sources
        if not srcs:
            return JSONResponse({"error": "unavailable", "error_description": "あなたの情報 is not offered"},
                                status_code=503, headers={"Cache-Control": "no-store"})
        try:
            results = await fetch_self_info(s, srcs, "api")
        except grpc.RpcError as e:
            return JSONResponse({"error": "unavailable", "error_description": str(e.code().name)}, status_code=503,
                                headers={"Cache-Control": "no-store"})
        await run_in_threadpool(portal.store.record_fetch, s.pseudonym, t.client.client_id, "myinfo")
        return JSONResponse({"answers": [{
            "provider": portal.config.agency_name(r.provider),
            "information": [item_name(i) for i in r.items],
            "state": r.state, "status": r.label,
            "inquiry_sequence": r.inquiry_sequence, "provision_sequence": r.provision_sequence,
            "records": [{"information": item_name(str(x["item"])), "fiscal_year": x.get("fiscal_year"),
                         "valid_from": x.get("valid_from"), "values": x.get("values", {}),
                         "null_reasons": x.get("null_reasons", {})} for x in r.records],
        } for r in results]}, headers={"Cache-Control": "no-store"})

    # -- ワンストップ申請 (docs/arch/onestop.md) ---------------------------------------------------

    def offered() -> list[int]:
        m = portal.municipalities
        return sorted(m.endpoints) if m is not None and portal.sign_verifier is not None else []

    def refused_form() -> Response:
        return page("refused.html", 400, title="この操作は受け付けられません",
                    advice="申請の画面を開き直してからやり直してください。", reason="csrf")

    async def apply_page(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        return page("apply.html", s=s, procedures=list(onestop.PROCEDURES.values()), municipalities=offered(),
                    values={}, error=None)

    async def apply_post(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return refused_form()
        raw = fields.get("municipality", "")
        municipality = int(raw) if raw.isdigit() else 0
        try:
            if municipality not in offered():
                raise InvalidArgumentError("申請先の市区町村を選んでください")
            document = onestop.build(fields.get("procedure", ""), municipality, fields)
        except InvalidArgumentError as e:
            return page("apply.html", 400, s=s, procedures=list(onestop.PROCEDURES.values()),
                        municipalities=offered(), values=fields, error=str(e))
        # The session keeps the one document shown: what is signed is what was shown, and the
        # portal delivers those bytes, never a document sent back by the browser.
        s.cache["application"] = document
        doc = onestop.parse(document)
        return page("apply_sign.html", s=s, document=document.decode(), digest=desk.digest(document),
                    municipality=municipality, title=doc["title"])

    async def apply_document(request: Request) -> Response:
        # The exact bytes to sign, for the card reader (`renkei card sign --portal --data-file …`).
        s = session_of(request)
        document = s.cache.get("application") if s is not None else None
        if not isinstance(document, bytes):
            return page("refused.html", 404, title="申請書がありません", reason="not_found",
                        advice="申請の画面から申請書を作成し直してください。")
        return Response(document, media_type="application/json", headers={
            **_HEADERS, "Content-Disposition": 'attachment; filename="renkei-application.json"'})

    async def apply_submit(request: Request) -> Response:
        s = session_of(request)
        fields = await form(request)
        if s is None or not s.csrf_ok(fields.get("csrf")) or not same_origin(request):
            return refused_form()
        document = s.cache.pop("application", None)
        if not isinstance(document, bytes) or portal.sign_verifier is None or portal.municipalities is None:
            return page("refused.html", 400, title="申請書がありません", reason="replayed",
                        advice="申請の画面から申請書を作成し直してください（申請書は1回限り使えます）。")
        doc = onestop.parse(document)
        try:
            signature, certificate = await desk.verify(portal.sign_verifier, document, fields.get("response", ""))
        except LoginRefused as r:
            log.info("application refused: %s", r.reason)
            return page("refused.html", 401, title=r.title, advice=r.advice, reason=r.reason)
        try:
            app_id = await portal.municipalities.deliver(doc["municipality"], document, signature, certificate)
        except grpc.RpcError as e:
            log.info("application not delivered: %s", e.code().name)
            return page("refused.html", 503 if e.code() == grpc.StatusCode.UNAVAILABLE else 400,
                        title="申請を届けられませんでした",
                        advice="市区町村の中間サーバーが申請を受け付けませんでした。しばらくしてから申請し直してください。",
                        reason="not_delivered")
        await run_in_threadpool(portal.store.add_application, s.pseudonym, doc["municipality"], app_id, doc["title"])
        return RedirectResponse(f"/applications?submitted={doc['municipality']}-{app_id}", status_code=303)

    async def applications(request: Request) -> Response:
        s = session_of(request)
        if s is None:
            return RedirectResponse("/login", status_code=303)
        mine = await run_in_threadpool(portal.store.applications, s.pseudonym)
        by_agency: dict[int, list[int]] = {}
        for agency, app_id, _t, _at in mine:
            by_agency.setdefault(agency, []).append(app_id)
        status: dict[tuple[int, int], Any] = {}
        unavailable = False
        m = portal.municipalities
        for agency, ids in by_agency.items():
            if m is None or agency not in m.endpoints:
                unavailable = True
                continue
            try:
                status.update({(agency, a.application_id): a for a in await m.status(agency, ids)})
            except grpc.RpcError:
                unavailable = True
        # The exchanges are shown from the person's own やりとり履歴 (proofs checked), matched by
        # the 照会's ledger sequence the municipality linked to the application.
        h: History | None = None
        if any(a.exchanges for a in status.values()):
            try:
                h = await history_of(s)
            except grpc.RpcError:
                unavailable = True
        by_seq = {r.inquiry.sequence: r for r in rows(h) if r.inquiry is not None} if h is not None else {}
        items = []
        for agency, app_id, title, at in mine:
            a = status.get((agency, app_id))
            items.append({
                "agency": agency, "id": app_id, "title": title, "submitted": at,
                "status": a.status if a is not None else "（確認できません）", "note": a.note if a else "",
                "updated": a.updated_at if a is not None else None,
                "exchanges": [{"seq": e.inquiry_record_sequence, "row": by_seq.get(e.inquiry_record_sequence),
                               "provider": e.provider_agency_id, "affair": e.affair, "outcome": e.outcome}
                              for e in (a.exchanges if a is not None else [])]})
        q = request.query_params.get("submitted", "")
        return page("applications.html", s=s, items=items, unavailable=unavailable,
                    submitted=q if q.replace("-", "").isdigit() else "")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return ServerTiming(Starlette(routes=[
        Route("/", home, methods=["GET"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/records", records, methods=["GET"]),
        Route("/records/{seq}/proof", proof, methods=["GET"]),
        Route("/myinfo", myinfo, methods=["GET"]),
        Route("/myinfo", myinfo_post, methods=["POST"]),
        Route("/notices", notices, methods=["GET"]),
        Route("/notices/{nid}", notice, methods=["GET"]),
        Route("/delegation", delegation, methods=["GET"]),
        Route("/delegation", delegation_post, methods=["POST"]),
        Route("/delegation/accept", delegation_accept, methods=["POST"]),
        Route("/delegation/{did}/revoke", delegation_revoke, methods=["POST"]),
        Route("/delegation/{did}/records", records, methods=["GET"]),
        Route("/delegation/{did}/records/{seq}/proof", proof, methods=["GET"]),
        Route("/delegation/{did}/notices", agent_notices, methods=["GET"]),
        Route("/operations", operations, methods=["GET"]),
        Route("/apply", apply_page, methods=["GET"]),
        Route("/apply", apply_post, methods=["POST"]),
        Route("/apply/document", apply_document, methods=["GET"]),
        Route("/apply/submit", apply_submit, methods=["POST"]),
        Route("/applications", applications, methods=["GET"]),
        Route(AUTHORIZE, authorize, methods=["GET"]),
        Route(AUTHORIZE, authorize_post, methods=["POST"]),
        Route("/oauth/token", token, methods=["POST"]),
        Route("/api/v1/records", api_records, methods=["GET"]),
        Route("/api/v1/notices", api_notices, methods=["GET"]),
        Route("/api/v1/myinfo", api_myinfo, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]), portal.pages.observe)


class ServerTiming:
    """ASGI wrapper adding ``Server-Timing: app;dur=<ms>`` (request received → response started):
    the server-side time, without the network or the client (bench/bench_portal.py reads it)."""

    def __init__(self, app: ASGIApp, observe: Callable[[float], None] | None = None) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                seconds = time.perf_counter() - start
                if self.observe is not None:
                    self.observe(seconds)
                ms = seconds * 1000
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", f"app;dur={ms:.3f}".encode())]}
            await send(message)

        await self.app(scope, receive, timed)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling (the process handles SIGTERM/SIGINT and exits 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class PortalServer:
    portal: Portal
    host: str = "127.0.0.1"
    port: int = 0
    bound: int = 0
    #: Prometheus metrics (GET /metrics) on this port of ``metrics_host``; None: none.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    _metrics_http: MetricsHTTPServer | None = None

    def endpoints(self) -> dict[str, Any]:
        m = self._metrics_http
        return {"pid": os.getpid(), "http": f"{self.host}:{self.bound}",
                "data_dir": str(self.portal.config.data_dir.path.resolve()),
                "metrics": f"{self.metrics_host}:{m.port}" if m is not None else None}

    def _socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it a response written as headers then body waits on the peer's delayed ACK (40 ms).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise FailedPreconditionError(f"cannot listen on {self.host}:{self.port} (portal): {e.strerror}; "
                                          f"choose another port (0 = any free port)") from None
        sock.listen(1024)
        sock.setblocking(False)
        self.bound = sock.getsockname()[1]
        return sock

    async def serve(self, ready: Callable[[PortalServer], None] | None = None) -> None:
        sock = self._socket()
        if self.metrics_port is not None:
            try:
                self._metrics_http = MetricsHTTPServer(self.portal.metrics, self.metrics_host, self.metrics_port)
            except OSError as e:
                sock.close()
                raise FailedPreconditionError(f"cannot listen on {self.metrics_host}:{self.metrics_port} (metrics "
                                              f"port of the portal): {e.strerror}") from None
            self._metrics_http.start()
        server = _Server(uvicorn.Config(build_app(self.portal), log_level="warning", access_log=False,
                                        lifespan="off", timeout_graceful_shutdown=10))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                if serving.done():
                    await serving
                    raise FailedPreconditionError("the portal stopped while starting")
                await asyncio.sleep(0.01)
            if ready is not None:
                ready(self)
            await serving
        finally:
            log.info("portal shutting down (pid %d)", os.getpid())
            sock.close()
            if self._metrics_http is not None:
                self._metrics_http.stop()
            await self.portal.core.close()
            if self.portal.self_info is not None:
                await self.portal.self_info.close()
            if self.portal.municipalities is not None:
                await self.portal.municipalities.close()
            self.portal.store.close()


def open_portal(data_dir: str | os.PathLike[str], *, core: str, ca: str | os.PathLike[str], ocsp: str,
                witness_vkeys: list[str], secure_cookies: bool = True, sign_ocsp: str | None = None,
                mids: dict[int, str] | None = None, linkage: str | None = None) -> Portal:
    """``sign_ocsp`` and ``mids`` (municipality → its intermediate server) turn on ワンストップ申請;
    it needs the pinned 署名用 CA and the portal's client certificate (``mid-client/``).
    ``linkage`` (the core's mutual-TLS endpoint) turns on あなたの情報: the portal inquires as its
    own agency with the certificate in ``agency/``. ``core`` and ``linkage`` may each be a comma
    list of a core's front-ends (renkei.service.failover)."""
    config = PortalConfig.open(data_dir)
    self_info = None
    if linkage:
        agency_dir = config.data_dir.path / AGENCY_CLIENT
        if not (agency_dir / "cert.pem").exists():
            raise FailedPreconditionError(f"あなたの情報 (--linkage) needs the portal's agency certificate and key in "
                                          f"{agency_dir}/ (cert.pem, key.pem, ca.pem)")
        self_info = SelfInfo(linkage, agency_dir)
    verifier = AuthVerifier(config.auth_ca_pem, ocsp)
    sign_verifier, municipalities = None, None
    if mids:
        tls = config.data_dir.path / MID_CLIENT
        if sign_ocsp is None or config.sign_ca_pem is None or not (tls / "cert.pem").exists():
            raise FailedPreconditionError(f"applications (--mid) need --sign-ocsp, the pinned JPKI 署名用 CA "
                                          f"(portal init --sign-ca) and the portal's client certificate "
                                          f"(role portal) in {MID_CLIENT}/")
        sign_verifier = SignVerifier(config.sign_ca_pem, sign_ocsp)
        municipalities = desk.Municipalities(mids, desk.MidClientTls(tls / "cert.pem", tls / "key.pem",
                                                                     tls / "ca.pem"))
    return Portal(config, CoreDisclosure(core, Path(ca)), verifier, Checker(config.ledger_vkey, witness_vkeys),
                  PortalStore(config.data_dir), secure_cookies=secure_cookies, sign_verifier=sign_verifier,
                  municipalities=municipalities, self_info=self_info)


__all__ = ["Portal", "PortalServer", "build_app", "open_portal"]
