from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CardReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_REASON_UNSPECIFIED: _ClassVar[CardReason]
    CARD_REASON_NEW: _ClassVar[CardReason]
    CARD_REASON_LOST: _ClassVar[CardReason]
    CARD_REASON_DAMAGED: _ClassVar[CardReason]
    CARD_REASON_RENEWAL: _ClassVar[CardReason]
    CARD_REASON_NUMBER_CHANGE: _ClassVar[CardReason]

class CardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_STATE_UNSPECIFIED: _ClassVar[CardState]
    CARD_STATE_ACTIVE: _ClassVar[CardState]
    CARD_STATE_SUSPENDED: _ClassVar[CardState]
    CARD_STATE_REPLACED: _ClassVar[CardState]
    CARD_STATE_EXPIRED: _ClassVar[CardState]
    CARD_STATE_VOID: _ClassVar[CardState]
CARD_REASON_UNSPECIFIED: CardReason
CARD_REASON_NEW: CardReason
CARD_REASON_LOST: CardReason
CARD_REASON_DAMAGED: CardReason
CARD_REASON_RENEWAL: CardReason
CARD_REASON_NUMBER_CHANGE: CardReason
CARD_STATE_UNSPECIFIED: CardState
CARD_STATE_ACTIVE: CardState
CARD_STATE_SUSPENDED: CardState
CARD_STATE_REPLACED: CardState
CARD_STATE_EXPIRED: CardState
CARD_STATE_VOID: CardState

class ApplyForCardRequest(_message.Message):
    __slots__ = ("individual_number", "resident_code", "reason", "face_photo", "purpose")
    INDIVIDUAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESIDENT_CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    FACE_PHOTO_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    individual_number: str
    resident_code: str
    reason: CardReason
    face_photo: str
    purpose: str
    def __init__(self, individual_number: _Optional[str] = ..., resident_code: _Optional[str] = ..., reason: _Optional[_Union[CardReason, str]] = ..., face_photo: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class CardApplication(_message.Message):
    __slots__ = ("application_id", "reason", "applied_at", "state", "card_id")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    application_id: int
    reason: CardReason
    applied_at: str
    state: str
    card_id: str
    def __init__(self, application_id: _Optional[int] = ..., reason: _Optional[_Union[CardReason, str]] = ..., applied_at: _Optional[str] = ..., state: _Optional[str] = ..., card_id: _Optional[str] = ...) -> None: ...

class IssueCardRequest(_message.Message):
    __slots__ = ("application_id", "auth_pin", "sign_pin", "kenmen_pin", "without_signing", "purpose")
    APPLICATION_ID_FIELD_NUMBER: _ClassVar[int]
    AUTH_PIN_FIELD_NUMBER: _ClassVar[int]
    SIGN_PIN_FIELD_NUMBER: _ClassVar[int]
    KENMEN_PIN_FIELD_NUMBER: _ClassVar[int]
    WITHOUT_SIGNING_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    application_id: int
    auth_pin: str
    sign_pin: str
    kenmen_pin: str
    without_signing: bool
    purpose: str
    def __init__(self, application_id: _Optional[int] = ..., auth_pin: _Optional[str] = ..., sign_pin: _Optional[str] = ..., kenmen_pin: _Optional[str] = ..., without_signing: _Optional[bool] = ..., purpose: _Optional[str] = ...) -> None: ...

class IssueCardResponse(_message.Message):
    __slots__ = ("card", "token")
    CARD_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    card: CardStatus
    token: bytes
    def __init__(self, card: _Optional[_Union[CardStatus, _Mapping]] = ..., token: _Optional[bytes] = ...) -> None: ...

class SuspendCardRequest(_message.Message):
    __slots__ = ("card_id", "purpose")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    purpose: str
    def __init__(self, card_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class ResumeCardRequest(_message.Message):
    __slots__ = ("card_id", "purpose")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    purpose: str
    def __init__(self, card_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class GetCardRequest(_message.Message):
    __slots__ = ("card_id", "purpose")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    purpose: str
    def __init__(self, card_id: _Optional[str] = ..., purpose: _Optional[str] = ...) -> None: ...

class CardCertificate(_message.Message):
    __slots__ = ("kind", "serial", "status", "reason", "not_after")
    KIND_FIELD_NUMBER: _ClassVar[int]
    SERIAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    NOT_AFTER_FIELD_NUMBER: _ClassVar[int]
    kind: str
    serial: str
    status: str
    reason: str
    not_after: str
    def __init__(self, kind: _Optional[str] = ..., serial: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., not_after: _Optional[str] = ...) -> None: ...

class CardStatus(_message.Message):
    __slots__ = ("card_id", "state", "state_reason", "issued_at", "expires_on", "certificates")
    CARD_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_REASON_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_ON_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATES_FIELD_NUMBER: _ClassVar[int]
    card_id: str
    state: CardState
    state_reason: str
    issued_at: str
    expires_on: str
    certificates: _containers.RepeatedCompositeFieldContainer[CardCertificate]
    def __init__(self, card_id: _Optional[str] = ..., state: _Optional[_Union[CardState, str]] = ..., state_reason: _Optional[str] = ..., issued_at: _Optional[str] = ..., expires_on: _Optional[str] = ..., certificates: _Optional[_Iterable[_Union[CardCertificate, _Mapping]]] = ...) -> None: ...

class ExpireCardsRequest(_message.Message):
    __slots__ = ("today",)
    TODAY_FIELD_NUMBER: _ClassVar[int]
    today: str
    def __init__(self, today: _Optional[str] = ...) -> None: ...

class ExpireCardsResponse(_message.Message):
    __slots__ = ("card_ids",)
    CARD_IDS_FIELD_NUMBER: _ClassVar[int]
    card_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, card_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetKenmenKeyRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class KenmenKey(_message.Message):
    __slots__ = ("public_key_pem",)
    PUBLIC_KEY_PEM_FIELD_NUMBER: _ClassVar[int]
    public_key_pem: bytes
    def __init__(self, public_key_pem: _Optional[bytes] = ...) -> None: ...
