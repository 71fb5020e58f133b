"""renkei._core.fs: the engine's durable file operations, as Python sees them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from renkei._core import fs
from renkei.errors import StorageError


def test_write_atomic_replaces_the_file_with_exactly_the_mode(tmp_path: Path) -> None:
    target = tmp_path / "key"
    fs.write_atomic(target, b"one")
    assert target.read_bytes() == b"one" and stat.S_IMODE(target.stat().st_mode) == 0o600
    fs.write_atomic(str(target), b"two", 0o644)
    assert target.read_bytes() == b"two" and stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ["key"]  # no temporary left behind
    with pytest.raises(StorageError):
        fs.write_atomic(tmp_path / "missing" / "key", b"x")
    fs.fsync_dir(tmp_path)
    with pytest.raises(StorageError):
        fs.fsync_dir(tmp_path / "missing")


def test_dir_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    with fs.DirLock(tmp_path) as lock:
        assert lock.held and (tmp_path / fs.LOCK_FILE).exists()
        assert stat.S_IMODE((tmp_path / "LOCK").stat().st_mode) == 0o600
        with pytest.raises(StorageError, match="in use by another process"):
            fs.DirLock(tmp_path)
    assert not lock.held
    second = fs.DirLock(tmp_path)
    second.release()
    second.release()  # idempotent
    del second
    # The holdings directory uses the same lock: an engine and a DirLock exclude each other.
    from renkei._core import codes

    eng = codes.CodeEngine(os.urandom(32), str(tmp_path / "h"), 1, [1], create=True)
    with pytest.raises(StorageError, match="in use"):
        fs.DirLock(tmp_path / "h")
    eng.close()
    fs.DirLock(tmp_path / "h").release()
