"""Health follows the database: NOT_SERVING while it cannot be reached, so that load balancers and
Kubernetes readiness probes send calls elsewhere; both pools' use is exported as metrics."""
from __future__ import annotations

import asyncio
import logging
from typing import Any

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


async def watch_database(pool: AsyncConnectionPool[Any], engine: AsyncEngine, servicer: health.aio.HealthServicer,
                         services: list[str], interval: float = 2.0, timeout: float = 1.0) -> None:
    current = SERVING
    while True:
        status = SERVING if await _reachable(pool, timeout) else NOT_SERVING
        if status != current:
            log.warning("database %s: health %s", "reachable" if status == SERVING else "unreachable",
                        health_pb2.HealthCheckResponse.ServingStatus.Name(status))
            for name in services:
                await servicer.set(name, status)
            current = status
        stats = pool.get_stats()
        POOL_CONNECTIONS.labels("total").set(stats.get("pool_size", 0))
        POOL_CONNECTIONS.labels("idle").set(stats.get("pool_available", 0))
        POOL_CONNECTIONS.labels("waiting_requests").set(stats.get("requests_waiting", 0))
        TRANSACTION_CONNECTIONS.set(engine.pool.checkedout())  # type: ignore[attr-defined]
        await asyncio.sleep(interval)


async def _reachable(pool: AsyncConnectionPool[Any], timeout: float) -> bool:
    try:
        async with asyncio.timeout(timeout), pool.connection(timeout=timeout) as connection:
            await connection.execute("SELECT 1")
        return True
    except Exception:  # any failure to answer within the timeout means: do not send calls here
        return False
