"""The health check's database probe: an error means down at once, slowness only when it lasts."""
from __future__ import annotations

import asyncio
import socket

import psycopg
import pytest

from server.api.database_health import DatabaseProbe


def _probes(probe: DatabaseProbe, n: int) -> list[bool]:
    async def run() -> list[bool]:
        try:
            return [await probe.reachable() for _ in range(n)]
        finally:
            await probe.close()

    return asyncio.run(run())


def test_a_database_that_answers_is_reachable(database_url: str) -> None:
    assert _probes(DatabaseProbe(database_url, timeout=5), 2) == [True, True]


def test_a_refused_connection_is_unreachable_at_the_first_probe() -> None:
    assert _probes(DatabaseProbe("postgresql://postgres@127.0.0.1:1/none", timeout=5), 1) == [False]


def test_only_slow_probes_in_a_row_mean_unreachable(database_url: str) -> None:
    # A timeout no connection can meet: every probe is slow.
    assert _probes(DatabaseProbe(database_url, timeout=1e-6, slow_before_down=3), 4) == [True, True, False, False]


def test_an_answer_in_time_forgets_the_slow_probes_before_it(database_url: str) -> None:
    probe = DatabaseProbe(database_url, timeout=1e-6, slow_before_down=2)

    async def run() -> list[bool]:
        try:
            slow = await probe.reachable()
            probe._timeout = 5  # the database answers in time again
            answered = await probe.reachable()
            probe._timeout = 1e-6
            return [slow, answered, await probe.reachable()]
        finally:
            await probe.close()

    assert asyncio.run(run()) == [True, True, True]


def test_a_slow_probe_cancels_nothing_and_the_next_probe_waits_on_for_the_same_query(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cancel request costs PostgreSQL a new connection just when it is slowest to answer."""
    cancels: list[object] = []
    cancel_safe = psycopg.AsyncConnection.cancel_safe

    async def counted_cancel_safe(self: psycopg.AsyncConnection, *args: object, **kwargs: object) -> None:
        cancels.append(self)
        await cancel_safe(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(psycopg.AsyncConnection, "cancel_safe", counted_cancel_safe)
    probe = DatabaseProbe(database_url, timeout=5)

    async def run() -> list[object]:
        try:
            connected = await probe.reachable()
            connection = probe._connection
            probe._timeout = 1e-6  # SELECT 1 is still on its way when the probe stops waiting
            slow = [await probe.reachable() for _ in range(2)]
            probe._timeout = 5
            answered = await probe.reachable()
            return [connected, *slow, answered, probe._connection is connection]
        finally:
            await probe.close()

    assert asyncio.run(run()) == [True, True, True, True, True]
    assert cancels == []


def test_a_probe_that_found_the_database_down_by_slowness_drops_the_hung_query_and_recovers(database_url: str) -> None:
    """Behind a partition a connection can hang for good (no reset ever comes): the probe that
    finds the database down gives it up, so that a later probe can reach the database again."""
    black_hole = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    port = black_hole.getsockname()[1]
    probe = DatabaseProbe(f"postgresql://postgres@127.0.0.1:{port}/none", timeout=0.05, slow_before_down=2)

    async def run() -> list[bool]:
        try:
            hung = [await probe.reachable() for _ in range(2)]
            probe._url, probe._timeout = database_url, 5  # the partition heals
            return [*hung, await probe.reachable()]
        finally:
            await probe.close()

    with black_hole:
        assert asyncio.run(run()) == [True, False, True]
