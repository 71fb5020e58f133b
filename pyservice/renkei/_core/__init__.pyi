# Stub of the native module renkei._core (core_rs/src/py). One stub per Rust submodule.
from renkei._core import codes as codes
from renkei._core import numbers as numbers

__version__: str
from renkei._core import ledger as ledger
