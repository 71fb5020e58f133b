import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DuplicateStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DUPLICATE_STATUS_UNSPECIFIED: _ClassVar[DuplicateStatus]
    DUPLICATE_STATUS_UNCHANGED: _ClassVar[DuplicateStatus]
    DUPLICATE_STATUS_CODE_NOT_ACQUIRED: _ClassVar[DuplicateStatus]
    DUPLICATE_STATUS_DUPLICATE_RECORD_KEY: _ClassVar[DuplicateStatus]
    DUPLICATE_STATUS_ITEM_NOT_PROVIDED: _ClassVar[DuplicateStatus]
    DUPLICATE_STATUS_INVALID: _ClassVar[DuplicateStatus]
DUPLICATE_STATUS_UNSPECIFIED: DuplicateStatus
DUPLICATE_STATUS_UNCHANGED: DuplicateStatus
DUPLICATE_STATUS_CODE_NOT_ACQUIRED: DuplicateStatus
DUPLICATE_STATUS_DUPLICATE_RECORD_KEY: DuplicateStatus
DUPLICATE_STATUS_ITEM_NOT_PROVIDED: DuplicateStatus
DUPLICATE_STATUS_INVALID: DuplicateStatus

class Addressee(_message.Message):
    __slots__ = ("integrated_address_number", "business_ids", "individual_number")
    INTEGRATED_ADDRESS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BUSINESS_IDS_FIELD_NUMBER: _ClassVar[int]
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    integrated_address_number: str
    business_ids: _containers.RepeatedScalarFieldContainer[str]
    individual_number: str
    def __init__(self, integrated_address_number: _Optional[str] = ..., business_ids: _Optional[_Iterable[str]] = ..., individual_number: _Optional[str] = ...) -> None: ...

class RegisterAddresseesRequest(_message.Message):
    __slots__ = ("addressees",)
    ADDRESSEES_FIELD_NUMBER: _ClassVar[int]
    addressees: _containers.RepeatedCompositeFieldContainer[Addressee]
    def __init__(self, addressees: _Optional[_Iterable[_Union[Addressee, _Mapping]]] = ...) -> None: ...

class RegisterAddresseesResponse(_message.Message):
    __slots__ = ("registered",)
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    registered: int
    def __init__(self, registered: _Optional[int] = ...) -> None: ...

class MidAcquireCodesRequest(_message.Message):
    __slots__ = ("integrated_address_numbers",)
    INTEGRATED_ADDRESS_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    integrated_address_numbers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, integrated_address_numbers: _Optional[_Iterable[str]] = ...) -> None: ...

class MidAcquireCodesResponse(_message.Message):
    __slots__ = ("acquired", "no_such_number")
    ACQUIRED_FIELD_NUMBER: _ClassVar[int]
    NO_SUCH_NUMBER_FIELD_NUMBER: _ClassVar[int]
    acquired: int
    no_such_number: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, acquired: _Optional[int] = ..., no_such_number: _Optional[_Iterable[str]] = ...) -> None: ...

class DuplicateRecord(_message.Message):
    __slots__ = ("integrated_address_number", "item", "dataset", "version", "record_key", "valid_from", "valid_until", "fiscal_year", "published", "payload_json", "null_reasons")
    class NullReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INTEGRATED_ADDRESS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    NULL_REASONS_FIELD_NUMBER: _ClassVar[int]
    integrated_address_number: str
    item: str
    dataset: str
    version: int
    record_key: str
    valid_from: str
    valid_until: str
    fiscal_year: int
    published: str
    payload_json: str
    null_reasons: _containers.ScalarMap[str, str]
    def __init__(self, integrated_address_number: _Optional[str] = ..., item: _Optional[str] = ..., dataset: _Optional[str] = ..., version: _Optional[int] = ..., record_key: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_until: _Optional[str] = ..., fiscal_year: _Optional[int] = ..., published: _Optional[str] = ..., payload_json: _Optional[str] = ..., null_reasons: _Optional[_Mapping[str, str]] = ...) -> None: ...

class RegisterDuplicatesRequest(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[DuplicateRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[DuplicateRecord, _Mapping]]] = ...) -> None: ...

class RegisterDuplicatesResponse(_message.Message):
    __slots__ = ("statuses", "registered")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[DuplicateStatus]
    registered: int
    def __init__(self, statuses: _Optional[_Iterable[_Union[DuplicateStatus, str]]] = ..., registered: _Optional[int] = ...) -> None: ...

class InquiryConditions(_message.Message):
    __slots__ = ("fiscal_year", "as_of")
    FISCAL_YEAR_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    fiscal_year: int
    as_of: str
    def __init__(self, fiscal_year: _Optional[int] = ..., as_of: _Optional[str] = ...) -> None: ...

