"""Changes of licenses and their outbox events as one statement, each made only if its license is
still the version it was read at (optimistic concurrency).

The unit of work takes the row lock, reads, writes and commits in five round trips; this takes one,
and holds the row locks for that one statement only. Concurrent calls' changes go together in one
statement and one commit (`BatchLoader`): the locks are taken in row id order, so two such
statements never deadlock, and each change is still all or nothing with its event. The rule that decides the change stays in the
domain: the caller reads the license, applies the rule, and asks to save the result "if unchanged".
When another change committed in between, nothing is written and the caller reads again. Every
change bumps `version`, so a version match means the row is exactly what the rule saw. The outbox
row is the one the unit of work writes for the same change, and the outbox trigger NOTIFYs the
relay at commit.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from server.domain.caller import Caller
from server.domain.licenses import EventType, License

from .batching import BatchLoader
from .repository import StoredLicense
from .serialization import license_to_json

_EVENT_COLUMNS = "event_id, event_type, account_id, actor_token_id, app_id, license_key, version, payload, created_at"
# A change's values: the columns of its license row and of its outbox row (event ids come from
# gen_random_uuid(), as in license_issuer.py). They travel as one JSON array: psycopg dumps a list
# parameter element by element in Python, and 13 of them were a quarter of a worker's time under
# UpdateLicense; json.dumps is C, and PostgreSQL parses the array in one go.
_CHANGE_COLUMNS = """id bigint, read_version bigint, version bigint, revoked bool, expires_at timestamptz,
    now timestamptz, unbind bool, event_type text, account_id uuid, token_id uuid, app_id uuid, key text, payload jsonb"""

_SAVE = f"""
WITH change AS (
    SELECT * FROM jsonb_to_recordset(%(changes)s::jsonb) AS c({_CHANGE_COLUMNS})
), locked AS (
    SELECT l.id FROM licenses l JOIN change c ON c.id = l.id ORDER BY l.id FOR UPDATE OF l
), saved AS (
    UPDATE licenses l SET revoked = c.revoked, expires_at = c.expires_at, updated_at = c.now, version = c.version
    FROM change c
    WHERE l.id = c.id AND l.version = c.read_version AND l.id IN (SELECT id FROM locked)
    RETURNING l.id
), unbound AS (
    DELETE FROM license_hwids h USING change c
    WHERE c.unbind AND h.license_id = c.id AND c.id IN (SELECT id FROM saved)
), event AS (
    INSERT INTO outbox ({_EVENT_COLUMNS})
    SELECT gen_random_uuid(), event_type, account_id, token_id, app_id, key, version, payload, now
    FROM change WHERE id IN (SELECT id FROM saved)
)
SELECT id FROM saved
"""

_REMOVE = f"""
WITH change AS (
    SELECT * FROM jsonb_to_record(%(change)s::jsonb) AS c({_CHANGE_COLUMNS})
), removed AS (
    DELETE FROM licenses l USING change c WHERE l.id = c.id AND l.version = c.read_version RETURNING l.id
), event AS (
    INSERT INTO outbox ({_EVENT_COLUMNS})
    SELECT gen_random_uuid(), event_type, account_id, token_id, app_id, key, version, payload, now
    FROM change WHERE id IN (SELECT id FROM removed)
)
SELECT count(*) AS written FROM removed
"""


@dataclass(eq=False)  # each save is its own batch entry, even of the same license
class _Change:
    read: StoredLicense
    changed: License
    event: EventType
    caller: Caller

    def values(self) -> dict[str, Any]:
        """The change as a JSON object with the fields of _CHANGE_COLUMNS."""
        lic, payload = self.changed, license_to_json(self.changed)
        return {
            "id": self.read.id, "read_version": self.read.license.version, "version": lic.version,
            "revoked": lic.revoked, "expires_at": payload["expires_at"], "now": payload["updated_at"],
            "unbind": bool(self.read.license.hwids) and not lic.hwids, "event_type": self.event.value,
            "account_id": str(self.caller.account_id), "token_id": str(self.caller.token_id),
            "app_id": lic.app_id, "key": lic.key, "payload": payload,
        }


class LicenseWriter:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        # A save whose calls all left (deadlines passed) is stopped, also while it waits on a row lock:
        # it must not commit after its calls were answered DEADLINE_EXCEEDED.
        self._saves: BatchLoader[_Change, bool] = BatchLoader(self._save_all, max_in_flight=4, cancel_abandoned=True)

    async def save_if_unchanged(self, read: StoredLicense, changed: License, event: EventType, caller: Caller) -> bool:
        """Stores `changed` (revoked, expires_at, HWIDs cleared) with its event, unless the license is
        no longer the version `read` holds; False, writing nothing, then."""
        return bool(await self._saves.load(_Change(read, changed, event, caller)))

    async def remove_if_unchanged(self, read: StoredLicense, removed: License, caller: Caller) -> bool:
        """Deletes the license (its HWID bindings go with it) with its event, unless it changed since `read`."""
        change = json.dumps(_Change(read, removed, EventType.DELETED, caller).values())
        async with self._pool.connection() as connection:
            row = await (await connection.execute(_REMOVE, {"change": change})).fetchone()
        return bool(row and row.written)

    async def _save_all(self, saves: Sequence[_Change]) -> dict[_Change, bool]:
        # One change per license in a statement; a second one of the same license reads again and
        # goes in a later statement (it would fail its version check after the first anyway).
        first: dict[int, _Change] = {}
        for save in saves:
            first.setdefault(save.read.id, save)
        changes = json.dumps([save.values() for save in first.values()])
        try:
            async with self._pool.connection() as connection:
                rows = await (await connection.execute(_SAVE, {"changes": changes})).fetchall()
        except psycopg.errors.DeadlockDetected:  # with a change of the unit of work: neither is saved, both retry
            return {save: False for save in saves}
        saved = {row.id for row in rows}
        return {save: save.read.id in saved and first[save.read.id] is save for save in saves}
