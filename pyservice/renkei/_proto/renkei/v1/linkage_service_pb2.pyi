import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AcquisitionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACQUISITION_STATUS_UNSPECIFIED: _ClassVar[AcquisitionStatus]
    ACQUISITION_STATUS_REFUSED: _ClassVar[AcquisitionStatus]
    ACQUISITION_STATUS_NO_SUCH_NUMBER: _ClassVar[AcquisitionStatus]
    ACQUISITION_STATUS_PENDING: _ClassVar[AcquisitionStatus]

class DenialCode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DENIAL_CODE_UNSPECIFIED: _ClassVar[DenialCode]
    DENIAL_CODE_CODE_REFUSED: _ClassVar[DenialCode]
    DENIAL_CODE_ROW_NOT_PERMITTED: _ClassVar[DenialCode]
    DENIAL_CODE_PROVIDER_NOT_HOLDING: _ClassVar[DenialCode]
    DENIAL_CODE_PROVIDER_UNAVAILABLE: _ClassVar[DenialCode]
    DENIAL_CODE_REQUESTER_NOT_ELIGIBLE: _ClassVar[DenialCode]
    DENIAL_CODE_REQUEST_ID_REUSED: _ClassVar[DenialCode]
ACQUISITION_STATUS_UNSPECIFIED: AcquisitionStatus
ACQUISITION_STATUS_REFUSED: AcquisitionStatus
ACQUISITION_STATUS_NO_SUCH_NUMBER: AcquisitionStatus
ACQUISITION_STATUS_PENDING: AcquisitionStatus
DENIAL_CODE_UNSPECIFIED: DenialCode
DENIAL_CODE_CODE_REFUSED: DenialCode
DENIAL_CODE_ROW_NOT_PERMITTED: DenialCode
DENIAL_CODE_PROVIDER_NOT_HOLDING: DenialCode
DENIAL_CODE_PROVIDER_UNAVAILABLE: DenialCode
DENIAL_CODE_REQUESTER_NOT_ELIGIBLE: DenialCode
DENIAL_CODE_REQUEST_ID_REUSED: DenialCode

class IssueSessionCodeRequest(_message.Message):
    __slots__ = ("session_token",)
    SESSION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    session_token: str
    def __init__(self, session_token: _Optional[str] = ...) -> None: ...

class IssueSessionCodeResponse(_message.Message):
    __slots__ = ("agency_code",)
    AGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    agency_code: bytes
    def __init__(self, agency_code: _Optional[bytes] = ...) -> None: ...

class SetSupportMeasureRequest(_message.Message):
    __slots__ = ("agency_code", "supported")
    AGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    agency_code: bytes
    supported: bool
    def __init__(self, agency_code: _Optional[bytes] = ..., supported: _Optional[bool] = ...) -> None: ...

class SetSupportMeasureResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SendNoticeRequest(_message.Message):
    __slots__ = ("agency_code", "title", "body")
    AGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    agency_code: bytes
    title: str
    body: str
    def __init__(self, agency_code: _Optional[bytes] = ..., title: _Optional[str] = ..., body: _Optional[str] = ...) -> None: ...

class SendNoticeResponse(_message.Message):
    __slots__ = ("notice_id",)
    NOTICE_ID_FIELD_NUMBER: _ClassVar[int]
    notice_id: int
    def __init__(self, notice_id: _Optional[int] = ...) -> None: ...

