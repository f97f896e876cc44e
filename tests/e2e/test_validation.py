"""ValidationService through gRPC against the real server and PostgreSQL: every outcome about a license
is a result with a code; errors remain for the call itself; a new device binds to a free seat.

The database is only read, except to backdate `last_seen_at` or `expires_at` where waiting is no option.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg
import pytest

from licensing.v1 import licenses_pb2 as lpb
from licensing.v1 import validation_pb2 as vpb
from server.domain import limits
from tests.events import app_events
from tests.support import (
    NEVER_ISSUED,
    Account,
    MakeAccount,
    Metadata,
    Stub,
    Validation,
    assert_bad_request,
    expire_now,
    fails,
    from_now,
    get,
    issue,
    new_hwid,
    outbox_events,
    second_app,
    update,
    validate,
    when,
)

# Helpers


def heartbeat(validation: Validation, account: Account, key: str, hwid: str, *, app_id: str | None = None,
              nonce: str = "") -> vpb.ValidationResult:
    app = account.app_id if app_id is None else app_id
    request = vpb.HeartbeatRequest(app_id=app, key=key, hwid=hwid, nonce=nonce)
    return validation.Heartbeat(request, metadata=account.auth).result


Check = Callable[..., vpb.ValidationResult]
CHECKS: dict[str, Check] = {"validate": validate, "heartbeat": heartbeat}


def about_now(moment: datetime, slack: timedelta = timedelta(seconds=5)) -> bool:
    return abs(datetime.now(UTC) - moment) < slack


def backdate_last_seen(db: psycopg.Connection, key: str, hwid: str, by: timedelta) -> datetime:
    row = db.execute(
        "UPDATE license_hwids SET last_seen_at = last_seen_at - %s"
        " WHERE hwid = %s AND license_id = (SELECT id FROM licenses WHERE key = %s) RETURNING last_seen_at",
        (by, hwid, key),
    ).fetchone()
    assert row is not None, "no such binding"
    moment: datetime = row[0]
    return moment


# Codes


def test_new_device_on_an_active_license_is_valid(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account).key

    result = validate(validation, account, key, new_hwid())

    assert result.valid is True
    assert result.code == vpb.VALIDATION_CODE_VALID
    assert (result.seats_used, result.seats_allowed) == (1, 1)


def test_valid_result_carries_the_license_as_get_license_shows_it(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, max_hwid_slots=2, label="acme", expires_at=from_now(days=30)).key

    result = validate(validation, account, key, new_hwid())

    assert result.license == get(stub, account.auth, key)


def test_bound_device_result_carries_the_license_as_get_license_shows_it(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)

    result = validate(validation, account, key, hwid)

    assert result.code == vpb.VALIDATION_CODE_VALID
    assert result.license == get(stub, account.auth, key)


def test_key_typed_in_lower_case_is_valid(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key = issue(stub, account).key

    result = validate(validation, account, f"  {key.lower()} ", new_hwid())

    assert result.code == vpb.VALIDATION_CODE_VALID
    assert result.license.key == key


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_never_issued_key_is_not_found_without_a_license(
    validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    account = make_account()

    result = check(validation, account, NEVER_ISSUED, new_hwid())

    assert result.valid is False
    assert result.code == vpb.VALIDATION_CODE_NOT_FOUND
    assert not result.HasField("license")
    assert (result.seats_used, result.seats_allowed) == (0, 0)


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_deleted_license_is_not_found(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    stub.DeleteLicense(lpb.DeleteLicenseRequest(key=key), metadata=account.auth)

    result = check(validation, account, key, hwid)

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_NOT_FOUND)
    assert not result.HasField("license")
    assert (result.seats_used, result.seats_allowed) == (0, 0)


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_key_of_another_account_reads_exactly_like_a_never_issued_key(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    owner, other = make_account(), make_account()
    key, hwid = issue(stub, owner).key, new_hwid()

    theirs = check(validation, other, key, hwid)
    never = check(validation, other, NEVER_ISSUED, hwid)

    assert theirs.code == never.code == vpb.VALIDATION_CODE_NOT_FOUND
    assert not theirs.HasField("license")
    assert (theirs.valid, theirs.seats_used, theirs.seats_allowed) == (
        never.valid, never.seats_used, never.seats_allowed
    )


def test_key_of_another_account_binds_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    owner, other = make_account(), make_account()
    before = issue(stub, owner)

    validate(validation, other, before.key, new_hwid())

    assert get(stub, owner.auth, before.key) == before
    assert outbox_events(db, before.key) == [("license.created", 1)]


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_revoked_license_is_revoked(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    update(stub, account.auth, key, lpb.LICENSE_ACTION_REVOKE)

    result = check(validation, account, key, hwid)

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_REVOKED)
    assert result.license == get(stub, account.auth, key)
    assert result.license.status == lpb.LICENSE_STATUS_REVOKED
    assert (result.seats_used, result.seats_allowed) == (1, 1)


def test_revoked_license_binds_no_new_device(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = issue(stub, account).key
    revoked = update(stub, account.auth, key, lpb.LICENSE_ACTION_REVOKE)

    result = validate(validation, account, key, new_hwid())

    assert result.code == vpb.VALIDATION_CODE_REVOKED
    assert get(stub, account.auth, key) == revoked
    assert outbox_events(db, key) == [("license.created", 1), ("license.revoked", 2)]


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_expired_license_is_expired(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection, check: Check
) -> None:
    account = make_account()
    key, hwid = issue(stub, account, expires_at=from_now(days=1)).key, new_hwid()
    validate(validation, account, key, hwid)
    expire_now(db, key)

    result = check(validation, account, key, hwid)

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_EXPIRED)
    assert result.license == get(stub, account.auth, key)
    assert result.license.status == lpb.LICENSE_STATUS_EXPIRED


def test_expired_license_binds_no_new_device(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = issue(stub, account, expires_at=from_now(days=1)).key
    expire_now(db, key)

    result = validate(validation, account, key, new_hwid())

    assert result.code == vpb.VALIDATION_CODE_EXPIRED
    assert list(get(stub, account.auth, key).hwids) == []
    assert outbox_events(db, key) == [("license.created", 1)]


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_key_of_another_app_of_the_same_account_is_app_mismatch(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    account = make_account()
    key = issue(stub, account).key
    other_app = second_app(account)

    result = check(validation, account, key, new_hwid(), app_id=other_app)

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_APP_MISMATCH)
    assert result.license == get(stub, account.auth, key)


def test_app_mismatch_binds_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    before = issue(stub, account)

    validate(validation, account, before.key, new_hwid(), app_id=second_app(account))

    assert get(stub, account.auth, before.key) == before
    assert outbox_events(db, before.key) == [("license.created", 1)]


def test_new_device_without_a_free_seat_is_hwid_mismatch(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, max_hwid_slots=2).key
    validate(validation, account, key, new_hwid())
    validate(validation, account, key, new_hwid())

    result = validate(validation, account, key, new_hwid())

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_HWID_MISMATCH)
    assert (result.seats_used, result.seats_allowed) == (2, 2)
    assert result.license == get(stub, account.auth, key)


def test_hwid_mismatch_changes_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = issue(stub, account).key
    validate(validation, account, key, new_hwid())
    before = get(stub, account.auth, key)

    validate(validation, account, key, new_hwid())

    after = get(stub, account.auth, key)
    assert after == before
    assert after.version == 2
    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2)]


# Errors for the call itself


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_call_without_a_token_is_unauthenticated(stub: Stub, validation: Validation, make_account: MakeAccount,
                                                 check: Check) -> None:
    account = make_account()
    key = issue(stub, account).key
    request_type = vpb.ValidateLicenseRequest if check is validate else vpb.HeartbeatRequest
    method = validation.ValidateLicense if check is validate else validation.Heartbeat

    failure = fails(lambda: method(request_type(app_id=account.app_id, key=key, hwid=new_hwid())))

    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "UNAUTHENTICATED"


@pytest.mark.parametrize("metadata", [[("authorization", "Bearer not-a-token")], [("authorization", "Basic abc")]],
                         ids=["unknown-token", "not-bearer"])
def test_call_with_a_bad_token_is_unauthenticated(
    stub: Stub, validation: Validation, make_account: MakeAccount, metadata: Metadata
) -> None:
    account = make_account()
    key = issue(stub, account).key
    request = vpb.ValidateLicenseRequest(app_id=account.app_id, key=key, hwid=new_hwid())

    failure = fails(lambda: validation.ValidateLicense(request, metadata=metadata))

    assert failure.code is grpc.StatusCode.UNAUTHENTICATED
    assert failure.reason == "UNAUTHENTICATED"


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_app_of_another_account_is_permission_denied(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check
) -> None:
    owner, intruder = make_account(), make_account()
    key = issue(stub, owner).key

    failure = fails(lambda: check(validation, intruder, key, new_hwid(), app_id=owner.app_id))

    assert failure.code is grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "FORBIDDEN"
    assert failure.fields == []


def test_app_of_another_account_binds_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    owner, intruder = make_account(), make_account()
    before = issue(stub, owner)

    fails(lambda: validate(validation, intruder, before.key, new_hwid(), app_id=owner.app_id))

    assert get(stub, owner.auth, before.key) == before
    assert outbox_events(db, before.key) == [("license.created", 1)]


def test_unknown_app_is_permission_denied(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key = issue(stub, account).key

    failure = fails(lambda: validate(validation, account, key, new_hwid(), app_id=str(uuid.uuid4())))

    assert failure.code is grpc.StatusCode.PERMISSION_DENIED
    assert failure.reason == "FORBIDDEN"


BAD_INPUT: dict[str, tuple[str, dict[str, str]]] = {
    "hwid-empty": ("hwid", {"hwid": ""}),
    "hwid-257-chars": ("hwid", {"hwid": "h" * 257}),
    "hwid-newline": ("hwid", {"hwid": "abc\ndef"}),
    "hwid-nul": ("hwid", {"hwid": "abc\x00def"}),
    "key-malformed": ("key", {"key": "not-a-key"}),
    "key-empty": ("key", {"key": ""}),
    "app-id-not-a-uuid": ("app_id", {"app_id": "not-a-uuid"}),
    "app-id-empty": ("app_id", {"app_id": ""}),
    "nonce-129-chars": ("nonce", {"nonce": "n" * 129}),
}


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
@pytest.mark.parametrize(("field", "bad"), BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_invalid_argument_naming_the_field(
    stub: Stub, validation: Validation, make_account: MakeAccount, check: Check, field: str, bad: dict[str, str]
) -> None:
    account = make_account()
    fields = {"app_id": account.app_id, "key": issue(stub, account).key, "hwid": new_hwid(), "nonce": "", **bad}

    failure = fails(lambda: check(validation, account, fields["key"], fields["hwid"], app_id=fields["app_id"],
                                  nonce=fields["nonce"]))

    assert_bad_request(failure, field)


def test_bad_input_binds_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    before = issue(stub, account)

    fails(lambda: validate(validation, account, before.key, "x" * 257))

    assert get(stub, account.auth, before.key) == before
    assert outbox_events(db, before.key) == [("license.created", 1)]


def test_longest_hwid_and_nonce_are_accepted(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key = issue(stub, account).key

    result = validate(validation, account, key, "h" * 256, nonce="n" * 128)

    assert result.code == vpb.VALIDATION_CODE_VALID
    assert [b.hwid for b in result.license.hwids] == ["h" * 256]


# Binding


def test_binding_shows_the_device_in_get_license(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key, hwid = issue(stub, account, max_hwid_slots=2).key, new_hwid()

    validate(validation, account, key, hwid)

    lic = get(stub, account.auth, key)
    assert [b.hwid for b in lic.hwids] == [hwid]
    (binding,) = lic.hwids
    assert about_now(when(binding.bound_at))
    assert when(binding.last_seen_at) == when(binding.bound_at)
    assert lic.version == 2


def test_binding_writes_exactly_one_hwid_bound_outbox_row(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()

    validate(validation, account, key, hwid)

    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2)]
    (payload,) = db.execute(
        "SELECT payload FROM outbox WHERE license_key = %s AND event_type = 'license.hwid_bound'", (key,)
    ).fetchone() or (None,)
    assert [b["hwid"] for b in payload["hwids"]] == [hwid]
    assert payload["version"] == 2


def test_each_new_device_binds_with_its_own_event(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, first, second = issue(stub, account, max_hwid_slots=3).key, new_hwid(), new_hwid()

    validate(validation, account, key, first)
    result = validate(validation, account, key, second)

    assert (result.seats_used, result.seats_allowed) == (2, 3)
    assert [b.hwid for b in get(stub, account.auth, key).hwids] == [first, second]
    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2), ("license.hwid_bound", 3)]


def test_binding_is_published_to_jetstream(
    stub: Stub, validation: Validation, make_account: MakeAccount, event_stream: Any
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()

    validate(validation, account, key, hwid)

    received = app_events(event_stream, account.app_id, 2)
    assert [(r.event.type, r.event.version) for r in received] == [("license.created", 1), ("license.hwid_bound", 2)]
    bound = received[1]
    assert bound.subject == f"{event_stream.prefix}.{account.app_id}.license.hwid_bound"
    assert bound.event.license_key == key
    assert [b.hwid for b in bound.event.license.hwids] == [hwid]


def test_revalidating_a_bound_device_changes_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    before = get(stub, account.auth, key)

    result = validate(validation, account, key, hwid)

    assert result.code == vpb.VALIDATION_CODE_VALID
    assert get(stub, account.auth, key) == before
    assert before.version == 2
    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2)]


def test_last_seen_at_is_not_refreshed_within_a_minute(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    first = validate(validation, account, key, hwid).license.hwids[0].last_seen_at

    validate(validation, account, key, hwid)
    validate(validation, account, key, hwid)

    assert get(stub, account.auth, key).hwids[0].last_seen_at == first


@pytest.mark.parametrize("check", CHECKS.values(), ids=CHECKS.keys())
def test_last_seen_at_is_refreshed_after_a_minute_without_event_or_version(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection, check: Check
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    backdated = backdate_last_seen(db, key, hwid, timedelta(minutes=2))

    result = check(validation, account, key, hwid)

    after = get(stub, account.auth, key)
    seen = when(after.hwids[0].last_seen_at)
    assert seen > backdated + timedelta(minutes=1)
    assert about_now(seen)
    assert result.license == after
    assert after.version == 2
    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2)]


# Unlimited seats


def test_unlimited_license_admits_twenty_devices(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key = issue(stub, account, unlimited_hwid_slots=True).key
    hwids = [new_hwid() for _ in range(20)]

    results = [validate(validation, account, key, hwid) for hwid in hwids]

    assert [r.code for r in results] == [vpb.VALIDATION_CODE_VALID] * 20
    assert [r.seats_used for r in results] == list(range(1, 21))
    assert {r.seats_allowed for r in results} == {0}
    lic = get(stub, account.auth, key)
    assert sorted(b.hwid for b in lic.hwids) == sorted(hwids)
    assert lic.version == 21


def test_unlimited_license_records_its_first_devices_and_admits_the_rest_unrecorded(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = issue(stub, account, unlimited_hwid_slots=True).key
    recorded = limits.UNLIMITED_RECORDED_DEVICES
    for _ in range(recorded):
        validate(validation, account, key, new_hwid())

    later = validate(validation, account, key, new_hwid())

    assert (later.valid, later.code, later.seats_used) == (True, vpb.VALIDATION_CODE_VALID, recorded)
    assert len(get(stub, account.auth, key).hwids) == recorded
    assert len(outbox_events(db, key)) == 1 + recorded  # created, then one hwid_bound per recorded device


def test_heartbeat_from_a_new_device_on_an_unlimited_license_is_valid_and_recorded(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwid = issue(stub, account, unlimited_hwid_slots=True).key, new_hwid()

    result = heartbeat(validation, account, key, hwid)

    assert (result.valid, result.code) == (True, vpb.VALIDATION_CODE_VALID)
    assert (result.seats_used, result.seats_allowed) == (1, 0)
    assert [b.hwid for b in get(stub, account.auth, key).hwids] == [hwid]
    assert outbox_events(db, key) == [("license.created", 1), ("license.hwid_bound", 2)]


# Heartbeat


def test_heartbeat_of_an_unbound_device_is_hwid_mismatch_even_with_a_free_seat(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, max_hwid_slots=3).key
    validate(validation, account, key, new_hwid())

    result = heartbeat(validation, account, key, new_hwid())

    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_HWID_MISMATCH)
    assert (result.seats_used, result.seats_allowed) == (1, 3)


def test_heartbeat_of_an_unbound_device_binds_nothing(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    before = issue(stub, account, max_hwid_slots=3)

    heartbeat(validation, account, before.key, new_hwid())

    assert get(stub, account.auth, before.key) == before
    assert outbox_events(db, before.key) == [("license.created", 1)]


def test_heartbeat_of_a_bound_device_is_valid(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)

    result = heartbeat(validation, account, key, hwid)

    assert (result.valid, result.code) == (True, vpb.VALIDATION_CODE_VALID)
    assert result.license == get(stub, account.auth, key)


# Revocation and expiry between two calls


def test_revoke_takes_effect_on_the_very_next_validation(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    assert validate(validation, account, key, hwid).code == vpb.VALIDATION_CODE_VALID

    update(stub, account.auth, key, lpb.LICENSE_ACTION_REVOKE)

    assert validate(validation, account, key, hwid).code == vpb.VALIDATION_CODE_REVOKED


def test_activate_makes_a_revoked_license_valid_again(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    update(stub, account.auth, key, lpb.LICENSE_ACTION_REVOKE)

    update(stub, account.auth, key, lpb.LICENSE_ACTION_ACTIVATE)

    result = validate(validation, account, key, hwid)
    assert (result.valid, result.code) == (True, vpb.VALIDATION_CODE_VALID)
    assert [b.hwid for b in result.license.hwids] == [hwid]  # the binding survived the revocation


def test_license_expiring_between_two_calls_turns_from_valid_to_expired(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    expiry = from_now(seconds=2)
    key, hwid = issue(stub, account, expires_at=expiry).key, new_hwid()
    assert validate(validation, account, key, hwid).code == vpb.VALIDATION_CODE_VALID

    time.sleep(max(0.0, (when(expiry) - datetime.now(UTC)).total_seconds()) + 0.5)

    result = validate(validation, account, key, hwid)
    assert (result.valid, result.code) == (False, vpb.VALIDATION_CODE_EXPIRED)
    assert result.license.status == lpb.LICENSE_STATUS_EXPIRED


# Resetting the bindings


def test_reset_hwid_frees_every_seat_for_a_rejected_device(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key, third = issue(stub, account, max_hwid_slots=2).key, new_hwid()
    validate(validation, account, key, new_hwid())
    validate(validation, account, key, new_hwid())
    assert validate(validation, account, key, third).code == vpb.VALIDATION_CODE_HWID_MISMATCH

    update(stub, account.auth, key, lpb.LICENSE_ACTION_RESET_HWID)

    result = validate(validation, account, key, third)
    assert (result.code, result.seats_used, result.seats_allowed) == (vpb.VALIDATION_CODE_VALID, 1, 2)
    assert [b.hwid for b in get(stub, account.auth, key).hwids] == [third]


def test_reset_hwid_writes_exactly_one_hwid_reset_row(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = issue(stub, account, max_hwid_slots=2).key
    validate(validation, account, key, new_hwid())
    validate(validation, account, key, new_hwid())

    update(stub, account.auth, key, lpb.LICENSE_ACTION_RESET_HWID)

    assert outbox_events(db, key) == [
        ("license.created", 1), ("license.hwid_bound", 2), ("license.hwid_bound", 3), ("license.hwid_reset", 4),
    ]


def test_device_bound_before_a_reset_binds_anew(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    update(stub, account.auth, key, lpb.LICENSE_ACTION_RESET_HWID)

    result = validate(validation, account, key, hwid)

    assert result.code == vpb.VALIDATION_CODE_VALID
    assert outbox_events(db, key)[-1] == ("license.hwid_bound", 4)
