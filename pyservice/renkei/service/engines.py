"""The engine interfaces the linkage, oversight, admin and disclosure servicers call.

The servicers (``*_servicer.py``) parse requests, take the caller from the client certificate,
call one of these methods on a worker thread and map errors; the engines do the work. An
engine signals refusal by raising a :class:`renkei.errors.RenkeiError` subclass (mapped to a
status code in :mod:`renkei.service.status`), e.g. ``CodeRefusedError`` (PERMISSION_DENIED,
reason ``CODE_REFUSED``). Engines are called from several threads at once unless documented otherwise.

Agency ids are unsigned 32-bit integers; agency codes are 16 bytes; times are timezone-aware
``datetime`` in UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np
import numpy.typing as npt

# -- linkage (機関別符号, 情報照会) --------------------------------------------------------------


@dataclass(frozen=True)
class Permit:
    """A provision permit: ``signature`` (Ed25519) over ``body`` by key ``key_id``."""

    body: bytes
    signature: bytes
    key_id: str


@dataclass(frozen=True)
class InquiryResult:
    permit: Permit
    provider_agency_code: bytes
    record_sequence: int
    expires_at: datetime


@dataclass(frozen=True)
class BatchInquiryResult:
    permit: Permit
    provider_agency_codes: bytes  # 16 bytes per item, zeros where refused
    outcomes: bytes  # one DenialCode byte per item, 0 = permitted
    first_record_sequence: int
    expires_at: datetime


@dataclass(frozen=True)
class PublicKeyInfo:
    key_id: str
    purpose: str  # "permit" or "checkpoint"
    algorithm: str  # "ed25519"
    public_key: bytes
    not_before: datetime
    not_after: datetime | None = None
    note_verifier_key: str = ""


class LinkageEngine(Protocol):
    """Agency codes, holdings, inquiries and permits (issues 3–5, wired by the lead)."""

    def acquire_code(self, agency_id: int, individual_number: str, acquisition_number: bytes) -> bytes:
        """The agency's 16-byte code for the holder of a current My Number; records the holding.

        Refuses with FailedPreconditionError (reason PIA_NOT_APPROVED) without an approved PIA.
        """
        ...

    def acquire_codes(self, agency_id: int, individual_numbers: npt.NDArray[np.uint64]) -> bytes:
        """Codes for many current numbers, 16 bytes each, in order (all or nothing)."""
        ...

    def release_holding(self, agency_id: int, agency_code: bytes) -> None: ...

    def inquire(
        self,
        requester_agency_id: int,
        agency_code: bytes,
        affair: str,
        provider_agency_id: int,
        information_items: Sequence[str],
        request_id: str,
    ) -> InquiryResult:
        """Check, translate, record durably, sign. A denial is recorded, then raised."""
        ...

    def batch_inquire(
        self,
        requester_agency_id: int,
        agency_codes: bytes,
        affair: str,
        provider_agency_id: int,
        information_items: Sequence[str],
        request_id: str,
    ) -> BatchInquiryResult: ...

    def public_keys(self) -> Sequence[PublicKeyInfo]: ...


# -- oversight (the provision ledger as a transparency log) ----------------------------------------


@dataclass(frozen=True)
class CheckpointInfo:
    note: bytes  # the C2SP signed note, exactly as signed
    origin: str
    tree_size: int
    root_hash: bytes


@dataclass(frozen=True)
class InclusionProofInfo:
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: Sequence[bytes]


@dataclass(frozen=True)
class RecordInfo:
    """One 情報提供等記録 as the ledger holds it."""

    sequence: int
    time: datetime
    requester_agency_id: int
    provider_agency_id: int
    affair: str
    information_items: Sequence[str]
    table_version_hash: bytes
    outcome: str
    permit_id: bytes
    person_pseudonym: bytes
    withheld: bool
    leaf_data: bytes


@dataclass(frozen=True)
class AgencyStatisticsInfo:
    agency_id: int
    inquiries: int
    denials: int
    provisions: int
    by_affair: Sequence[tuple[str, int, int]]  # (affair, inquiries, denials)
    denials_by_reason: dict[str, int] = field(default_factory=dict)


class OversightEngine(Protocol):
    """The ledger's read side for the commission (issue 5, wired by the lead)."""

    def latest_checkpoint(self) -> CheckpointInfo: ...

    def checkpoint_at(self, tree_size: int) -> CheckpointInfo:
        """A stored earlier checkpoint of that size (or the latest); NotFoundError otherwise."""
        ...

    def consistency_proof(self, first_size: int, second_size: int) -> Sequence[bytes]: ...

    def inclusion_proof(self, leaf_index: int, tree_size: int | None) -> InclusionProofInfo:
        """Against ``tree_size``, or the latest checkpoint's size when None."""
        ...

    def records(
        self,
        agency_id: int | None,
        start: datetime | None,
        end: datetime | None,
        after_sequence: int,
        limit: int,
    ) -> Sequence[RecordInfo]:
        """Records with sequence > ``after_sequence`` (-1: from the first), oldest first, up to ``limit``."""
        ...

    def agency_statistics(
        self, agency_id: int, start: datetime | None, end: datetime | None
    ) -> AgencyStatisticsInfo: ...


