"""Every limit and every error row of the reference, through gRPC against the real server.

Each failure is checked for its status code, a message naming the offending field, and its rich details
(ErrorInfo reason and domain; BadRequest field violations for bad input). `unpack` also fails any test
whose request gets INTERNAL or UNKNOWN.
"""
from __future__ import annotations

import base64
import uuid
from collections.abc import Callable

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from licensing.v1 import licenses_pb2 as pb
from tests.support import (
    Metadata,
    Stub,
    admin,
    assert_bad_request,
    assert_error,
    credits_of,
    fails,
    from_now,
    get,
    new_account,
    outbox_rows,
    rows_of_app,
    second_app,
)

KeyCall = Callable[[Stub, str, Metadata], object]  # (stub, key, metadata)

PAST = from_now(minutes=-1)
EPOCH = Timestamp(seconds=0)  # present but zero: the past, not "absent"
INVALID_NANOS = Timestamp(seconds=4_102_444_800, nanos=1_000_000_000)  # 2100-01-01, nanos out of range
AFTER_YEAR_9999 = Timestamp(seconds=253_402_300_800)
UNKNOWN_KEY = "ZZZZ-ZZZZ-ZZZZ-ZZZZ"  # well formed; 1 in 2^80 that it was ever issued


def create(stub: Stub, metadata: Metadata, app_id: str, **fields: object) -> list[pb.License]:
    return list(stub.CreateLicenses(pb.CreateLicensesRequest(app_id=app_id, **fields), metadata=metadata).licenses)


def create_one(stub: Stub, metadata: Metadata, app_id: str) -> pb.License:
    return create(stub, metadata, app_id)[0]


