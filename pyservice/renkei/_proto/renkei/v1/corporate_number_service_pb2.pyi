from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NameMatch(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NAME_MATCH_UNSPECIFIED: _ClassVar[NameMatch]
    NAME_MATCH_PREFIX: _ClassVar[NameMatch]
    NAME_MATCH_PARTIAL: _ClassVar[NameMatch]

class NameTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NAME_TARGET_UNSPECIFIED: _ClassVar[NameTarget]
    NAME_TARGET_FUZZY: _ClassVar[NameTarget]
    NAME_TARGET_EXACT: _ClassVar[NameTarget]
    NAME_TARGET_ENGLISH: _ClassVar[NameTarget]
NAME_MATCH_UNSPECIFIED: NameMatch
NAME_MATCH_PREFIX: NameMatch
NAME_MATCH_PARTIAL: NameMatch
NAME_TARGET_UNSPECIFIED: NameTarget
NAME_TARGET_FUZZY: NameTarget
NAME_TARGET_EXACT: NameTarget
NAME_TARGET_ENGLISH: NameTarget

class Corporation(_message.Message):
    __slots__ = ("corporate_number", "sequence_number", "process", "correct", "latest", "update_date", "change_date", "assignment_date", "name", "kind", "furigana", "en_name", "prefecture_name", "city_name", "street_number", "prefecture_code", "city_code", "post_code", "address_outside", "close_date", "close_cause", "successor_corporate_number", "change_cause", "en_prefecture_name", "en_city_name", "en_address_outside", "hihyoji")
    CORPORATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PROCESS_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    UPDATE_DATE_FIELD_NUMBER: _ClassVar[int]
    CHANGE_DATE_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENT_DATE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    FURIGANA_FIELD_NUMBER: _ClassVar[int]
    EN_NAME_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_NAME_FIELD_NUMBER: _ClassVar[int]
    CITY_NAME_FIELD_NUMBER: _ClassVar[int]
    STREET_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_CODE_FIELD_NUMBER: _ClassVar[int]
    CITY_CODE_FIELD_NUMBER: _ClassVar[int]
    POST_CODE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    CLOSE_DATE_FIELD_NUMBER: _ClassVar[int]
    CLOSE_CAUSE_FIELD_NUMBER: _ClassVar[int]
    SUCCESSOR_CORPORATE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CHANGE_CAUSE_FIELD_NUMBER: _ClassVar[int]
    EN_PREFECTURE_NAME_FIELD_NUMBER: _ClassVar[int]
    EN_CITY_NAME_FIELD_NUMBER: _ClassVar[int]
    EN_ADDRESS_OUTSIDE_FIELD_NUMBER: _ClassVar[int]
    HIHYOJI_FIELD_NUMBER: _ClassVar[int]
    corporate_number: str
    sequence_number: int
    process: str
    correct: int
    latest: bool
    update_date: str
    change_date: str
    assignment_date: str
    name: str
    kind: str
    furigana: str
    en_name: str
    prefecture_name: str
    city_name: str
    street_number: str
    prefecture_code: str
    city_code: str
    post_code: str
    address_outside: str
    close_date: str
    close_cause: str
    successor_corporate_number: str
    change_cause: str
    en_prefecture_name: str
    en_city_name: str
    en_address_outside: str
    hihyoji: bool
    def __init__(self, corporate_number: _Optional[str] = ..., sequence_number: _Optional[int] = ..., process: _Optional[str] = ..., correct: _Optional[int] = ..., latest: _Optional[bool] = ..., update_date: _Optional[str] = ..., change_date: _Optional[str] = ..., assignment_date: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., furigana: _Optional[str] = ..., en_name: _Optional[str] = ..., prefecture_name: _Optional[str] = ..., city_name: _Optional[str] = ..., street_number: _Optional[str] = ..., prefecture_code: _Optional[str] = ..., city_code: _Optional[str] = ..., post_code: _Optional[str] = ..., address_outside: _Optional[str] = ..., close_date: _Optional[str] = ..., close_cause: _Optional[str] = ..., successor_corporate_number: _Optional[str] = ..., change_cause: _Optional[str] = ..., en_prefecture_name: _Optional[str] = ..., en_city_name: _Optional[str] = ..., en_address_outside: _Optional[str] = ..., hihyoji: _Optional[bool] = ...) -> None: ...

class BatchGetCorporationsRequest(_message.Message):
    __slots__ = ("corporate_numbers", "include_history")
    CORPORATE_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_HISTORY_FIELD_NUMBER: _ClassVar[int]
    corporate_numbers: _containers.RepeatedScalarFieldContainer[str]
    include_history: bool
    def __init__(self, corporate_numbers: _Optional[_Iterable[str]] = ..., include_history: _Optional[bool] = ...) -> None: ...

class BatchGetCorporationsResponse(_message.Message):
    __slots__ = ("corporations",)
    CORPORATIONS_FIELD_NUMBER: _ClassVar[int]
    corporations: _containers.RepeatedCompositeFieldContainer[Corporation]
    def __init__(self, corporations: _Optional[_Iterable[_Union[Corporation, _Mapping]]] = ...) -> None: ...

class SearchCorporationsRequest(_message.Message):
    __slots__ = ("name", "match", "target", "prefecture_code", "kinds", "exclude_closed", "include_former_names", "page")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_CODE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_CLOSED_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_FORMER_NAMES_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    match: NameMatch
    target: NameTarget
    prefecture_code: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    exclude_closed: bool
    include_former_names: bool
    page: int
    def __init__(self, name: _Optional[str] = ..., match: _Optional[_Union[NameMatch, str]] = ..., target: _Optional[_Union[NameTarget, str]] = ..., prefecture_code: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., exclude_closed: _Optional[bool] = ..., include_former_names: _Optional[bool] = ..., page: _Optional[int] = ...) -> None: ...

class ListCorporationChangesRequest(_message.Message):
    __slots__ = ("from_date", "to_date", "prefecture_code", "kinds", "page")
    FROM_DATE_FIELD_NUMBER: _ClassVar[int]
    TO_DATE_FIELD_NUMBER: _ClassVar[int]
    PREFECTURE_CODE_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    from_date: str
    to_date: str
    prefecture_code: str
    kinds: _containers.RepeatedScalarFieldContainer[str]
    page: int
    def __init__(self, from_date: _Optional[str] = ..., to_date: _Optional[str] = ..., prefecture_code: _Optional[str] = ..., kinds: _Optional[_Iterable[str]] = ..., page: _Optional[int] = ...) -> None: ...

class CorporationPage(_message.Message):
    __slots__ = ("total_count", "page", "page_count", "last_update_date", "corporations")
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PAGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_DATE_FIELD_NUMBER: _ClassVar[int]
    CORPORATIONS_FIELD_NUMBER: _ClassVar[int]
    total_count: int
    page: int
    page_count: int
    last_update_date: str
    corporations: _containers.RepeatedCompositeFieldContainer[Corporation]
    def __init__(self, total_count: _Optional[int] = ..., page: _Optional[int] = ..., page_count: _Optional[int] = ..., last_update_date: _Optional[str] = ..., corporations: _Optional[_Iterable[_Union[Corporation, _Mapping]]] = ...) -> None: ...
