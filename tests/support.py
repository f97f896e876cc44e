"""Helpers shared by the e2e tests: accounts through the admin CLI, rich gRPC errors, timestamps,
license and validation calls, and peeking at the outbox behind the API.

Rich errors are `google.rpc.Status` messages in the `grpc-status-details-bin` trailer: an `ErrorInfo`
always, and a `BadRequest` naming each offending proto field for bad input. `unpack` (and so `fails`)
fails any test whose request gets INTERNAL or UNKNOWN.

(conftest modules are not for importing: what tests import lives here.)
"""
from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from licensing.v1 import licenses_pb2 as lpb
from licensing.v1 import licenses_pb2_grpc, validation_pb2_grpc
from licensing.v1 import validation_pb2 as vpb
from server.cli import main as licensing

Stub = licenses_pb2_grpc.LicenseServiceStub
Validation = validation_pb2_grpc.ValidationServiceStub
Metadata = list[tuple[str, str]]
NEVER_ISSUED = "ABCD-EFGH-JKLM-NPQR"  # well formed; 1 in 2^80 that it was ever issued


# Accounts, through the real admin CLI


def admin(*args: str) -> dict[str, Any]:
    """Runs `licensing admin ... --json` in-process, against the test database, and returns its JSON object."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = licensing(["admin", *args, "--json"])
    assert code == 0, f"licensing admin {' '.join(args)} failed"
    result: dict[str, Any] = json.loads(out.getvalue())
    return result


@dataclass(frozen=True)
class Account:
    account_id: str
    token: str
    app_id: str
    token_id: str

    @property
    def auth(self) -> Metadata:
        return [("authorization", f"Bearer {self.token}")]


MakeAccount = Callable[..., Account]


def new_account(credits: int = 1000) -> Account:
    """A new account with `credits` credits, one token and one app."""
    created = admin("create-account", "--name", f"acct-{uuid.uuid4().hex[:8]}", "--credits", str(credits))
    app = admin("create-app", "--account", created["account_id"], "--name", "app")
    return Account(created["account_id"], created["token"], app["app_id"], created["token_id"])


def second_app(account: Account, name: str = "other") -> str:
    """The id of a new app of the account, besides `account.app_id`."""
    return str(admin("create-app", "--account", account.account_id, "--name", name)["app_id"])


def credits_of(account_id: str) -> int:
    return int(admin("show-account", "--account", account_id)["credits"])


# Rich errors

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
    def reason(self) -> str:
        return str(self.info.reason)

    @property
    def fields(self) -> list[str]:
        return sorted(v.field for v in self.violations)


def unpack(error: grpc.RpcError) -> RichError:
    """The rich status of a failed call; fails the test on INTERNAL/UNKNOWN or a missing ErrorInfo."""
    code, message = error.code(), error.details()  # type: ignore[attr-defined]
    assert code not in SERVER_FAILURES, f"server failure {code.name}: {message}"
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # also checks it agrees with code and message
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


# Time


def timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def from_now(**delta: float) -> Timestamp:
    """A timestamp `delta` (timedelta keywords; negative for the past) away from now."""
    return timestamp(datetime.now(UTC) + timedelta(**delta))


def when(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


# Licenses


def get(stub: Stub, metadata: Metadata, key: str) -> lpb.License:
    return stub.GetLicense(lpb.GetLicenseRequest(key=key), metadata=metadata).license


def update(stub: Stub, metadata: Metadata, key: str, action: int, expires_at: Timestamp | None = None) -> lpb.License:
    request = lpb.UpdateLicenseRequest(key=key, action=action, expires_at=expires_at)  # type: ignore[arg-type]
    return stub.UpdateLicense(request, metadata=metadata).license


def delete(stub: Stub, metadata: Metadata, key: str) -> lpb.License:
    return stub.DeleteLicense(lpb.DeleteLicenseRequest(key=key), metadata=metadata).license


def issue(stub: Stub, account: Account, **fields: Any) -> lpb.License:
    """One new license of the account's app."""
    request = lpb.CreateLicensesRequest(app_id=account.app_id, **fields)
    return stub.CreateLicenses(request, metadata=account.auth).licenses[0]


def expire_now(db: psycopg.Connection, key: str) -> None:
    """Moves an unexpired license's expiry into the past (CreateLicenses only takes future expiries)."""
    db.execute("UPDATE licenses SET expires_at = now() - interval '1 minute' WHERE key = %s", (key,))


# Validation


def new_hwid() -> str:
    return uuid.uuid4().hex * 2  # 64 hex characters, like a SHA-256 fingerprint


def validate(validation: Validation, account: Account, key: str, hwid: str, *, app_id: str | None = None,
             nonce: str = "") -> vpb.ValidationResult:
    app = account.app_id if app_id is None else app_id
    request = vpb.ValidateLicenseRequest(app_id=app, key=key, hwid=hwid, nonce=nonce)
    return validation.ValidateLicense(request, metadata=account.auth).result


# The outbox


def outbox_events(db: psycopg.Connection, key: str) -> list[tuple[str, int]]:
    """(event_type, version) of every outbox row of the key, in commit order."""
    rows = db.execute("SELECT event_type, version FROM outbox WHERE license_key = %s ORDER BY id", (key,)).fetchall()
    return [(str(t), int(v)) for t, v in rows]


def outbox_rows(db: psycopg.Connection, key: str) -> int:
    row = db.execute("SELECT count(*) FROM outbox WHERE license_key = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


def rows_of_app(db: psycopg.Connection, table: str, app_id: str) -> int:
    """Rows of `licenses` or `outbox` that belong to an app."""
    assert table in ("licenses", "outbox")
    row = db.execute(f"SELECT count(*) FROM {table} WHERE app_id = %s", (app_id,)).fetchone()
    assert row is not None
    return int(row[0])
