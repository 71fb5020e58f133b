import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from renkei._proto.renkei.v1 import oversight_service_pb2 as _oversight_service_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Delegation(_message.Message):
    __slots__ = ("delegation_id", "label", "scopes", "valid_until", "create_time", "state", "as_agent")
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    AS_AGENT_FIELD_NUMBER: _ClassVar[int]
    delegation_id: int
    label: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    valid_until: _timestamp_pb2.Timestamp
    create_time: _timestamp_pb2.Timestamp
    state: str
    as_agent: bool
    def __init__(self, delegation_id: _Optional[int] = ..., label: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., state: _Optional[str] = ..., as_agent: _Optional[bool] = ...) -> None: ...

class CreateDelegationRequest(_message.Message):
    __slots__ = ("label", "scopes", "valid_until")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCOPES_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    label: str
    scopes: _containers.RepeatedScalarFieldContainer[str]
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, label: _Optional[str] = ..., scopes: _Optional[_Iterable[str]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateDelegationResponse(_message.Message):
    __slots__ = ("delegation", "offer_code")
    DELEGATION_FIELD_NUMBER: _ClassVar[int]
    OFFER_CODE_FIELD_NUMBER: _ClassVar[int]
    delegation: Delegation
    offer_code: str
    def __init__(self, delegation: _Optional[_Union[Delegation, _Mapping]] = ..., offer_code: _Optional[str] = ...) -> None: ...

class AcceptDelegationRequest(_message.Message):
    __slots__ = ("offer_code",)
    OFFER_CODE_FIELD_NUMBER: _ClassVar[int]
    offer_code: str
    def __init__(self, offer_code: _Optional[str] = ...) -> None: ...

class RevokeDelegationRequest(_message.Message):
    __slots__ = ("delegation_id",)
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    delegation_id: int
    def __init__(self, delegation_id: _Optional[int] = ...) -> None: ...

class ListDelegationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDelegationsResponse(_message.Message):
    __slots__ = ("as_principal", "as_agent")
    AS_PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    AS_AGENT_FIELD_NUMBER: _ClassVar[int]
    as_principal: _containers.RepeatedCompositeFieldContainer[Delegation]
    as_agent: _containers.RepeatedCompositeFieldContainer[Delegation]
    def __init__(self, as_principal: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ..., as_agent: _Optional[_Iterable[_Union[Delegation, _Mapping]]] = ...) -> None: ...

class ListOperationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Operation(_message.Message):
    __slots__ = ("time", "actor", "action", "delegation_id")
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    actor: str
    action: str
    delegation_id: int
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., action: _Optional[str] = ..., delegation_id: _Optional[int] = ...) -> None: ...

class ListOperationsResponse(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[Operation]
    def __init__(self, operations: _Optional[_Iterable[_Union[Operation, _Mapping]]] = ...) -> None: ...

class ListMyNoticesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "delegation_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    delegation_id: int
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., delegation_id: _Optional[int] = ...) -> None: ...

class PersonNotice(_message.Message):
    __slots__ = ("notice_id", "agency_id", "title", "body", "send_time")
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SEND_TIME_FIELD_NUMBER: _ClassVar[int]
    notice_id: int
    agency_id: int
    title: str
    body: str
    send_time: _timestamp_pb2.Timestamp
    def __init__(self, notice_id: _Optional[int] = ..., agency_id: _Optional[int] = ..., title: _Optional[str] = ..., body: _Optional[str] = ..., send_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListMyNoticesResponse(_message.Message):
    __slots__ = ("notices", "next_page_token")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[PersonNotice]
    next_page_token: str
    def __init__(self, notices: _Optional[_Iterable[_Union[PersonNotice, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class CreateChallengeRequest(_message.Message):
    __slots__ = ("card_key_id",)
    CARD_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    card_key_id: bytes
    def __init__(self, card_key_id: _Optional[bytes] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("challenge", "expire_time")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, challenge: _Optional[bytes] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoginRequest(_message.Message):
    __slots__ = ("card_key_id", "challenge", "signature")
    CARD_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    card_key_id: bytes
    challenge: bytes
    signature: bytes
    def __init__(self, card_key_id: _Optional[bytes] = ..., challenge: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class LoginResponse(_message.Message):
    __slots__ = ("session_token", "expire_time", "person_pseudonym")
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    PERSON_PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    expire_time: _timestamp_pb2.Timestamp
    person_pseudonym: bytes
    def __init__(self, session_token: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., person_pseudonym: _Optional[bytes] = ...) -> None: ...

class ListMyRecordsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "delegation_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DELEGATION_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    delegation_id: int
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., delegation_id: _Optional[int] = ...) -> None: ...

class DisclosedRecord(_message.Message):
    __slots__ = ("record", "inclusion_proof")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    record: _oversight_service_pb2.ProvisionRecord
    inclusion_proof: _oversight_service_pb2.InclusionProof
    def __init__(self, record: _Optional[_Union[_oversight_service_pb2.ProvisionRecord, _Mapping]] = ..., inclusion_proof: _Optional[_Union[_oversight_service_pb2.InclusionProof, _Mapping]] = ...) -> None: ...

class ListMyRecordsResponse(_message.Message):
    __slots__ = ("records", "checkpoint", "next_page_token", "person_pseudonym")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PERSON_PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[DisclosedRecord]
    checkpoint: _oversight_service_pb2.Checkpoint
    next_page_token: str
    person_pseudonym: bytes
    def __init__(self, records: _Optional[_Iterable[_Union[DisclosedRecord, _Mapping]]] = ..., checkpoint: _Optional[_Union[_oversight_service_pb2.Checkpoint, _Mapping]] = ..., next_page_token: _Optional[str] = ..., person_pseudonym: _Optional[bytes] = ...) -> None: ...

class LogoutRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LogoutResponse(_message.Message):
    __slots__ = ("ended",)
    ENDED_FIELD_NUMBER: _ClassVar[int]
    ended: bool
    def __init__(self, ended: _Optional[bool] = ...) -> None: ...
