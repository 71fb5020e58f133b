"""Every RenkeiError subclass maps to a gRPC status on purpose, and the Rust errors map to them."""

from __future__ import annotations

import inspect

import grpc

from renkei import errors
from renkei.service import status

#: The status each error class is meant to give a caller. A new error class must be added here
#: deliberately (the test fails until it is): INTERNAL is for bugs only.
EXPECTED = {
    "RenkeiError": grpc.StatusCode.INTERNAL,
    "InvalidArgumentError": grpc.StatusCode.INVALID_ARGUMENT,
    "InvalidNumberError": grpc.StatusCode.INVALID_ARGUMENT,
    "InvalidRecordError": grpc.StatusCode.INVALID_ARGUMENT,
    "NotFoundError": grpc.StatusCode.NOT_FOUND,
    "AlreadyExistsError": grpc.StatusCode.ALREADY_EXISTS,
    "FailedPreconditionError": grpc.StatusCode.FAILED_PRECONDITION,
    "PiaNotApprovedError": grpc.StatusCode.FAILED_PRECONDITION,
    "NotInitializedError": grpc.StatusCode.FAILED_PRECONDITION,
    "PermissionDeniedError": grpc.StatusCode.PERMISSION_DENIED,
    "CodeRefusedError": grpc.StatusCode.PERMISSION_DENIED,
    "RowNotPermittedError": grpc.StatusCode.PERMISSION_DENIED,
    "ProviderNotHoldingError": grpc.StatusCode.PERMISSION_DENIED,
    "UnauthenticatedError": grpc.StatusCode.UNAUTHENTICATED,
    "ResourceExhaustedError": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RequestTooLargeError": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "TooManyCallsError": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RateLimitedError": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "QueryTooCostlyError": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "RequestTimeoutError": grpc.StatusCode.DEADLINE_EXCEEDED,
    "ProviderUnavailableError": grpc.StatusCode.FAILED_PRECONDITION,
    "RequestIdReusedError": grpc.StatusCode.ALREADY_EXISTS,
    "UnimplementedError": grpc.StatusCode.UNIMPLEMENTED,
    "UnavailableError": grpc.StatusCode.UNAVAILABLE,
    "ProviderOfflineError": grpc.StatusCode.UNAVAILABLE,
    "StoreUnavailableError": grpc.StatusCode.UNAVAILABLE,
    "DeadlineExceededError": grpc.StatusCode.DEADLINE_EXCEEDED,
    "ProviderTimedOutError": grpc.StatusCode.DEADLINE_EXCEEDED,
    "ProviderRefusedError": grpc.StatusCode.PERMISSION_DENIED,
    "ProvisionTamperedError": grpc.StatusCode.DATA_LOSS,
    "KeyFileError": grpc.StatusCode.INTERNAL,  # a service with a bad key file must not start at all
    "StorageError": grpc.StatusCode.DATA_LOSS,
    "LedgerDamageError": grpc.StatusCode.DATA_LOSS,
    "ProofError": grpc.StatusCode.INVALID_ARGUMENT,
    "NoteError": grpc.StatusCode.INVALID_ARGUMENT,
    "PermitError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitMalformedError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitWrongKeyError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitTamperedError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitExpiredError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitReplayedError": grpc.StatusCode.PERMISSION_DENIED,
    "PermitNotInBatchError": grpc.StatusCode.PERMISSION_DENIED,
    "UnknownLogError": grpc.StatusCode.NOT_FOUND,
    "UntrustedCheckpointError": grpc.StatusCode.PERMISSION_DENIED,
    "CheckpointConflictError": grpc.StatusCode.ABORTED,
    "InconsistentCheckpointError": grpc.StatusCode.INVALID_ARGUMENT,
    "WrongPinError": grpc.StatusCode.UNAUTHENTICATED,
    "PinLockedError": grpc.StatusCode.FAILED_PRECONDITION,
    "CardRejectedError": grpc.StatusCode.UNAUTHENTICATED,
    "CardSignatureError": grpc.StatusCode.UNAUTHENTICATED,
    "CardUntrustedError": grpc.StatusCode.UNAUTHENTICATED,
    "CardExpiredError": grpc.StatusCode.UNAUTHENTICATED,
    "CardRevokedError": grpc.StatusCode.UNAUTHENTICATED,
    "RevocationUnavailableError": grpc.StatusCode.UNAVAILABLE,
    "NotEntitledError": grpc.StatusCode.PERMISSION_DENIED,
    "AmbiguousMatchError": grpc.StatusCode.FAILED_PRECONDITION,
}


def _classes() -> dict[str, type[errors.RenkeiError]]:
    return {name: cls for name, cls in inspect.getmembers(errors, inspect.isclass)
            if issubclass(cls, errors.RenkeiError)}


def test_every_error_class_has_a_deliberate_status() -> None:
    found = _classes()
    assert set(found) == set(EXPECTED), f"add new error classes to EXPECTED: {set(found) ^ set(EXPECTED)}"
    for name, cls in found.items():
        exc = cls.__new__(cls)
        Exception.__init__(exc, "x")
        assert status.code_for(exc) is EXPECTED[name], name


def test_reasons_are_distinct_tokens() -> None:
    reasons = [cls.reason for cls in _classes().values()]
    assert all(r.isupper() and " " not in r for r in reasons)
    assert len(reasons) == len(set(reasons))
