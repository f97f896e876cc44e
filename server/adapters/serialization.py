"""The license snapshot stored with each outbox event (JSON, readable by operators and the relay)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from server.domain.licenses import License


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def license_to_json(lic: License) -> dict[str, Any]:
    return {
        "key": lic.key,
        "app_id": lic.app_id,
        "revoked": lic.revoked,
        "expires_at": _iso(lic.expires_at),
        "max_hwid_slots": lic.max_hwid_slots,
        "unlimited_hwid_slots": lic.unlimited_hwid_slots,
        "label": lic.label,
        "hwids": [
            {"hwid": h.hwid, "bound_at": _iso(h.bound_at), "last_seen_at": _iso(h.last_seen_at)}
            for h in lic.hwids
        ],
        "created_at": _iso(lic.created_at),
        "updated_at": _iso(lic.updated_at),
        "version": lic.version,
    }