def idempotency_rows(db: psycopg.Connection, account_id: str) -> int:
    row = db.execute("select count(*) from idempotency where account_id = %s", (account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# CreateLicenses: limits and bad input

BAD_CREATE: dict[str, tuple[dict[str, object], list[str]]] = {
    "quantity_0_is_not_default": ({"quantity": 0}, ["quantity"]),
    "quantity_101": ({"quantity": 101}, ["quantity"]),
    "quantity_negative": ({"quantity": -1}, ["quantity"]),
    "quantity_int32_max": ({"quantity": 2**31 - 1}, ["quantity"]),
    "max_hwid_slots_0_is_not_default": ({"max_hwid_slots": 0}, ["max_hwid_slots"]),
    "max_hwid_slots_17": ({"max_hwid_slots": 17}, ["max_hwid_slots"]),
    "max_hwid_slots_negative": ({"max_hwid_slots": -1}, ["max_hwid_slots"]),
    "label_129_ascii": ({"label": "a" * 129}, ["label"]),
    "label_129_non_ascii": ({"label": "é" * 129}, ["label"]),
    "label_129_emoji": ({"label": "\N{KEY}" * 129}, ["label"]),
    "expires_at_past": ({"expires_at": PAST}, ["expires_at"]),
    "expires_at_epoch": ({"expires_at": EPOCH}, ["expires_at"]),
    "expires_at_invalid_nanos": ({"expires_at": INVALID_NANOS}, ["expires_at"]),
    "expires_at_after_year_9999": ({"expires_at": AFTER_YEAR_9999}, ["expires_at"]),
    "app_id_empty": ({"app_id": ""}, ["app_id"]),
    "app_id_garbage": ({"app_id": "my-app"}, ["app_id"]),
    "app_id_number": ({"app_id": "12345"}, ["app_id"]),
    "app_id_truncated_uuid": ({"app_id": str(uuid.uuid4())[:-1]}, ["app_id"]),
    "request_id_not_a_uuid": ({"request_id": "retry-1"}, ["request_id"]),
    "quantity_0_with_unlimited_slots": ({"quantity": 0, "unlimited_hwid_slots": True, "max_hwid_slots": 0}, ["quantity"]),
    "several_fields_together": (
        {"app_id": "nope", "quantity": 0, "max_hwid_slots": 17, "label": "x" * 129, "expires_at": PAST,
         "request_id": "nope"},
        ["app_id", "expires_at", "label", "max_hwid_slots", "quantity", "request_id"],
    ),
}


@pytest.mark.parametrize(("fields", "offending"), BAD_CREATE.values(), ids=BAD_CREATE.keys())
def test_create_rejects_bad_input(stub, make_account, fields: dict[str, object], offending: list[str]) -> None:
    acct = make_account()
    request = pb.CreateLicensesRequest(**{"app_id": acct.app_id, **fields})
    error = fails(lambda: stub.CreateLicenses(request, metadata=acct.auth))
    assert_bad_request(error, *offending)


@pytest.mark.parametrize(("fields", "offending"), BAD_CREATE.values(), ids=BAD_CREATE.keys())
def test_rejected_create_writes_nothing(stub, make_account, db, fields: dict[str, object], offending: list[str]) -> None:
    acct = make_account(credits=500)
    request = pb.CreateLicensesRequest(**{"app_id": acct.app_id, **fields})
    fails(lambda: stub.CreateLicenses(request, metadata=acct.auth))
    assert rows_of_app(db, "licenses", acct.app_id) == 0
    assert rows_of_app(db, "outbox", acct.app_id) == 0
    assert idempotency_rows(db, acct.account_id) == 0
    assert credits_of(acct.account_id) == 500


@pytest.mark.parametrize(("quantity", "expected"), [(None, 1), (1, 1), (100, 100)], ids=["absent_is_1", "1", "100"])
def test_quantity_within_limits_creates_that_many(stub, make_account, quantity: int | None, expected: int) -> None:
    acct = make_account()
    fields = {} if quantity is None else {"quantity": quantity}
    assert len(create(stub, acct.auth, acct.app_id, **fields)) == expected


@pytest.mark.parametrize(("slots", "expected"), [(None, 1), (1, 1), (16, 16)], ids=["absent_is_1", "1", "16"])
def test_max_hwid_slots_within_limits_is_kept(stub, make_account, slots: int | None, expected: int) -> None:
    acct = make_account()
    fields = {} if slots is None else {"max_hwid_slots": slots}
    lic = create(stub, acct.auth, acct.app_id, **fields)[0]
    assert (lic.max_hwid_slots, lic.unlimited_hwid_slots) == (expected, False)
    assert get(stub, acct.auth, lic.key).max_hwid_slots == expected


@pytest.mark.parametrize("slots", [None, 0, 1, 17, 99, -1], ids=["absent", "0", "1", "17", "99", "negative"])
def test_unlimited_hwid_slots_ignores_max_hwid_slots(stub, make_account, slots: int | None) -> None:
    acct = make_account()
    fields: dict[str, object] = {"unlimited_hwid_slots": True}
    if slots is not None:
        fields["max_hwid_slots"] = slots
    lic = create(stub, acct.auth, acct.app_id, **fields)[0]
    assert (lic.max_hwid_slots, lic.unlimited_hwid_slots) == (0, True)
    stored = get(stub, acct.auth, lic.key)
    assert (stored.max_hwid_slots, stored.unlimited_hwid_slots) == (0, True)


LABELS_OK = {
    "empty": "",
    "128_ascii": "a" * 128,
    "128_accented": "é" * 128,  # 256 UTF-8 bytes: the limit counts characters
    "128_cjk": "日本" * 64,  # 384 UTF-8 bytes
    "128_emoji": "\N{KEY}" * 128,  # 512 UTF-8 bytes, outside the BMP
}


@pytest.mark.parametrize("label", LABELS_OK.values(), ids=LABELS_OK.keys())
def test_label_of_at_most_128_characters_is_kept(stub, make_account, label: str) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id, label=label)[0]
    assert lic.label == label
    assert get(stub, acct.auth, lic.key).label == label


def test_label_with_nul_character_is_invalid_argument(stub, make_account, db) -> None:
    # PostgreSQL text cannot hold U+0000: the server must say so, not fail with UNKNOWN/INTERNAL.
    acct = make_account()
    request = pb.CreateLicensesRequest(app_id=acct.app_id, label="customer\x0042")
    error = fails(lambda: stub.CreateLicenses(request, metadata=acct.auth))
    assert_bad_request(error, "label")
    assert rows_of_app(db, "licenses", acct.app_id) == 0


def test_expires_at_in_the_future_is_kept(stub, make_account) -> None:
    acct = make_account()
    expiry = from_now(days=30)
    lic = create(stub, acct.auth, acct.app_id, expires_at=expiry)[0]
    assert lic.expires_at == expiry
    assert lic.status == pb.LICENSE_STATUS_ACTIVE
    assert get(stub, acct.auth, lic.key).expires_at == expiry


def test_expires_at_at_the_last_second_of_year_9999_is_kept(stub, make_account) -> None:
    acct = make_account()
    last = Timestamp(seconds=AFTER_YEAR_9999.seconds - 1)
    lic = create(stub, acct.auth, acct.app_id, expires_at=last)[0]
    assert lic.expires_at == last
    assert get(stub, acct.auth, lic.key).expires_at == last


def test_absent_expires_at_makes_a_lifetime_license(stub, make_account) -> None:
    acct = make_account()
    lic = create(stub, acct.auth, acct.app_id)[0]
    assert not lic.HasField("expires_at")
    assert not get(stub, acct.auth, lic.key).HasField("expires_at")


# Credits

@pytest.mark.parametrize(("credits", "quantity"), [(0, 1), (2, 3), (99, 100)], ids=["0_for_1", "2_for_3", "99_for_100"])
def test_create_beyond_credits_is_failed_precondition(stub, make_account, credits: int, quantity: int) -> None:
    acct = make_account(credits=credits)
    error = fails(lambda: create(stub, acct.auth, acct.app_id, quantity=quantity))
    assert_error(error, grpc.StatusCode.FAILED_PRECONDITION, "NO_CREDITS")
    assert "credits" in error.message


def test_create_beyond_credits_creates_nothing(stub, make_account, db) -> None:
    acct = make_account(credits=2)
    fails(lambda: create(stub, acct.auth, acct.app_id, quantity=3))
    listed = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id), metadata=acct.auth)
    assert list(listed.licenses) == [] and listed.cursor == ""
    assert credits_of(acct.account_id) == 2
    assert rows_of_app(db, "outbox", acct.app_id) == 0


