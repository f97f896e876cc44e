"""Request validation: every limit of the reference, all violations reported at once."""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from server.domain import commands
from server.domain.commands import CreateLicenses, ListLicenses, UpdateLicense
from server.domain.errors import BadRequest
from server.domain.licenses import Action

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
APP_ID = "0b6f3a52-2f4c-4d5e-9a31-5c0f6f1f7b10"
REQUEST_ID = "5f2d7c1e-3b4a-4c6d-8e9f-0a1b2c3d4e5f"
KEY = "ABCD-EFGH-JKLM-NPQR"


def create(**overrides: Any) -> CreateLicenses:
    arguments: dict[str, Any] = {
        "app_id": APP_ID,
        "quantity": None,
        "expires_at": None,
        "max_hwid_slots": None,
        "unlimited_hwid_slots": False,
        "label": "",
        "request_id": "",
        "now": NOW,
    }
    arguments.update(overrides)
    return commands.create_licenses(**arguments)


def list_(**overrides: Any) -> ListLicenses:
    arguments: dict[str, Any] = {"app_id": APP_ID, "limit": None, "cursor": ""}
    arguments.update(overrides)
    return commands.list_licenses(**arguments)


def update(**overrides: Any) -> UpdateLicense:
    arguments: dict[str, Any] = {"key": KEY, "action": Action.REVOKE, "expires_at": None, "now": NOW}
    arguments.update(overrides)
    return commands.update_license(**arguments)


def rejected_fields(call: Any, **overrides: Any) -> list[str]:
    """The proto field names the call's BadRequest names, in order."""
    with pytest.raises(BadRequest) as caught:
        call(**overrides)
    return [v.field for v in caught.value.violations]


# --- CreateLicenses: quantity ------------------------------------------------------------------


def test_quantity_defaults_to_1() -> None:
    assert create(quantity=None).quantity == 1


@pytest.mark.parametrize("quantity", [1, 2, 50, 99, 100])
def test_quantity_within_1_to_100_is_accepted(quantity: int) -> None:
    assert create(quantity=quantity).quantity == quantity


@pytest.mark.parametrize("quantity", [0, -1])
def test_quantity_below_1_is_rejected(quantity: int) -> None:
    assert rejected_fields(create, quantity=quantity) == ["quantity"]


@pytest.mark.parametrize("quantity", [101, 1000])
def test_quantity_above_100_is_rejected(quantity: int) -> None:
    assert rejected_fields(create, quantity=quantity) == ["quantity"]


# --- CreateLicenses: hwid slots ----------------------------------------------------------------


def test_max_hwid_slots_defaults_to_1() -> None:
    assert create(max_hwid_slots=None).max_hwid_slots == 1


@pytest.mark.parametrize("slots", [1, 8, 16])
def test_max_hwid_slots_within_1_to_16_is_accepted(slots: int) -> None:
    assert create(max_hwid_slots=slots).max_hwid_slots == slots


@pytest.mark.parametrize("slots", [0, -1])
def test_max_hwid_slots_below_1_is_rejected(slots: int) -> None:
    assert rejected_fields(create, max_hwid_slots=slots) == ["max_hwid_slots"]


@pytest.mark.parametrize("slots", [17, 100])
def test_max_hwid_slots_above_16_is_rejected(slots: int) -> None:
    assert rejected_fields(create, max_hwid_slots=slots) == ["max_hwid_slots"]


@pytest.mark.parametrize("slots", [None, 0, 5, 17, -3])
def test_unlimited_hwid_slots_ignores_max_hwid_slots_and_stores_0(slots: int | None) -> None:
    cmd = create(unlimited_hwid_slots=True, max_hwid_slots=slots)
    assert cmd.unlimited_hwid_slots is True
    assert cmd.max_hwid_slots == 0


# --- CreateLicenses: label ---------------------------------------------------------------------


def test_label_of_128_ascii_characters_is_accepted() -> None:
    assert create(label="a" * 128).label == "a" * 128


def test_label_of_129_ascii_characters_is_rejected() -> None:
    assert rejected_fields(create, label="a" * 129) == ["label"]


def test_label_of_128_non_ascii_characters_is_accepted() -> None:
    label = "ü" * 64 + "漢" * 63 + "😀"  # 128 characters, far more than 128 UTF-8 bytes
    assert len(label) == 128 and len(label.encode()) > 128
    assert create(label=label).label == label


