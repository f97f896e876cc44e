"""Typed, validated requests. Every limit of the reference is checked here, all at once."""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime

from . import limits
from .errors import Violations
from .keys import normalize_key
from .licenses import Action


@dataclass(frozen=True)
class CreateLicenses:
    app_id: uuid.UUID
    quantity: int
    expires_at: datetime | None
    max_hwid_slots: int  # 0 when unlimited
    unlimited_hwid_slots: bool
    label: str
    request_id: uuid.UUID | None

    def fingerprint(self) -> bytes:
        """Identifies the request's content, so a reused request_id with other content is caught."""
        expiry = self.expires_at.isoformat() if self.expires_at else ""
        parts = (self.app_id, self.quantity, expiry, self.max_hwid_slots, self.unlimited_hwid_slots, self.label)
        return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


@dataclass(frozen=True)
class ListLicenses:
    app_id: uuid.UUID
    limit: int
    cursor: str


@dataclass(frozen=True)
class UpdateLicense:
    key: str
    action: Action
    expires_at: datetime | None


def create_licenses(
    *,
    app_id: str,
    quantity: int | None,
    expires_at: datetime | None,
    max_hwid_slots: int | None,
    unlimited_hwid_slots: bool,
    label: str,
    request_id: str,
    now: datetime,
) -> CreateLicenses:
    bad = Violations()
    app = parse_uuid(bad, "app_id", app_id)
    quantity = _in_range(bad, "quantity", quantity, limits.QUANTITY_MIN, limits.QUANTITY_MAX, limits.QUANTITY_DEFAULT)
    if unlimited_hwid_slots:
        slots = 0  # the reference ignores max_hwid_slots for unlimited-seat keys
    else:
        slots = _in_range(
            bad, "max_hwid_slots", max_hwid_slots,
            limits.HWID_SLOTS_MIN, limits.HWID_SLOTS_MAX, limits.HWID_SLOTS_DEFAULT,
        )
    _future(bad, "expires_at", expires_at, now)
    if len(label) > limits.LABEL_MAX_CHARS:  # str length counts characters, not UTF-8 bytes
        bad.add("label", f"must be at most {limits.LABEL_MAX_CHARS} characters, got {len(label)}")
    if "\x00" in label:  # PostgreSQL text cannot hold NUL; say so instead of failing in the database
        bad.add("label", "must not contain NUL characters")
    request = parse_uuid(bad, "request_id", request_id) if request_id else None
    bad.raise_if_any()
    return CreateLicenses(app, quantity, expires_at, slots, unlimited_hwid_slots, label, request)


def list_licenses(*, app_id: str, limit: int | None, cursor: str) -> ListLicenses:
    bad = Violations()
    app = parse_uuid(bad, "app_id", app_id)
    size = _in_range(bad, "limit", limit, limits.PAGE_MIN, limits.PAGE_MAX, limits.PAGE_DEFAULT)
    bad.raise_if_any()
    return ListLicenses(app, size, cursor)


def license_key(raw: str, bad: Violations | None = None) -> str:
    own = bad is None
    bad = bad or Violations()
    key = normalize_key(raw)
    if key is None:
        bad.add("key", "is required" if not raw else "must look like XXXX-XXXX-XXXX-XXXX")
    if own:
        bad.raise_if_any()
    return key or ""


def update_license(*, key: str, action: Action | None, expires_at: datetime | None, now: datetime) -> UpdateLicense:
    bad = Violations()
    normalized = license_key(key, bad)
    if action is None:
        bad.add("action", "is required: one of revoke, activate, extend, reset-hwid")
    if action is Action.EXTEND:
        if expires_at is None:
            bad.add("expires_at", "is required for extend")
        _future(bad, "expires_at", expires_at, now)
    bad.raise_if_any()
    assert action is not None
    return UpdateLicense(normalized, action, expires_at if action is Action.EXTEND else None)


def parse_uuid(bad: Violations, name: str, raw: str) -> uuid.UUID:
    if not raw:
        bad.add(name, "is required")
        return uuid.UUID(int=0)
    try:
        return uuid.UUID(raw)
    except ValueError:
        bad.add(name, "must be a UUID")
        return uuid.UUID(int=0)


def _in_range(bad: Violations, name: str, value: int | None, low: int, high: int, default: int) -> int:
    if value is None:
        return default
    if not low <= value <= high:
        bad.add(name, f"must be between {low} and {high}, got {value}")
    return value


def _future(bad: Violations, name: str, value: datetime | None, now: datetime) -> None:
    if value is not None and value <= now:
        bad.add(name, "must be in the future")
