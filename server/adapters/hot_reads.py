"""The reads every call makes (the caller's token, a license by key) on plain psycopg.

Concurrent calls' reads are gathered: one query for every token, one for every license waiting
(`BatchLoader`). A token found live is kept in the process's `TokenCache`, which forgets every token
as soon as PostgreSQL notifies a change of api_tokens, so most calls make no token query at all.
Autocommit connections (no BEGIN/ROLLBACK round trips) and server-side prepared statements; the SQL
is compiled once from the same SQLAlchemy Core statements the unit of work uses, so the two paths
cannot drift apart.
"""
from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

from psycopg.rows import namedtuple_row
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.dialects.postgresql.psycopg import dialect as psycopg_dialect
from sqlalchemy.sql import Select

from server.domain.licenses import License

from .accounts_repository import LIVE_TOKENS
from .batching import BatchLoader
from .db import connection_wait_seconds, statement_timeout_option
from .repository import APP_OWNER, LICENSE_PAGE, LICENSES_BY_KEYS, StoredLicense, license_of, stored_license
from .token_cache import TokenCache


def _sql(statement: Select) -> str:  # type: ignore[type-arg]
    return str(statement.compile(dialect=psycopg_dialect()))


_LIVE_TOKENS = _sql(LIVE_TOKENS)
_LICENSES_BY_KEYS = _sql(LICENSES_BY_KEYS)
_APP_OWNER = _sql(APP_OWNER)
_LICENSE_PAGE = _sql(LICENSE_PAGE)
_APP_OWNERS_CACHED = 100_000  # an app never changes owner, so a found owner can be kept


async def open_fast_pool(database_url: str, size: int, statement_timeout_ms: int = 0) -> AsyncConnectionPool[Any]:
    """Connections for single-statement work: autocommit, statements prepared on first use."""
    pool = AsyncConnectionPool(
        database_url, min_size=min(2, size), max_size=size, open=False, name="fast-path",
        timeout=connection_wait_seconds(statement_timeout_ms),
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": namedtuple_row,
                "options": statement_timeout_option(statement_timeout_ms)},
    )
    await pool.open(wait=True)
    return pool


class HeldConnection:
    """A pool connection kept from one query to the next, for a caller that runs one query at a time
    (the license BatchLoader): taking and returning a pooled connection around each batch was ~20%
    of a batched read's Python time. Any failure or cancellation hands the connection back to the
    pool, which checks it and discards a broken one; the next query takes another. Should two
    queries ever overlap, the second simply uses a pooled connection of its own."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._connection: Any = None
        self._busy = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        if self._busy:
            async with self._pool.connection() as connection:
                yield connection
            return
        self._busy = True
        try:
            if self._connection is None:
                self._connection = await self._pool.getconn()
            yield self._connection
        except BaseException:
            await self.release()
            raise
        finally:
            self._busy = False

    async def release(self) -> None:
        """Hands the connection back to the pool (on a failure, and before the pool closes)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await self._pool.putconn(connection)


class HotReads:
    def __init__(self, pool: AsyncConnectionPool[Any], token_cache: TokenCache | None = None) -> None:
        """Without a `token_cache` (or with one that is not listening) every token is queried."""
        self._pool = pool
        self._token_cache = token_cache or TokenCache(ttl_seconds=0)
        self._app_owners: dict[uuid.UUID, uuid.UUID] = {}
        self._tokens = BatchLoader(self._live_tokens)
        # Lingering 3 ms once busy: at saturation a query answers ~14 calls instead of ~9, and
        # ValidateLicense does 5-9% more calls/s (A/B, same run, alternating). The price is latency
        # at moderate load, when calls come in bursts of 8 or more: p50 +0.2 to +1.5 ms at 200-3,000
        # calls/s (h2load --rps), p99 unchanged.
        self._licenses = BatchLoader(self._licenses_by_keys, linger=0.003)
        # The read a change starts from does not linger: a change's event lag counts from the call.
        # In the one full bench run where UpdateLicense's reads lingered, the lag's p50 was 17.1 ms
        # (11.1-12.6 in the runs before) and UpdateLicense 0.54 of its ceiling (0.65-0.71).
        self._licenses_to_change = BatchLoader(self._licenses_by_keys)
        self._license_connection = HeldConnection(pool)  # each license loader runs one query at a time

    async def live_token(self, token_hash: bytes) -> Any:
        """(id, account_id, scopes, expires_at) of a live token, or None."""
        if (row := self._token_cache.get(token_hash)) is not None:
            return row
        return await self._tokens.load(token_hash)

    async def license(self, key: str) -> StoredLicense | None:
        return await self._licenses.load(key)

    async def license_to_change(self, key: str) -> StoredLicense | None:
        """The same read, for a change about to be made (see __init__)."""
        return await self._licenses_to_change.load(key)

    async def _live_tokens(self, token_hashes: Sequence[bytes]) -> dict[bytes, Any]:
        generation = self._token_cache.generation  # before the query: a revocation during it wins
        async with self._pool.connection() as connection:
            cursor = await connection.execute(_LIVE_TOKENS, {"token_hashes": list(token_hashes)})
            found = {row.token_hash: row for row in await cursor.fetchall()}
        self._token_cache.store(found, generation)
        return found

    async def _licenses_by_keys(self, keys: Sequence[str]) -> dict[str, StoredLicense]:
        async with self._license_connection.connection() as connection:
            rows = await (await connection.execute(_LICENSES_BY_KEYS, {"keys": list(keys)})).fetchall()
        return {row.key: stored_license(row) for row in rows}

    async def close(self) -> None:
        """Gives back what it holds of the pool; before the pool closes."""
        await self._license_connection.release()

    async def app_owner(self, app_id: uuid.UUID) -> uuid.UUID | None:
        if owner := self._app_owners.get(app_id):
            return owner
        async with self._pool.connection() as connection:
            row = await (await connection.execute(_APP_OWNER, {"app_id": app_id})).fetchone()
        if row is None:
            return None  # not cached: the app may be created a moment later
        if len(self._app_owners) >= _APP_OWNERS_CACHED:
            self._app_owners.clear()
        self._app_owners[app_id] = row.account_id
        return row.account_id

    async def page(self, app_id: uuid.UUID, after_id: int, limit: int) -> list[tuple[int, License]]:
        """(row id, license) of up to `limit` licenses of the app after row `after_id`."""
        async with self._pool.connection() as connection:
            # Never prepared: a generic plan cannot know the app's size and place in the table, and
            # picks a primary-key walk that filters out every other app's rows (40 ms instead of 0.3
            # ms for a small app created after a big one). Planned with the values, a page is an
            # index range scan on (app_id, id) whenever that is cheaper.
            cursor = await connection.execute(
                _LICENSE_PAGE, {"app_id": app_id, "after_id": after_id, "limit": limit}, prepare=False
            )
            return [(row.id, license_of(row)) for row in await cursor.fetchall()]
