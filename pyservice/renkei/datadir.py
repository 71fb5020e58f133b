"""A service's data directory: where every durable piece of one renkei service lives.

Each service (J-LIS, NTA, the linkage core, …) has its own directory, created only by its
``init`` (``renkei <service> init``, or ``renkei up`` for a fresh box)::

    renkei-service.json   which service the directory belongs to (written last by init)
    keys/                 the service's secret keys, one file each, mode 0600
    tls/                  its certificate and key (mode 0600) and the CA certificate
    …                     the service's registries, holdings, ledger

Opening never creates anything: a missing directory, a directory of another service, or a
missing key file is an error naming the path and what to do. A deleted key must never be
silently replaced (a new J-LIS key would give a resident a second current My Number, a new
agency-code key would invalidate every code).

Directories are 0700 and files 0600 whatever the umask.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import stat
from datetime import UTC, datetime
from pathlib import Path

from renkei._core import fs as _fs
from renkei.errors import KeyFileError, NotInitializedError, StorageError

MARKER = "renkei-service.json"
FORMAT = 1
DEFAULT_BOX = "renkei-data"


def box_root(value: str | os.PathLike[str] | None = None) -> Path:
    """The directory of the whole box (``renkei up``): given, ``$RENKEI_DATA`` or ./renkei-data."""
    return Path(value or os.environ.get("RENKEI_DATA", DEFAULT_BOX))


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a create or rename inside ``path``) durable."""
    _fs.fsync_dir(path)


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so a crash leaves the old or the new file, never a mix: a
    temporary file with ``mode`` (whatever the umask), fsynced, renamed, the directory fsynced.
    The engine's one implementation (``core_rs/src/durable.rs``), shared with the ledger and
    the holdings."""
    _fs.write_atomic(path, data, mode)


def make_private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a 0700 directory, whatever the umask."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class DataDir:
    """The data directory of one service (``service`` names which: "jlis", "nta", "core", …)."""

    def __init__(self, path: str | os.PathLike[str], service: str) -> None:
        self.path = Path(path)
        self.service = service
        marker = self.path / MARKER
        if not marker.exists():
            if self.path.is_dir() and any(self.path.iterdir()):
                raise NotInitializedError(
                    f"{self.path} holds files but no {MARKER}: not a renkei {service} data directory "
                    f"(or its initialisation did not finish)"
                )
            raise NotInitializedError(
                f"{self.path} is not an initialised {service} data directory: "
                f"run `renkei {service} init --data-dir {self.path}` first"
            )
        try:
            found = json.loads(marker.read_text())["service"]
        except (ValueError, KeyError, TypeError):
            raise NotInitializedError(f"{marker} is damaged: restore it from a backup") from None
        if found != service:
            raise NotInitializedError(f"{self.path} is the data directory of {found!r}, not of {service!r}")
        self.keys = self.path / "keys"
        self.tls = self.path / "tls"

    @classmethod
    def init(cls, path: str | os.PathLike[str], service: str, keys: dict[str, int] | None = None) -> DataDir:
        """Create (or complete) the data directory of ``service`` with fresh ``keys`` (name → size).

        Idempotent on a directory of the same service: existing keys are kept, never replaced.
        The marker is written last, so an interrupted init is finished by running it again.
        """
        root = make_private_dir(Path(path))
        marker = root / MARKER
        if marker.exists():
            existing = cls(root, service)  # refuses another service's directory
        make_private_dir(root / "keys")
        make_private_dir(root / "tls")
        for name, size in (keys or {}).items():
            key = root / "keys" / f"{name}.key"
            if not key.exists():
                if marker.exists():
                    # An initialised directory missing a key is damage, not a fresh start.
                    existing.secret_key(name, size)
                _create_key(key, size)
        if not marker.exists():
            info = {"service": service, "format": FORMAT, "created": datetime.now(UTC).isoformat(timespec="seconds")}
            write_atomic(marker, json.dumps(info).encode())
        return cls(root, service)

    def add_key(self, name: str, size: int, *, guards: Path | None) -> None:
        """Create ``keys/<name>.key``, a key a later version introduced, in this initialised
        directory (an ``init`` on an older one) — only while ``guards``, the data the key
        protects, does not exist: a key missing beside its data is damage and is never replaced.
        ``guards=None``: the key protects nothing durable (the core's disclosure-challenge key:
        a challenge lives two minutes), so a missing one is simply created."""
        key = self.keys / f"{name}.key"
        if key.exists():
            self.secret_key(name, size)  # refuses a widened or wrong-sized file
            return
        if guards is not None and guards.exists():
            self.secret_key(name, size)  # raises: missing, restore it
        _create_key(key, size)

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r}, {self.service!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def subdir(self, name: str) -> Path:
        """A 0700 subdirectory for the service's own files (created when missing)."""
        return make_private_dir(self.path / name)

    def secret_key(self, name: str, size: int = 32) -> bytes:
        """The secret key ``keys/<name>.key``; refuses a missing, widened or wrong-sized file."""
        path = self.keys / f"{name}.key"
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyFileError(
                f"{path} is missing: this {self.service} data directory was initialised with it. Restore it from "
                f"the backup; a new key would not match the data (never re-run init to replace it)"
            ) from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); expected 0600")
        data = path.read_bytes()
        if len(data) != size:
            raise KeyFileError(f"{path} holds {len(data)} bytes, expected {size}")
        return data

    def connect(self, name: str) -> sqlite3.Connection:
        """An SQLite database of the service, set up so that a returned commit is durable."""
        path = self.path / name
        if not path.exists():
            # Created 0600 up front: SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        return connect_sqlite(path)


def connect_sqlite(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection to ``path``; ``read_only`` never writes or creates anything. A file that is
    not an SQLite database is a :class:`StorageError` naming it."""
    try:
        if read_only:
            if not path.exists():
                raise NotInitializedError(f"{path} is missing; restore it from the backup of its data directory")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as e:
        raise StorageError(f"{path} is not a usable SQLite database ({e}); restore it from the backup") from None
    return conn


def _create_key(path: Path, size: int) -> None:
    """A fresh random key, written atomically with mode 0600 and linked into place (never over
    an existing one: two racing inits end up with the same key)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, secrets.token_bytes(size))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    fsync_dir(path.parent)
