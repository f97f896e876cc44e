"""Outbox rows as CloudEvents 1.0 binary-mode NATS messages with a protobuf `LicenseEvent` body."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from licensing.v1 import events_pb2
from server.adapters.serialization import license_from_json
from server.api.convert import license_message, set_time

CONTENT_TYPE = "application/protobuf"


@dataclass(frozen=True)
class OutboxRow:
    """An outbox row as the relay reads it: ids as text, which is all a message needs of them."""

    id: int
    event_id: str
    event_type: str  # e.g. "license.revoked"
    account_id: str
    actor_token_id: str | None
    app_id: str
    license_key: str
    version: int
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class Message:
    subject: str
    headers: dict[str, str]
    body: bytes


def subject(prefix: str, row: OutboxRow) -> str:
    # Consumers filter by app and type without decoding: `<prefix>.<app>.>`, `<prefix>.*.license.revoked`.
    return f"{prefix}.{row.app_id}.{row.event_type}"


def to_message(prefix: str, row: OutboxRow) -> Message:
    lic = license_from_json(row.payload)
    event = events_pb2.LicenseEvent(
        event_id=row.event_id,
        type=row.event_type,
        account_id=row.account_id,
        app_id=row.app_id,
        license_key=row.license_key,
        version=row.version,
        license=license_message(lic, row.created_at),
        actor_account_id=row.account_id,  # only an app's owner can change its licenses
        actor_token_id=row.actor_token_id or "",
    )
    set_time(event.time, row.created_at)
    headers = {
        "ce-specversion": "1.0",
        "ce-id": row.event_id,
        "ce-source": f"/licensing/apps/{row.app_id}",
        "ce-type": f"licensing.{row.event_type}.v1",
        "ce-subject": row.license_key,
        "ce-time": row.created_at.isoformat(),
        "ce-sequence": str(row.version),
        "content-type": CONTENT_TYPE,
        "Nats-Msg-Id": row.event_id,  # JetStream drops a re-publish inside its duplicate window
    }
    return Message(subject(prefix, row), headers, event.SerializeToString())
