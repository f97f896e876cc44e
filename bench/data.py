"""The benchmark's data: one account (through the real AccountService), its apps, and licenses
COPYed straight into `licenses` (outbox-free: a bulk load is not a change anyone subscribed to)."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from server.adapters.db import create_engine
from server.adapters.serialization import license_to_json
from server.domain.keys import ALPHABET
from server.domain.licenses import License
from server.service.accounts import AccountService

# base32 turns 10 random bytes into 16 symbols of its own 32-letter alphabet; map those onto the
# key alphabet: a key exactly as generate_key() makes it (80 bits), a million of them in a second.
_TO_KEY_ALPHABET = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET.encode())
PLENTY = 10**12  # credits: the account never runs out


def random_keys(n: int) -> list[str]:
    symbols = base64.b32encode(os.urandom(10 * n)).translate(_TO_KEY_ALPHABET).decode()
    return [f"{s[0:4]}-{s[4:8]}-{s[8:12]}-{s[12:16]}" for s in (symbols[i : i + 16] for i in range(0, 16 * n, 16))]


@dataclass(frozen=True)
class BenchAccount:
    account_id: uuid.UUID
    token: str
    apps: dict[str, uuid.UUID]  # name -> id

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


APP_NAMES = ("main", "big", "small", "ceiling", "lag", "relay")


def create_account(database_url: str) -> BenchAccount:
    async def make() -> BenchAccount:
        engine = create_engine(database_url, pool_size=1)
        try:
            accounts = AccountService(engine)
            issued = await accounts.create_account("bench", PLENTY)
            apps = {name: await accounts.create_app(issued.account_id, name) for name in APP_NAMES}
            return BenchAccount(issued.account_id, issued.token, apps)
        finally:
            await engine.dispose()

    return asyncio.run(make())


def add_credits(database_url: str, account: BenchAccount, amount: int = PLENTY) -> None:
    async def add() -> None:
        engine = create_engine(database_url, pool_size=1)
        try:
            await AccountService(engine).add_credits(account.account_id, amount)
        finally:
            await engine.dispose()

    asyncio.run(add())


def copy_licenses(database_url: str, app_id: uuid.UUID, n: int, chunk: int = 100_000) -> list[str]:
    """COPYs `n` active licenses into the app (ids ascending in the order given); returns their keys."""
    keys: list[str] = []
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY licenses (key, app_id, max_hwid_slots, unlimited_hwid_slots) FROM STDIN") as copy:
            for start in range(0, n, chunk):
                batch = random_keys(min(chunk, n - start))
                copy.write("".join(f"{key}\t{app_id}\t1\tf\n" for key in batch))
                keys.extend(batch)
    return keys


def vacuum(database_url: str) -> None:
    """VACUUM (ANALYZE) the tables the benchmark writes: after a bulk load or a write scenario, so that
    autovacuum does not wake up in the middle of the next measurement (it would take CPU from it)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("VACUUM (ANALYZE) licenses, outbox, outbox_pending, accounts, license_hwids")


def unqueue_events(database_url: str) -> None:
    """Takes every outbox row off the relay's queue, as if published (no relay runs yet)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("DELETE FROM outbox_pending")


def autovacuum_runs(database_url: str) -> dict[str, int]:
    """Autovacuum and autoanalyze runs so far on the benchmark's tables."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT relname, autovacuum_count + autoanalyze_count FROM pg_stat_user_tables "
            "WHERE autovacuum_count + autoanalyze_count > 0").fetchall()
    return {str(name): int(n) for name, n in rows}


def ids_of(database_url: str, app_id: uuid.UUID) -> list[int]:
    """Row ids of the app's licenses in keyset order."""
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT id FROM licenses WHERE app_id = %s ORDER BY id", (app_id,)).fetchall()
    return [int(r[0]) for r in rows]


def sample_payload(app_id: uuid.UUID) -> str:
    """An outbox payload as the server writes one (license_to_json), as JSON text."""
    now = datetime.now(UTC)
    lic = License(key=random_keys(1)[0], app_id=str(app_id), revoked=False, expires_at=None, max_hwid_slots=1,
                  unlimited_hwid_slots=False, label="", created_at=now, updated_at=now, version=1)
    return json.dumps(license_to_json(lic))


def copy_outbox_backlog(database_url: str, account_id: uuid.UUID, app_id: uuid.UUID, n: int) -> None:
    """`n` unpublished `license.created` outbox rows, one license each, as CreateLicenses writes them."""
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as connection, connection.cursor() as cursor:
        columns = "event_id, event_type, account_id, app_id, license_key, version, payload, created_at"
        with cursor.copy(f"COPY outbox ({columns}) FROM STDIN") as copy:
            for key in random_keys(n):
                lic = License(key=key, app_id=str(app_id), revoked=False, expires_at=None, max_hwid_slots=1,
                              unlimited_hwid_slots=False, label="", created_at=now, updated_at=now, version=1)
                copy.write_row((uuid.uuid4(), "license.created", account_id, app_id, key, 1,
                                json.dumps(license_to_json(lic)), now))
