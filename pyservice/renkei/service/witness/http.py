"""The witness's HTTP interface (C2SP tlog-witness), on Starlette.

    POST /add-checkpoint              the submission API (body and statuses: renkei.witness.protocol)
    GET  /<sha256(origin) hex>/checkpoint   the monitoring API: the latest cosigned checkpoint
    GET  /metrics                     Prometheus counters of the answers

Handlers are thin: the body is read (bounded), the check-and-cosign runs on a worker thread
(Ed25519 verification, the consistency proof and the durable compare-and-set are not for the
event loop), and the domain error becomes its status.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from renkei.errors import (
    CheckpointConflictError,
    InconsistentCheckpointError,
    InvalidArgumentError,
    RenkeiError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from renkei.service.metrics import Metrics
from renkei.witness.protocol import MAX_BODY_BYTES, Witness

log = logging.getLogger("renkei.witness")

TEXT = "text/plain; charset=utf-8"
SIZE = "text/x.tlog.size"
#: Error class → HTTP status of the tlog-witness spec (the first matching base wins).
HTTP_STATUS: list[tuple[type[RenkeiError], int]] = [
    (CheckpointConflictError, 409),
    (InconsistentCheckpointError, 422),
    (UnknownLogError, 404),
    (UntrustedCheckpointError, 403),
    (InvalidArgumentError, 400),
]
REQUESTS = "renkei_witness_requests_total"


def http_status(exc: RenkeiError) -> int:
    for cls, status in HTTP_STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _text(body: str, status: int, content_type: str = TEXT) -> Response:
    # The content type is set as a header so that Starlette adds no charset to text/x.tlog.size.
    return Response(body.encode(), status_code=status, headers={"content-type": content_type})


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise InvalidArgumentError("request body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise InvalidArgumentError("request body too large")
        chunks.append(chunk)
    return b"".join(chunks)


def build_app(witness: Witness, metrics: Metrics, workers: int = 4) -> Starlette:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="witness")
    requests = metrics.counter(REQUESTS, "add-checkpoint answers of the witness, by HTTP status.", ("status",))

    def answered(status: int, started: float) -> None:
        requests.inc(str(status))
        metrics.observe("/add-checkpoint", str(status), time.perf_counter() - started)

    async def add_checkpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            body = await _body(request)
            lines = await asyncio.get_running_loop().run_in_executor(pool, witness.add_checkpoint, body)
        except CheckpointConflictError as e:
            answered(409, started)
            return _text(f"{e.size}\n", 409, SIZE)
        except RenkeiError as e:
            status = http_status(e)
            if status == 500:
                log.exception("add-checkpoint failed")
            answered(status, started)
            return _text(f"{e}\n" if status != 500 else "internal error\n", status)
        except Exception:
            log.exception("add-checkpoint failed")
            answered(500, started)
            return _text("internal error\n", 500)
        answered(200, started)
        return _text(lines, 200)

    async def monitoring(request: Request) -> Response:
        origin_hash = request.path_params["origin_hash"]
        note = await asyncio.get_running_loop().run_in_executor(pool, witness.monitoring_checkpoint, origin_hash)
        if note is None:
            return _text("no checkpoint of that log was cosigned here\n", 404)
        return _text(note, 200)

    async def metrics_page(request: Request) -> Response:
        return _text(metrics.render(), 200, "text/plain; version=0.0.4; charset=utf-8")

    app = Starlette(routes=[
        Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
        Route("/metrics", metrics_page, methods=["GET"]),
        Route("/{origin_hash:str}/checkpoint", monitoring, methods=["GET"]),
    ])
    app.state.pool = pool
    return app


__all__ = ["HTTP_STATUS", "build_app", "http_status"]
