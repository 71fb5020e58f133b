"""Data directories for tests that use one engine directly (as ``renkei core init`` makes them)."""

from __future__ import annotations

import os

from renkei.datadir import DataDir
from renkei.service.core import KEYS


def core_dir(path: str | os.PathLike[str]) -> DataDir:
    """A core data directory with its keys (created on first use, reopened after)."""
    return DataDir.init(path, "core", KEYS)
