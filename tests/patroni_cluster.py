"""The supervised setup of docs/OPERATIONS.md made by the test suite: one etcd and two Patroni
nodes, each managing a PostgreSQL 15 from the OS packages, configured from the operators'
template ``deploy/patroni/patroni.yml.in`` (so the template is what is tested).

    cluster = PatroniCluster.start()          # etcd + node1 (leader) + node2 (sync standby)
    cluster.url("renkei")                     # both nodes, target_session_attrs=read-write
    cluster.kill_node(cluster.leader())       # the machine dies: Patroni and PostgreSQL, kill -9
    cluster.wait_leader(other)                # Patroni promotes the synchronous standby
    cluster.start_node(name)                  # the old leader rejoins as a standby (pg_rewind)
    cluster.stop()

Passwords are random per cluster (scram-sha-256 on 127.0.0.1); the data directories and the
configuration files belong to the postgres user, mode 0700/0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import string
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from tests.pg_cluster import _as_postgres, free_port, pg_bindir

TEMPLATE = Path(__file__).resolve().parent.parent / "deploy" / "patroni" / "patroni.yml.in"
APP_USER = "renkei"


def tools_installed() -> bool:
    return pg_bindir() is not None and all(shutil.which(t) for t in ("patroni", "etcd", "etcdctl"))


def _descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc), deepest last."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _kill9(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class PatroniNode:
    name: str
    root: Path
    rest_port: int
    pg_port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "patroni.yml"

    @property
    def log(self) -> Path:
        return self.root / "patroni.out"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            # Its own folder as the working directory: Patroni's helper processes chdir to it as
            # the postgres user, who cannot enter a private checkout (CI's is mode 0700).
            self.proc = subprocess.Popen([*_as_postgres(), "patroni", str(self.config)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, cwd=self.root)

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def kill9(self) -> None:
        """The machine dies: Patroni, the postmaster and every backend at once. (Patroni keeps
        PostgreSQL out of its own process group on purpose, so a Patroni crash alone leaves the
        database running; a dead host takes both.)"""
        pids: list[int] = []
        if self.proc is not None and self.proc.poll() is None:
            pids += [self.proc.pid, *_descendants(self.proc.pid)]
        pm = self.postmaster_pid()
        if pm is not None:
            pids += [pm, *_descendants(pm)]
        _kill9(pids)
        if self.proc is not None:
            self.proc.wait()
        deadline = time.monotonic() + 10
        while pm is not None and Path(f"/proc/{pm}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            self.kill9()  # a postmaster left behind by a killed Patroni
            return
        self.proc.send_signal(signal.SIGTERM)  # Patroni stops PostgreSQL, then itself
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        self.kill9()

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/cluster", timeout=2) as r:
                data: dict[str, Any] = json.load(r)
                return data
        except OSError:
            return None


class PatroniCluster:
    """etcd + two Patroni nodes; see the module docstring."""

    def __init__(self, root: Path, etcd_port: int, nodes: dict[str, PatroniNode], secrets_: dict[str, str]) -> None:
        self.root = root
        self.etcd_port = etcd_port
        self.nodes = nodes
        self.secrets = secrets_
        self.etcd: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, timeout: float = 90.0) -> PatroniCluster:
        bindir = pg_bindir()
        if bindir is None or not tools_installed():
            raise RuntimeError("patroni, etcd or the PostgreSQL server binaries are not installed")
        root = Path(tempfile.mkdtemp(prefix="renkei-patroni-"))
        pw = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        secrets_ = {k: secrets.token_urlsafe(18) for k in ("SUPERUSER_PASSWORD", "REPLICATION_PASSWORD",
                                                           "REWIND_PASSWORD", "APP_PASSWORD")}
        etcd_port = free_port()
        nodes = {name: PatroniNode(name, root / name, free_port(), free_port()) for name in ("node1", "node2")}
        cluster = cls(root, etcd_port, nodes, secrets_)
        try:
            cluster._start_etcd(free_port())
            template = string.Template(TEMPLATE.read_text())
            for node in nodes.values():
                node.root.mkdir(mode=0o700)
                text = template.substitute(
                    NAME=node.name, HOST="127.0.0.1", REST_PORT=node.rest_port, PG_PORT=node.pg_port,
                    ETCD_HOSTS=f"127.0.0.1:{etcd_port}", LOG_DIR=str(node.root), DATA_DIR=str(node.data),
                    BIN_DIR=str(bindir), PGPASS=str(node.root / "pgpass"), SOCKET_DIR=str(node.root),
                    CLIENT_NET="127.0.0.1/32", SUPERUSER_PASSWORD=secrets_["SUPERUSER_PASSWORD"],
                    REPLICATION_PASSWORD=secrets_["REPLICATION_PASSWORD"],
                    REWIND_PASSWORD=secrets_["REWIND_PASSWORD"])
                node.config.write_text(text)
                node.config.chmod(0o600)
                if pw is not None:
                    for p in (root, node.root, node.config):
                        os.chown(p, pw.pw_uid, pw.pw_gid)
            nodes["node1"].start()
            cluster.wait_leader("node1", timeout=timeout)
            nodes["node2"].start()
            cluster.wait_sync_standby("node2", timeout=timeout)
            with cluster.superuser_connect() as conn:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(APP_USER), sql.Literal(secrets_["APP_PASSWORD"])))
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start_etcd(self, peer_port: int) -> None:
        data = self.root / "etcd"
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        with open(self.root / "etcd.log", "ab") as log:
            self.etcd = subprocess.Popen(
                ["etcd", "--name", "etcd1", "--data-dir", str(data), "--listen-client-urls", client,
                 "--advertise-client-urls", client, "--listen-peer-urls", peer,
                 "--initial-advertise-peer-urls", peer, "--initial-cluster", f"etcd1={peer}",
                 "--initial-cluster-state", "new", "--enable-v2=false"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{client}/health", timeout=2) as r:
                    if json.load(r).get("health") == "true":
                        return
            except OSError:
                pass
            if self.etcd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"etcd did not start: {(self.root / 'etcd.log').read_text()[-2000:]}")
            time.sleep(0.1)

    # -- state ---------------------------------------------------------------------------------

    def members(self) -> dict[str, dict[str, Any]]:
        """Patroni's view of the members (GET /cluster of any live node)."""
        for node in self.nodes.values():
            status = node.status()
            if status is not None:
                return {m["name"]: m for m in status.get("members", [])}
        return {}

    def leader(self) -> str | None:
        for name, m in self.members().items():
            if m.get("role") == "leader" and m.get("state") == "running":
                return name
        return None

    def _wait(self, what: str, ok: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ok():
            if time.monotonic() > deadline:
                logs = {n: node.log.read_text()[-1500:] for n, node in self.nodes.items() if node.log.exists()}
                raise RuntimeError(f"{what}: {self.members()} {logs}")
            time.sleep(0.1)

    def wait_leader(self, name: str | None = None, timeout: float = 60.0) -> str:
        """Until a leader (``name``, when given) is running and takes writes."""
        def ok() -> bool:
            leader = self.leader()
            if leader is None or (name is not None and leader != name):
                return False
            try:
                with self.superuser_connect(leader) as conn:
                    return conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            except psycopg.OperationalError:
                return False
        self._wait(f"no leader {name or ''}", ok, timeout)
        leader = self.leader()
        assert leader is not None
        return leader

    def wait_sync_standby(self, name: str, timeout: float = 60.0) -> None:
        """Until ``name`` streams as the synchronous standby (commits wait for it)."""
        def ok() -> bool:
            m = self.members().get(name, {})
            return m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming")
        self._wait(f"{name} is not the synchronous standby", ok, timeout)

    # -- connections ---------------------------------------------------------------------------

    def superuser_connect(self, name: str | None = None) -> psycopg.Connection[Any]:
        node = self.nodes[name or self.wait_leader()]
        return psycopg.connect(host="127.0.0.1", port=node.pg_port, user="postgres",
                               password=self.secrets["SUPERUSER_PASSWORD"], dbname="postgres",
                               autocommit=True, connect_timeout=3)

    def create_database(self, dbname: str) -> str:
        """A database owned by the application role; its URL (what ``renkei core init --store``
        is given)."""
        with self.superuser_connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname),
                                                                        sql.Identifier(APP_USER)))
        return self.url(dbname)

    def url(self, dbname: str) -> str:
        hosts = ",".join(f"127.0.0.1:{n.pg_port}" for n in self.nodes.values())
        return (f"postgresql://{APP_USER}:{self.secrets['APP_PASSWORD']}@{hosts}/{dbname}"
                f"?target_session_attrs=read-write&connect_timeout=2")

    # -- faults --------------------------------------------------------------------------------

    def kill_node(self, name: str) -> None:
        self.nodes[name].kill9()

    def start_node(self, name: str) -> None:
        self.nodes[name].start()

    def stop(self) -> None:
        for node in self.nodes.values():
            with contextlib.suppress(Exception):
                node.stop()
        if self.etcd is not None and self.etcd.poll() is None:
            self.etcd.terminate()
            try:
                self.etcd.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.etcd.kill()
        shutil.rmtree(self.root, ignore_errors=True)


__all__ = ["APP_USER", "PatroniCluster", "PatroniNode", "tools_installed"]
