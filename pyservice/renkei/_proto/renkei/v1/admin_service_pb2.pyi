import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PiaStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIA_STATUS_UNSPECIFIED: _ClassVar[PiaStatus]
    PIA_STATUS_NOT_SUBMITTED: _ClassVar[PiaStatus]
    PIA_STATUS_SUBMITTED: _ClassVar[PiaStatus]
    PIA_STATUS_APPROVED: _ClassVar[PiaStatus]
    PIA_STATUS_REVOKED: _ClassVar[PiaStatus]
PIA_STATUS_UNSPECIFIED: PiaStatus
PIA_STATUS_NOT_SUBMITTED: PiaStatus
PIA_STATUS_SUBMITTED: PiaStatus
PIA_STATUS_APPROVED: PiaStatus
PIA_STATUS_REVOKED: PiaStatus

class Agency(_message.Message):
    __slots__ = ("agency_id", "name", "type_ids", "local_government_code", "pia_status", "create_time", "status", "corporate_number")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_IDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_GOVERNMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    PIA_STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CORPORATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    name: str
    type_ids: _containers.RepeatedScalarFieldContainer[str]
    local_government_code: str
    pia_status: PiaStatus
    create_time: _timestamp_pb2.Timestamp
    status: str
    corporate_number: str
    def __init__(self, agency_id: _Optional[int] = ..., name: _Optional[str] = ..., type_ids: _Optional[_Iterable[str]] = ..., local_government_code: _Optional[str] = ..., pia_status: _Optional[_Union[PiaStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., corporate_number: _Optional[str] = ...) -> None: ...

class CreateAgencyRequest(_message.Message):
    __slots__ = ("name", "type_ids", "local_government_code", "corporate_number")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_IDS_FIELD_NUMBER: _ClassVar[int]
    LOCAL_GOVERNMENT_CODE_FIELD_NUMBER: _ClassVar[int]
    CORPORATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    type_ids: _containers.RepeatedScalarFieldContainer[str]
    local_government_code: str
    corporate_number: str
    def __init__(self, name: _Optional[str] = ..., type_ids: _Optional[_Iterable[str]] = ..., local_government_code: _Optional[str] = ..., corporate_number: _Optional[str] = ...) -> None: ...

class GetAgencyRequest(_message.Message):
    __slots__ = ("agency_id",)
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    def __init__(self, agency_id: _Optional[int] = ...) -> None: ...

class ListAgenciesRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAgenciesResponse(_message.Message):
    __slots__ = ("agencies", "next_page_token")
    AGENCIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    agencies: _containers.RepeatedCompositeFieldContainer[Agency]
    next_page_token: str
    def __init__(self, agencies: _Optional[_Iterable[_Union[Agency, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SetAgencyStatusRequest(_message.Message):
    __slots__ = ("agency_id", "status")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    status: str
    def __init__(self, agency_id: _Optional[int] = ..., status: _Optional[str] = ...) -> None: ...

class PermissionTableVersion(_message.Message):
    __slots__ = ("version_hash", "effective_from", "effective_to", "row_count", "load_time", "description", "label", "active", "in_force", "effective_from_time", "effective_to_time")
    VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TO_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    LOAD_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_TIME_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TO_TIME_FIELD_NUMBER: _ClassVar[int]
    version_hash: str
    effective_from: str
    effective_to: str
    row_count: int
    load_time: _timestamp_pb2.Timestamp
    description: str
    label: str
    active: bool
    in_force: bool
    effective_from_time: _timestamp_pb2.Timestamp
    effective_to_time: _timestamp_pb2.Timestamp
    def __init__(self, version_hash: _Optional[str] = ..., effective_from: _Optional[str] = ..., effective_to: _Optional[str] = ..., row_count: _Optional[int] = ..., load_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., description: _Optional[str] = ..., label: _Optional[str] = ..., active: _Optional[bool] = ..., in_force: _Optional[bool] = ..., effective_from_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., effective_to_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LoadPermissionTableRequest(_message.Message):
    __slots__ = ("table_json", "effective_from", "effective_to", "description", "actor", "note", "staged")
    TABLE_JSON_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_TO_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    STAGED_FIELD_NUMBER: _ClassVar[int]
    table_json: bytes
    effective_from: str
    effective_to: str
    description: str
    actor: str
    note: str
    staged: bool
    def __init__(self, table_json: _Optional[bytes] = ..., effective_from: _Optional[str] = ..., effective_to: _Optional[str] = ..., description: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ..., staged: _Optional[bool] = ...) -> None: ...

class ActivatePermissionTableRequest(_message.Message):
    __slots__ = ("label", "actor", "note")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    label: str
    actor: str
    note: str
    def __init__(self, label: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RemovePermissionTableRequest(_message.Message):
    __slots__ = ("label", "actor", "note")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    label: str
    actor: str
    note: str
    def __init__(self, label: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class RemovePermissionTableResponse(_message.Message):
    __slots__ = ("in_force",)
    IN_FORCE_FIELD_NUMBER: _ClassVar[int]
    in_force: PermissionTableVersion
    def __init__(self, in_force: _Optional[_Union[PermissionTableVersion, _Mapping]] = ...) -> None: ...

class ListPermissionTablesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPermissionTablesResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[PermissionTableVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[PermissionTableVersion, _Mapping]]] = ...) -> None: ...

class ListPermissionTableHistoryRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PermissionTableChange(_message.Message):
    __slots__ = ("sequence", "time", "action", "label", "version_hash", "actor", "note")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    action: str
    label: str
    version_hash: str
    actor: str
    note: str
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., action: _Optional[str] = ..., label: _Optional[str] = ..., version_hash: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class ListPermissionTableHistoryResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[PermissionTableChange]
    def __init__(self, changes: _Optional[_Iterable[_Union[PermissionTableChange, _Mapping]]] = ...) -> None: ...

class DiffPermissionTablesRequest(_message.Message):
    __slots__ = ("from_version_hash", "to_version_hash")
    FROM_VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    TO_VERSION_HASH_FIELD_NUMBER: _ClassVar[int]
    from_version_hash: str
    to_version_hash: str
    def __init__(self, from_version_hash: _Optional[str] = ..., to_version_hash: _Optional[str] = ...) -> None: ...

class PermissionRow(_message.Message):
    __slots__ = ("requester_type_id", "affair", "provider_type_id", "information_item")
    REQUESTER_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    INFORMATION_ITEM_FIELD_NUMBER: _ClassVar[int]
    requester_type_id: str
    affair: str
    provider_type_id: str
    information_item: str
    def __init__(self, requester_type_id: _Optional[str] = ..., affair: _Optional[str] = ..., provider_type_id: _Optional[str] = ..., information_item: _Optional[str] = ...) -> None: ...

class DiffPermissionTablesResponse(_message.Message):
    __slots__ = ("added", "removed")
    ADDED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    added: _containers.RepeatedCompositeFieldContainer[PermissionRow]
    removed: _containers.RepeatedCompositeFieldContainer[PermissionRow]
    def __init__(self, added: _Optional[_Iterable[_Union[PermissionRow, _Mapping]]] = ..., removed: _Optional[_Iterable[_Union[PermissionRow, _Mapping]]] = ...) -> None: ...

class KeyEpoch(_message.Message):
    __slots__ = ("epoch", "create_time", "retire_time", "current")
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    RETIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    create_time: _timestamp_pb2.Timestamp
    retire_time: _timestamp_pb2.Timestamp
    current: bool
    def __init__(self, epoch: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., current: _Optional[bool] = ...) -> None: ...

class ListKeyEpochsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListKeyEpochsResponse(_message.Message):
    __slots__ = ("epochs",)
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    epochs: _containers.RepeatedCompositeFieldContainer[KeyEpoch]
    def __init__(self, epochs: _Optional[_Iterable[_Union[KeyEpoch, _Mapping]]] = ...) -> None: ...

class RotateKeyEpochRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RetireKeyEpochRequest(_message.Message):
    __slots__ = ("epoch",)
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    epoch: int
    def __init__(self, epoch: _Optional[int] = ...) -> None: ...

class GetHoldingsStatisticsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HoldingsStatistics(_message.Message):
    __slots__ = ("holdings_by_agency", "persons")
    class HoldingsByAgencyEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    HOLDINGS_BY_AGENCY_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    holdings_by_agency: _containers.ScalarMap[int, int]
    persons: int
    def __init__(self, holdings_by_agency: _Optional[_Mapping[int, int]] = ..., persons: _Optional[int] = ...) -> None: ...
