from renkei._proto.renkei.v1 import linkage_service_pb2 as _linkage_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProvisionCall(_message.Message):
    __slots__ = ("call_id", "permit", "requester_agency_id", "affair", "items", "provider_agency_codes", "fiscal_year", "as_of", "recipient_public_key", "permit_id")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    PERMIT_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_CODES_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    permit: _linkage_service_pb2.Permit
    requester_agency_id: int
    affair: str
    items: _containers.RepeatedScalarFieldContainer[str]
    provider_agency_codes: bytes
    fiscal_year: int
    as_of: str
    recipient_public_key: bytes
    permit_id: bytes
    def __init__(self, call_id: _Optional[int] = ..., permit: _Optional[_Union[_linkage_service_pb2.Permit, _Mapping]] = ..., requester_agency_id: _Optional[int] = ..., affair: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., provider_agency_codes: _Optional[bytes] = ..., fiscal_year: _Optional[int] = ..., as_of: _Optional[str] = ..., recipient_public_key: _Optional[bytes] = ..., permit_id: _Optional[bytes] = ...) -> None: ...

class ProviderMessage(_message.Message):
    __slots__ = ("ready", "answer", "failure")
    READY_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    ready: ProviderReady
    answer: _linkage_service_pb2.SealedProvision
    failure: ProvisionFailure
    def __init__(self, ready: _Optional[_Union[ProviderReady, _Mapping]] = ..., answer: _Optional[_Union[_linkage_service_pb2.SealedProvision, _Mapping]] = ..., failure: _Optional[_Union[ProvisionFailure, _Mapping]] = ...) -> None: ...

class ProviderReady(_message.Message):
    __slots__ = ("certificate_pem",)
    CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    certificate_pem: bytes
    def __init__(self, certificate_pem: _Optional[bytes] = ...) -> None: ...

class ProvisionFailure(_message.Message):
    __slots__ = ("call_id", "reason")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    reason: str
    def __init__(self, call_id: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
