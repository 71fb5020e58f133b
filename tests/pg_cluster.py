"""A PostgreSQL 15 primary + streaming-replication synchronous standby, made by the test suite
from the OS's server binaries (``pg_config --bindir``) in a temporary directory, on free loopback
ports (docs/arch/store.md).

    cluster = PgCluster.start()            # primary + synchronous standby "standby"
    cluster.url("renkei_t1")               # both hosts, target_session_attrs=read-write
    cluster.kill_primary()                 # kill -9 of the primary's whole process group
    cluster.promote()                      # the standby takes writes (synchronous_standby_names cleared)
    cluster.stop()

The servers run as the ``postgres`` user when the tests run as root (initdb refuses root), with
trust authentication on 127.0.0.1 only: a throw-away cluster, never a deployment.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

STANDBY_NAME = "standby"


def pg_bindir() -> Path | None:
    """The server binaries (off PATH on Debian: ``pg_config --bindir``, else the newest
    /usr/lib/postgresql/<v>/bin), or None when PostgreSQL is not installed."""
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        candidates.append(Path(out))
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
                      if p.parent.name.isdigit() else 0, reverse=True)
    for path in [*candidates, *versions]:
        if (path / "initdb").exists() and (path / "postgres").exists():
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres() -> list[str]:
    """A command prefix that drops to the postgres user when we are root. setpriv (util-linux)
    execs the command in place; Popen's own user=/group= would make Python fork a process whose
    gRPC threads are running, and pg_ctl promote died of SIGSEGV that way (-11) under load."""
    if os.geteuid() != 0:
        return []
    pw = pwd.getpwnam("postgres")
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--"]


def _run(bindir: Path, tool: str, *args: str) -> None:
    proc = subprocess.run([*_as_postgres(), str(bindir / tool), *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")


@dataclass
class PgNode:
    name: str
    data: Path
    port: int
    bindir: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.data.parent / f"{self.name}.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            # Its own session: a kill -9 of the group takes the postmaster and every backend, as
            # when the machine dies.
            self.proc = subprocess.Popen([*_as_postgres(), str(self.bindir / "postgres"), "-D", str(self.data)],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.conninfo(), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"postgres {self.name} exited: {self.log.read_text()[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo(dbname), autocommit=True, connect_timeout=5)

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)  # fast shutdown
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill9()


_CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 5
hot_standby = on
synchronous_commit = on
synchronous_standby_names = 'FIRST 1 ({standby})'
max_connections = 100
shared_buffers = 32MB
fsync = on
"""


class PgCluster:
    """Primary + one synchronous standby; see the module docstring."""

    def __init__(self, root: Path, primary: PgNode, standby: PgNode) -> None:
        self.root = root
        self.primary = primary
        self.standby = standby

    @classmethod
    def start(cls) -> PgCluster:
        bindir = pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found (pg_config --bindir)")
        root = Path(tempfile.mkdtemp(prefix="renkei-pg-"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
        primary = PgNode("primary", root / "primary", free_port(), bindir)
        standby = PgNode("standby", root / "standby", free_port(), bindir)
        cluster = cls(root, primary, standby)
        try:
            _run(bindir, "initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "--no-sync",
                 "-E", "UTF8", "--locale", "C")
            with open(primary.data / "postgresql.conf", "a") as f:
                f.write(_CONF.format(port=primary.port, standby=STANDBY_NAME))
            with open(primary.data / "pg_hba.conf", "a") as f:
                f.write("host replication postgres 127.0.0.1/32 trust\n")
            primary.start()
            # The standby is a copy of the primary's files: it inherits postgresql.conf, and so
            # synchronous_standby_names (the trap promote() handles).
            _run(bindir, "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                 "-D", str(standby.data), "-X", "stream", "-R", "--no-sync")
            with open(standby.data / "postgresql.auto.conf", "a") as f:
                f.write(f"port = {standby.port}\n"
                        f"primary_conninfo = 'host=127.0.0.1 port={primary.port} user=postgres "
                        f"application_name={STANDBY_NAME}'\n")
            standby.start()
            cluster.wait_sync()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def wait_sync(self, timeout: float = 30.0) -> None:
        """Until the primary reports the standby as synchronous."""
        deadline = time.monotonic() + timeout
        with self.primary.connect() as conn:
            while True:
                row = conn.execute("SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                                   (STANDBY_NAME,)).fetchone()
                if row is not None and row[0] == "sync":
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the standby is not synchronous: {row}")
                time.sleep(0.1)

    def url(self, dbname: str) -> str:
        """Both nodes, libpq picking the writable one (what a front-end is given)."""
        return (f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}/{dbname}"
                f"?target_session_attrs=read-write&connect_timeout=2")

    def create_database(self, dbname: str) -> str:
        with self.primary.connect() as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return self.url(dbname)

    def kill_primary(self) -> None:
        self.primary.kill9()

    def promote(self) -> None:
        """The standby becomes the primary. It inherited ``synchronous_standby_names`` naming
        itself's role, with no standby left: every commit would wait forever. Cleared here — the
        availability-first choice of docs/arch/store.md (a new standby restores it)."""
        _run(self.standby.bindir, "pg_ctl", "promote", "-D", str(self.standby.data), "-w", "-t", "30")
        with self.standby.connect() as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = ''")
            conn.execute("SELECT pg_reload_conf()")
        self.primary, self.standby = self.standby, self.primary

    def stop(self) -> None:
        for node in (self.standby, self.primary):
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["STANDBY_NAME", "PgCluster", "PgNode", "free_port", "pg_bindir"]
