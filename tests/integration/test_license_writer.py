"""LicenseWriter: a change is written with its event only if the license is still the version read."""
from __future__ import annotations

import asyncio
import uuid

import psycopg

from server.adapters.hot_reads import HotReads, open_fast_pool
from server.adapters.license_writer import LicenseWriter
from server.adapters.repository import StoredLicense
from server.domain import licenses
from server.domain.caller import Caller, Scope
from server.domain.clock import utcnow
from server.domain.keys import generate_key
from server.domain.licenses import Action


def _license(db: psycopg.Connection) -> tuple[str, Caller]:
    account = db.execute("INSERT INTO accounts (name) VALUES ('writer') RETURNING id").fetchone()[0]  # type: ignore[index]
    app = db.execute("INSERT INTO apps (account_id, name) VALUES (%s, 'app') RETURNING id", (account,)).fetchone()[0]  # type: ignore[index]
    key = generate_key()
    db.execute("INSERT INTO licenses (key, app_id, max_hwid_slots, unlimited_hwid_slots) VALUES (%s, %s, 1, false)",
               (key, app))
    db.commit()
    return key, Caller(account, uuid.uuid4(), frozenset(Scope))


def _revoke(database_url: str, key: str, caller: Caller, *, concurrent_change: bool) -> tuple[bool, StoredLicense]:
    async def run() -> tuple[bool, StoredLicense]:
        pool = await open_fast_pool(database_url, 2)
        try:
            read = await HotReads(pool).license(key)
            assert read is not None
            if concurrent_change:  # another change commits between the read and the write
                async with pool.connection() as connection:
                    await connection.execute("UPDATE licenses SET version = version + 1 WHERE key = %s", (key,))
            change = licenses.apply(read.license, Action.REVOKE, utcnow())
            assert change.event is not None
            return await LicenseWriter(pool).save_if_unchanged(read, change.license, change.event, caller), read
        finally:
            await pool.close()

    return asyncio.run(run())


def _state(db: psycopg.Connection, key: str) -> tuple[object, ...]:
    row = db.execute("SELECT revoked, version, (SELECT count(*) FROM outbox WHERE license_key = %s) FROM licenses "
                     "WHERE key = %s", (key, key)).fetchone()
    db.commit()
    assert row is not None
    return tuple(row)


def test_a_change_of_the_version_read_is_saved_with_its_event(database_url: str, db: psycopg.Connection) -> None:
    key, caller = _license(db)
    saved, _ = _revoke(database_url, key, caller, concurrent_change=False)
    assert saved
    assert _state(db, key) == (True, 2, 1)


def test_a_change_of_a_stale_version_writes_nothing(database_url: str, db: psycopg.Connection) -> None:
    key, caller = _license(db)
    saved, _ = _revoke(database_url, key, caller, concurrent_change=True)
    assert not saved
    assert _state(db, key) == (False, 2, 0)  # only the concurrent change: no revoke, no event
