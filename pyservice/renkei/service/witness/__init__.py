"""The witness's process (``renkei witness init|vkey|serve``), run by the commission
(個人情報保護委員会) beside the linkage core.

Its data directory holds ``keys/witness-key.key`` (the Ed25519 seed, 0600), ``witness.json``
(its name, fixed at init: the key id depends on it) and ``witness.sqlite3`` (what it last
cosigned per log). It serves plain HTTP, by default on loopback, as C2SP witnesses commonly do:
requests and answers are authenticated by their signatures (the log's on the checkpoint, the
witness's cosignature), checkpoints are public, and a man in the middle can only withhold
answers, which the log notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Generator, Iterable
from pathlib import Path

import uvicorn

from renkei.datadir import DataDir, write_atomic
from renkei.errors import InvalidArgumentError, NotInitializedError
from renkei.service.metrics import Metrics
from renkei.service.witness.http import build_app
from renkei.witness.cosignature import CosignatureKey
from renkei.witness.protocol import TrustedLog, Witness
from renkei.witness.state import WitnessState

SERVICE = "witness"
KEY_NAME = "witness-key"
CONFIG = "witness.json"

log = logging.getLogger("renkei.witness")


def init_data_dir(path: str | os.PathLike[str], name: str) -> DataDir:
    """Create (or complete) a witness's data directory: its key and its name."""
    CosignatureKey(name, bytes(32))  # validates the name before anything is created
    d = DataDir.init(path, SERVICE, {KEY_NAME: 32})
    config = d.file(CONFIG)
    if config.exists():
        stored = witness_name(d)
        if stored != name:
            raise InvalidArgumentError(f"this witness is named {stored!r}, not {name!r} (the name is fixed at init)")
    else:
        write_atomic(config, json.dumps({"name": name}).encode(), 0o600)
    WitnessState(d).close()
    return d


def witness_name(data_dir: DataDir) -> str:
    try:
        return str(json.loads(data_dir.file(CONFIG).read_text())["name"])
    except FileNotFoundError:
        raise NotInitializedError(f"{data_dir.file(CONFIG)} is missing: run `renkei witness init`") from None


def open_key(data_dir: DataDir) -> CosignatureKey:
    return CosignatureKey(witness_name(data_dir), data_dir.secret_key(KEY_NAME))


def parse_log_option(value: str) -> tuple[str, str]:
    """``ORIGIN=VKEY`` (split at the first '='; an origin has none)."""
    origin, sep, vkey = value.partition("=")
    if not sep or not origin or not vkey:
        raise InvalidArgumentError(f"a trusted log is ORIGIN=VKEY, got {value!r}")
    return origin, vkey


def read_logs_file(path: Path) -> list[tuple[str, str]]:
    """A file of trusted logs: one ``ORIGIN VKEY`` per line; blank lines and ``#`` comments skipped."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InvalidArgumentError(f"{path}:{n}: expected 'ORIGIN VKEY'")
        out.append((parts[0], parts[1]))
    return out


def trusted_logs(pairs: Iterable[tuple[str, str]]) -> list[TrustedLog]:
    by_origin: dict[str, list[str]] = {}
    for origin, vkey in pairs:
        by_origin.setdefault(origin, []).append(vkey)
    return [TrustedLog.of(o, ks) for o, ks in by_origin.items()]


class _Server(uvicorn.Server):
    """uvicorn's server, stopping on SIGTERM/SIGINT like every renkei service: graceful, exit 0
    (uvicorn itself re-raises the signal after shutting down)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._exit)
        try:
            yield
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

    def _exit(self) -> None:
        self.should_exit = True


async def serve(data_dir: DataDir, logs: list[TrustedLog], host: str, port: int,
                ready: Callable[[dict[str, object]], None] | None = None, workers: int = 4) -> None:
    """Serve until SIGTERM/SIGINT (uvicorn's graceful shutdown: in-flight requests finish)."""
    state = WitnessState(data_dir)
    witness = Witness(open_key(data_dir), logs, state)
    metrics = Metrics()
    app = build_app(witness, metrics, workers)
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted sockets only then (else every
    # answer written in two parts waits out the peer's delayed ACK, ~40 ms).
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_keep_alive=30)
    server = _Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        info = {"pid": os.getpid(), "data_dir": str(data_dir.path.resolve()), "http": f"{host}:{bound}",
                "vkey": witness.vkey, "name": witness.name, "logs": sorted(witness.logs)}
        log.info("witness %s serving http://%s:%d for %d log(s)", witness.name, host, bound, len(witness.logs))
        if ready is not None:
            ready(info)

    announcer = asyncio.create_task(announce())
    try:
        await server.serve(sockets=[sock])
    finally:
        announcer.cancel()
        app.state.pool.shutdown(wait=True)
        state.close()


__all__ = ["CONFIG", "KEY_NAME", "SERVICE", "init_data_dir", "open_key", "parse_log_option", "read_logs_file",
           "serve", "trusted_logs", "witness_name"]
