"""License status and the update transitions: events, no-op repeats and versions."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from server.domain.licenses import (
    Action,
    EventType,
    HwidBinding,
    License,
    Status,
    apply,
    deleted,
)

CREATED = datetime(2030, 1, 1, tzinfo=UTC)
NOW = CREATED + timedelta(days=10)
LATER = NOW + timedelta(days=30)
PLUS_2 = timezone(timedelta(hours=2))


def license_(**overrides: Any) -> License:
    fields: dict[str, Any] = {
        "key": "ABCD-EFGH-JKLM-NPQR",
        "app_id": "0b6f3a52-2f4c-4d5e-9a31-5c0f6f1f7b10",
        "revoked": False,
        "expires_at": None,
        "max_hwid_slots": 2,
        "unlimited_hwid_slots": False,
        "label": "Pro",
        "created_at": CREATED,
        "updated_at": CREATED,
        "version": 1,
        "hwids": (),
    }
    fields.update(overrides)
    return License(**fields)


def binding(hwid: str = "hw-1") -> HwidBinding:
    return HwidBinding(hwid=hwid, bound_at=CREATED, last_seen_at=CREATED)


# --- status ------------------------------------------------------------------------------------


def test_license_without_expiry_is_active() -> None:
    assert license_(expires_at=None).status(NOW) is Status.ACTIVE


def test_license_expiring_later_is_active() -> None:
    assert license_(expires_at=NOW + timedelta(microseconds=1)).status(NOW) is Status.ACTIVE


def test_license_is_expired_at_its_expiry_instant() -> None:
    assert license_(expires_at=NOW).status(NOW) is Status.EXPIRED


def test_license_past_its_expiry_is_expired() -> None:
    assert license_(expires_at=NOW - timedelta(days=1)).status(NOW) is Status.EXPIRED


def test_revoked_license_is_revoked() -> None:
    assert license_(revoked=True).status(NOW) is Status.REVOKED


def test_revoked_takes_precedence_over_expired() -> None:
    assert license_(revoked=True, expires_at=NOW - timedelta(days=1)).status(NOW) is Status.REVOKED


# --- transitions that change the license -------------------------------------------------------


def test_revoke_revokes_an_active_license_and_emits_revoked() -> None:
    change = apply(license_(revoked=False), Action.REVOKE, NOW)
    assert change.license.revoked is True
    assert change.event is EventType.REVOKED


def test_activate_reactivates_a_revoked_license_and_emits_activated() -> None:
    change = apply(license_(revoked=True), Action.ACTIVATE, NOW)
    assert change.license.revoked is False
    assert change.event is EventType.ACTIVATED


def test_extend_sets_the_new_expiry_and_emits_extended() -> None:
    change = apply(license_(expires_at=NOW + timedelta(days=1)), Action.EXTEND, NOW, LATER)
    assert change.license.expires_at == LATER
    assert change.event is EventType.EXTENDED


def test_extend_gives_an_expiry_to_a_license_without_one() -> None:
    change = apply(license_(expires_at=None), Action.EXTEND, NOW, LATER)
    assert change.license.expires_at == LATER
    assert change.event is EventType.EXTENDED


def test_extend_makes_an_expired_license_active_again() -> None:
    change = apply(license_(expires_at=NOW - timedelta(days=1)), Action.EXTEND, NOW, LATER)
    assert change.license.status(NOW) is Status.ACTIVE


def test_extend_keeps_a_revoked_license_revoked() -> None:
    change = apply(license_(revoked=True), Action.EXTEND, NOW, LATER)
    assert change.license.status(NOW) is Status.REVOKED


def test_reset_hwid_clears_the_bindings_and_emits_hwid_reset() -> None:
    change = apply(license_(hwids=(binding("a"), binding("b"))), Action.RESET_HWID, NOW)
    assert change.license.hwids == ()
    assert change.event is EventType.HWID_RESET


CHANGING = [
    pytest.param({"revoked": False}, Action.REVOKE, None, id="revoke"),
    pytest.param({"revoked": True}, Action.ACTIVATE, None, id="activate"),
    pytest.param({"expires_at": None}, Action.EXTEND, LATER, id="extend"),
    pytest.param({"hwids": (binding(),)}, Action.RESET_HWID, None, id="reset-hwid"),
]


@pytest.mark.parametrize(("state", "action", "expires_at"), CHANGING)
def test_each_event_increments_the_version_by_one(
    state: dict[str, Any], action: Action, expires_at: datetime | None
) -> None:
    change = apply(license_(version=7, **state), action, NOW, expires_at)
    assert change.event is not None
    assert change.license.version == 8


@pytest.mark.parametrize(("state", "action", "expires_at"), CHANGING)
def test_each_event_stamps_updated_at(state: dict[str, Any], action: Action, expires_at: datetime | None) -> None:
    assert apply(license_(**state), action, NOW, expires_at).license.updated_at == NOW


@pytest.mark.parametrize(("state", "action", "expires_at"), CHANGING)
def test_a_change_leaves_the_other_fields_alone(
    state: dict[str, Any], action: Action, expires_at: datetime | None
) -> None:
    before = license_(**state)
    after = apply(before, action, NOW, expires_at).license
    untouched = ("key", "app_id", "max_hwid_slots", "unlimited_hwid_slots", "label", "created_at")
    assert {name: getattr(after, name) for name in untouched} == {name: getattr(before, name) for name in untouched}


def test_apply_does_not_mutate_the_given_license() -> None:
    before = license_(revoked=False, version=3)
    apply(before, Action.REVOKE, NOW)
    assert (before.revoked, before.version, before.updated_at) == (False, 3, CREATED)


def test_successive_events_each_add_one_to_the_version() -> None:
    lic = license_(version=1, hwids=(binding(),))
    for action, expires_at in [
        (Action.REVOKE, None),
        (Action.ACTIVATE, None),
        (Action.EXTEND, LATER),
        (Action.RESET_HWID, None),
    ]:
        lic = apply(lic, action, NOW, expires_at).license
    assert lic.version == 5


# --- no-op repeats -----------------------------------------------------------------------------

NO_OPS = [
    pytest.param({"revoked": True}, Action.REVOKE, None, id="revoke-revoked"),
    pytest.param({"revoked": False}, Action.ACTIVATE, None, id="activate-active"),
    pytest.param({"revoked": False, "expires_at": NOW - timedelta(days=1)}, Action.ACTIVATE, None, id="activate-expired"),
    pytest.param({"expires_at": LATER}, Action.EXTEND, LATER, id="extend-same-expiry"),
    pytest.param({"expires_at": LATER}, Action.EXTEND, LATER.astimezone(PLUS_2), id="extend-same-instant-other-zone"),
    pytest.param({"hwids": ()}, Action.RESET_HWID, None, id="reset-hwid-unbound"),
]


@pytest.mark.parametrize(("state", "action", "expires_at"), NO_OPS)
def test_repeating_a_transition_in_effect_emits_no_event(
    state: dict[str, Any], action: Action, expires_at: datetime | None
) -> None:
    assert apply(license_(**state), action, NOW, expires_at).event is None


@pytest.mark.parametrize(("state", "action", "expires_at"), NO_OPS)
def test_repeating_a_transition_in_effect_keeps_the_license_and_version(
    state: dict[str, Any], action: Action, expires_at: datetime | None
) -> None:
    before = license_(version=4, **state)
    after = apply(before, action, NOW, expires_at).license
    assert after == before
    assert after.version == 4


def test_revoking_twice_emits_one_event() -> None:
    first = apply(license_(), Action.REVOKE, NOW)
    second = apply(first.license, Action.REVOKE, NOW + timedelta(minutes=1))
    assert [first.event, second.event] == [EventType.REVOKED, None]
    assert second.license.version == first.license.version


# --- deleted -----------------------------------------------------------------------------------


def test_deleted_emits_deleted() -> None:
    assert deleted(license_(), NOW).event is EventType.DELETED


def test_deleted_takes_the_next_version() -> None:
    assert deleted(license_(version=9), NOW).license.version == 10


def test_deleted_carries_the_license_as_it_was() -> None:
    before = license_(revoked=True, expires_at=LATER, hwids=(binding(),), label="Team")
    after = deleted(before, NOW).license
    assert after == replace(before, version=before.version + 1, updated_at=NOW)


@pytest.mark.parametrize(
    ("event", "name"),
    [
        (EventType.CREATED, "license.created"),
        (EventType.REVOKED, "license.revoked"),
        (EventType.ACTIVATED, "license.activated"),
        (EventType.EXTENDED, "license.extended"),
        (EventType.HWID_RESET, "license.hwid_reset"),
        (EventType.DELETED, "license.deleted"),
    ],
)
def test_event_type_value_is_the_published_name(event: EventType, name: str) -> None:
    assert event.value == name
