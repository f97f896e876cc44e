"""TokenCache against a real PostgreSQL: a revocation's NOTIFY empties it within milliseconds, and
without its LISTEN connection it serves nothing until it listens again."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager

import psycopg
import pytest

from server.adapters.hot_reads import HotReads, open_fast_pool
from server.adapters.token_cache import APPLICATION_NAME, TokenCache
from server.domain.tokens import generate_token, hash_token

TTL = 60.0  # far longer than any wait below: what empties the cache here is the notification


@pytest.fixture
def own_database_url(fresh_database: Callable[[], str]) -> str:
    """A database of this test's own: the other test here closes it to new connections for a while."""
    return fresh_database()


def _new_token(database_url: str) -> bytes:
    with psycopg.connect(database_url, autocommit=True) as db:
        account = db.execute("INSERT INTO accounts (name) VALUES ('cache') RETURNING id").fetchone()[0]  # type: ignore[index]
        token_hash = hash_token(generate_token())
        db.execute("INSERT INTO api_tokens (account_id, token_hash) VALUES (%s, %s)", (account, token_hash))
    return token_hash


@asynccontextmanager
async def _listening_cache(database_url: str) -> AsyncIterator[tuple[TokenCache, HotReads]]:
    """A cache whose listen() runs (and is live), and the hot reads that fill it."""
    cache = TokenCache(TTL)
    listener = asyncio.create_task(cache.listen(database_url))
    pool = await open_fast_pool(database_url, 2)
    try:
        await _until(lambda: cache.live, within=5, what="the cache to listen")
        yield cache, HotReads(pool, cache)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await pool.close()


async def _until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until `condition` held (polled every millisecond); fails the test after `within`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within, f"waited {within}s for {what}"
        await asyncio.sleep(0.001)
    return time.monotonic() - start


async def _cached(cache: TokenCache, reads: HotReads, token_hash: bytes) -> bool:
    """Looks the token up as a call does; True when the cache kept it."""
    assert await reads.live_token(token_hash) is not None
    return cache.get(token_hash) is not None


_REVOKE = "UPDATE api_tokens SET revoked_at = now() WHERE token_hash = %s"
# The account's tokens go by ON DELETE CASCADE.
_DELETE_ACCOUNT = "DELETE FROM accounts WHERE id = (SELECT account_id FROM api_tokens WHERE token_hash = %s)"


@pytest.mark.parametrize("change", [_REVOKE, _DELETE_ACCOUNT], ids=["revoked", "account deleted"])
def test_a_changed_token_leaves_the_cache_within_moments_of_the_commit(own_database_url: str, change: str) -> None:
    token_hash = _new_token(own_database_url)

    async def scenario() -> None:
        async with _listening_cache(own_database_url) as (cache, reads):
            assert await _cached(cache, reads, token_hash)
            async with await psycopg.AsyncConnection.connect(own_database_url, autocommit=True) as db:
                await db.execute(change, (token_hash,))
            await _until(lambda: cache.get(token_hash) is None, within=2, what="the change's NOTIFY")
            assert await reads.live_token(token_hash) is None  # and it is not cached back

    asyncio.run(scenario())


@contextmanager
def _closed_to_new_connections(postgres_server_url: str, database_url: str) -> Iterator[None]:
    """Keeps the listener from reconnecting for a while (existing connections stay)."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


def test_a_cache_that_lost_its_listener_serves_nothing_until_it_listens_again(
        postgres_server_url: str, own_database_url: str) -> None:
    token_hash = _new_token(own_database_url)

    async def scenario() -> None:
        async with _listening_cache(own_database_url) as (cache, reads):
            assert await _cached(cache, reads, token_hash)
            async with await psycopg.AsyncConnection.connect(own_database_url, autocommit=True) as db:
                with _closed_to_new_connections(postgres_server_url, own_database_url):
                    killed = await db.execute(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = %s AND datname = current_database()", (APPLICATION_NAME,))
                    assert [row[0] for row in await killed.fetchall()] == [True]
                    await _until(lambda: not cache.live, within=2, what="the cache to notice")
                    assert cache.get(token_hash) is None
                    await asyncio.sleep(0.5)  # several reconnection attempts fail meanwhile
                    assert not cache.live
                    assert await reads.live_token(token_hash) is not None  # answered by the database ...
                    assert cache.get(token_hash) is None  # ... and not kept
            await _until(lambda: cache.live, within=10, what="the cache to listen again")
            assert await _cached(cache, reads, token_hash)

    asyncio.run(scenario())
