"""The inquiry path (情報照会) in one call without the GIL (``core_rs/src/inquiry``)."""

from typing import Protocol, Self, final

from renkei._core.codes import CodeEngine
from renkei._core.ledger import Ledger
from renkei._core.permissions import Engine
from renkei._core.permits import Signer

class _Appender(Protocol):
    """Another driver's ledger (renkei.store.pgledger.PgLedger): the path appends through it."""

    def append_packed(self, packed: bytes) -> tuple[int, int, str]: ...

MAX_BATCH_ITEMS: int
PROVIDER_UNAVAILABLE: int
REQUESTER_NOT_ELIGIBLE: int
REQUEST_ID_REUSED: int

_Party = tuple[int, list[str], str | None]
_Wire = tuple[bytes, bytes, str]  # the gRPC Permit: body, signature, key id
_Refusal = tuple[int, str] | None  # (outcome, reason for the record), decided before the table
# outcome, reason, provider code, record sequence, permit, expiry, the packed 照会 record
_Single = tuple[int, str, bytes, int, _Wire | None, int, bytes]

@final
class InquiryPath:
    def __new__(
        cls, codes: CodeEngine, permissions: Engine, signer: Signer, ledger: Ledger | _Appender, pseudonym_key: bytes
    ) -> Self: ...
    def inquire(
        self,
        requester: _Party,
        provider: _Party,
        code: bytes,
        affair: str,
        items: list[str],
        lifetime_s: int = 300,
        *,
        refusal: _Refusal = None,
        withheld_until: int | None = None,
        delegator: int | None = None,
    ) -> _Single: ...
    def inquire_many(
        self,
        requests: list[tuple[_Party, _Party, bytes, str, list[str], _Refusal, int | None, int | None]],
        lifetime_s: int = 300,
    ) -> list[_Single | Exception]: ...
    def batch_inquire(
        self,
        requester: _Party,
        provider: _Party,
        codes: bytes,
        affair: str,
        items: list[str],
        lifetime_s: int = 300,
        *,
        refusal: _Refusal = None,
        max_denials: int | None = None,
        withheld_until: int | None = None,
        delegator: int | None = None,
    ) -> tuple[bytes, bytes, int, _Wire | None, int, bytes]: ...

def pseudonym(key: bytes, person: int) -> bytes: ...

__all__ = [
    "MAX_BATCH_ITEMS",
    "PROVIDER_UNAVAILABLE",
    "REQUESTER_NOT_ELIGIBLE",
    "REQUEST_ID_REUSED",
    "InquiryPath",
    "pseudonym",
]
