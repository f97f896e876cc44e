"""One account can neither see nor touch another account's apps and licenses: PERMISSION_DENIED, FORBIDDEN.

An app that was never created looks exactly like another account's app, so app ids never leak.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from tests.support import (
    Metadata,
    RichError,
    Stub,
    assert_error,
    credits_of,
    fails,
    from_now,
    get,
    outbox_rows,
    rows_of_app,
)

Call = Callable[[Stub, str, Metadata], object]  # (stub, key or app id, metadata)


def assert_forbidden(error: RichError) -> None:
    assert_error(error, grpc.StatusCode.PERMISSION_DENIED, "FORBIDDEN")


# Calls on a license key, each as the intruder.
LICENSE_CALLS: dict[str, Call] = {
    "get": lambda stub, key, md: stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=md),
    "revoke": lambda stub, key, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE), metadata=md
    ),
    "activate": lambda stub, key, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_ACTIVATE), metadata=md
    ),
    "extend": lambda stub, key, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_EXTEND, expires_at=from_now(days=365)), metadata=md
    ),
    "reset_hwid": lambda stub, key, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_RESET_HWID), metadata=md
    ),
    "delete": lambda stub, key, md: stub.DeleteLicense(pb.DeleteLicenseRequest(key=key), metadata=md),
}


@pytest.mark.parametrize("call", LICENSE_CALLS.values(), ids=LICENSE_CALLS.keys())
def test_another_accounts_license_is_permission_denied(stub, make_account, call: Call) -> None:
    owner, intruder = make_account(), make_account()
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=owner.auth).licenses[0].key
    assert_forbidden(fails(lambda: call(stub, key, intruder.auth)))


@pytest.mark.parametrize("call", LICENSE_CALLS.values(), ids=LICENSE_CALLS.keys())
def test_another_accounts_license_is_unchanged_after_a_denied_call(
    stub, make_account, db, call: Call
) -> None:
    owner, intruder = make_account(), make_account()
    before = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=owner.auth).licenses[0]
    fails(lambda: call(stub, before.key, intruder.auth))
    assert get(stub, owner.auth, before.key) == before
    assert outbox_rows(db, before.key) == 1  # license.created only


@pytest.mark.parametrize("call", LICENSE_CALLS.values(), ids=LICENSE_CALLS.keys())
def test_another_accounts_license_in_lower_case_is_permission_denied(
    stub, make_account, call: Call
) -> None:
    owner, intruder = make_account(), make_account()
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=owner.auth).licenses[0].key
    assert_forbidden(fails(lambda: call(stub, key.lower(), intruder.auth)))


def test_create_on_another_accounts_app_is_permission_denied(stub, make_account) -> None:
    owner, intruder = make_account(), make_account()
    error = fails(lambda: stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=intruder.auth))
    assert_forbidden(error)


def test_create_on_another_accounts_app_creates_and_charges_nothing(stub, make_account, db) -> None:
    owner, intruder = make_account(credits=50), make_account(credits=50)
    request = pb.CreateLicensesRequest(app_id=owner.app_id, quantity=5)
    fails(lambda: stub.CreateLicenses(request, metadata=intruder.auth))
    assert rows_of_app(db, "licenses", owner.app_id) == 0
    assert rows_of_app(db, "outbox", owner.app_id) == 0
    assert (credits_of(owner.account_id), credits_of(intruder.account_id)) == (50, 50)


def test_list_on_another_accounts_app_is_permission_denied(stub, make_account) -> None:
    owner, intruder = make_account(), make_account()
    stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=owner.auth)
    error = fails(lambda: stub.ListLicenses(pb.ListLicensesRequest(app_id=owner.app_id), metadata=intruder.auth))
    assert_forbidden(error)


def test_owners_cursor_grants_no_access_to_another_account(stub, make_account) -> None:
    owner, intruder = make_account(), make_account()
    stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id, quantity=2), metadata=owner.auth)
    cursor = stub.ListLicenses(pb.ListLicensesRequest(app_id=owner.app_id, limit=1), metadata=owner.auth).cursor
    assert cursor
    request = pb.ListLicensesRequest(app_id=owner.app_id, limit=1, cursor=cursor)
    assert_forbidden(fails(lambda: stub.ListLicenses(request, metadata=intruder.auth)))


# Calls on an app id, each as a caller who does not own it.
APP_CALLS: dict[str, Call] = {
    "create": lambda stub, app, md: stub.CreateLicenses(pb.CreateLicensesRequest(app_id=app), metadata=md),
    "list": lambda stub, app, md: stub.ListLicenses(pb.ListLicensesRequest(app_id=app), metadata=md),
}


@pytest.mark.parametrize("call", APP_CALLS.values(), ids=APP_CALLS.keys())
def test_never_created_app_is_permission_denied(stub, make_account, call: Call) -> None:
    caller = make_account()
    assert_forbidden(fails(lambda: call(stub, str(uuid.uuid4()), caller.auth)))


@pytest.mark.parametrize("call", APP_CALLS.values(), ids=APP_CALLS.keys())
def test_never_created_app_and_foreign_app_fail_alike(stub, make_account, call: Call) -> None:
    owner, caller = make_account(), make_account()
    foreign = fails(lambda: call(stub, owner.app_id, caller.auth))
    missing = fails(lambda: call(stub, str(uuid.uuid4()), caller.auth))
    assert (foreign.code, foreign.info.reason, foreign.message) == (missing.code, missing.info.reason, missing.message)
