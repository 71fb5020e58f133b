"""J-LIS's JPKI responder process (``renkei jpki serve``): OCSP and CRLs over plain HTTP.

Endpoints (RFC 6960 Appendix A, RFC 5280 §5)::

    POST /ocsp/auth      application/ocsp-request → application/ocsp-response (利用者証明用 CA)
    POST /ocsp/sign      the same for the 署名用 CA
    GET  /crl/auth.crl   the current CRL (DER, application/pkix-crl)
    GET  /crl/sign.crl
    GET  /health         "ok"

Plain HTTP like the real responders: OCSP responses and CRLs are signed, so the channel adds
nothing to their integrity. The app is Starlette served by uvicorn — the stack the portal uses, so
one HTTP stack for the box's HTTP services; both are small, typed and widely used. Signing
(RSA-2048) and the registry look-up run on a worker thread, not on the event loop. A background
task calls :meth:`renkei.jpki.ca.Jpki.maintain` every minute (CRLs re-signed before half their
24 h life is gone, responder certificates renewed 30 days before they expire).

On SIGTERM/SIGINT the server stops accepting, lets in-flight requests finish, closes the registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from renkei.errors import FailedPreconditionError
from renkei.jpki.ca import Jpki
from renkei.jpki.ocsp import OcspResponder
from renkei.jpki.profile import KINDS

log = logging.getLogger("renkei.jpki")

MAX_REQUEST_BYTES = 64 * 1024
MAINTAIN_SECONDS = 60.0
OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"


class _CrlFiles:
    """The CRL files, re-read when they change on disk (a revocation re-signs them)."""

    def __init__(self, jpki: Jpki) -> None:
        self.jpki = jpki
        self._cache: dict[str, tuple[tuple[int, int], bytes]] = {}

    def get(self, kind: str) -> bytes:
        path = self.jpki.paths.crl(kind)
        st = path.stat()
        stamp = (st.st_mtime_ns, st.st_ino)
        cached = self._cache.get(kind)
        if cached is None or cached[0] != stamp:
            cached = (stamp, path.read_bytes())
            self._cache[kind] = cached
        return cached[1]


def build_app(jpki: Jpki, responder: OcspResponder) -> Starlette:
    """The HTTP application of the responder."""
    crls = _CrlFiles(jpki)

    async def ocsp_post(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return PlainTextResponse("no such CA\n", status_code=404)
        if request.headers.get("content-type", "").split(";")[0].strip() != OCSP_REQUEST:
            return PlainTextResponse(f"Content-Type must be {OCSP_REQUEST}\n", status_code=415)
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_REQUEST_BYTES):
            return PlainTextResponse("request too large\n", status_code=413)
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return PlainTextResponse("request too large\n", status_code=413)
        der = await run_in_threadpool(responder.respond, kind, body)
        return Response(der, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-store"})

    async def crl_get(request: Request) -> Response:
        name = request.path_params["name"]
        kind = name.removesuffix(".crl")
        if kind not in KINDS or not name.endswith(".crl"):
            return PlainTextResponse("no such CRL\n", status_code=404)
        data = await run_in_threadpool(crls.get, kind)
        return Response(data, media_type="application/pkix-crl")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok\n")

    return Starlette(routes=[
        Route("/ocsp/{kind}", ocsp_post, methods=["POST"]),
        Route("/crl/{name}", crl_get, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ])


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the process handles SIGTERM/SIGINT itself (uvicorn
    would re-raise the signal after shutting down and the process would not exit 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class JpkiServer:
    """The responder process: the app on ``host:port`` (0 = any free port)."""

    jpki: Jpki
    host: str = "127.0.0.1"
    port: int = 0
    responder: OcspResponder | None = None
    bound: int = 0

    def endpoints(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "http": f"{self.host}:{self.bound}",
                "data_dir": str(self.jpki.data_dir.path.resolve())}

    def _socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
        # without it every answer waits for the client's delayed ACK (≈ 40 ms; the portal's finding).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise FailedPreconditionError(f"cannot listen on {self.host}:{self.port} (JPKI responder): {e.strerror}; "
                                          f"choose another port (0 = any free port)") from None
        sock.listen(1024)
        sock.setblocking(False)
        self.bound = sock.getsockname()[1]
        return sock

    async def serve(self, ready: Callable[[JpkiServer], None] | None = None) -> None:
        """Serve until SIGTERM or SIGINT."""
        responder = self.responder or OcspResponder(self.jpki)
        sock = self._socket()
        server = _Server(uvicorn.Config(build_app(self.jpki, responder), log_level="warning", access_log=False,
                                        lifespan="off", timeout_graceful_shutdown=10))
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        def exit_() -> None:
            server.should_exit = True
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, exit_)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        maintain: asyncio.Task[None] | None = None
        try:
            while not server.started:
                if serving.done():
                    await serving
                    raise FailedPreconditionError("the JPKI responder stopped while starting")
                await asyncio.sleep(0.01)
            maintain = asyncio.create_task(self._maintain(stop))
            if ready is not None:
                ready(self)
            await serving
        finally:
            log.info("jpki shutting down (pid %d)", os.getpid())
            stop.set()
            if maintain is not None:
                maintain.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await maintain
            sock.close()
            self.jpki.close()

    async def _maintain(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), MAINTAIN_SECONDS)
            if stop.is_set():
                return
            try:
                await run_in_threadpool(self.jpki.maintain)
            except Exception:  # keep answering OCSP; the next round tries again
                log.exception("JPKI maintenance (CRL re-signing, responder renewal) failed")


def serve(data_dir: str | os.PathLike[str], host: str, port: int,
          ready: Callable[[JpkiServer], None] | None = None) -> None:
    server = JpkiServer(Jpki(Path(data_dir)), host, port)
    asyncio.run(server.serve(ready))


__all__ = ["JpkiServer", "build_app", "serve"]
