from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DecisionEvidence(_message.Message):
    __slots__ = ("sequence", "entry", "inclusion_proof")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    entry: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sequence: _Optional[int] = ..., entry: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ApplyPiaDecisionsRequest(_message.Message):
    __slots__ = ("checkpoint", "decisions")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    decisions: _containers.RepeatedCompositeFieldContainer[DecisionEvidence]
    def __init__(self, checkpoint: _Optional[str] = ..., decisions: _Optional[_Iterable[_Union[DecisionEvidence, _Mapping]]] = ...) -> None: ...

class ApplyPiaDecisionsResponse(_message.Message):
    __slots__ = ("next_sequence", "applied")
    NEXT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    next_sequence: int
    applied: int
    def __init__(self, next_sequence: _Optional[int] = ..., applied: _Optional[int] = ...) -> None: ...
