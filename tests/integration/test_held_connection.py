"""HeldConnection keeps one pooled connection across queries and gives it back on any failure, so a
broken or cancelled connection is never used again (server/adapters/hot_reads.py)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from server.adapters.hot_reads import HeldConnection, open_fast_pool


def _with_held(database_url: str, scenario: Callable[[HeldConnection, Callable[[], int]], Awaitable[Any]]) -> Any:
    """Runs `scenario(held, idle)` on a pool of 2; `idle()` counts the pool's idle connections."""
    async def run() -> Any:
        pool = await open_fast_pool(database_url, 2)
        held = HeldConnection(pool)
        try:
            return await scenario(held, lambda: pool.get_stats().get("pool_available", 0))
        finally:
            await held.release()
            await pool.close()
    return asyncio.run(run())


async def _backend_pid(held: HeldConnection) -> int:
    async with held.connection() as connection:
        return int((await (await connection.execute("SELECT pg_backend_pid() AS pid")).fetchone()).pid)


def test_the_same_connection_serves_one_query_after_another(database_url: str) -> None:
    async def scenario(held: HeldConnection, idle: Callable[[], int]) -> list[int]:
        return [await _backend_pid(held) for _ in range(3)]

    first, *rest = _with_held(database_url, scenario)
    assert rest == [first, first]


def test_a_failed_query_gives_the_connection_back_and_the_next_query_works(database_url: str) -> None:
    async def scenario(held: HeldConnection, idle: Callable[[], int]) -> None:
        await _backend_pid(held)
        assert idle() == 1  # one of the two is held
        with pytest.raises(psycopg.errors.DivisionByZero):
            async with held.connection() as connection:
                await connection.execute("SELECT 1 / 0")
        assert idle() == 2  # given back for the pool to check
        assert await _backend_pid(held) > 0

    _with_held(database_url, scenario)


def test_a_query_cancelled_midway_leaves_no_busy_connection_behind(database_url: str) -> None:
    async def scenario(held: HeldConnection, idle: Callable[[], int]) -> int:
        async def slow() -> None:
            async with held.connection() as connection:
                await connection.execute("SELECT pg_sleep(5)")

        task = asyncio.create_task(slow())
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await asyncio.wait_for(_backend_pid(held), timeout=2)  # not stuck behind the sleep

    assert _with_held(database_url, scenario) > 0


def test_overlapping_queries_each_get_a_connection(database_url: str) -> None:
    async def scenario(held: HeldConnection, idle: Callable[[], int]) -> set[int]:
        async def pid_while_sleeping() -> int:
            async with held.connection() as connection:
                row = await (await connection.execute("SELECT pg_backend_pid() AS pid, pg_sleep(0.2)")).fetchone()
                return int(row.pid)
        return set(await asyncio.gather(pid_while_sleeping(), pid_while_sleeping()))

    assert len(_with_held(database_url, scenario)) == 2
