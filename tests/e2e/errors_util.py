"""Helpers shared by the e2e tests: unpacking rich gRPC errors, timestamps, and peeking behind the API.

Rich errors are `google.rpc.Status` messages in the `grpc-status-details-bin` trailer: an `ErrorInfo`
always, and a `BadRequest` naming each offending proto field for bad input.
"""
from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from server.cli import main as licensing

# Statuses no request may ever produce: they mean the server failed, not the caller.
SERVER_FAILURES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})


@dataclass(frozen=True)
class RichError:
    """A failed call, with the details of its `google.rpc.Status` unpacked."""

    code: grpc.StatusCode
    message: str
    info: error_details_pb2.ErrorInfo
    violations: list[error_details_pb2.BadRequest.FieldViolation]  # empty when there is no BadRequest

    @property
    def fields(self) -> list[str]:
        return sorted(v.field for v in self.violations)


def unpack(error: grpc.RpcError) -> RichError:
    """The rich status of a failed call; fails the test on INTERNAL/UNKNOWN or a missing ErrorInfo."""
    code, message = error.code(), error.details()  # type: ignore[attr-defined]
    assert code not in SERVER_FAILURES, f"server failure {code.name}: {message}"
    status = rpc_status.from_call(error)  # also checks the Status agrees with the call's code and message
    assert status is not None, f"{code.name} without google.rpc.Status details: {message}"
    infos, bad_requests = [], []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            bad_requests.append(bad)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {len(infos)}"
    assert infos[0].domain, "ErrorInfo.domain must not be empty"
    assert len(bad_requests) <= 1, "expected at most one BadRequest"
    violations = list(bad_requests[0].field_violations) if bad_requests else []
    return RichError(code, message, infos[0], violations)


def fails(call: Callable[[], object]) -> RichError:
    """Runs `call`, which must fail, and returns its unpacked error."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return unpack(caught.value)


def assert_bad_request(error: RichError, *fields: str) -> None:
    """INVALID_ARGUMENT, reason BAD_REQUEST, exactly one violation per field, each named in the message."""
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT, f"{error.code.name}: {error.message}"
    assert error.info.reason == "BAD_REQUEST"
    assert error.fields == sorted(fields), error.message
    for violation in error.violations:
        assert violation.description, f"violation of {violation.field} has no description"
    for name in fields:
        assert name in error.message, f"message does not name {name!r}: {error.message}"


def assert_error(error: RichError, code: grpc.StatusCode, reason: str) -> None:
    assert error.code is code, f"expected {code.name}, got {error.code.name}: {error.message}"
    assert error.info.reason == reason
    assert error.message, "the status message must not be empty"
    assert not error.violations, "only bad input carries a BadRequest"


def timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def from_now(**delta: float) -> Timestamp:
    """A timestamp `delta` (timedelta keywords; negative for the past) away from now."""
    return timestamp(datetime.now(UTC) + timedelta(**delta))


def admin(*args: str) -> dict:  # type: ignore[type-arg]
    """Runs `licensing admin ... --json` in-process (as conftest's `admin` does; conftest modules are not for importing)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = licensing(["admin", *args, "--json"])
    assert code == 0, f"licensing admin {' '.join(args)} failed"
    return json.loads(out.getvalue())


def credits_of(account_id: str) -> int:
    return int(admin("show-account", "--account", account_id)["credits"])


def outbox_rows(db: psycopg.Connection, key: str) -> int:
    row = db.execute("select count(*) from outbox where license_key = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


def rows_of_app(db: psycopg.Connection, table: str, app_id: str) -> int:
    """Rows of `licenses` or `outbox` that belong to an app."""
    assert table in ("licenses", "outbox")
    row = db.execute(f"select count(*) from {table} where app_id = %s", (app_id,)).fetchone()
    assert row is not None
    return int(row[0])
