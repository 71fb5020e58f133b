"""A real S3-compatible object store for the tests: Garage (garagehq.deuxfleurs.fr, the `garage`
crate from crates.io, built by `make` into .tools/ when missing), one node in a temporary
directory on free loopback ports — a separate server process speaking S3 over HTTP, never an
in-process fake.

    with GarageServer.start(tmp_path) as garage:
        url, credentials = garage.bucket("tiles")     # s3://tiles?endpoint=…, a 0600 key file
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parent.parent
REGION = "garage"


def garage_binary() -> str | None:
    """The garage binary: $GARAGE_BIN, the repo's .tools/bin/garage (make), or on PATH."""
    for candidate in (os.environ.get("GARAGE_BIN"), str(ROOT / ".tools" / "bin" / "garage"), shutil.which("garage")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GarageServer:
    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.s3_port = _free_port()
        self.rpc_port = _free_port()
        self.admin_port = _free_port()
        self.config = root / "garage.toml"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, root: Path) -> GarageServer:
        binary = garage_binary()
        if binary is None:
            raise RuntimeError("garage is not installed (make builds it into .tools/)")
        root.mkdir(parents=True, exist_ok=True)
        server = cls(binary, root)
        server.config.write_text(
            f'metadata_dir = "{root / "meta"}"\n'
            f'data_dir = "{root / "data"}"\n'
            'db_engine = "sqlite"\n'
            'replication_factor = 1\n'
            # Acknowledged objects are on disk: the ledger's tiles are acknowledged history.
            'metadata_fsync = true\n'
            'data_fsync = true\n'
            f'rpc_bind_addr = "127.0.0.1:{server.rpc_port}"\n'
            f'rpc_public_addr = "127.0.0.1:{server.rpc_port}"\n'
            f'rpc_secret = "{secrets.token_hex(32)}"\n'
            '[s3_api]\n'
            f's3_region = "{REGION}"\n'
            f'api_bind_addr = "127.0.0.1:{server.s3_port}"\n'
            '[admin]\n'
            f'api_bind_addr = "127.0.0.1:{server.admin_port}"\n'
            f'admin_token = "{secrets.token_hex(16)}"\n')
        server.config.chmod(0o600)  # it holds the RPC secret; garage refuses a world-readable one
        with open(root / "garage.log", "ab") as log:
            server.proc = subprocess.Popen([binary, "-c", str(server.config), "server"], stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
        try:
            node = server._wait_node()
            # Under load the fresh node may not take its layout at once: retried, with the error kept.
            server._retry(lambda: server.cli("layout", "assign", "-z", "dc1", "-c", "1G", node))
            server._retry(lambda: server.cli("layout", "apply", "--version", "1"))
            server._wait_s3()
        except BaseException:
            server.stop()
            raise
        return server

    def cli(self, *args: str) -> str:
        proc = subprocess.run([self.binary, "-c", str(self.config), *args], capture_output=True, text=True,
                              timeout=60, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"garage {' '.join(args)}: {proc.stderr.strip() or proc.stdout.strip()}")
        return proc.stdout

    def _retry(self, fn: Callable[[], object], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fn()
                return
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{e}; garage log: {(self.root / 'garage.log').read_text()[-1500:]}") from None
                time.sleep(0.5)

    def _wait_node(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                out = self.cli("node", "id", "-q")
                return out.strip().split("@", 1)[0]
            except (RuntimeError, subprocess.TimeoutExpired):
                if (self.proc is not None and self.proc.poll() is not None) or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"garage did not start: {(self.root / 'garage.log').read_text()[-2000:]}") from None
                time.sleep(0.2)

    def _wait_s3(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.cli("bucket", "list")
                with socket.create_connection(("127.0.0.1", self.s3_port), timeout=1):
                    return
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def bucket(self, name: str, prefix: str = "") -> tuple[str, Path]:
        """A new bucket and a key allowed on it: (its s3:// URL, under ``prefix``; a 0600
        credentials file)."""
        self.cli("bucket", "create", name)
        out = self.cli("key", "create", f"{name}-key")
        key_id = re.search(r"Key ID:\s*(\S+)", out)
        secret = re.search(r"Secret key:\s*(\S+)", out)
        if key_id is None or secret is None:
            raise RuntimeError(f"unexpected `garage key create` output: {out}")
        self.cli("bucket", "allow", "--read", "--write", "--owner", name, "--key", key_id.group(1))
        creds = self.root / f"{name}.credentials.json"
        creds.write_text(json.dumps({"access_key_id": key_id.group(1), "secret_access_key": secret.group(1)}))
        creds.chmod(0o600)
        return f"s3://{name}/{prefix}?endpoint=http://127.0.0.1:{self.s3_port}&region={REGION}", creds

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self) -> None:
        self.kill9()
        with open(self.root / "garage.log", "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config), "server"], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_s3()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill9()

    def __enter__(self) -> GarageServer:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


__all__ = ["GarageServer", "garage_binary"]
