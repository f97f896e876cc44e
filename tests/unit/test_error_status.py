"""server.api.errors.to_status: domain errors as gRPC statuses with rich details (AIP-193)."""
from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from server.api.errors import ERROR_DOMAIN, to_status, unavailable
from server.domain import errors
from server.domain.errors import BadRequest, FieldViolation

DETAILS_KEY = "grpc-status-details-bin"

CASES = [
    pytest.param(BadRequest.single("quantity", "too big"), grpc.StatusCode.INVALID_ARGUMENT, "BAD_REQUEST", id="bad-request"),
    pytest.param(errors.NoCredits("no credits left"), grpc.StatusCode.FAILED_PRECONDITION, "NO_CREDITS", id="no-credits"),
    pytest.param(errors.Forbidden("not your app"), grpc.StatusCode.PERMISSION_DENIED, "FORBIDDEN", id="forbidden"),
    pytest.param(errors.NotFound("no such key"), grpc.StatusCode.NOT_FOUND, "NOT_FOUND", id="not-found"),
    pytest.param(errors.Unauthenticated("bad token"), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", id="unauthenticated"),
]


def rich_status(status: grpc.Status) -> status_pb2.Status:
    """The google.rpc.Status carried in the trailing metadata."""
    values = [value for key, value in status.trailing_metadata if key == DETAILS_KEY]
    assert len(values) == 1, status.trailing_metadata
    return status_pb2.Status.FromString(values[0])


def error_info(rich: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    infos = [d for d in rich.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    return info


def bad_request(rich: status_pb2.Status) -> error_details_pb2.BadRequest | None:
    found = [d for d in rich.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR)]
    if not found:
        return None
    assert len(found) == 1
    bad = error_details_pb2.BadRequest()
    found[0].Unpack(bad)
    return bad


@pytest.mark.parametrize(("error", "code", "reason"), CASES)
def test_status_code_matches_the_error(error: errors.DomainError, code: grpc.StatusCode, reason: str) -> None:
    assert to_status(error).code is code


@pytest.mark.parametrize(("error", "code", "reason"), CASES)
def test_status_message_is_the_error_message(error: errors.DomainError, code: grpc.StatusCode, reason: str) -> None:
    status = to_status(error)
    assert status.details == error.message
    assert rich_status(status).message == error.message


@pytest.mark.parametrize(("error", "code", "reason"), CASES)
def test_rich_status_code_agrees_with_the_grpc_code(
    error: errors.DomainError, code: grpc.StatusCode, reason: str
) -> None:
    assert rich_status(to_status(error)).code == code.value[0]


@pytest.mark.parametrize(("error", "code", "reason"), CASES)
def test_error_info_reason_is_the_reference_code(error: errors.DomainError, code: grpc.StatusCode, reason: str) -> None:
    assert error_info(rich_status(to_status(error))).reason == reason


@pytest.mark.parametrize(("error", "code", "reason"), CASES)
def test_error_info_domain_is_licensing_v1(error: errors.DomainError, code: grpc.StatusCode, reason: str) -> None:
    assert ERROR_DOMAIN == "licensing.v1"
    assert error_info(rich_status(to_status(error))).domain == "licensing.v1"


def test_error_info_carries_the_error_metadata() -> None:
    status = to_status(errors.NoCredits("no credits left", needed="3", available="1"))
    assert dict(error_info(rich_status(status)).metadata) == {"needed": "3", "available": "1"}


def test_bad_request_details_list_every_field_violation_in_order() -> None:
    error = BadRequest([FieldViolation("quantity", "must be between 1 and 100, got 0"), FieldViolation("label", "too long")])
    bad = bad_request(rich_status(to_status(error)))
    assert bad is not None
    assert [(v.field, v.description) for v in bad.field_violations] == [
        ("quantity", "must be between 1 and 100, got 0"),
        ("label", "too long"),
    ]


@pytest.mark.parametrize(("error", "code", "reason"), [c for c in CASES if c.id != "bad-request"])
def test_only_bad_request_carries_field_violations(
    error: errors.DomainError, code: grpc.StatusCode, reason: str
) -> None:
    assert bad_request(rich_status(to_status(error))) is None


def test_unavailable_is_unavailable_with_its_reason() -> None:
    status = unavailable("database down")
    assert status.code is grpc.StatusCode.UNAVAILABLE
    assert error_info(rich_status(status)).reason == "UNAVAILABLE"