class MidInquireRequest(_message.Message):
    __slots__ = ("integrated_address_number", "affair", "provider_agency_id", "items", "conditions", "withheld_until", "delegator_agency_id", "request_id", "application_id")
    INTEGRATED_ADDRESS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DELEGATOR_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    integrated_address_number: str
    affair: str
    provider_agency_id: int
    items: _containers.RepeatedScalarFieldContainer[str]
    conditions: InquiryConditions
    withheld_until: str
    delegator_agency_id: int
    request_id: str
    application_id: int
    def __init__(self, integrated_address_number: _Optional[str] = ..., affair: _Optional[str] = ..., provider_agency_id: _Optional[int] = ..., items: _Optional[_Iterable[str]] = ..., conditions: _Optional[_Union[InquiryConditions, _Mapping]] = ..., withheld_until: _Optional[str] = ..., delegator_agency_id: _Optional[int] = ..., request_id: _Optional[str] = ..., application_id: _Optional[int] = ...) -> None: ...

class ProvidedRecord(_message.Message):
    __slots__ = ("item", "dataset", "version", "record_key", "valid_from", "valid_until", "fiscal_year", "published", "payload_json", "null_reasons")
    class NullReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    RECORD_KEY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    FISCAL_YEAR_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    NULL_REASONS_FIELD_NUMBER: _ClassVar[int]
    item: str
    dataset: str
    version: int
    record_key: str
    valid_from: str
    valid_until: str
    fiscal_year: int
    published: str
    payload_json: str
    null_reasons: _containers.ScalarMap[str, str]
    def __init__(self, item: _Optional[str] = ..., dataset: _Optional[str] = ..., version: _Optional[int] = ..., record_key: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_until: _Optional[str] = ..., fiscal_year: _Optional[int] = ..., published: _Optional[str] = ..., payload_json: _Optional[str] = ..., null_reasons: _Optional[_Mapping[str, str]] = ...) -> None: ...

