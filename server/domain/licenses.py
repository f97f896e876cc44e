"""Licenses and the rules that change them. Pure: no I/O, no gRPC, no SQL."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime


class Status(enum.Enum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"  # derived from expires_at, never stored


class Action(enum.Enum):
    REVOKE = "revoke"
    ACTIVATE = "activate"
    EXTEND = "extend"
    RESET_HWID = "reset-hwid"


class EventType(str, enum.Enum):
    CREATED = "license.created"
    REVOKED = "license.revoked"
    ACTIVATED = "license.activated"
    EXTENDED = "license.extended"
    HWID_RESET = "license.hwid_reset"
    HWID_BOUND = "license.hwid_bound"
    DELETED = "license.deleted"


@dataclass(frozen=True)
class HwidBinding:
    hwid: str
    bound_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class License:
    key: str
    app_id: str
    revoked: bool
    expires_at: datetime | None
    max_hwid_slots: int
    unlimited_hwid_slots: bool
    label: str
    created_at: datetime
    updated_at: datetime
    version: int
    hwids: tuple[HwidBinding, ...] = field(default=())

    def status(self, now: datetime) -> Status:
        if self.revoked:
            return Status.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return Status.EXPIRED
        return Status.ACTIVE


@dataclass(frozen=True)
class Change:
    """The outcome of an action: the license after it, and the event it emits (None for a no-op)."""

    license: License
    event: EventType | None


def apply(lic: License, action: Action, now: datetime, expires_at: datetime | None = None) -> Change:
    """Applies an update action. Repeating a transition already in effect is a no-op without event."""
    if action is Action.REVOKE:
        return _changed(lic, now, EventType.REVOKED, revoked=True) if not lic.revoked else Change(lic, None)
    if action is Action.ACTIVATE:
        return _changed(lic, now, EventType.ACTIVATED, revoked=False) if lic.revoked else Change(lic, None)
    if action is Action.EXTEND:
        if lic.expires_at == expires_at:
            return Change(lic, None)
        return _changed(lic, now, EventType.EXTENDED, expires_at=expires_at)
    if action is Action.RESET_HWID:
        return _changed(lic, now, EventType.HWID_RESET, hwids=()) if lic.hwids else Change(lic, None)
    raise ValueError(action)  # unreachable: the request parser admits only the actions above


def deleted(lic: License, now: datetime) -> Change:
    """Deletion's event carries the license as it was, with the version its event takes."""
    return Change(replace(lic, version=lic.version + 1, updated_at=now), EventType.DELETED)


def _changed(lic: License, now: datetime, event: EventType, **changes: object) -> Change:
    return Change(replace(lic, version=lic.version + 1, updated_at=now, **changes), event)  # type: ignore[arg-type]
