"""The relay's queries on the outbox table, on one autocommit psycopg connection.

That connection also holds the leader lock, so a relay that lost its connection has lost the lock
and can mark nothing more: only the leader claims and marks rows.
"""
from __future__ import annotations

from datetime import timedelta

import psycopg
from psycopg.rows import class_row

from .messages import OutboxRow

LEADER_LOCK = 7_202_611_291  # pg_advisory_lock key of the active relay


async def try_lead(connection: psycopg.AsyncConnection) -> bool:
    row = await (await connection.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))).fetchone()
    return bool(row and row[0])


# An OutboxRow's columns, ids as text (all a message needs of them, without UUID objects).
ROW_COLUMNS = ("id, event_id::text, event_type, account_id::text, actor_token_id::text, app_id::text, license_key, "
               "version, payload, created_at")
# Marks the rows the last batch published (deletes their ids from the queue) and claims the next
# batch, in one statement and one round trip. The claim reads the queue as it was when the statement
# began, so the ids being deleted are left out by hand. For each queued id, in id order, its outbox
# row by primary key: a plain join may be planned as a merge join, which walks the outbox's primary
# key from its first row, published ones included (the relay slowed down as the table grew); the
# LATERAL subquery with OFFSET 0 cannot be merged into the join, so each queued id costs one index
# lookup.
_MARK_AND_CLAIM = f"""
WITH marked AS (
    DELETE FROM outbox_pending WHERE id = ANY(%(published)s) RETURNING id
)
SELECT o.* FROM outbox_pending p
CROSS JOIN LATERAL (SELECT {ROW_COLUMNS} FROM outbox WHERE outbox.id = p.id OFFSET 0) o
WHERE p.id NOT IN (SELECT id FROM marked) AND o.license_key <> ALL(%(skip_licenses)s)
ORDER BY p.id LIMIT %(limit)s
"""


async def mark_and_claim(connection: psycopg.AsyncConnection, published: list[int], limit: int,
                         skip_licenses: list[str]) -> list[OutboxRow]:
    """Marks `published` rows published, and returns the oldest unpublished rows but those of
    `skip_licenses`, at most `limit`.

    Selected by status (an id still in outbox_pending), never by "id greater than the last one": a
    row whose transaction commits after a later id's is still picked up on the next pass. No row
    lock: only the leader claims (the lock in try_lead), and a row claimed twice, by a leader that
    died before marking it and by the next one, is published twice with the same Nats-Msg-Id,
    which JetStream drops.
    """
    async with connection.cursor(row_factory=class_row(OutboxRow)) as cursor:
        await cursor.execute(_MARK_AND_CLAIM, {"published": published, "limit": limit,
                                               "skip_licenses": skip_licenses})
        return await cursor.fetchall()


async def mark_published(connection: psycopg.AsyncConnection, ids: list[int]) -> None:
    if ids:
        await connection.execute("DELETE FROM outbox_pending WHERE id = ANY(%s)", (ids,))


async def delete_published(connection: psycopg.AsyncConnection, older_than: timedelta, batch: int) -> int:
    """Deletes up to `batch` published rows created longer ago than `older_than`; short statements,
    short locks.

    Looks only at the `batch` oldest published rows (by id, which follows creation time closely),
    so a sweep with nothing to delete reads one batch of the primary key, not the whole table.
    """
    cursor = await connection.execute(
        """
        DELETE FROM outbox WHERE id IN (
            SELECT id FROM (
                SELECT o.id, o.created_at FROM outbox o
                WHERE NOT EXISTS (SELECT FROM outbox_pending p WHERE p.id = o.id)
                ORDER BY o.id LIMIT %s
            ) oldest
            WHERE created_at < now() - %s
        )
        """,
        (batch, older_than),
    )
    return cursor.rowcount


async def delete_expired_requests(connection: psycopg.AsyncConnection, older_than: timedelta, batch: int) -> int:
    """Deletes up to `batch` idempotency records (request ids of creates) older than `older_than`.

    A create checks a record's age itself, so an expired one is never honoured; this only keeps the
    table from growing for ever. The active relay does it, as the one process with periodic sweeps.
    """
    cursor = await connection.execute(
        """
        DELETE FROM idempotency WHERE (account_id, request_id) IN (
            SELECT account_id, request_id FROM idempotency WHERE created_at < now() - %s ORDER BY created_at LIMIT %s
        )
        """,
        (older_than, batch),
    )
    return cursor.rowcount


async def backlog(connection: psycopg.AsyncConnection) -> tuple[int, float]:
    """Unpublished rows, and the age in seconds of the oldest one (0 when none).

    The oldest is the first queued id's row (ids follow creation time closely): two index lookups,
    where min(created_at) over a join of the queue and the outbox hashed both tables every second.
    """
    row = await (await connection.execute(
        """
        SELECT count(*), coalesce(extract(epoch FROM now() - (
            SELECT created_at FROM outbox WHERE id = (SELECT min(id) FROM outbox_pending)
        )), 0)
        FROM outbox_pending
        """
    )).fetchone()
    assert row is not None
    return int(row[0]), float(row[1])