def test_create_with_exactly_enough_credits_spends_them_all(stub, make_account) -> None:
    acct = make_account(credits=3)
    assert len(create(stub, acct.auth, acct.app_id, quantity=3)) == 3
    assert credits_of(acct.account_id) == 0
    assert_error(fails(lambda: create_one(stub, acct.auth, acct.app_id)), grpc.StatusCode.FAILED_PRECONDITION, "NO_CREDITS")


def test_request_id_reused_for_another_request_is_invalid_argument(stub, make_account) -> None:
    acct = make_account(credits=10)
    request_id = str(uuid.uuid4())
    create(stub, acct.auth, acct.app_id, request_id=request_id, label="first")
    error = fails(lambda: create(stub, acct.auth, acct.app_id, request_id=request_id, label="second"))
    assert_bad_request(error, "request_id")
    assert credits_of(acct.account_id) == 9


def test_request_id_of_a_failed_create_can_be_used_again(stub, make_account) -> None:
    acct = make_account(credits=0)
    request_id = str(uuid.uuid4())
    fails(lambda: create(stub, acct.auth, acct.app_id, request_id=request_id))
    admin("add-credits", "--account", acct.account_id, "--amount", "1")
    assert len(create(stub, acct.auth, acct.app_id, request_id=request_id)) == 1
    assert credits_of(acct.account_id) == 0


# ListLicenses: limits, app ids and cursors

BAD_LIST: dict[str, tuple[dict[str, object], list[str]]] = {
    "limit_0_is_not_default": ({"limit": 0}, ["limit"]),
    "limit_201": ({"limit": 201}, ["limit"]),
    "limit_negative": ({"limit": -1}, ["limit"]),
    "app_id_empty": ({"app_id": ""}, ["app_id"]),
    "app_id_garbage": ({"app_id": "my-app"}, ["app_id"]),
    "several_fields_together": ({"app_id": "my-app", "limit": 201}, ["app_id", "limit"]),
}


