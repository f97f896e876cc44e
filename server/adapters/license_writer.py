"""A change of one license and its outbox event as one statement, made only if the license is still
the version it was read at (optimistic concurrency).

The unit of work takes the row lock, reads, writes and commits in five round trips; this takes one,
and holds the row lock for that one statement only. The rule that decides the change stays in the
domain: the caller reads the license, applies the rule, and asks to save the result "if unchanged".
When another change committed in between, nothing is written and the caller reads again. Every
change bumps `version`, so a version match means the row is exactly what the rule saw. The outbox
row is the one the unit of work writes for the same change, and the outbox trigger NOTIFYs the
relay at commit.
"""
from __future__ import annotations

import uuid
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from server.domain.caller import Caller
from server.domain.licenses import EventType, License

from .repository import StoredLicense
from .serialization import license_to_json

_EVENT_COLUMNS = "event_id, event_type, account_id, actor_token_id, app_id, license_key, version, payload, created_at"
_EVENT_VALUES = ("%(event_id)s, %(event_type)s, %(account_id)s, %(token_id)s, %(app_id)s, %(key)s, %(version)s, "
                 "%(payload)s, %(now)s")

_SAVE = f"""
WITH saved AS (
    UPDATE licenses SET revoked = %(revoked)s, expires_at = %(expires_at)s, updated_at = %(now)s,
                        version = %(version)s
    WHERE id = %(id)s AND version = %(read_version)s
    RETURNING id
), unbound AS (
    DELETE FROM license_hwids WHERE %(unbind)s AND license_id IN (SELECT id FROM saved)
), event AS (
    INSERT INTO outbox ({_EVENT_COLUMNS}) SELECT {_EVENT_VALUES} FROM saved
)
SELECT count(*) AS written FROM saved
"""

_REMOVE = f"""
WITH removed AS (
    DELETE FROM licenses WHERE id = %(id)s AND version = %(read_version)s RETURNING id
), event AS (
    INSERT INTO outbox ({_EVENT_COLUMNS}) SELECT {_EVENT_VALUES} FROM removed
)
SELECT count(*) AS written FROM removed
"""


class LicenseWriter:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def save_if_unchanged(self, read: StoredLicense, changed: License, event: EventType, caller: Caller) -> bool:
        """Stores `changed` (revoked, expires_at, HWIDs cleared) with its event, unless the license is
        no longer the version `read` holds; False, writing nothing, then."""
        return await self._write(_SAVE, read, changed, event, caller, {
            "revoked": changed.revoked, "expires_at": changed.expires_at,
            "unbind": bool(read.license.hwids) and not changed.hwids,
        })

    async def remove_if_unchanged(self, read: StoredLicense, removed: License, caller: Caller) -> bool:
        """Deletes the license (its HWID bindings go with it) with its event, unless it changed since `read`."""
        return await self._write(_REMOVE, read, removed, EventType.DELETED, caller, {})

    async def _write(self, statement: str, read: StoredLicense, lic: License, event: EventType, caller: Caller,
                     extra: dict[str, Any]) -> bool:
        params = {
            "id": read.id, "read_version": read.license.version, "version": lic.version, "now": lic.updated_at,
            "event_id": uuid.uuid4(), "event_type": event.value, "account_id": caller.account_id,
            "token_id": caller.token_id, "app_id": uuid.UUID(lic.app_id), "key": lic.key,
            "payload": Jsonb(license_to_json(lic)), **extra,
        }
        async with self._pool.connection() as connection:
            row = await (await connection.execute(statement, params)).fetchone()
        return bool(row and row.written)
