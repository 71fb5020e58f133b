from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class IssueCodesRequest(_message.Message):
    __slots__ = ("acquisition_numbers", "link_ids")
    ACQUISITION_NUMBERS_FIELD_NUMBER: _ClassVar[int]
    LINK_IDS_FIELD_NUMBER: _ClassVar[int]
    acquisition_numbers: bytes
    link_ids: bytes
    def __init__(self, acquisition_numbers: _Optional[bytes] = ..., link_ids: _Optional[bytes] = ...) -> None: ...

class IssueCodesResponse(_message.Message):
    __slots__ = ("statuses",)
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    statuses: bytes
    def __init__(self, statuses: _Optional[bytes] = ...) -> None: ...

class LinkCardKeyRequest(_message.Message):
    __slots__ = ("public_key", "link_id")
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    LINK_ID_FIELD_NUMBER: _ClassVar[int]
    public_key: bytes
    link_id: bytes
    def __init__(self, public_key: _Optional[bytes] = ..., link_id: _Optional[bytes] = ...) -> None: ...

class LinkCardKeyResponse(_message.Message):
    __slots__ = ("card_key_id",)
    CARD_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    card_key_id: bytes
    def __init__(self, card_key_id: _Optional[bytes] = ...) -> None: ...