@pytest.mark.parametrize(("fields", "offending"), BAD_LIST.values(), ids=BAD_LIST.keys())
def test_list_rejects_bad_input(stub, make_account, fields: dict[str, object], offending: list[str]) -> None:
    acct = make_account()
    request = pb.ListLicensesRequest(**{"app_id": acct.app_id, **fields})
    assert_bad_request(fails(lambda: stub.ListLicenses(request, metadata=acct.auth)), *offending)


def test_list_limit_1_returns_one_license_and_a_cursor(stub, make_account) -> None:
    acct = make_account()
    created = create(stub, acct.auth, acct.app_id, quantity=2)
    first = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id, limit=1), metadata=acct.auth)
    assert [lic.key for lic in first.licenses] == [created[0].key] and first.cursor
    second = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id, limit=1, cursor=first.cursor), metadata=acct.auth)
    assert [lic.key for lic in second.licenses] == [created[1].key] and second.cursor == ""


def test_list_limit_200_is_accepted(stub, make_account) -> None:
    acct = make_account()
    created = create(stub, acct.auth, acct.app_id, quantity=3)
    page = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id, limit=200), metadata=acct.auth)
    assert list(page.licenses) == created and page.cursor == ""


def test_list_default_limit_is_50(stub, make_account) -> None:
    acct = make_account()
    create(stub, acct.auth, acct.app_id, quantity=51)
    first = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id), metadata=acct.auth)
    assert len(first.licenses) == 50 and first.cursor
    rest = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id, cursor=first.cursor), metadata=acct.auth)
    assert len(rest.licenses) == 1 and rest.cursor == ""


# Each builds a cursor from the listed app's id: none of them is one the server issued.
MALFORMED_CURSORS: dict[str, Callable[[str], str]] = {
    "garbage": lambda app: "not a cursor!",
    "short_base64": lambda app: "AAAA",
    "not_utf8": lambda app: b64(b"\xff\xfe\xfd\xfc"),
    "position_0": lambda app: b64(f"1:{app}:0"),
    "position_negative": lambda app: b64(f"1:{app}:-3"),
    "position_not_a_number": lambda app: b64(f"1:{app}:ten"),
    "position_beyond_bigint": lambda app: b64(f"1:{app}:{2**63}"),
    "position_huge": lambda app: b64(f"1:{app}:{10**40}"),
    "unknown_version": lambda app: b64(f"2:{app}:1"),
    "app_not_a_uuid": lambda app: b64("1:my-app:1"),
    "extra_part": lambda app: b64(f"1:{app}:1:1"),
    "random_app": lambda app: b64(f"1:{uuid.uuid4()}:1"),
}


@pytest.mark.parametrize("make_cursor", MALFORMED_CURSORS.values(), ids=MALFORMED_CURSORS.keys())
def test_list_rejects_malformed_cursor(stub, make_account, make_cursor: Callable[[str], str]) -> None:
    acct = make_account()
    create_one(stub, acct.auth, acct.app_id)
    request = pb.ListLicensesRequest(app_id=acct.app_id, cursor=make_cursor(acct.app_id))
    assert_bad_request(fails(lambda: stub.ListLicenses(request, metadata=acct.auth)), "cursor")


def test_list_rejects_cursor_of_another_app(stub, make_account) -> None:
    acct = make_account()
    other_app = second_app(acct)
    create(stub, acct.auth, acct.app_id, quantity=2)
    create(stub, acct.auth, other_app, quantity=2)
    cursor = stub.ListLicenses(pb.ListLicensesRequest(app_id=acct.app_id, limit=1), metadata=acct.auth).cursor
    request = pb.ListLicensesRequest(app_id=other_app, limit=1, cursor=cursor)
    assert_bad_request(fails(lambda: stub.ListLicenses(request, metadata=acct.auth)), "cursor")


# Keys: malformed is INVALID_ARGUMENT, well formed but unknown is NOT_FOUND

KEY_CALLS: dict[str, KeyCall] = {
    "get": lambda stub, key, md: stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=md),
    "update": lambda stub, key, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE), metadata=md
    ),
    "delete": lambda stub, key, md: stub.DeleteLicense(pb.DeleteLicenseRequest(key=key), metadata=md),
}

