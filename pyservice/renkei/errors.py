"""The exceptions of renkei.

Every error renkei raises is a :class:`RenkeiError`. Each class carries a ``reason``: the
upper-case token that the gRPC layer puts into ``google.rpc.ErrorInfo`` and that the one
status-code mapping (``renkei.service.errors``) keys on. The Rust engine maps its single error
enum onto these classes in one place (``core_rs/src/py/errors.rs``).

Messages never contain a My Number or a resident code.
"""

from __future__ import annotations


class RenkeiError(Exception):
    """Base class of every renkei error."""

    reason: str = "INTERNAL"


class InvalidArgumentError(RenkeiError, ValueError):
    """An argument is malformed: wrong type, wrong dtype, wrong shape, out of range."""

    reason = "INVALID_ARGUMENT"


class InvalidNumberError(InvalidArgumentError):
    """A 個人番号, 法人番号 or 住民票コード that is malformed or has a wrong check digit.

    ``kind`` is ``"individual"``, ``"corporate"`` or ``"resident_code"``; ``problem`` is one of
    ``"empty"``, ``"wrong_length"``, ``"not_a_digit"``, ``"wrong_check_digit"``,
    ``"out_of_range"``; ``index`` is the position in a batch, when the input was one.
    """

    reason = "INVALID_NUMBER"

    def __init__(
        self, message: str, kind: str | None = None, problem: str | None = None, index: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.problem = problem
        self.index = index


class NotFoundError(RenkeiError, LookupError):
    """The thing asked for does not exist (or is not visible to the caller)."""

    reason = "NOT_FOUND"


class AlreadyExistsError(RenkeiError):
    """The thing to create exists already."""

    reason = "ALREADY_EXISTS"


class FailedPreconditionError(RenkeiError):
    """The system is not in a state that allows the operation (e.g. no approved PIA)."""

    reason = "FAILED_PRECONDITION"


class PermissionDeniedError(RenkeiError):
    """The caller is known but not allowed to do this (wrong role, foreign code, row not in the table).

    For an agency code (機関別符号) that is refused, the message and class are the same whatever
    the cause (forged, corrupted, another agency's, retired key epoch, not held), so that a
    refusal reveals nothing about the person.
    """

    reason = "PERMISSION_DENIED"


class CodeRefusedError(PermissionDeniedError):
    """An agency code (機関別符号) was refused: forged, corrupted, another agency's, of a retired
    key epoch, released, or not held by one of the two agencies — deliberately indistinguishable."""

    reason = "CODE_REFUSED"


class RowNotPermittedError(PermissionDeniedError):
    """No row of the permission table in force (番号法 別表第二 or an ordinance) permits the
    inquiry; the denial is recorded in the ledger."""

    reason = "ROW_NOT_PERMITTED"


class ProviderNotHoldingError(PermissionDeniedError):
    """The provider named in an inquiry holds no record of the person; recorded as denied."""

    reason = "PROVIDER_NOT_HOLDING"


class NotEntitledError(PermissionDeniedError):
    """J-LIS holds no live entitlement of this agency for the item and purpose asked (個人番号等照会,
    a municipality's card desk); the refusal is recorded in J-LIS's query log."""

    reason = "NOT_ENTITLED"


class UnauthenticatedError(RenkeiError):
    """The caller could not be identified (no client certificate, unknown or replaced certificate)."""

    reason = "UNAUTHENTICATED"


class ResourceExhaustedError(RenkeiError):
    """A request exceeds a documented limit (batch size) or the server is at capacity."""

    reason = "RESOURCE_EXHAUSTED"


class RequestTooLargeError(ResourceExhaustedError):
    """The request's bytes exceed what its method accepts; refused before it is parsed."""

    reason = "REQUEST_TOO_LARGE"


class TooManyCallsError(ResourceExhaustedError):
    """The caller (a certificate's principal, or an address on the public port) has as many
    calls in progress on this port as it may; retry when one finishes."""

    reason = "TOO_MANY_CALLS"


class RateLimitedError(ResourceExhaustedError):
    """The caller's budget (an agency's inquiry items or denial records) does not cover the
    request now; it refills over time (see docs/arch/limits.md)."""

    reason = "RATE_LIMITED"


class QueryTooCostlyError(ResourceExhaustedError):
    """A look-up that would run longer than the service allows one query; narrow it."""

    reason = "QUERY_TOO_COSTLY"


class RequestTimeoutError(RenkeiError):
    """The request's body did not arrive within the time the port allows after the call began
    (a caller that opens calls and never sends them must not hold the server's capacity)."""

    reason = "REQUEST_TIMEOUT"


class ProviderUnavailableError(FailedPreconditionError):
    """The provider named in an inquiry cannot be asked now (unknown, not active, or without
    an approved PIA). The requester learns no more than that; the inquiry is recorded."""

    reason = "PROVIDER_UNAVAILABLE"


class RequestIdReusedError(AlreadyExistsError):
    """The request id was used for a different inquiry within the retry window: a retry must
    repeat the identical request. The attempt is recorded as denied."""

    reason = "REQUEST_ID_REUSED"


class PiaNotApprovedError(FailedPreconditionError):
    """The agency has no approved, unexpired 特定個人情報保護評価 (PIA) on file (番号法 第28条)."""

    reason = "PIA_NOT_APPROVED"


class AmbiguousMatchError(FailedPreconditionError):
    """A 4情報 search matched more than one living person: narrow it (give the 住所)."""

    reason = "AMBIGUOUS_MATCH"


class KeyFileError(RenkeiError):
    """A key file is missing, unreadable, of the wrong size or with unsafe permissions."""

    reason = "BAD_KEY"


class NotInitializedError(FailedPreconditionError):
    """A data directory that does not exist, was not initialised, or belongs to another service."""

    reason = "NOT_INITIALIZED"


class UnimplementedError(RenkeiError):
    """A method this service does not offer in its current mode (e.g. test-only without --demo)."""

    reason = "UNIMPLEMENTED"


class UnavailableError(RenkeiError):
    """Another service this call needs (J-LIS, the core) cannot be reached; retry later."""

    reason = "UNAVAILABLE"


class StoreUnavailableError(UnavailableError):
    """The core's PostgreSQL store cannot be reached (or its connection broke during a
    transaction, whose outcome is then unknown); retry: the next call reconnects, also to a
    promoted standby (docs/arch/store.md)."""

    reason = "STORE_UNAVAILABLE"


class ProviderOfflineError(UnavailableError):
    """The provider agency's intermediate server is not attending the core (or has too many
    calls waiting): the provision was recorded with the outcome "provider unavailable"; retry
    later."""

    reason = "PROVIDER_OFFLINE"


class DeadlineExceededError(RenkeiError):
    """Something this call waited for did not answer in time."""

    reason = "DEADLINE_EXCEEDED"


class ProviderTimedOutError(DeadlineExceededError):
    """The provider's intermediate server did not answer in time (recorded as "timed out")."""

    reason = "PROVIDER_TIMED_OUT"


class ProviderRefusedError(PermissionDeniedError):
    """The provider's intermediate server refused to answer (e.g. it did not honour the permit);
    the provider's reason token is in the message and recorded."""

    reason = "PROVIDER_REFUSED"


class ProvisionTamperedError(RenkeiError):
    """A sealed provision that does not open or whose signature does not verify: changed on the
    way, or not from the agency it names."""

    reason = "PROVISION_TAMPERED"


class StorageError(RenkeiError):
    """A data-directory file is damaged or truncated."""

    reason = "STORAGE"


class InvalidRecordError(InvalidArgumentError):
    """A provision record (情報提供等記録) that does not follow the record layout."""

    reason = "INVALID_RECORD"


class ProofError(RenkeiError):
    """An inclusion or consistency proof that does not verify."""

    reason = "PROOF_INVALID"


class NoteError(RenkeiError):
    """A signed note, verifier key or checkpoint that is malformed or not validly signed."""

    reason = "NOTE_INVALID"


class LedgerDamageError(StorageError):
    """``verify`` found a ledger file that does not match the signed tree.

    ``path`` is the damaged file relative to the ledger directory; ``record`` the sequence
    number of the damaged record when a record is to blame, else ``None``.
    """

    reason = "LEDGER_DAMAGED"

    def __init__(self, message: str, path: str | None = None, record: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.record = record


class PermitError(RenkeiError):
    """A provision permit (提供許可) that a provider must not honour. The subclass says why;
    ``defect`` is the same as a short token."""

    reason = "PERMIT_INVALID"
    defect = "invalid"


class PermitMalformedError(PermitError):
    """Not a v4.public permit of renkei (bad header, encoding, footer or claims)."""

    reason = "PERMIT_MALFORMED"
    defect = "malformed"


class PermitWrongKeyError(PermitError):
    """Signed with a key other than the verifier's (the footer's key id differs)."""

    reason = "PERMIT_WRONG_KEY"
    defect = "wrong_key"


class PermitTamperedError(PermitError):
    """The key id matches but the signature does not: altered after signing."""

    reason = "PERMIT_TAMPERED"
    defect = "tampered"


class PermitExpiredError(PermitError):
    """Past its expiry time."""

    reason = "PERMIT_EXPIRED"
    defect = "expired"


class PermitReplayedError(PermitError):
    """Already honoured once (the provider's permit-id cache remembers it until expiry)."""

    reason = "PERMIT_REPLAYED"
    defect = "replayed"


class PermitNotInBatchError(PermitError):
    """The item and its proof do not belong to the batch permit's Merkle root."""

    reason = "PERMIT_NOT_IN_BATCH"
    defect = "not_in_batch"


class UnknownLogError(NotFoundError):
    """A witness was sent a checkpoint of an origin (log) it is not configured to trust."""

    reason = "UNKNOWN_LOG"


class UntrustedCheckpointError(PermissionDeniedError):
    """A checkpoint carries no valid signature of a key the witness trusts for its origin, or a
    trusted key's signature on it fails (C2SP tlog-witness: 403)."""

    reason = "CHECKPOINT_UNTRUSTED"


class CheckpointConflictError(RenkeiError):
    """The ``old`` size of a witness request is not the size the witness last cosigned for the
    log (C2SP tlog-witness: 409). ``size`` is the witness's size."""

    reason = "CHECKPOINT_CONFLICT"

    def __init__(self, message: str, size: int = 0) -> None:
        super().__init__(message)
        self.size = size


class InconsistentCheckpointError(ProofError):
    """A checkpoint that is not consistent with what the witness cosigned before: a consistency
    proof that does not verify, or the same size with another root (a split view; C2SP
    tlog-witness: 422)."""

    reason = "CHECKPOINT_INCONSISTENT"


class WrongPinError(UnauthenticatedError):
    """A card PIN (暗証番号) that does not match; the card's counter counted it. ``remaining`` is
    the number of tries left before the key locks (0: it is locked now)."""

    reason = "WRONG_PIN"

    def __init__(self, message: str, remaining: int | None = None) -> None:
        super().__init__(message)
        self.remaining = remaining


class PinLockedError(FailedPreconditionError):
    """The card key is locked after too many wrong PINs (3 for 利用者証明用, 5 for 署名用): only
    the municipality's reset (``renkei card reset-pin``) unlocks it."""

    reason = "PIN_LOCKED"


class CardRejectedError(UnauthenticatedError):
    """A relying party refused a card's certificate or signature (JPKI). The subclass says why;
    ``defect`` is the same as a short token."""

    reason = "CARD_REJECTED"
    defect = "invalid"


class CardSignatureError(CardRejectedError):
    """The signature over the challenge (or data) does not verify with the certificate's key."""

    reason = "CARD_BAD_SIGNATURE"
    defect = "bad_signature"


class CardUntrustedError(CardRejectedError):
    """The certificate is malformed, not issued by the pinned JPKI CA, of the wrong kind, or
    unknown to the CA's responder."""

    reason = "CARD_UNTRUSTED"
    defect = "untrusted"


class CardExpiredError(CardRejectedError):
    """The certificate is outside its validity period (or its CA is)."""

    reason = "CARD_EXPIRED"
    defect = "expired"


class CardRevokedError(CardRejectedError):
    """The certificate is revoked or suspended (OCSP); ``revocation_reason`` names the reason
    (e.g. ``key_compromise``, ``affiliation_changed``, ``certificate_hold``)."""

    reason = "CARD_REVOKED"
    defect = "revoked"

    def __init__(self, message: str, revocation_reason: str | None = None) -> None:
        super().__init__(message)
        self.revocation_reason = revocation_reason


class RevocationUnavailableError(UnavailableError):
    """No fresh revocation status could be had: the OCSP responder did not answer usably and no
    cached good answer is within the grace period."""

    reason = "REVOCATION_UNAVAILABLE"
