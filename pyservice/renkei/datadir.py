"""The data directory: where every durable piece of a renkei installation lives.

Layout (created on first use, directories mode 0700)::

    keys/            secret keys, one file each, mode 0600, created atomically
    jlis.sqlite3     J-LIS: issued My Numbers (current and former), person ids
    corporate.sqlite3  NTA: the corporate-number registry

Later parts of the system add their own files beside these. The default directory is
``$RENKEI_DATA`` or ``./renkei-data``.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import stat
from pathlib import Path

from renkei.errors import KeyFileError

DEFAULT_DIRNAME = "renkei-data"


def default_path() -> Path:
    return Path(os.environ.get("RENKEI_DATA", DEFAULT_DIRNAME))


def fsync_dir(path: Path) -> None:
    """Make a directory entry (a create or rename inside ``path``) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DataDir:
    """A renkei data directory."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keys = self.path / "keys"
        self.keys.mkdir(mode=0o700, exist_ok=True)

    def __repr__(self) -> str:
        return f"DataDir({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    def secret_key(self, name: str, size: int = 32) -> bytes:
        """The secret key ``keys/<name>.key``, created with fresh random bytes on first use.

        The file is written to a temporary name with mode 0600, fsynced, and linked into place,
        so a crash never leaves a half-written key, and two processes racing to create it end
        up with the same one. An existing key with group/other permissions or the wrong size
        is refused rather than used.
        """
        path = self.keys / f"{name}.key"
        try:
            return self._read_key(path, size)
        except FileNotFoundError:
            pass
        tmp = self.keys / f".{name}.{secrets.token_hex(8)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(size))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails if another process won the race: then use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        fsync_dir(self.keys)
        return self._read_key(path, size)

    @staticmethod
    def _read_key(path: Path, size: int) -> bytes:
        st = path.stat()
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyFileError(f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):o}); expected 0600")
        data = path.read_bytes()
        if len(data) != size:
            raise KeyFileError(f"{path} holds {len(data)} bytes, expected {size}")
        return data

    def connect(self, name: str) -> sqlite3.Connection:
        """An SQLite database in the directory, set up so a returned commit is durable."""
        path = self.path / name
        if not path.exists():
            # Created 0600 up front: SQLite gives its -wal and -shm files the same mode.
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
