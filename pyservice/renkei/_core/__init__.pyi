# Stub of the native module renkei._core (core_rs/src/py). One stub per Rust submodule.
from renkei._core import codes as codes
from renkei._core import fs as fs
from renkei._core import inquiry as inquiry
from renkei._core import ledger as ledger
from renkei._core import numbers as numbers
from renkei._core import permissions as permissions
from renkei._core import permits as permits

__version__: str

__all__ = ["__version__", "codes", "fs", "inquiry", "ledger", "numbers", "permissions", "permits"]
