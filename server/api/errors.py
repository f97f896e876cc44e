"""The one place where failures become gRPC statuses with rich details (AIP-193)."""
from __future__ import annotations

import grpc
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from server.domain import errors

ERROR_DOMAIN = "licensing.v1"

_CODES: dict[type[errors.DomainError], int] = {
    errors.BadRequest: code_pb2.INVALID_ARGUMENT,
    errors.NoCredits: code_pb2.FAILED_PRECONDITION,
    errors.Forbidden: code_pb2.PERMISSION_DENIED,
    errors.MissingScope: code_pb2.PERMISSION_DENIED,
    errors.NotFound: code_pb2.NOT_FOUND,
    errors.Unauthenticated: code_pb2.UNAUTHENTICATED,
}


def to_status(error: errors.DomainError) -> grpc.Status:
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata)
    status = status_pb2.Status(code=_CODES[type(error)], message=error.message)
    status.details.add().Pack(info)
    if isinstance(error, errors.BadRequest):
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad)
    return rpc_status.to_status(status)


def unavailable(message: str) -> grpc.Status:
    return _plain(code_pb2.UNAVAILABLE, "UNAVAILABLE", message)


def internal(request_id: str) -> grpc.Status:
    """A bug of ours: the client learns nothing of the internals, only what to quote to us."""
    return _plain(code_pb2.INTERNAL, "INTERNAL", f"internal error; request id {request_id}")


def _plain(code: int, reason: str, message: str) -> grpc.Status:
    status = status_pb2.Status(code=code, message=message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN))
    return rpc_status.to_status(status)
