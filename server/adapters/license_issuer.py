"""CreateLicenses as one statement: debit the credits, insert the licenses and their outbox events.

The account's credit row is the one every concurrent create of an account queues on. In a single
autocommit statement its lock lasts for that statement and the commit only, never for a network
round trip. The debit runs first (the inserts depend on it) and, after waiting for the row lock,
re-checks `credits >= n` against the latest row version: credits never go below zero. With too few
credits nothing is inserted. The outbox rows are the ones the unit of work writes for the same
change (same columns, same payload), and the outbox trigger NOTIFYs the relay at commit. The
licenses are inserted from the keys in their payloads, so the two can never disagree.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg_pool import AsyncConnectionPool

from server.domain.caller import Caller
from server.domain.licenses import EventType, License

from .serialization import license_to_json

_ISSUE = """
WITH debit AS (
    UPDATE accounts SET credits = credits - %(quantity)s
    WHERE id = %(account_id)s AND credits >= %(quantity)s
    RETURNING id
), new AS (
    SELECT payload, payload->>'key' AS key FROM jsonb_array_elements(%(payloads)s::jsonb) AS payload
    WHERE EXISTS (SELECT FROM debit)
), issued AS (
    INSERT INTO licenses (key, app_id, revoked, expires_at, max_hwid_slots, unlimited_hwid_slots, label,
                          created_at, updated_at, version)
    SELECT key, %(app_id)s, false, %(expires_at)s, %(max_hwid_slots)s, %(unlimited_hwid_slots)s, %(label)s,
           %(now)s, %(now)s, 1
    FROM new
), events AS (
    INSERT INTO outbox (event_id, event_type, account_id, actor_token_id, app_id, license_key, version, payload,
                        created_at)
    SELECT gen_random_uuid(), %(event_type)s, %(account_id)s, %(token_id)s, %(app_id)s, key, 1, payload, %(now)s
    FROM new
)
SELECT count(*) AS debited FROM debit
"""


class LicenseIssuer:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    async def issue(self, caller: Caller, new: Sequence[License]) -> bool:
        """Inserts `new` (all alike but their keys) with their events; False, writing nothing, when
        the account has fewer credits than licenses. Raises UniqueViolation on a key collision."""
        first = new[0]
        params = {
            "account_id": caller.account_id,
            "token_id": caller.token_id,
            "quantity": len(new),
            "app_id": uuid.UUID(first.app_id),
            "expires_at": first.expires_at,
            "max_hwid_slots": first.max_hwid_slots,
            "unlimited_hwid_slots": first.unlimited_hwid_slots,
            "label": first.label,
            "now": first.created_at,
            "event_type": EventType.CREATED.value,
            "payloads": _payloads(new),
        }
        async with self._pool.connection() as connection:
            row = await (await connection.execute(_ISSUE, params)).fetchone()
        return bool(row and row.debited)



def _payloads(new: Sequence[License]) -> str:
    """The event payloads (which carry the keys) as one JSON array: one parameter, not arrays of
    values, whose per-element escaping in psycopg cost more than the rest of the call. The licenses
    are alike but for their keys, so the payload is serialized once and the key swapped in."""
    template = license_to_json(new[0])
    return json.dumps([{**template, "key": lic.key} for lic in new])
