"""Validation of a license for a device: the seat rules. Pure: no I/O."""
from __future__ import annotations

import enum
import re
from dataclasses import replace
from datetime import datetime, timedelta
from typing import NamedTuple

from . import limits
from .commands import parse_uuid
from .errors import Violations
from .keys import normalize_key
from .licenses import Change, EventType, HwidBinding, License, Status

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HWID_MAX_CHARS = 256
NONCE_MAX_CHARS = 128
# A bound device's last_seen_at is refreshed at most this often, so that a busy license does not
# turn every validation into a write.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)


class Code(enum.Enum):
    VALID = "valid"
    NOT_FOUND = "not_found"
    REVOKED = "revoked"
    EXPIRED = "expired"
    HWID_MISMATCH = "hwid_mismatch"
    APP_MISMATCH = "app_mismatch"


class Mode(enum.Enum):
    VALIDATE = "validate"  # may bind a new device to a free seat
    HEARTBEAT = "heartbeat"  # a running copy: never binds (except to record devices of unlimited keys)


# Check, Verdict (and the service's Outcome) are NamedTuples rather than frozen dataclasses: every
# validation makes one of each, and a NamedTuple is built in under half the time.
class Check(NamedTuple):
    app_id: str
    key: str
    hwid: str
    nonce: str


class Verdict(NamedTuple):
    code: Code
    bind: bool = False  # record the device: it takes a free seat, or joins an unlimited key
    touch: bool = False  # refresh the bound device's last_seen_at

    @property
    def valid(self) -> bool:
        return self.code is Code.VALID


def parse_check(*, app_id: str, key: str, hwid: str, nonce: str) -> Check:
    bad = Violations()
    # The canonical form is every well-behaved client's, and already what str(UUID) gives: a tenth
    # of the cost of parsing it (every validation carries one).
    app = app_id if _CANONICAL_UUID.fullmatch(app_id) else str(parse_uuid(bad, "app_id", app_id))
    normalized = normalize_key(key)
    if normalized is None:
        bad.add("key", "is required" if not key else "must look like XXXX-XXXX-XXXX-XXXX")
    if not 1 <= len(hwid) <= HWID_MAX_CHARS or not hwid.isprintable():
        bad.add("hwid", f"must be 1-{HWID_MAX_CHARS} printable characters")
    if len(nonce) > NONCE_MAX_CHARS or not nonce.isprintable():
        bad.add("nonce", f"must be at most {NONCE_MAX_CHARS} printable characters")
    bad.raise_if_any()
    return Check(app, normalized or "", hwid, nonce)


def judge(lic: License | None, check: Check, mode: Mode, now: datetime) -> Verdict:
    """The answer for this device, and whether it needs a write."""
    if lic is None:
        return Verdict(Code.NOT_FOUND)
    if lic.app_id != check.app_id:
        return Verdict(Code.APP_MISMATCH)
    status = lic.status(now)
    if status is Status.REVOKED:
        return Verdict(Code.REVOKED)
    if status is Status.EXPIRED:
        return Verdict(Code.EXPIRED)
    binding = bound(lic, check.hwid)
    if binding is not None:
        return Verdict(Code.VALID, touch=now - binding.last_seen_at >= LAST_SEEN_RESOLUTION)
    if lic.unlimited_hwid_slots:  # never a mismatch; the first devices are recorded, for visibility
        return Verdict(Code.VALID, bind=len(lic.hwids) < limits.UNLIMITED_RECORDED_DEVICES)
    if mode is Mode.VALIDATE and len(lic.hwids) < lic.max_hwid_slots:
        return Verdict(Code.VALID, bind=True)
    return Verdict(Code.HWID_MISMATCH)


def bound(lic: License, hwid: str) -> HwidBinding | None:
    return next((b for b in lic.hwids if b.hwid == hwid), None)


def bind(lic: License, hwid: str, now: datetime) -> Change:
    binding = HwidBinding(hwid, now, now)
    changed = replace(lic, hwids=(*lic.hwids, binding), version=lic.version + 1, updated_at=now)
    return Change(changed, EventType.HWID_BOUND)


def seats(lic: License | None) -> tuple[int, int]:
    """(used, allowed); allowed is 0 for an unlimited-seat license."""
    if lic is None:
        return 0, 0
    return len(lic.hwids), 0 if lic.unlimited_hwid_slots else lic.max_hwid_slots
