"""CreateLicenses as one statement: insert the licenses and their outbox events, then debit the credits.

The account's credit row is the one every concurrent create of an account queues on, so its lock
must be held as briefly as possible: from the debit to the commit of a single autocommit statement,
never across a network round trip. The debit therefore runs last: its WHERE clause needs the row
counts of the inserts, so PostgreSQL performs them before it locks the account row (the debit-first
form held that lock while 100 licenses, their events and their index entries were written, and
creates of one account ran one at a time). A first, unlocked look at the credits skips the inserts
when they are already too few (a caller out of credits costs a read, not a hundred rolled-back
rows). After waiting for the lock, the debit is computed from the latest row version and the
`credits_never_negative` CHECK constraint fails the whole statement when too few credits are left:
nothing is inserted and credits never go below zero. The outbox rows are the ones the unit of work
writes for the same change (same columns, same payload), and the outbox trigger queues them for the
relay. The licenses are inserted from the keys in their payloads, so the two can never disagree.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from psycopg.errors import CheckViolation
from psycopg_pool import AsyncConnectionPool

from server.domain.caller import Caller
from server.domain.licenses import EventType, License

from .serialization import license_to_json

_ISSUE = """
WITH funded AS (
    SELECT credits >= %(quantity)s AS enough FROM accounts WHERE id = %(account_id)s
), new AS (
    SELECT payload, payload->>'key' AS key FROM jsonb_array_elements(%(payloads)s::jsonb) AS payload
    WHERE (SELECT enough FROM funded)
), issued AS (
    INSERT INTO licenses (key, app_id, revoked, expires_at, max_hwid_slots, unlimited_hwid_slots, label,
                          created_at, updated_at, version)
    SELECT key, %(app_id)s, false, %(expires_at)s, %(max_hwid_slots)s, %(unlimited_hwid_slots)s, %(label)s,
           %(now)s, %(now)s, 1
    FROM new
    RETURNING 1
), events AS (
    INSERT INTO outbox (event_id, event_type, account_id, actor_token_id, app_id, license_key, version, payload,
                        created_at)
    SELECT gen_random_uuid(), %(event_type)s, %(account_id)s, %(token_id)s, %(app_id)s, key, 1, payload, %(now)s
    FROM new
    RETURNING 1
), debit AS (
    UPDATE accounts SET credits = credits - %(quantity)s
    WHERE id = %(account_id)s
      AND (SELECT count(*) FROM issued) = %(quantity)s AND (SELECT count(*) FROM events) = %(quantity)s
    RETURNING id
)
-- Inserted but not debited cannot commit: 1/0 fails the statement.
SELECT CASE WHEN (SELECT enough FROM funded) THEN 1 / count(*) ELSE 0 END AS debited FROM debit
"""


_CREDITS_NEVER_NEGATIVE = "credits_never_negative"  # tables.accounts


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
        try:
            async with self._pool.connection() as connection:
                row = await (await connection.execute(_ISSUE, params)).fetchone()
        except CheckViolation as error:  # the credits were spent between the first look and the debit
            if error.diag.constraint_name == _CREDITS_NEVER_NEGATIVE:
                return False
            raise
        return bool(row and row.debited)



def _payloads(new: Sequence[License]) -> str:
    """The event payloads (which carry the keys) as one JSON array: one parameter, not arrays of
    values, whose per-element escaping in psycopg cost more than the rest of the call. The licenses
    are alike but for their keys, so the payload is serialized once and the key swapped in."""
    template = license_to_json(new[0])
    return json.dumps([{**template, "key": lic.key} for lic in new])
