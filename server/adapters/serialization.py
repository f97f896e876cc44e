"""The license snapshot stored with each outbox event (JSON, readable by operators and the relay)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from server.domain.licenses import HwidBinding, License


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


def license_from_json(data: dict[str, Any]) -> License:
    return License(
        key=data["key"],
        app_id=data["app_id"],
        revoked=data["revoked"],
        expires_at=_time(data["expires_at"]),
        max_hwid_slots=data["max_hwid_slots"],
        unlimited_hwid_slots=data["unlimited_hwid_slots"],
        label=data["label"],
        hwids=tuple(
            HwidBinding(h["hwid"], datetime.fromisoformat(h["bound_at"]), datetime.fromisoformat(h["last_seen_at"]))
            for h in data["hwids"]
        ),
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
        version=data["version"],
    )


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