def test_label_of_129_non_ascii_characters_is_rejected() -> None:
    assert rejected_fields(create, label="漢" * 129) == ["label"]


@pytest.mark.parametrize("label", ["\x00", "Pro\x00", "a\x00b"])
def test_label_with_nul_character_is_rejected(label: str) -> None:
    assert rejected_fields(create, label=label) == ["label"]


def test_empty_label_is_accepted() -> None:
    assert create(label="").label == ""


# --- CreateLicenses: expires_at ----------------------------------------------------------------


def test_absent_expires_at_means_no_expiry() -> None:
    assert create(expires_at=None).expires_at is None


def test_expires_at_in_the_future_is_accepted() -> None:
    later = NOW + timedelta(seconds=1)
    assert create(expires_at=later).expires_at == later


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(microseconds=-1), timedelta(days=-365)])
def test_expires_at_not_in_the_future_is_rejected(offset: timedelta) -> None:
    assert rejected_fields(create, expires_at=NOW + offset) == ["expires_at"]


# --- CreateLicenses: identifiers ---------------------------------------------------------------


def test_app_id_is_parsed_as_uuid() -> None:
    assert create(app_id=APP_ID).app_id == uuid.UUID(APP_ID)


@pytest.mark.parametrize("app_id", ["", "not-a-uuid", "12345", APP_ID + "0"])
def test_app_id_that_is_not_a_uuid_is_rejected(app_id: str) -> None:
    assert rejected_fields(create, app_id=app_id) == ["app_id"]


def test_missing_app_id_is_described_as_required() -> None:
    with pytest.raises(BadRequest) as caught:
        create(app_id="")
    assert caught.value.violations[0].description == "is required"


def test_request_id_is_optional() -> None:
    assert create(request_id="").request_id is None


def test_request_id_is_parsed_as_uuid() -> None:
    assert create(request_id=REQUEST_ID).request_id == uuid.UUID(REQUEST_ID)


@pytest.mark.parametrize("request_id", ["retry-1", "0b6f3a52", "0b6f3a52-2f4c-4d5e-9a31-5c0f6f1f7b1"])
def test_request_id_that_is_not_a_uuid_is_rejected(request_id: str) -> None:
    assert rejected_fields(create, request_id=request_id) == ["request_id"]


# --- CreateLicenses: all at once ---------------------------------------------------------------


def test_create_reports_every_violation_at_once() -> None:
    fields = rejected_fields(
        create,
        app_id="nope",
        quantity=0,
        max_hwid_slots=17,
        expires_at=NOW - timedelta(days=1),
        label="x" * 129,
        request_id="nope",
    )
    assert sorted(fields) == sorted(["app_id", "quantity", "max_hwid_slots", "expires_at", "label", "request_id"])


def test_valid_create_request_keeps_its_values() -> None:
    expiry = NOW + timedelta(days=30)
    cmd = create(quantity=5, max_hwid_slots=3, expires_at=expiry, label="Pro", request_id=REQUEST_ID)
    assert cmd == CreateLicenses(uuid.UUID(APP_ID), 5, expiry, 3, False, "Pro", uuid.UUID(REQUEST_ID))


# --- CreateLicenses: fingerprint ---------------------------------------------------------------


def test_fingerprint_is_equal_for_equal_content() -> None:
    expiry = NOW + timedelta(days=1)
    assert create(quantity=3, expires_at=expiry, label="a").fingerprint() == create(
        quantity=3, expires_at=expiry, label="a"
    ).fingerprint()


def test_fingerprint_ignores_request_id() -> None:
    assert create(request_id=REQUEST_ID).fingerprint() == create(request_id=str(uuid.uuid4())).fingerprint()


def test_fingerprint_is_equal_when_only_ignored_slots_differ() -> None:
    unlimited_a = create(unlimited_hwid_slots=True, max_hwid_slots=3)
    unlimited_b = create(unlimited_hwid_slots=True, max_hwid_slots=9)
    assert unlimited_a.fingerprint() == unlimited_b.fingerprint()


def test_fingerprint_is_equal_for_default_and_explicit_default_values() -> None:
    assert create(quantity=None, max_hwid_slots=None).fingerprint() == create(quantity=1, max_hwid_slots=1).fingerprint()


FINGERPRINT_BASE: dict[str, Any] = {"expires_at": NOW + timedelta(days=1)}


