import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetLatestCheckpointRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCheckpointRequest(_message.Message):
    __slots__ = ("tree_size",)
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    tree_size: int
    def __init__(self, tree_size: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("note", "origin", "tree_size", "root_hash", "cosignatures")
    NOTE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    ROOT_HASH_FIELD_NUMBER: _ClassVar[int]
    COSIGNATURES_FIELD_NUMBER: _ClassVar[int]
    note: bytes
    origin: str
    tree_size: int
    root_hash: bytes
    cosignatures: _containers.RepeatedCompositeFieldContainer[Cosignature]
    def __init__(self, note: _Optional[bytes] = ..., origin: _Optional[str] = ..., tree_size: _Optional[int] = ..., root_hash: _Optional[bytes] = ..., cosignatures: _Optional[_Iterable[_Union[Cosignature, _Mapping]]] = ...) -> None: ...

class Cosignature(_message.Message):
    __slots__ = ("witness", "time")
    WITNESS_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    witness: str
    time: _timestamp_pb2.Timestamp
    def __init__(self, witness: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetConsistencyProofRequest(_message.Message):
    __slots__ = ("first_size", "second_size")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ...) -> None: ...

class ConsistencyProof(_message.Message):
    __slots__ = ("first_size", "second_size", "hashes")
    FIRST_SIZE_FIELD_NUMBER: _ClassVar[int]
    SECOND_SIZE_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    first_size: int
    second_size: int
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, first_size: _Optional[int] = ..., second_size: _Optional[int] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GetInclusionProofRequest(_message.Message):
    __slots__ = ("leaf_index", "tree_size")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "leaf_hash", "hashes")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEAF_HASH_FIELD_NUMBER: _ClassVar[int]
    HASHES_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    hashes: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., leaf_hash: _Optional[bytes] = ..., hashes: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ProvisionRecord(_message.Message):
    __slots__ = ("sequence", "time", "requester_agency_id", "provider_agency_id", "affair", "information_items", "table_version_hash", "outcome", "permit_id", "person_pseudonym", "withheld", "leaf_data", "person_opening")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUESTER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    INFORMATION_ITEMS_FIELD_NUMBER: _ClassVar[int]
    TABLE_VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    PERSON_PSEUDONYM_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    LEAF_DATA_FIELD_NUMBER: _ClassVar[int]
    PERSON_OPENING_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    requester_agency_id: int
    provider_agency_id: int
    affair: str
    information_items: _containers.RepeatedScalarFieldContainer[str]
    table_version_hash: bytes
    outcome: str
    permit_id: bytes
    person_pseudonym: bytes
    withheld: bool
    leaf_data: bytes
    person_opening: bytes
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., requester_agency_id: _Optional[int] = ..., provider_agency_id: _Optional[int] = ..., affair: _Optional[str] = ..., information_items: _Optional[_Iterable[str]] = ..., table_version_hash: _Optional[bytes] = ..., outcome: _Optional[str] = ..., permit_id: _Optional[bytes] = ..., person_pseudonym: _Optional[bytes] = ..., withheld: _Optional[bool] = ..., leaf_data: _Optional[bytes] = ..., person_opening: _Optional[bytes] = ...) -> None: ...

class ListRecordsRequest(_message.Message):
    __slots__ = ("agency_id", "start_time", "end_time", "page_size", "page_token")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, agency_id: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRecordsResponse(_message.Message):
    __slots__ = ("records", "next_page_token")
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ProvisionRecord]
    next_page_token: str
    def __init__(self, records: _Optional[_Iterable[_Union[ProvisionRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetAgencyStatisticsRequest(_message.Message):
    __slots__ = ("agency_id", "start_time", "end_time")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, agency_id: _Optional[int] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AffairCount(_message.Message):
    __slots__ = ("affair", "inquiries", "denials")
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    INQUIRIES_FIELD_NUMBER: _ClassVar[int]
    DENIALS_FIELD_NUMBER: _ClassVar[int]
    affair: str
    inquiries: int
    denials: int
    def __init__(self, affair: _Optional[str] = ..., inquiries: _Optional[int] = ..., denials: _Optional[int] = ...) -> None: ...

class AgencyStatistics(_message.Message):
    __slots__ = ("agency_id", "inquiries", "denials", "provisions", "by_affair", "denials_by_reason")
    class DenialsByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    INQUIRIES_FIELD_NUMBER: _ClassVar[int]
    DENIALS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONS_FIELD_NUMBER: _ClassVar[int]
    BY_AFFAIR_FIELD_NUMBER: _ClassVar[int]
    DENIALS_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    inquiries: int
    denials: int
    provisions: int
    by_affair: _containers.RepeatedCompositeFieldContainer[AffairCount]
    denials_by_reason: _containers.ScalarMap[str, int]
    def __init__(self, agency_id: _Optional[int] = ..., inquiries: _Optional[int] = ..., denials: _Optional[int] = ..., provisions: _Optional[int] = ..., by_affair: _Optional[_Iterable[_Union[AffairCount, _Mapping]]] = ..., denials_by_reason: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListAgencyFactsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class AgencyFacts(_message.Message):
    __slots__ = ("agency_id", "name", "type_ids", "local_government_code", "status")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_IDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_GOVERNMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    name: str
    type_ids: _containers.RepeatedScalarFieldContainer[str]
    local_government_code: str
    status: str
    def __init__(self, agency_id: _Optional[int] = ..., name: _Optional[str] = ..., type_ids: _Optional[_Iterable[str]] = ..., local_government_code: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class ListAgencyFactsResponse(_message.Message):
    __slots__ = ("agencies", "next_page_token")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[AgencyFacts]
    next_page_token: str
    def __init__(self, agencies: _Optional[_Iterable[_Union[AgencyFacts, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