MALFORMED_KEYS = {
    "empty": "",
    "blank": "   ",
    "one_group": "ABCD",
    "short_last_group": "ABCD-EFGH-JKLM-NPQ",
    "long_last_group": "ABCD-EFGH-JKLM-NPQRS",
    "five_groups": "ABCD-EFGH-JKLM-NPQR-STUV",
    "no_dashes": "ABCDEFGHJKLMNPQR",
    "underscores": "ABCD_EFGH_JKLM_NPQR",
    "digit_0": "ABCD-EFGH-JKLM-NPQ0",
    "letter_O": "ABCD-EFGH-JKLM-NPQO",
    "digit_1": "ABCD-EFGH-JKLM-NPQ1",
    "letter_I": "ABCD-EFGH-JKLM-NPQI",
    "non_ascii": "ÄBCD-EFGH-JKLM-NPQR",
    "inner_space": "ABCD- EFG-HJKL-MNPQ",
    "very_long": "ABCD-" * 200,
}


@pytest.mark.parametrize("key", MALFORMED_KEYS.values(), ids=MALFORMED_KEYS.keys())
@pytest.mark.parametrize("call", KEY_CALLS.values(), ids=KEY_CALLS.keys())
def test_malformed_key_is_invalid_argument(stub, make_account, call: KeyCall, key: str) -> None:
    acct = make_account()
    assert_bad_request(fails(lambda: call(stub, key, acct.auth)), "key")


