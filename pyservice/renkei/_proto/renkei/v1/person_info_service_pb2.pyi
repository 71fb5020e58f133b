from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sex(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEX_UNSPECIFIED: _ClassVar[Sex]
    SEX_MALE: _ClassVar[Sex]
    SEX_FEMALE: _ClassVar[Sex]
    SEX_UNKNOWN: _ClassVar[Sex]

class ResidentEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIDENT_EVENT_UNSPECIFIED: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_REGISTRATION: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_BIRTH: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_MOVE_IN: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_MOVE: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_NAME_CHANGE: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_CORRECTION: _ClassVar[ResidentEvent]
    RESIDENT_EVENT_DEATH: _ClassVar[ResidentEvent]

class EntitlementItem(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITLEMENT_ITEM_UNSPECIFIED: _ClassVar[EntitlementItem]
    ENTITLEMENT_ITEM_FACTS: _ClassVar[EntitlementItem]
    ENTITLEMENT_ITEM_NUMBER: _ClassVar[EntitlementItem]
    ENTITLEMENT_ITEM_CARD: _ClassVar[EntitlementItem]
SEX_UNSPECIFIED: Sex
SEX_MALE: Sex
SEX_FEMALE: Sex
SEX_UNKNOWN: Sex
RESIDENT_EVENT_UNSPECIFIED: ResidentEvent
RESIDENT_EVENT_REGISTRATION: ResidentEvent
RESIDENT_EVENT_BIRTH: ResidentEvent
RESIDENT_EVENT_MOVE_IN: ResidentEvent
RESIDENT_EVENT_MOVE: ResidentEvent
RESIDENT_EVENT_NAME_CHANGE: ResidentEvent
RESIDENT_EVENT_CORRECTION: ResidentEvent
RESIDENT_EVENT_DEATH: ResidentEvent
ENTITLEMENT_ITEM_UNSPECIFIED: EntitlementItem
ENTITLEMENT_ITEM_FACTS: EntitlementItem
ENTITLEMENT_ITEM_NUMBER: EntitlementItem
ENTITLEMENT_ITEM_CARD: EntitlementItem

class BasicFacts(_message.Message):
    __slots__ = ("name", "birth", "sex", "address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    birth: str
    sex: Sex
    address: str
    def __init__(self, name: _Optional[str] = ..., birth: _Optional[str] = ..., sex: _Optional[_Union[Sex, str]] = ..., address: _Optional[str] = ...) -> None: ...

class ReportResidentFactsRequest(_message.Message):
    __slots__ = ("resident_code", "event", "effective_on", "facts", "municipality_code")
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_ON_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    MUNICIPALITY_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    event: ResidentEvent
    effective_on: str
    facts: BasicFacts
    municipality_code: str
    def __init__(self, resident_code: _Optional[str] = ..., event: _Optional[_Union[ResidentEvent, str]] = ..., effective_on: _Optional[str] = ..., facts: _Optional[_Union[BasicFacts, _Mapping]] = ..., municipality_code: _Optional[str] = ...) -> None: ...

class ReportResidentFactsResponse(_message.Message):
    __slots__ = ("version", "changed", "certificates_revoked")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CHANGED_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_REVOKED_FIELD_NUMBER: _ClassVar[int]
    version: int
    changed: _containers.RepeatedScalarFieldContainer[str]
    certificates_revoked: int
    def __init__(self, version: _Optional[int] = ..., changed: _Optional[_Iterable[str]] = ..., certificates_revoked: _Optional[int] = ...) -> None: ...

class QueryPersonFactsRequest(_message.Message):
    __slots__ = ("purpose", "individual_number", "resident_code")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    individual_number: str
    resident_code: str
    def __init__(self, purpose: _Optional[str] = ..., individual_number: _Optional[str] = ..., resident_code: _Optional[str] = ...) -> None: ...

class QueryPersonFactsResponse(_message.Message):
    __slots__ = ("facts", "deceased_on", "version", "record_sequence")
    FACTS_FIELD_NUMBER: _ClassVar[int]
    DECEASED_ON_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    facts: BasicFacts
    deceased_on: str
    version: int
    record_sequence: int
    def __init__(self, facts: _Optional[_Union[BasicFacts, _Mapping]] = ..., deceased_on: _Optional[str] = ..., version: _Optional[int] = ..., record_sequence: _Optional[int] = ...) -> None: ...

class FactsSearch(_message.Message):
    __slots__ = ("name", "birth", "sex", "address")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BIRTH_FIELD_NUMBER: _ClassVar[int]
    SEX_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    name: str
    birth: str
    sex: Sex
    address: str
    def __init__(self, name: _Optional[str] = ..., birth: _Optional[str] = ..., sex: _Optional[_Union[Sex, str]] = ..., address: _Optional[str] = ...) -> None: ...

class QueryIndividualNumberRequest(_message.Message):
    __slots__ = ("purpose", "resident_code", "facts")
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    purpose: str
    resident_code: str
    facts: FactsSearch
    def __init__(self, purpose: _Optional[str] = ..., resident_code: _Optional[str] = ..., facts: _Optional[_Union[FactsSearch, _Mapping]] = ...) -> None: ...

class QueryIndividualNumberResponse(_message.Message):
    __slots__ = ("individual_number", "record_sequence")
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    record_sequence: int
    def __init__(self, individual_number: _Optional[str] = ..., record_sequence: _Optional[int] = ...) -> None: ...

class Entitlement(_message.Message):
    __slots__ = ("entitlement_id", "agency_id", "item", "purpose", "legal_basis", "granted_at", "granted_by", "revoked_at", "revoked_by")
    ENTITLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    GRANTED_AT_FIELD_NUMBER: _ClassVar[int]
    GRANTED_BY_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_BY_FIELD_NUMBER: _ClassVar[int]
    entitlement_id: int
    agency_id: int
    item: EntitlementItem
    purpose: str
    legal_basis: str
    granted_at: str
    granted_by: str
    revoked_at: str
    revoked_by: str
    def __init__(self, entitlement_id: _Optional[int] = ..., agency_id: _Optional[int] = ..., item: _Optional[_Union[EntitlementItem, str]] = ..., purpose: _Optional[str] = ..., legal_basis: _Optional[str] = ..., granted_at: _Optional[str] = ..., granted_by: _Optional[str] = ..., revoked_at: _Optional[str] = ..., revoked_by: _Optional[str] = ...) -> None: ...

class GrantEntitlementRequest(_message.Message):
    __slots__ = ("agency_id", "item", "purpose", "legal_basis", "actor")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_BASIS_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    item: EntitlementItem
    purpose: str
    legal_basis: str
    actor: str
    def __init__(self, agency_id: _Optional[int] = ..., item: _Optional[_Union[EntitlementItem, str]] = ..., purpose: _Optional[str] = ..., legal_basis: _Optional[str] = ..., actor: _Optional[str] = ...) -> None: ...

class RevokeEntitlementRequest(_message.Message):
    __slots__ = ("entitlement_id", "actor")
    ENTITLEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    entitlement_id: int
    actor: str
    def __init__(self, entitlement_id: _Optional[int] = ..., actor: _Optional[str] = ...) -> None: ...

class ListEntitlementsRequest(_message.Message):
    __slots__ = ("agency_id", "live_only")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    LIVE_ONLY_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    live_only: bool
    def __init__(self, agency_id: _Optional[int] = ..., live_only: _Optional[bool] = ...) -> None: ...

class ListEntitlementsResponse(_message.Message):
    __slots__ = ("entitlements",)
    ENTITLEMENTS_FIELD_NUMBER: _ClassVar[int]
    entitlements: _containers.RepeatedCompositeFieldContainer[Entitlement]
    def __init__(self, entitlements: _Optional[_Iterable[_Union[Entitlement, _Mapping]]] = ...) -> None: ...

class ListQueryRecordsRequest(_message.Message):
    __slots__ = ("first", "count")
    FIRST_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    first: int
    count: int
    def __init__(self, first: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class QueryRecord(_message.Message):
    __slots__ = ("sequence", "time", "requester", "purpose", "items", "basis_hash", "outcome", "reason", "entry", "inclusion_proof")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    BASIS_HASH_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INCLUSION_PROOF_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: str
    requester: int
    purpose: str
    items: _containers.RepeatedScalarFieldContainer[str]
    basis_hash: bytes
    outcome: str
    reason: str
    entry: bytes
    inclusion_proof: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[str] = ..., requester: _Optional[int] = ..., purpose: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., basis_hash: _Optional[bytes] = ..., outcome: _Optional[str] = ..., reason: _Optional[str] = ..., entry: _Optional[bytes] = ..., inclusion_proof: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ListQueryRecordsResponse(_message.Message):
    __slots__ = ("checkpoint", "vkey", "records")
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    VKEY_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    checkpoint: str
    vkey: str
    records: _containers.RepeatedCompositeFieldContainer[QueryRecord]
    def __init__(self, checkpoint: _Optional[str] = ..., vkey: _Optional[str] = ..., records: _Optional[_Iterable[_Union[QueryRecord, _Mapping]]] = ...) -> None: ...
