from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PiaLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIA_LEVEL_UNSPECIFIED: _ClassVar[PiaLevel]
    PIA_LEVEL_BASIC: _ClassVar[PiaLevel]
    PIA_LEVEL_PRIORITY: _ClassVar[PiaLevel]
    PIA_LEVEL_FULL: _ClassVar[PiaLevel]

class PiaState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIA_STATE_UNSPECIFIED: _ClassVar[PiaState]
    PIA_STATE_SUBMITTED: _ClassVar[PiaState]
    PIA_STATE_APPROVED: _ClassVar[PiaState]
    PIA_STATE_RETURNED: _ClassVar[PiaState]
    PIA_STATE_REVOKED: _ClassVar[PiaState]
    PIA_STATE_EXPIRED: _ClassVar[PiaState]

class PiaDecisionKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIA_DECISION_KIND_UNSPECIFIED: _ClassVar[PiaDecisionKind]
    PIA_DECISION_KIND_SUBMITTED: _ClassVar[PiaDecisionKind]
    PIA_DECISION_KIND_APPROVED: _ClassVar[PiaDecisionKind]
    PIA_DECISION_KIND_RETURNED: _ClassVar[PiaDecisionKind]
    PIA_DECISION_KIND_REVOKED: _ClassVar[PiaDecisionKind]
    PIA_DECISION_KIND_EXPIRED: _ClassVar[PiaDecisionKind]
PIA_LEVEL_UNSPECIFIED: PiaLevel
PIA_LEVEL_BASIC: PiaLevel
PIA_LEVEL_PRIORITY: PiaLevel
PIA_LEVEL_FULL: PiaLevel
PIA_STATE_UNSPECIFIED: PiaState
PIA_STATE_SUBMITTED: PiaState
PIA_STATE_APPROVED: PiaState
PIA_STATE_RETURNED: PiaState
PIA_STATE_REVOKED: PiaState
PIA_STATE_EXPIRED: PiaState
PIA_DECISION_KIND_UNSPECIFIED: PiaDecisionKind
PIA_DECISION_KIND_SUBMITTED: PiaDecisionKind
PIA_DECISION_KIND_APPROVED: PiaDecisionKind
PIA_DECISION_KIND_RETURNED: PiaDecisionKind
PIA_DECISION_KIND_REVOKED: PiaDecisionKind
PIA_DECISION_KIND_EXPIRED: PiaDecisionKind

class SubmitPiaRequest(_message.Message):
    __slots__ = ("level", "title", "files", "linked_data", "document_sha256", "revises")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    LINKED_DATA_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    REVISES_FIELD_NUMBER: _ClassVar[int]
    level: PiaLevel
    title: str
    files: _containers.RepeatedScalarFieldContainer[str]
    linked_data: _containers.RepeatedScalarFieldContainer[str]
    document_sha256: bytes
    revises: int
    def __init__(self, level: _Optional[_Union[PiaLevel, str]] = ..., title: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., linked_data: _Optional[_Iterable[str]] = ..., document_sha256: _Optional[bytes] = ..., revises: _Optional[int] = ...) -> None: ...

class Pia(_message.Message):
    __slots__ = ("pia_id", "agency_id", "level", "title", "files", "linked_data", "document_sha256", "state", "submitted_at", "approved_on", "expires_on", "decided_at", "reason", "revises", "content_sha256")
    PIA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    FILES_FIELD_NUMBER: _ClassVar[int]
    LINKED_DATA_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUBMITTED_AT_FIELD_NUMBER: _ClassVar[int]
    APPROVED_ON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_ON_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REVISES_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SHA256_FIELD_NUMBER: _ClassVar[int]
    pia_id: int
    agency_id: int
    level: PiaLevel
    title: str
    files: _containers.RepeatedScalarFieldContainer[str]
    linked_data: _containers.RepeatedScalarFieldContainer[str]
    document_sha256: bytes
    state: PiaState
    submitted_at: str
    approved_on: str
    expires_on: str
    decided_at: str
    reason: str
    revises: int
    content_sha256: bytes
    def __init__(self, pia_id: _Optional[int] = ..., agency_id: _Optional[int] = ..., level: _Optional[_Union[PiaLevel, str]] = ..., title: _Optional[str] = ..., files: _Optional[_Iterable[str]] = ..., linked_data: _Optional[_Iterable[str]] = ..., document_sha256: _Optional[bytes] = ..., state: _Optional[_Union[PiaState, str]] = ..., submitted_at: _Optional[str] = ..., approved_on: _Optional[str] = ..., expires_on: _Optional[str] = ..., decided_at: _Optional[str] = ..., reason: _Optional[str] = ..., revises: _Optional[int] = ..., content_sha256: _Optional[bytes] = ...) -> None: ...

class GetPiaRequest(_message.Message):
    __slots__ = ("pia_id",)
    PIA_ID_FIELD_NUMBER: _ClassVar[int]
    pia_id: int
    def __init__(self, pia_id: _Optional[int] = ...) -> None: ...

class ListPiasRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    def __init__(self, agency_id: _Optional[int] = ...) -> None: ...

class ListPiasResponse(_message.Message):
    __slots__ = ("pias",)
    PIAS_FIELD_NUMBER: _ClassVar[int]
    pias: _containers.RepeatedCompositeFieldContainer[Pia]
    def __init__(self, pias: _Optional[_Iterable[_Union[Pia, _Mapping]]] = ...) -> None: ...

class DecidePiaRequest(_message.Message):
    __slots__ = ("pia_id", "kind", "reason", "approved_on", "expires_on")
    PIA_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVED_ON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_ON_FIELD_NUMBER: _ClassVar[int]
    pia_id: int
    kind: PiaDecisionKind
    reason: str
    approved_on: str
    expires_on: str
    def __init__(self, pia_id: _Optional[int] = ..., kind: _Optional[_Union[PiaDecisionKind, str]] = ..., reason: _Optional[str] = ..., approved_on: _Optional[str] = ..., expires_on: _Optional[str] = ...) -> None: ...

class PiaDecision(_message.Message):
    __slots__ = ("sequence", "pia_id", "agency_id", "kind", "time", "reason", "approved_on", "expires_on", "entry", "inclusion_proof")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PIA_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPROVED_ON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_ON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    pia_id: int
    agency_id: int
    kind: PiaDecisionKind
    time: str
    reason: str
    approved_on: str
    expires_on: str
    entry: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sequence: _Optional[int] = ..., pia_id: _Optional[int] = ..., agency_id: _Optional[int] = ..., kind: _Optional[_Union[PiaDecisionKind, str]] = ..., time: _Optional[str] = ..., reason: _Optional[str] = ..., approved_on: _Optional[str] = ..., expires_on: _Optional[str] = ..., entry: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListPiaDecisionsRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    def __init__(self, agency_id: _Optional[int] = ...) -> None: ...

class ListPiaDecisionsResponse(_message.Message):
    __slots__ = ("checkpoint", "vkey", "decisions")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VKEY_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    vkey: str
    decisions: _containers.RepeatedCompositeFieldContainer[PiaDecision]
    def __init__(self, checkpoint: _Optional[str] = ..., vkey: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[PiaDecision, _Mapping]]] = ...) -> None: ...