class ReserveAcquisitionNumbersRequest(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ReserveAcquisitionNumbersResponse(_message.Message):
    __slots__ = ("acquisition_numbers", "expire_time")
    ACQUISITION_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    acquisition_numbers: bytes
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, acquisition_numbers: _Optional[bytes] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CollectCodesRequest(_message.Message):
    __slots__ = ("acquisition_numbers",)
    ACQUISITION_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    acquisition_numbers: bytes
    def __init__(self, acquisition_numbers: _Optional[bytes] = ...) -> None: ...

class CollectCodesResponse(_message.Message):
    __slots__ = ("agency_codes", "statuses")
    AGENCY_CODES_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    agency_codes: bytes
    statuses: bytes
    def __init__(self, agency_codes: _Optional[bytes] = ..., statuses: _Optional[bytes] = ...) -> None: ...

class ReleaseHoldingRequest(_message.Message):
    __slots__ = ("agency_code",)
    AGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    agency_code: bytes
    def __init__(self, agency_code: _Optional[bytes] = ...) -> None: ...

class ReleaseHoldingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProvisionTerms(_message.Message):
    __slots__ = ("recipient_public_key", "fiscal_year", "as_of", "withheld_until", "delegator_agency_id")
    RECIPIENT_PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DELEGATOR_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    recipient_public_key: bytes
    fiscal_year: int
    as_of: str
    withheld_until: str
    delegator_agency_id: int
    def __init__(self, recipient_public_key: _Optional[bytes] = ..., fiscal_year: _Optional[int] = ..., as_of: _Optional[str] = ..., withheld_until: _Optional[str] = ..., delegator_agency_id: _Optional[int] = ...) -> None: ...

class SealedProvision(_message.Message):
    __slots__ = ("call_id", "header", "sealed", "signature")
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SEALED_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    call_id: int
    header: bytes
    sealed: bytes
    signature: bytes
    def __init__(self, call_id: _Optional[int] = ..., header: _Optional[bytes] = ..., sealed: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class InquireRequest(_message.Message):
    __slots__ = ("agency_code", "affair", "provider_agency_id", "information_items", "request_id", "terms")
    AGENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    INFORMATION_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    agency_code: bytes
    affair: str
    provider_agency_id: int
    information_items: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    terms: ProvisionTerms
    def __init__(self, agency_code: _Optional[bytes] = ..., affair: _Optional[str] = ..., provider_agency_id: _Optional[int] = ..., information_items: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., terms: _Optional[_Union[ProvisionTerms, _Mapping]] = ...) -> None: ...

class Permit(_message.Message):
    __slots__ = ("body", "signature", "key_id")
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    body: bytes
    signature: bytes
    key_id: str
    def __init__(self, body: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., key_id: _Optional[str] = ...) -> None: ...

class InquireResponse(_message.Message):
    __slots__ = ("record_sequence", "provision", "provider_certificate_pem", "permit_id", "provision_record_sequence", "provided_at")
    RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVISION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVISION_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    record_sequence: int
    provision: SealedProvision
    provider_certificate_pem: bytes
    permit_id: bytes
    provision_record_sequence: int
    provided_at: _timestamp_pb2.Timestamp
    def __init__(self, record_sequence: _Optional[int] = ..., provision: _Optional[_Union[SealedProvision, _Mapping]] = ..., provider_certificate_pem: _Optional[bytes] = ..., permit_id: _Optional[bytes] = ..., provision_record_sequence: _Optional[int] = ..., provided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BatchInquireRequest(_message.Message):
    __slots__ = ("agency_codes", "affair", "provider_agency_id", "information_items", "request_id", "terms")
    AGENCY_CODES_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    INFORMATION_ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    agency_codes: bytes
    affair: str
    provider_agency_id: int
    information_items: _containers.RepeatedScalarFieldContainer[str]
    request_id: str
    terms: ProvisionTerms
    def __init__(self, agency_codes: _Optional[bytes] = ..., affair: _Optional[str] = ..., provider_agency_id: _Optional[int] = ..., information_items: _Optional[_Iterable[str]] = ..., request_id: _Optional[str] = ..., terms: _Optional[_Union[ProvisionTerms, _Mapping]] = ...) -> None: ...

class BatchInquireResponse(_message.Message):
    __slots__ = ("outcomes", "first_record_sequence", "provision", "provider_certificate_pem", "permit_id", "provision_record_sequence", "provided_at")
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    FIRST_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVISION_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CERTIFICATE_PEM_FIELD_NUMBER: _ClassVar[int]
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    PROVISION_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    outcomes: bytes
    first_record_sequence: int
    provision: SealedProvision
    provider_certificate_pem: bytes
    permit_id: bytes
    provision_record_sequence: int
    provided_at: _timestamp_pb2.Timestamp
    def __init__(self, outcomes: _Optional[bytes] = ..., first_record_sequence: _Optional[int] = ..., provision: _Optional[_Union[SealedProvision, _Mapping]] = ..., provider_certificate_pem: _Optional[bytes] = ..., permit_id: _Optional[bytes] = ..., provision_record_sequence: _Optional[int] = ..., provided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPublicKeysRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PublicKey(_message.Message):
    __slots__ = ("key_id", "purpose", "algorithm", "public_key", "note_verifier_key", "not_before", "not_after")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    NOTE_VERIFIER_KEY_FIELD_NUMBER: _ClassVar[int]
    NOT_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    purpose: str
    algorithm: str
    public_key: bytes
    note_verifier_key: str
    not_before: _timestamp_pb2.Timestamp
    not_after: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., purpose: _Optional[str] = ..., algorithm: _Optional[str] = ..., public_key: _Optional[bytes] = ..., note_verifier_key: _Optional[str] = ..., not_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., not_after: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetPublicKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[PublicKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[PublicKey, _Mapping]]] = ...) -> None: ...
