# Stub of renkei._core.fs (core_rs/src/py/fs.rs; the engine's core_rs/src/durable.rs).
from os import PathLike
from pathlib import Path
from types import TracebackType
from typing import Self, final

LOCK_FILE: str

def write_atomic(path: str | PathLike[str], data: bytes, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` atomically and durably (temporary file created O_EXCL with
    exactly ``mode``, fsync, rename, directory fsync). ``StorageError`` on failure."""

def fsync_dir(path: str | PathLike[str]) -> None:
    """Make the directory entries in ``path`` durable."""

@final
class DirLock:
    """Exclusive, non-blocking ``flock`` on ``<path>/LOCK`` (0600); ``StorageError`` "<path> is in
    use by another process" when held elsewhere (also by another DirLock of this process)."""

    def __new__(cls, path: str | PathLike[str]) -> Self: ...
    def release(self) -> None: ...
    @property
    def held(self) -> bool: ...
    @property
    def path(self) -> Path: ...
    def __enter__(self) -> DirLock: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool: ...

__all__ = ["LOCK_FILE", "DirLock", "fsync_dir", "write_atomic"]
