"""Scoped, expiring API tokens, and the token of every change recorded with its event."""
from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import validation_pb2 as vpb
from tests.events import app_events
from tests.support import NEVER_ISSUED, Account, admin, assert_error, fails, new_hwid


def _token(account: Account, *extra: str) -> list[tuple[str, str]]:
    made = admin("create-token", "--account", account.account_id, *extra)
    return [("authorization", f"Bearer {made['token']}")]


def test_read_token_can_list_and_get_but_not_write(stub, account) -> None:
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    read = _token(account, "--scopes", "read")
    assert stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=read).license.key == key
    assert len(stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id), metadata=read).licenses) == 1
    error = fails(lambda: stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=read))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE")
    assert error.info.metadata["requiredScope"] == "write"


@pytest.mark.parametrize("call", ["update", "delete"])
def test_read_token_cannot_change_a_license(stub, account, call: str) -> None:
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    read = _token(account, "--scopes", "read")
    if call == "update":
        request = pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE)
        error = fails(lambda: stub.UpdateLicense(request, metadata=read))
    else:
        error = fails(lambda: stub.DeleteLicense(pb.DeleteLicenseRequest(key=key), metadata=read))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE")
    assert stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=account.auth).license.version == 1


def test_validate_token_can_only_validate(stub, validation, account) -> None:
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    edge = _token(account, "--scopes", "validate")
    request = vpb.ValidateLicenseRequest(app_id=account.app_id, key=key, hwid=new_hwid())
    assert validation.ValidateLicense(request, metadata=edge).result.valid
    error = fails(lambda: stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=edge))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE")
    assert error.info.metadata["requiredScope"] == "read"


def test_write_token_cannot_validate(validation, account) -> None:
    write = _token(account, "--scopes", "write")
    request = vpb.ValidateLicenseRequest(app_id=account.app_id, key=NEVER_ISSUED, hwid="h")
    error = fails(lambda: validation.ValidateLicense(request, metadata=write))
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "MISSING_SCOPE")
    assert error.info.metadata["requiredScope"] == "validate"


def test_expired_token_is_unauthenticated(stub, account) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=1.5)).isoformat()
    expiring = _token(account, "--expires-at", soon)
    assert stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id), metadata=expiring).cursor == ""
    time.sleep(1.6)
    error = fails(lambda: stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id), metadata=expiring))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_events_name_the_account_and_token_that_made_the_change(stub, account, event_stream) -> None:
    made = admin("create-token", "--account", account.account_id, "--scopes", "write")
    writer = [("authorization", f"Bearer {made['token']}")]
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=writer).licenses[0].key
    stub.UpdateLicense(pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE), metadata=account.auth)
    received = app_events(event_stream, account.app_id, 2)
    assert [(r.event.type, r.event.actor_token_id) for r in received] == [
        ("license.created", made["token_id"]),
        ("license.revoked", account.token_id),
    ]
    assert {r.event.actor_account_id for r in received} == {account.account_id}
