"""PostgreSQL and NATS for the tests and the benchmark: the configured ones, else the machine's own
on their usual ports, else embedded ones; plus throwaway databases and streams that are removed
when done, and the wait for a started server to report healthy. One place, so `make test` and
`make bench` always find the same servers."""
from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import nats
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js.errors import NotFoundError

from .embedded_nats import EmbeddedNats, port_is_open
from .embedded_postgres import database_url_for, start_embedded_postgres
from .migrate import migrate

ROOT = Path(__file__).resolve().parents[2]
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"


def postgres_server_url() -> str:
    """TEST_DATABASE_URL, else 127.0.0.1:5432 when it answers, else an embedded PostgreSQL."""
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    if port_is_open("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    return start_embedded_postgres(ROOT / ".data" / "test-postgres", keep_running=False)


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new, migrated database on the server; dropped (connections and all) on exit."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = database_url_for(server_url, name)
        migrate(url)
        yield url
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def nats_server() -> Iterator[str]:
    """NATS_URL, else 127.0.0.1:4222 when it answers, else an embedded nats-server with JetStream."""
    if url := os.environ.get("NATS_URL"):
        yield url
    elif port_is_open("127.0.0.1", 4222):
        yield LOCAL_NATS
    else:
        with tempfile.TemporaryDirectory(prefix="licensing-nats-") as data:
            server = EmbeddedNats(Path(data)).start()
            try:
                yield server.url
            finally:
                server.stop()


@dataclass(frozen=True)
class EventStream:
    """Where a relay publishes: a stream and subject prefix of its own."""

    nats_url: str
    name: str
    prefix: str

    def env(self) -> dict[str, str]:
        return {"NATS_URL": self.nats_url, "NATS_STREAM": self.name, "NATS_SUBJECT_PREFIX": self.prefix}


@contextlib.contextmanager
def event_stream(nats_url: str, prefix: str) -> Iterator[EventStream]:
    """A stream name of its own (the relay creates the stream); the stream is deleted on exit."""
    tag = uuid.uuid4().hex[:12]
    stream = EventStream(nats_url, f"{prefix.upper()}_{tag}", f"{prefix}_{tag}.events")
    try:
        yield stream
    finally:
        asyncio.run(_delete_stream(stream))


async def _delete_stream(stream: EventStream) -> None:
    client = await nats.connect(stream.nats_url)
    try:
        with contextlib.suppress(NotFoundError):
            await client.jetstream().delete_stream(stream.name)
    finally:
        await client.close()


def wait_until_serving(channel: grpc.Channel, name: str, exited: Callable[[], bool], timeout: float) -> None:
    """Returns once the server behind `channel` reports SERVING (gRPC health); raises at once if
    `exited()` says its process has ended, and after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    health = health_pb2_grpc.HealthStub(channel)
    while time.monotonic() < deadline:
        if exited():
            raise RuntimeError(f"{name} exited during start-up")
        try:
            if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            time.sleep(0.1)
    raise TimeoutError(f"{name} did not become healthy within {timeout:.0f}s")
