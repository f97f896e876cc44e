"""The reads every call makes (the caller's token, a license by key) on plain psycopg.

Autocommit connections (no BEGIN/ROLLBACK round trips) and server-side prepared statements; the
SQL is compiled once from the same SQLAlchemy Core statements the unit of work uses, so the two
paths cannot drift apart.
"""
from __future__ import annotations

import uuid

from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.sql import Select

from .accounts_repository import ACCOUNT_OF_TOKEN
from .repository import LICENSE_BY_KEY, StoredLicense, stored_license


def _sql(statement: Select) -> str:  # type: ignore[type-arg]
    return str(statement.compile(dialect=psycopg_dialect()))


_ACCOUNT_OF_TOKEN = _sql(ACCOUNT_OF_TOKEN)
_LICENSE_BY_KEY = _sql(LICENSE_BY_KEY)


class HotReads:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, database_url: str, size: int) -> HotReads:
        pool = AsyncConnectionPool(
            database_url, min_size=size, max_size=size, open=False, name="hot-reads",
            kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": namedtuple_row},
        )
        await pool.open(wait=True)
        return cls(pool)

    async def close(self) -> None:
        await self._pool.close()

    async def account_of_token(self, token_hash: bytes) -> uuid.UUID | None:
        async with self._pool.connection() as connection:
            row = await (await connection.execute(_ACCOUNT_OF_TOKEN, {"token_hash": token_hash})).fetchone()
        return row.account_id if row else None

    async def license(self, key: str) -> StoredLicense | None:
        async with self._pool.connection() as connection:
            row = await (await connection.execute(_LICENSE_BY_KEY, {"key": key})).fetchone()
        return stored_license(row) if row else None
