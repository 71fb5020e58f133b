from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NumberKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NUMBER_KIND_UNSPECIFIED: _ClassVar[NumberKind]
    NUMBER_KIND_INDIVIDUAL: _ClassVar[NumberKind]
    NUMBER_KIND_CORPORATE: _ClassVar[NumberKind]
    NUMBER_KIND_RESIDENT_CODE: _ClassVar[NumberKind]
NUMBER_KIND_UNSPECIFIED: NumberKind
NUMBER_KIND_INDIVIDUAL: NumberKind
NUMBER_KIND_CORPORATE: NumberKind
NUMBER_KIND_RESIDENT_CODE: NumberKind

class ListNoticesRequest(_message.Message):
    __slots__ = ("state", "limit")
    STATE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    state: str
    limit: int
    def __init__(self, state: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class Notice(_message.Message):
    __slots__ = ("notice_id", "event", "created_at", "state", "rendered_at", "file")
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RENDERED_AT_FIELD_NUMBER: _ClassVar[int]
    FILE_FIELD_NUMBER: _ClassVar[int]
    notice_id: int
    event: str
    created_at: str
    state: str
    rendered_at: str
    file: str
    def __init__(self, notice_id: _Optional[int] = ..., event: _Optional[str] = ..., created_at: _Optional[str] = ..., state: _Optional[str] = ..., rendered_at: _Optional[str] = ..., file: _Optional[str] = ...) -> None: ...

class ListNoticesResponse(_message.Message):
    __slots__ = ("notices", "pending", "rendered", "waiting_for_facts")
    NOTICES_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    RENDERED_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_FACTS_FIELD_NUMBER: _ClassVar[int]
    notices: _containers.RepeatedCompositeFieldContainer[Notice]
    pending: int
    rendered: int
    waiting_for_facts: int
    def __init__(self, notices: _Optional[_Iterable[_Union[Notice, _Mapping]]] = ..., pending: _Optional[int] = ..., rendered: _Optional[int] = ..., waiting_for_facts: _Optional[int] = ...) -> None: ...

class RegisterCardKeyRequest(_message.Message):
    __slots__ = ("individual_number", "public_key")
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    public_key: bytes
    def __init__(self, individual_number: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class RelayAcquisitionsRequest(_message.Message):
    __slots__ = ("individual_numbers", "acquisition_numbers")
    INDIVIDUAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    ACQUISITION_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    individual_numbers: bytes
    acquisition_numbers: bytes
    def __init__(self, individual_numbers: _Optional[bytes] = ..., acquisition_numbers: _Optional[bytes] = ...) -> None: ...

class RelayAcquisitionsResponse(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: bytes
    def __init__(self, statuses: _Optional[bytes] = ...) -> None: ...

class RegisterCardKeyResponse(_message.Message):
    __slots__ = ("card_key_id",)
    CARD_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    card_key_id: bytes
    def __init__(self, card_key_id: _Optional[bytes] = ...) -> None: ...

class AssignNumberRequest(_message.Message):
    __slots__ = ("resident_code",)
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    resident_code: str
    def __init__(self, resident_code: _Optional[str] = ...) -> None: ...

class AssignNumberResponse(_message.Message):
    __slots__ = ("individual_number",)
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    def __init__(self, individual_number: _Optional[str] = ...) -> None: ...

class BatchAssignNumbersRequest(_message.Message):
    __slots__ = ("resident_codes",)
    RESIDENT_CODES_FIELD_NUMBER: _ClassVar[int]
    resident_codes: bytes
    def __init__(self, resident_codes: _Optional[bytes] = ...) -> None: ...

class BatchAssignNumbersResponse(_message.Message):
    __slots__ = ("individual_numbers",)
    INDIVIDUAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    individual_numbers: bytes
    def __init__(self, individual_numbers: _Optional[bytes] = ...) -> None: ...

class ChangeNumberRequest(_message.Message):
    __slots__ = ("individual_number", "change_date")
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_DATE_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    change_date: str
    def __init__(self, individual_number: _Optional[str] = ..., change_date: _Optional[str] = ...) -> None: ...

class ChangeNumberResponse(_message.Message):
    __slots__ = ("individual_number",)
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    def __init__(self, individual_number: _Optional[str] = ...) -> None: ...

class GetNumberStatusRequest(_message.Message):
    __slots__ = ("individual_number",)
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    def __init__(self, individual_number: _Optional[str] = ...) -> None: ...

class NumberStatus(_message.Message):
    __slots__ = ("individual_number", "state")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[NumberStatus.State]
        STATE_CURRENT: _ClassVar[NumberStatus.State]
        STATE_FORMER: _ClassVar[NumberStatus.State]
    STATE_UNSPECIFIED: NumberStatus.State
    STATE_CURRENT: NumberStatus.State
    STATE_FORMER: NumberStatus.State
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    state: NumberStatus.State
    def __init__(self, individual_number: _Optional[str] = ..., state: _Optional[_Union[NumberStatus.State, str]] = ...) -> None: ...

class ValidateNumbersRequest(_message.Message):
    __slots__ = ("kind", "numbers")
    KIND_FIELD_NUMBER: _ClassVar[int]
    NUMBERS_FIELD_NUMBER: _ClassVar[int]
    kind: NumberKind
    numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, kind: _Optional[_Union[NumberKind, str]] = ..., numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class ValidateNumbersResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[NumberValidity]
    def __init__(self, results: _Optional[_Iterable[_Union[NumberValidity, _Mapping]]] = ...) -> None: ...

class NumberValidity(_message.Message):
    __slots__ = ("valid", "problem")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problem: str
    def __init__(self, valid: _Optional[bool] = ..., problem: _Optional[str] = ...) -> None: ...

class RegisterTestPopulationRequest(_message.Message):
    __slots__ = ("count", "seed")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    count: int
    seed: int
    def __init__(self, count: _Optional[int] = ..., seed: _Optional[int] = ...) -> None: ...

class RegisterTestPopulationResponse(_message.Message):
    __slots__ = ("individual_numbers",)
    INDIVIDUAL_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    individual_numbers: bytes
    def __init__(self, individual_numbers: _Optional[bytes] = ...) -> None: ...
