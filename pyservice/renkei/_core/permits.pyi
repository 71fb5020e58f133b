# Stub of renkei._core.permits (core_rs/src/py/permits.rs).
from typing import Any, Self, final

@final
class Signer:
    def __new__(cls, seed: bytes) -> Self: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def key_id(self) -> bytes: ...
    def sign(
        self,
        requester: str,
        provider: str,
        affair: str,
        items: list[str],
        person: bytes,
        table_version: bytes,
        ledger_seq: int,
        issued_at: int,
        expires_at: int,
        permit_id: bytes | None = None,
    ) -> tuple[str, bytes]: ...
    def sign_batch(
        self,
        requester: str,
        provider: str,
        affair: str,
        tree: BatchTree,
        table_version: bytes,
        ledger_seq: int,
        issued_at: int,
        expires_at: int,
        permit_id: bytes | None = None,
    ) -> tuple[str, bytes]: ...

@final
class BatchTree:
    def __new__(cls, persons: bytes, items: list[str]) -> Self: ...
    @property
    def root(self) -> bytes: ...
    def __len__(self) -> int: ...
    def proof(self, index: int) -> bytes: ...

@final
class Verifier:
    def __new__(cls, public_key: bytes, replay_cache: bool = True) -> Self: ...
    def verify(self, token: str, now: int) -> dict[str, Any]: ...
    def verify_batch_item(
        self, token: str, now: int, index: int, person: bytes, items: list[str], proof: bytes
    ) -> dict[str, Any]: ...
    def remembered(self) -> int: ...

def batch_leaf(index: int, person: bytes, items: list[str]) -> bytes: ...
def crockford(code: bytes) -> str: ...
def key_id(public_key: bytes) -> bytes: ...

__all__ = ["BatchTree", "Signer", "Verifier", "batch_leaf", "crockford", "key_id"]
