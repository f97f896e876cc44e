"""UpdateLicense's four actions, DeleteLicense, and the derived EXPIRED status, through gRPC.

Every change bumps `version` and writes one outbox row; repeating a transition already in effect
succeeds, changes nothing and writes nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from tests.support import (
    Metadata,
    Stub,
    assert_error,
    delete,
    fails,
    from_now,
    get,
    new_account,
    outbox_events,
    outbox_rows,
    timestamp,
    update,
    when,
)

REVOKE, ACTIVATE = pb.LICENSE_ACTION_REVOKE, pb.LICENSE_ACTION_ACTIVATE
EXTEND, RESET_HWID = pb.LICENSE_ACTION_EXTEND, pb.LICENSE_ACTION_RESET_HWID
ACTIVE, REVOKED, EXPIRED = pb.LICENSE_STATUS_ACTIVE, pb.LICENSE_STATUS_REVOKED, pb.LICENSE_STATUS_EXPIRED


def create(stub: Stub, metadata: Metadata, app_id: str, **fields: object) -> pb.License:
    return stub.CreateLicenses(pb.CreateLicensesRequest(app_id=app_id, **fields), metadata=metadata).licenses[0]


# Revoke and activate

def test_revoke_makes_license_revoked_at_version_2(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    revoked = update(stub, acct.auth, lic.key, REVOKE)
    assert (revoked.status, revoked.version) == (REVOKED, 2)
    assert get(stub, acct.auth, lic.key) == revoked


def test_revoke_writes_one_outbox_event(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    update(stub, acct.auth, lic.key, REVOKE)
    assert outbox_events(db, lic.key) == [("license.created", 1), ("license.revoked", 2)]


def test_revoking_a_revoked_license_is_a_no_op(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    first = update(stub, acct.auth, lic.key, REVOKE)
    again = update(stub, acct.auth, lic.key, REVOKE)
    assert again == first  # same version, same updated_at
    assert outbox_rows(db, lic.key) == 2


def test_activate_restores_a_revoked_license(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    update(stub, acct.auth, lic.key, REVOKE)
    active = update(stub, acct.auth, lic.key, ACTIVATE)
    assert (active.status, active.version) == (ACTIVE, 3)
    assert get(stub, acct.auth, lic.key) == active
    assert outbox_events(db, lic.key)[-1] == ("license.activated", 3)


def test_activating_an_active_license_is_a_no_op(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    assert update(stub, acct.auth, lic.key, ACTIVATE) == lic
    assert outbox_rows(db, lic.key) == 1


# Extend

@pytest.mark.parametrize("initial", [None, 30], ids=["lifetime", "expiring_in_30_days"])
def test_extend_sets_the_new_expiry(stub, make_account, db, initial: int | None) -> None:
    acct = make_account()
    fields = {} if initial is None else {"expires_at": from_now(days=initial)}
    lic = create(stub, acct.auth, acct.app_id, **fields)
    new_expiry = from_now(days=400)
    extended = update(stub, acct.auth, lic.key, EXTEND, new_expiry)
    assert (extended.expires_at, extended.status, extended.version) == (new_expiry, ACTIVE, 2)
    assert get(stub, acct.auth, lic.key) == extended
    assert outbox_events(db, lic.key)[-1] == ("license.extended", 2)


def test_extend_can_shorten_the_expiry(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id, expires_at=from_now(days=400))
    sooner = from_now(days=1)
    extended = update(stub, acct.auth, lic.key, EXTEND, sooner)
    assert (extended.expires_at, extended.status) == (sooner, ACTIVE)


def test_extend_to_the_same_expiry_is_a_no_op(stub, make_account, db) -> None:
    acct = make_account()
    expiry = from_now(days=30)
    lic = create(stub, acct.auth, acct.app_id, expires_at=expiry)
    assert update(stub, acct.auth, lic.key, EXTEND, expiry) == lic
    assert outbox_rows(db, lic.key) == 1


def test_extend_of_a_revoked_license_keeps_it_revoked(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    update(stub, acct.auth, lic.key, REVOKE)
    new_expiry = from_now(days=30)
    extended = update(stub, acct.auth, lic.key, EXTEND, new_expiry)
    assert (extended.expires_at, extended.status, extended.version) == (new_expiry, REVOKED, 3)


def test_expires_at_is_ignored_for_actions_other_than_extend(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    revoked = update(stub, acct.auth, lic.key, REVOKE, from_now(days=30))
    assert not revoked.HasField("expires_at")


# Reset HWID

def test_reset_hwid_without_bound_devices_is_a_no_op(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    assert update(stub, acct.auth, lic.key, RESET_HWID) == lic
    assert outbox_rows(db, lic.key) == 1


def test_reset_hwid_clears_bound_devices(stub, make_account, db) -> None:
    # No RPC of this service binds a device (validation does), so the binding is written directly.
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id, max_hwid_slots=2)
    db.execute(
        "insert into license_hwids (license_id, hwid) select id, h from licenses, unnest(%s::text[]) h where key = %s",
        (["device-a", "device-b"], lic.key),
    )
    assert [b.hwid for b in get(stub, acct.auth, lic.key).hwids] == ["device-a", "device-b"]
    reset = update(stub, acct.auth, lic.key, RESET_HWID)
    assert (list(reset.hwids), reset.version, reset.status) == ([], 2, ACTIVE)
    assert list(get(stub, acct.auth, lic.key).hwids) == []
    assert outbox_events(db, lic.key)[-1] == ("license.hwid_reset", 2)


# updated_at

def test_updated_at_advances_on_a_change(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    revoked = update(stub, acct.auth, lic.key, REVOKE)
    assert when(revoked.updated_at) > when(lic.updated_at)
    assert revoked.created_at == lic.created_at


def test_updated_at_stays_on_a_no_op(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    revoked = update(stub, acct.auth, lic.key, REVOKE)
    assert update(stub, acct.auth, lic.key, REVOKE).updated_at == revoked.updated_at


# Delete

def test_delete_returns_the_license_as_it_was(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id, label="customer 42", max_hwid_slots=3)
    revoked = update(stub, acct.auth, lic.key, REVOKE)
    assert delete(stub, acct.auth, lic.key) == revoked


def test_deleted_license_is_not_found(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    delete(stub, acct.auth, lic.key)
    assert_error(fails(lambda: get(stub, acct.auth, lic.key)), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


def test_deleting_twice_is_not_found(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    delete(stub, acct.auth, lic.key)
    assert_error(fails(lambda: delete(stub, acct.auth, lic.key)), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


@pytest.mark.parametrize("action", [REVOKE, ACTIVATE, RESET_HWID], ids=["revoke", "activate", "reset_hwid"])
def test_updating_a_deleted_license_is_not_found(stub, make_account, action: int) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    delete(stub, acct.auth, lic.key)
    assert_error(fails(lambda: update(stub, acct.auth, lic.key, action)), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


def test_delete_writes_a_deleted_event_with_the_next_version(stub, make_account, db) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)
    delete(stub, acct.auth, lic.key)
    assert outbox_events(db, lic.key) == [("license.created", 1), ("license.deleted", 2)]


def test_deleted_license_leaves_the_listing(stub, make_account) -> None:
    acct = make_account()
    kept, gone = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=acct.app_id, quantity=2), metadata=acct.auth).licenses
    delete(stub, acct.auth, gone.key)
    listed = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id), metadata=acct.auth)
    assert [lic.key for lic in listed.licenses] == [kept.key]


# EXPIRED is derived from expires_at. One sleep serves every test here: each takes its own account.

@dataclass(frozen=True)
class Expired:
    auth: Metadata
    app_id: str
    key: str


EXPIRED_CASES = ("get", "list", "revoke", "revoke_then_activate", "extend")


@pytest.fixture(scope="module")
def expired(stub) -> dict[str, Expired]:  # type: ignore[no-untyped-def]
    """One license per case, each in a fresh account, all created 2 seconds before expiry and now past it."""
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    prepared: dict[str, Expired] = {}
    for case in EXPIRED_CASES:
        acct = new_account(credits=1)
        lic = create(stub, acct.auth, acct.app_id, expires_at=timestamp(expiry))
        assert lic.status == ACTIVE
        prepared[case] = Expired(acct.auth, acct.app_id, lic.key)
    time.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.1)
    return prepared


def test_license_past_its_expiry_is_expired(stub, expired) -> None:
    case = expired["get"]
    assert get(stub, case.auth, case.key).status == EXPIRED


def test_listing_shows_an_expired_license_as_expired(stub, expired) -> None:
    case = expired["list"]
    listed = stub.ListLicenses(pb.ListLicensesRequest(app_id=case.app_id), metadata=case.auth)
    assert [lic.status for lic in listed.licenses] == [EXPIRED]


def test_revoking_an_expired_license_shows_revoked(stub, expired) -> None:
    case = expired["revoke"]
    revoked = update(stub, case.auth, case.key, REVOKE)
    assert (revoked.status, revoked.version) == (REVOKED, 2)
    assert get(stub, case.auth, case.key).status == REVOKED


def test_activating_a_revoked_expired_license_shows_expired(stub, expired) -> None:
    case = expired["revoke_then_activate"]
    update(stub, case.auth, case.key, REVOKE)
    assert update(stub, case.auth, case.key, ACTIVATE).status == EXPIRED


def test_extending_an_expired_license_makes_it_active(stub, expired) -> None:
    case = expired["extend"]
    new_expiry = from_now(days=30)
    extended = update(stub, case.auth, case.key, EXTEND, new_expiry)
    assert (extended.status, extended.expires_at, extended.version) == (ACTIVE, new_expiry, 2)
    assert get(stub, case.auth, case.key).status == ACTIVE