@pytest.mark.parametrize(
    "change",
    [
        {"app_id": "7d1f0c2a-8e3b-4f6a-b5c4-2a9e1d0f3c88"},
        {"quantity": 2},
        {"expires_at": None},
        {"expires_at": NOW + timedelta(days=2)},
        {"max_hwid_slots": 2},
        {"unlimited_hwid_slots": True},
        {"label": "other"},
    ],
    ids=["app_id", "quantity", "no-expiry", "other-expiry", "max_hwid_slots", "unlimited", "label"],
)
def test_fingerprint_differs_when_content_differs(change: dict[str, Any]) -> None:
    assert create(**FINGERPRINT_BASE).fingerprint() != create(**{**FINGERPRINT_BASE, **change}).fingerprint()


# --- ListLicenses ------------------------------------------------------------------------------


def test_limit_defaults_to_50() -> None:
    assert list_(limit=None).limit == 50


@pytest.mark.parametrize("limit", [1, 50, 200])
def test_limit_within_1_to_200_is_accepted(limit: int) -> None:
    assert list_(limit=limit).limit == limit


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_below_1_is_rejected(limit: int) -> None:
    assert rejected_fields(list_, limit=limit) == ["limit"]


@pytest.mark.parametrize("limit", [201, 10_000])
def test_limit_above_200_is_rejected(limit: int) -> None:
    assert rejected_fields(list_, limit=limit) == ["limit"]


def test_list_app_id_that_is_not_a_uuid_is_rejected() -> None:
    assert rejected_fields(list_, app_id="app-1") == ["app_id"]


def test_list_reports_app_id_and_limit_at_once() -> None:
    assert sorted(rejected_fields(list_, app_id="", limit=0)) == ["app_id", "limit"]


def test_list_passes_cursor_through() -> None:
    assert list_(cursor="abc").cursor == "abc"


# --- license_key -------------------------------------------------------------------------------


def test_license_key_is_normalized() -> None:
    assert commands.license_key(" abcd-efgh-jklm-npqr ") == KEY


def test_empty_license_key_is_required() -> None:
    with pytest.raises(BadRequest) as caught:
        commands.license_key("")
    assert [(v.field, v.description) for v in caught.value.violations] == [("key", "is required")]


def test_malformed_license_key_is_rejected_naming_key() -> None:
    with pytest.raises(BadRequest) as caught:
        commands.license_key("ABCD-EFGH")
    assert [v.field for v in caught.value.violations] == ["key"]
    assert "XXXX-XXXX-XXXX-XXXX" in caught.value.violations[0].description


# --- UpdateLicense -----------------------------------------------------------------------------


@pytest.mark.parametrize("action", [Action.REVOKE, Action.ACTIVATE, Action.RESET_HWID])
def test_update_without_extend_needs_no_expires_at(action: Action) -> None:
    assert update(action=action, expires_at=None) == UpdateLicense(KEY, action, None)


@pytest.mark.parametrize("action", [Action.REVOKE, Action.ACTIVATE, Action.RESET_HWID])
def test_update_drops_expires_at_for_actions_other_than_extend(action: Action) -> None:
    assert update(action=action, expires_at=NOW + timedelta(days=1)).expires_at is None


def test_update_action_is_required() -> None:
    assert rejected_fields(update, action=None) == ["action"]


def test_extend_keeps_its_expires_at() -> None:
    later = NOW + timedelta(days=10)
    assert update(action=Action.EXTEND, expires_at=later) == UpdateLicense(KEY, Action.EXTEND, later)


def test_extend_without_expires_at_is_rejected_once() -> None:
    assert rejected_fields(update, action=Action.EXTEND, expires_at=None) == ["expires_at"]


@pytest.mark.parametrize("offset", [timedelta(0), timedelta(days=-1)])
def test_extend_to_a_time_not_in_the_future_is_rejected(offset: timedelta) -> None:
    assert rejected_fields(update, action=Action.EXTEND, expires_at=NOW + offset) == ["expires_at"]


def test_update_normalizes_the_key() -> None:
    assert update(key="abcd-efgh-jklm-npqr").key == KEY


def test_update_with_malformed_key_is_rejected_naming_key() -> None:
    assert rejected_fields(update, key="nope") == ["key"]


def test_update_reports_key_and_action_at_once() -> None:
    assert sorted(rejected_fields(update, key="", action=None)) == ["action", "key"]


def test_update_reports_key_and_expires_at_at_once() -> None:
    fields = rejected_fields(update, key="nope", action=Action.EXTEND, expires_at=NOW)
    assert sorted(fields) == ["expires_at", "key"]
