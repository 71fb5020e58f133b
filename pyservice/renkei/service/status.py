"""The one mapping from renkei errors to gRPC status codes (with ``google.rpc.ErrorInfo``).

Every handler error goes through :func:`status_for`: a :class:`~renkei.errors.RenkeiError` maps
by its class (the nearest base in :data:`_BY_CLASS`), otherwise by its ``reason`` when that
names a status code; the ErrorInfo ``reason`` is always the error's own ``reason`` token, so a
client can tell ``INVALID_NUMBER`` from ``MALFORMED_REQUEST`` under the same
INVALID_ARGUMENT. Anything else is a bug: INTERNAL with reason ``INTERNAL`` and no detail.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from renkei import errors

DOMAIN = "renkei"

_BY_CLASS: dict[type[errors.RenkeiError], grpc.StatusCode] = {
    errors.InvalidArgumentError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.UnauthenticatedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDeniedError: grpc.StatusCode.PERMISSION_DENIED,
    errors.NotFoundError: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExistsError: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPreconditionError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhaustedError: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.StorageError: grpc.StatusCode.DATA_LOSS,
    errors.KeyFileError: grpc.StatusCode.INTERNAL,
    errors.UnavailableError: grpc.StatusCode.UNAVAILABLE,
    # A proof or signed note the caller sent that does not verify is bad input, not our bug.
    errors.ProofError: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NoteError: grpc.StatusCode.INVALID_ARGUMENT,
    # A permit a provider must not honour: the caller may not have what it asked for.
    errors.PermitError: grpc.StatusCode.PERMISSION_DENIED,
    errors.UnimplementedError: grpc.StatusCode.UNIMPLEMENTED,
    errors.DeadlineExceededError: grpc.StatusCode.DEADLINE_EXCEEDED,
    # A provision that does not open or verify: the bytes were corrupted or forged on the way.
    errors.ProvisionTamperedError: grpc.StatusCode.DATA_LOSS,
    # A witness's compare-and-set lost: the caller retries from the size it is told.
    errors.CheckpointConflictError: grpc.StatusCode.ABORTED,
    # JPKI cards: a wrong PIN or a refused certificate means the caller is not who they claim;
    # a locked key needs the municipality first; no usable revocation status is an outage.
    errors.WrongPinError: grpc.StatusCode.UNAUTHENTICATED,
    errors.PinLockedError: grpc.StatusCode.FAILED_PRECONDITION,
    errors.CardRejectedError: grpc.StatusCode.UNAUTHENTICATED,
    errors.RevocationUnavailableError: grpc.StatusCode.UNAVAILABLE,
    # 個人番号等照会: an agency without the entitlement is refused like any unauthorised call; a
    # 4情報 search that matches several persons needs more input, not a retry.
    errors.NotEntitledError: grpc.StatusCode.PERMISSION_DENIED,
    errors.AmbiguousMatchError: grpc.StatusCode.FAILED_PRECONDITION,
    # The caller's own request was too slow to arrive (not our deadline: the port's bound).
    errors.RequestTimeoutError: grpc.StatusCode.DEADLINE_EXCEEDED,
}
#: A status message never echoes more than this of any input (grpc carries it in a header,
#: and clients refuse headers beyond 8 KiB).
MAX_MESSAGE_CHARS = 1024
_BY_NAME = {c.name: c for c in grpc.StatusCode}


def code_for(exc: BaseException) -> grpc.StatusCode:
    if not isinstance(exc, errors.RenkeiError):
        return grpc.StatusCode.INTERNAL
    for cls in type(exc).__mro__:
        if cls in _BY_CLASS:
            return _BY_CLASS[cls]
    return _BY_NAME.get(exc.reason, grpc.StatusCode.INTERNAL)


def metadata_for(exc: BaseException) -> dict[str, str]:
    """ErrorInfo metadata: the structured fields of an error (never a number's value)."""
    out: dict[str, str] = {}
    for attr in ("kind", "problem", "index", "field", "component", "rule", "remaining", "revocation_reason"):
        value = getattr(exc, attr, None)
        if value is not None:
            out[attr] = bounded(str(value), 128)
    return out


def status_for(exc: BaseException) -> grpc.Status:
    code = code_for(exc)
    if isinstance(exc, errors.RenkeiError) and code is not grpc.StatusCode.INTERNAL:
        reason, message = exc.reason, bounded(str(exc) or exc.reason)
    else:
        reason, message = "INTERNAL", "internal error"
    return rich_status(code, reason, message, metadata_for(exc) if reason != "INTERNAL" else {})


def bounded(message: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``message`` cut to ``limit`` characters (saying so): no input reaches a caller unbounded."""
    if len(message) <= limit:
        return message
    return message[: limit - 30] + f"… ({len(message) - limit + 30} more characters)"


def rich_status(
    code: grpc.StatusCode, reason: str, message: str, metadata: dict[str, str] | None = None
) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {})
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message, details=[detail])
    return rpc_status.to_status(status)


def _error_classes() -> dict[str, type[errors.RenkeiError]]:
    """Every renkei error class by its reason token (the first defined wins a shared token)."""
    out: dict[str, type[errors.RenkeiError]] = {}
    todo: list[type[errors.RenkeiError]] = [errors.RenkeiError]
    while todo:
        cls = todo.pop(0)
        out.setdefault(cls.reason, cls)
        todo.extend(cls.__subclasses__())
    return out


def error_from_rpc(error: grpc.RpcError, peer: str) -> errors.RenkeiError:
    """The renkei error for a failed call to another renkei service (``peer`` names it), so that
    it reaches this service's caller with the same status and reason: a refusal the peer named
    (its ErrorInfo reason) keeps its class; a peer that could not be reached or did not answer
    in time (no reason) becomes :class:`~renkei.errors.UnavailableError`."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    detail = error.details() if hasattr(error, "details") else ""
    info = error_info(error) if hasattr(error, "trailing_metadata") else None
    cls = _error_classes().get(info.reason) if info is not None and info.domain == DOMAIN else None
    if cls is not None and code_for(cls("")) is code and code is not grpc.StatusCode.INTERNAL:
        return cls(f"{peer}: {detail}")
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
        return errors.UnavailableError(
            f"{peer} cannot be reached ({code.name.lower()}); retry later (retrying is safe)"
        )
    for by_class, status in _BY_CLASS.items():
        if status is code and by_class is not errors.KeyFileError:
            return by_class(f"{peer}: {detail}")
    return errors.RenkeiError(f"{peer} failed ({code.name})")


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo of a failed call (client side), or None."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


__all__ = [
    "DOMAIN",
    "MAX_MESSAGE_CHARS",
    "bounded",
    "code_for",
    "error_from_rpc",
    "error_info",
    "rich_status",
    "status_for",
]
