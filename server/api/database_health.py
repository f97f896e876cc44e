"""Health follows the database: NOT_SERVING while it cannot be reached, so that load balancers and
Kubernetes readiness probes send calls elsewhere; both pools' use is exported as metrics.

The check has a connection of its own: through the pools, a check queued behind calls that hold
every connection read as "database down" under load (seen: NOT_SERVING for 6 s while PostgreSQL was
fine), which sends the load elsewhere exactly when this replica is busiest. For the same reason a
check that is only slow is not enough: see `DatabaseProbe`."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from grpc_health.v1 import health, health_pb2
from prometheus_client import Gauge
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

POOL_CONNECTIONS = Gauge(
    "licensing_db_pool_connections", "Connections of the fast-path pool by state", ["state"],
    multiprocess_mode="livesum",
)
TRANSACTION_CONNECTIONS = Gauge(
    "licensing_db_transaction_connections_in_use", "Connections of the transaction pool in use",
    multiprocess_mode="livesum",
)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def watch_database(database_url: str, pool: AsyncConnectionPool[Any], engine: AsyncEngine,
                         servicer: health.aio.HealthServicer, services: list[str], interval: float = 2.0,
                         timeout: float = 1.0) -> None:
    probe = DatabaseProbe(database_url, timeout)
    current = SERVING
    try:
        while True:
            status = SERVING if await probe.reachable() else NOT_SERVING
            if status != current:
                log.warning("database %s: health %s", "reachable" if status == SERVING else "unreachable",
                            health_pb2.HealthCheckResponse.ServingStatus.Name(status))
                for name in services:
                    await servicer.set(name, status)
                current = status
            _export_pool_use(pool, engine)
            await asyncio.sleep(interval)
    finally:
        await probe.close()


def _export_pool_use(pool: AsyncConnectionPool[Any], engine: AsyncEngine) -> None:
    stats = pool.get_stats()
    POOL_CONNECTIONS.labels("total").set(stats.get("pool_size", 0))
    POOL_CONNECTIONS.labels("idle").set(stats.get("pool_available", 0))
    POOL_CONNECTIONS.labels("waiting_requests").set(stats.get("requests_waiting", 0))
    TRANSACTION_CONNECTIONS.set(engine.pool.checkedout())  # type: ignore[attr-defined]


class DatabaseProbe:
    """`SELECT 1` on a connection of its own, made again after a failure.

    An error (refused, terminated, no such database) means unreachable at once. A probe that only
    takes longer than `timeout` may be this process's event loop being busy: with every core taken
    by calls (bench, GetSigningKeys at ~5k calls/s, which no query serves), SELECT 1 here took
    0.9 s and more, and health went NOT_SERVING in both workers for 6 and 15 s (two runs) while
    every call was answered. So it takes `slow_before_down` slow probes in a row: with a 2 s
    interval, ~9 s of a database that does not answer at all, as behind a network partition.

    A slow SELECT 1 is not cancelled: the next probe waits on for the same query, until the probe
    that finds the database down cancels it and drops its connection. Cancelling at every slow
    probe cost PostgreSQL a cancel request (a new connection) when it was slowest to answer, and
    psycopg then logged "query cancellation failed: cancellation timeout expired" after 5 s."""

    def __init__(self, database_url: str, timeout: float, slow_before_down: int = 3) -> None:
        self._url = database_url
        self._timeout = timeout
        self._slow_before_down = slow_before_down
        self._slow = 0  # slow probes in a row
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._query: asyncio.Task[None] | None = None  # the SELECT 1 a slow probe left running

    async def reachable(self) -> bool:
        if self._query is None:
            self._query = asyncio.create_task(self._select_one(), name="database-probe")
        done, _ = await asyncio.wait({self._query}, timeout=self._timeout)
        if not done:
            self._slow += 1
            if self._slow < self._slow_before_down:
                return True
            await self.close()  # down: the next probe starts over on a new connection (a hung one never heals)
            return False
        query, self._query = self._query, None
        try:
            query.result()
        except Exception:  # any error: do not send calls here
            await self.close()
            return False
        self._slow = 0
        return True

    async def _select_one(self) -> None:
        if self._connection is None:
            self._connection = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
        await self._connection.execute("SELECT 1")

    async def close(self) -> None:
        query, self._query = self._query, None
        if query is not None:  # a probe's query still running: down, or shutting down
            query.cancel()
            await asyncio.wait({query})
            if not query.cancelled():
                query.exception()  # retrieved: whatever it was, nobody waits for it any more
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()