@pytest.mark.parametrize("key", [UNKNOWN_KEY, UNKNOWN_KEY.lower()], ids=["upper", "lower"])
@pytest.mark.parametrize("call", KEY_CALLS.values(), ids=KEY_CALLS.keys())
def test_unknown_well_formed_key_is_not_found(stub, make_account, call: KeyCall, key: str) -> None:
    acct = make_account()
    assert_error(fails(lambda: call(stub, key, acct.auth)), grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


@pytest.mark.parametrize("call", KEY_CALLS.values(), ids=KEY_CALLS.keys())
def test_lowercase_key_finds_the_license(stub, make_account, call: KeyCall) -> None:
    acct = make_account()
    lic = create_one(stub, acct.auth, acct.app_id)
    response = call(stub, lic.key.lower(), acct.auth)
    assert response.license.key == lic.key  # type: ignore[attr-defined]


# UpdateLicense: action and expiry

BAD_UPDATE: dict[str, tuple[dict[str, object], list[str]]] = {
    "extend_without_expires_at": ({"action": pb.LICENSE_ACTION_EXTEND}, ["expires_at"]),
    "extend_to_the_past": ({"action": pb.LICENSE_ACTION_EXTEND, "expires_at": PAST}, ["expires_at"]),
    "extend_to_epoch": ({"action": pb.LICENSE_ACTION_EXTEND, "expires_at": EPOCH}, ["expires_at"]),
    "extend_invalid_timestamp": ({"action": pb.LICENSE_ACTION_EXTEND, "expires_at": INVALID_NANOS}, ["expires_at"]),
    "extend_after_year_9999": ({"action": pb.LICENSE_ACTION_EXTEND, "expires_at": AFTER_YEAR_9999}, ["expires_at"]),
    "action_unspecified": ({}, ["action"]),
    "action_unspecified_with_expiry": ({"expires_at": from_now(days=1)}, ["action"]),
    "action_unknown_value": ({"action": 99}, ["action"]),
}


@pytest.mark.parametrize(("fields", "offending"), BAD_UPDATE.values(), ids=BAD_UPDATE.keys())
def test_update_rejects_bad_input(stub, make_account, fields: dict[str, object], offending: list[str]) -> None:
    acct = make_account()
    lic = create_one(stub, acct.auth, acct.app_id)
    request = pb.UpdateLicenseRequest(key=lic.key, **fields)
    assert_bad_request(fails(lambda: stub.UpdateLicense(request, metadata=acct.auth)), *offending)


def test_update_reports_bad_key_and_action_together(stub, make_account) -> None:
    acct = make_account()
    request = pb.UpdateLicenseRequest(key="nope")
    assert_bad_request(fails(lambda: stub.UpdateLicense(request, metadata=acct.auth)), "key", "action")


@pytest.mark.parametrize(("fields", "offending"), BAD_UPDATE.values(), ids=BAD_UPDATE.keys())
def test_rejected_update_leaves_license_unchanged(
    stub, make_account, db, fields: dict[str, object], offending: list[str]
) -> None:
    acct = make_account()
    lic = create_one(stub, acct.auth, acct.app_id)
    fails(lambda: stub.UpdateLicense(pb.UpdateLicenseRequest(key=lic.key, **fields), metadata=acct.auth))
    assert get(stub, acct.auth, lic.key) == lic
    assert outbox_rows(db, lic.key) == 1  # license.created only


# Authentication

WELL_FORMED_CALLS: dict[str, Callable[[Stub, Metadata], object]] = {
    "create": lambda stub, md: stub.CreateLicenses(pb.CreateLicensesRequest(app_id=str(uuid.uuid4())), metadata=md),
    "list": lambda stub, md: stub.ListLicenses(pb.ListLicensesRequest(app_id=str(uuid.uuid4())), metadata=md),
    "get": lambda stub, md: stub.GetLicense(pb.GetLicenseRequest(key=UNKNOWN_KEY), metadata=md),
    "update": lambda stub, md: stub.UpdateLicense(
        pb.UpdateLicenseRequest(key=UNKNOWN_KEY, action=pb.LICENSE_ACTION_REVOKE), metadata=md
    ),
    "delete": lambda stub, md: stub.DeleteLicense(pb.DeleteLicenseRequest(key=UNKNOWN_KEY), metadata=md),
}

# Each makes the authorization metadata from a real, live token.
BAD_CREDENTIALS: dict[str, Callable[[str], Metadata]] = {
    "missing": lambda token: [],
    "empty_value": lambda token: [("authorization", "")],
    "scheme_only": lambda token: [("authorization", "Bearer")],
    "blank_token": lambda token: [("authorization", "Bearer    ")],
    "token_without_scheme": lambda token: [("authorization", token)],
    "basic_scheme": lambda token: [("authorization", f"Basic {token}")],
    "unknown_token": lambda token: [("authorization", f"Bearer lk_{'A' * 43}")],
    "truncated_token": lambda token: [("authorization", f"Bearer {token[:-1]}")],
    "other_header": lambda token: [("x-api-key", token)],
}


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS.values(), ids=BAD_CREDENTIALS.keys())
@pytest.mark.parametrize("call", WELL_FORMED_CALLS.values(), ids=WELL_FORMED_CALLS.keys())
def test_bad_credentials_are_unauthenticated(
    stub, make_account, call: Callable[[Stub, Metadata], object], credentials: Callable[[str], Metadata]
) -> None:
    acct = make_account()
    error = fails(lambda: call(stub, credentials(acct.token)))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_unauthenticated_comes_before_bad_input(stub) -> None:
    error = fails(lambda: stub.CreateLicenses(pb.CreateLicensesRequest(app_id="nope", quantity=0)))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_revoked_token_is_unauthenticated(stub) -> None:
    acct = new_account(credits=10)
    create_one(stub, acct.auth, acct.app_id)  # the token worked before
    admin("revoke-token", "--token-id", acct.token_id)
    error = fails(lambda: create_one(stub, acct.auth, acct.app_id))
    assert_error(error, grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_revoking_a_token_leaves_the_accounts_other_tokens_working(stub) -> None:
    acct = new_account(credits=10)
    other = admin("create-token", "--account", acct.account_id, "--name", "second")["token"]
    admin("revoke-token", "--token-id", acct.token_id)
    assert create_one(stub, [("authorization", f"Bearer {other}")], acct.app_id).app_id == acct.app_id


def test_lowercase_bearer_scheme_is_accepted(stub, make_account) -> None:
    acct = make_account()
    assert create_one(stub, [("authorization", f"bearer {acct.token}")], acct.app_id).app_id == acct.app_id
