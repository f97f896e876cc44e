"""Each relay test gets its own database and stream: the relay's leader lock is per database, so
sharing one with the e2e session's server would make that server's relay a competitor."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import EventStream

from .harness import App, RelayProcess, make_app, spawn_relay

StartRelay = Callable[..., RelayProcess]


@pytest.fixture
def relay_database(fresh_database: Callable[[], str]) -> str:
    return fresh_database()


@pytest.fixture
def relay_stream(new_event_stream: Callable[[], EventStream]) -> EventStream:
    return new_event_stream()


@pytest.fixture
def app(relay_database: str) -> App:
    return make_app(relay_database)


@pytest.fixture
def start_relay(tmp_path: Path) -> Iterator[StartRelay]:
    """Starts relay processes (`start_relay(database_url, stream, ENV=value...)`); all are stopped afterwards."""
    started: list[RelayProcess] = []

    def start(database_url: str, stream: EventStream, **env: str) -> RelayProcess:
        relay = spawn_relay(database_url, stream, tmp_path / f"relay-{len(started)}.log", **env)
        started.append(relay)
        return relay

    try:
        yield start
    finally:
        for relay in started:
            relay.stop()