class MidInquireResponse(_message.Message):
    __slots__ = ("outcome", "records", "inquiry_record_sequence", "provision_record_sequence", "provided_at")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    INQUIRY_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVISION_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVIDED_AT_FIELD_NUMBER: _ClassVar[int]
    outcome: str
    records: _containers.RepeatedCompositeFieldContainer[ProvidedRecord]
    inquiry_record_sequence: int
    provision_record_sequence: int
    provided_at: _timestamp_pb2.Timestamp
    def __init__(self, outcome: _Optional[str] = ..., records: _Optional[_Iterable[_Union[ProvidedRecord, _Mapping]]] = ..., inquiry_record_sequence: _Optional[int] = ..., provision_record_sequence: _Optional[int] = ..., provided_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class MidBatchInquireRequest(_message.Message):
    __slots__ = ("integrated_address_numbers", "affair", "provider_agency_id", "items", "conditions", "withheld_until", "delegator_agency_id", "request_id")
    INTEGRATED_ADDRESS_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    CONDITIONS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_UNTIL_FIELD_NUMBER: _ClassVar[int]
    DELEGATOR_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    integrated_address_numbers: _containers.RepeatedScalarFieldContainer[str]
    affair: str
    provider_agency_id: int
    items: _containers.RepeatedScalarFieldContainer[str]
    conditions: InquiryConditions
    withheld_until: str
    delegator_agency_id: int
    request_id: str
    def __init__(self, integrated_address_numbers: _Optional[_Iterable[str]] = ..., affair: _Optional[str] = ..., provider_agency_id: _Optional[int] = ..., items: _Optional[_Iterable[str]] = ..., conditions: _Optional[_Union[InquiryConditions, _Mapping]] = ..., withheld_until: _Optional[str] = ..., delegator_agency_id: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class PersonAnswer(_message.Message):
    __slots__ = ("integrated_address_number", "outcome", "records")
    INTEGRATED_ADDRESS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    integrated_address_number: str
    outcome: str
    records: _containers.RepeatedCompositeFieldContainer[ProvidedRecord]
    def __init__(self, integrated_address_number: _Optional[str] = ..., outcome: _Optional[str] = ..., records: _Optional[_Iterable[_Union[ProvidedRecord, _Mapping]]] = ...) -> None: ...

class MidBatchInquireResponse(_message.Message):
    __slots__ = ("answers", "first_inquiry_record_sequence", "provision_record_sequence")
    ANSWERS_FIELD_NUMBER: _ClassVar[int]
    FIRST_INQUIRY_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVISION_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    answers: _containers.RepeatedCompositeFieldContainer[PersonAnswer]
    first_inquiry_record_sequence: int
    provision_record_sequence: int
    def __init__(self, answers: _Optional[_Iterable[_Union[PersonAnswer, _Mapping]]] = ..., first_inquiry_record_sequence: _Optional[int] = ..., provision_record_sequence: _Optional[int] = ...) -> None: ...

class ListExchangesRequest(_message.Message):
    __slots__ = ("after_sequence", "page_size")
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_sequence: int
    page_size: int
    def __init__(self, after_sequence: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ExchangeRecord(_message.Message):
    __slots__ = ("sequence", "time", "role", "counterpart_agency_id", "affair", "items", "integrated_address_number", "persons", "outcome", "ledger_sequence", "permit_id", "ciphertext_sha256")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COUNTERPART_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    INTEGRATED_ADDRESS_NUMBER_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    LEDGER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PERMIT_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXT_SHA256_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    time: _timestamp_pb2.Timestamp
    role: str
    counterpart_agency_id: int
    affair: str
    items: _containers.RepeatedScalarFieldContainer[str]
    integrated_address_number: str
    persons: int
    outcome: str
    ledger_sequence: int
    permit_id: bytes
    ciphertext_sha256: bytes
    def __init__(self, sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., role: _Optional[str] = ..., counterpart_agency_id: _Optional[int] = ..., affair: _Optional[str] = ..., items: _Optional[_Iterable[str]] = ..., integrated_address_number: _Optional[str] = ..., persons: _Optional[int] = ..., outcome: _Optional[str] = ..., ledger_sequence: _Optional[int] = ..., permit_id: _Optional[bytes] = ..., ciphertext_sha256: _Optional[bytes] = ...) -> None: ...

class ListExchangesResponse(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[ExchangeRecord]
    def __init__(self, records: _Optional[_Iterable[_Union[ExchangeRecord, _Mapping]]] = ...) -> None: ...

class DeliverApplicationRequest(_message.Message):
    __slots__ = ("agency_id", "document", "signature", "certificate")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    document: bytes
    signature: bytes
    certificate: bytes
    def __init__(self, agency_id: _Optional[int] = ..., document: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., certificate: _Optional[bytes] = ...) -> None: ...

class DeliverApplicationResponse(_message.Message):
    __slots__ = ("application_id", "received_at")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    application_id: int
    received_at: _timestamp_pb2.Timestamp
    def __init__(self, application_id: _Optional[int] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetApplicationsRequest(_message.Message):
    __slots__ = ("agency_id", "application_ids")
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    APPLICATION_IDS_FIELD_NUMBER: _ClassVar[int]
    agency_id: int
    application_ids: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, agency_id: _Optional[int] = ..., application_ids: _Optional[_Iterable[int]] = ...) -> None: ...

class ApplicationExchange(_message.Message):
    __slots__ = ("inquiry_record_sequence", "provision_record_sequence", "affair", "provider_agency_id", "outcome")
    INQUIRY_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PROVISION_RECORD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AFFAIR_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    inquiry_record_sequence: int
    provision_record_sequence: int
    affair: str
    provider_agency_id: int
    outcome: str
    def __init__(self, inquiry_record_sequence: _Optional[int] = ..., provision_record_sequence: _Optional[int] = ..., affair: _Optional[str] = ..., provider_agency_id: _Optional[int] = ..., outcome: _Optional[str] = ...) -> None: ...

class Application(_message.Message):
    __slots__ = ("application_id", "agency_id", "status", "note", "received_at", "updated_at", "document", "signature", "certificate", "exchanges")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    AGENCY_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGES_FIELD_NUMBER: _ClassVar[int]
    application_id: int
    agency_id: int
    status: str
    note: str
    received_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    document: bytes
    signature: bytes
    certificate: bytes
    exchanges: _containers.RepeatedCompositeFieldContainer[ApplicationExchange]
    def __init__(self, application_id: _Optional[int] = ..., agency_id: _Optional[int] = ..., status: _Optional[str] = ..., note: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., document: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., certificate: _Optional[bytes] = ..., exchanges: _Optional[_Iterable[_Union[ApplicationExchange, _Mapping]]] = ...) -> None: ...

class GetApplicationsResponse(_message.Message):
    __slots__ = ("applications",)
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[Application]
    def __init__(self, applications: _Optional[_Iterable[_Union[Application, _Mapping]]] = ...) -> None: ...

class ListApplicationsRequest(_message.Message):
    __slots__ = ("after_id", "page_size")
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    after_id: int
    page_size: int
    def __init__(self, after_id: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListApplicationsResponse(_message.Message):
    __slots__ = ("applications",)
    APPLICATIONS_FIELD_NUMBER: _ClassVar[int]
    applications: _containers.RepeatedCompositeFieldContainer[Application]
    def __init__(self, applications: _Optional[_Iterable[_Union[Application, _Mapping]]] = ...) -> None: ...

class UpdateApplicationRequest(_message.Message):
    __slots__ = ("application_id", "status", "note")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    application_id: int
    status: str
    note: str
    def __init__(self, application_id: _Optional[int] = ..., status: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...