# -- administration --------------------------------------------------------------------------------

PIA_STATUSES = ("not_submitted", "submitted", "approved", "revoked")


@dataclass(frozen=True)
class AgencyInfo:
    agency_id: int
    name: str
    type_ids: Sequence[str]
    local_government_code: str
    pia_status: str  # one of PIA_STATUSES
    created_at: datetime


@dataclass(frozen=True)
class TableVersionInfo:
    version_hash: str
    effective_from: str
    effective_to: str
    row_count: int
    loaded_at: datetime
    description: str = ""


@dataclass(frozen=True)
class PermissionRowInfo:
    requester_type_id: str
    affair: str
    provider_type_id: str
    information_item: str


class AgencyRegistry(Protocol):
    """Agencies and their PIA status (issue 3, wired by the lead)."""

    def create_agency(
        self, name: str, type_ids: Sequence[str], local_government_code: str, corporate_number: str = ""
    ) -> AgencyInfo: ...

    def get_agency(self, agency_id: int) -> AgencyInfo: ...

    def list_agencies(self, after_id: int, limit: int) -> Sequence[AgencyInfo]:
        """Agencies with id > ``after_id``, ordered by id, at most ``limit``."""
        ...

    def set_pia_status(self, agency_id: int, status: str) -> AgencyInfo: ...


class PermissionTables(Protocol):
    """Versions of the permission table (issue 4, wired by the lead)."""

    def load(
        self, table_json: bytes, effective_from: str, effective_to: str, description: str
    ) -> TableVersionInfo: ...

    def versions(self) -> Sequence[TableVersionInfo]: ...

    def diff(
        self, from_hash: str, to_hash: str
    ) -> tuple[Sequence[PermissionRowInfo], Sequence[PermissionRowInfo]]:
        """(added, removed) rows going from one version to the other."""
        ...


# -- disclosure (a person's own records) -----------------------------------------------------------


@dataclass(frozen=True)
class ChallengeInfo:
    challenge: bytes
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class DisclosurePage:
    records: Sequence[tuple[RecordInfo, InclusionProofInfo]]
    checkpoint: CheckpointInfo
    next_after: int | None  # pass back as ``before_sequence`` for the next page; None at the end


class DisclosureEngine(Protocol):
    """Card-key login and a person's own records (wired by the lead)."""

    def create_challenge(self, card_key_id: bytes) -> ChallengeInfo: ...

    def login(self, card_key_id: bytes, challenge: bytes, signature: bytes) -> SessionInfo:
        """Verifies the card key's signature over an unused, unexpired challenge."""
        ...

    def my_records(self, session_token: str, before_sequence: int | None, limit: int) -> DisclosurePage:
        """The session's person's records (not 不開示), newest first, with inclusion proofs."""
        ...
