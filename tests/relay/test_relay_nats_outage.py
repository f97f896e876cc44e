"""NATS goes away while the service keeps writing: the outbox absorbs the changes, and once NATS is
back (same port, same data) the relay drains it: every event once, in order per license.

The scenario runs once for the module, on a dedicated nats-server; each test checks one outcome.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

import psycopg
import pytest

from server.adapters.embedded_nats import EmbeddedNats, free_port
from tests.conftest import EventStream
from tests.events import Received

from .harness import (
    Load,
    RelayProcess,
    WriterPool,
    Written,
    assert_stream_holds_exactly,
    backlog,
    create_licenses,
    make_app,
    new_keys,
    spawn_relay,
    stream_events,
    wait_until,
)

OUTAGE_SECONDS = 6.5  # longer than the relay's 5 s publish timeout: publishes fail, not just wait
DRAIN_LIMIT_SECONDS = 20.0


@dataclass(frozen=True)
class Outage:
    backlog_at_stop: int
    backlog_at_restart: int
    written_during_outage: int  # rows whose transactions began after NATS stopped
    published_during_outage: int  # of those, how many were marked published before NATS came back
    created: list[Written]
    load: Load
    drained_seconds: float | None  # from the restart until the backlog was 0
    received: list[Received]


def _db_clock(database_url: str) -> datetime:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute("SELECT clock_timestamp()").fetchone()
        assert row is not None
        return row[0]


def _written_since(database_url: str, since: datetime) -> tuple[int, int]:
    """Rows whose change happened after `since`, and how many of them are marked published."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT FROM outbox_pending p WHERE p.id = o.id))"
            " FROM outbox o WHERE o.created_at > %s", (since,)
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


@pytest.fixture(scope="module")
def outage(fresh_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    database_url = fresh_database()
    work = tmp_path_factory.mktemp("nats-outage")
    nats_dir, port = work / "nats", free_port()
    server = EmbeddedNats(nats_dir, port).start()
    tag = uuid.uuid4().hex[:12]
    stream = EventStream(server.url, f"LICENSING_OUTAGE_{tag}", f"licensing_outage_{tag}.events")
    app = make_app(database_url)
    keys = new_keys(20)
    relay: RelayProcess | None = None
    try:
        created = create_licenses(database_url, app, keys)
        relay = spawn_relay(database_url, stream, work / "relay.log")
        wait_until(relay.is_active, 10, "the relay is active")
        with WriterPool(database_url, app, keys, writers=3, max_pause=0.005, rollback_rate=0.2, seed=5) as pool:
            wait_until(lambda: pool.load.committed_count() >= 100, 10, "writers committed some changes")
            # The relay falls behind just before the outage, so batches with several events per
            # license are waiting when NATS goes: their publishes fail, not only their first ones.
            relay.pause()
            time.sleep(0.5)
            server.stop()
            stopped_at = _db_clock(database_url)
            backlog_at_stop = backlog(database_url)
            relay.resume()
            time.sleep(OUTAGE_SECONDS)
            written_during_outage, published_during_outage = _written_since(database_url, stopped_at)
            backlog_at_restart = backlog(database_url)
            server = EmbeddedNats(nats_dir, port).start()
            restarted_at = time.monotonic()
            time.sleep(0.5)  # writers keep committing after the restart too

        committed = created + pool.load.committed
        drained_seconds: float | None
        try:
            wait_until(lambda: backlog(database_url) == 0, DRAIN_LIMIT_SECONDS, "the outbox is drained", interval=0.1)
            drained_seconds = time.monotonic() - restarted_at
        except AssertionError:
            drained_seconds = None
        received = stream_events(stream, len(committed))
        yield Outage(backlog_at_stop, backlog_at_restart, written_during_outage, published_during_outage,
                     created, pool.load, drained_seconds, received)
    finally:
        if relay is not None:
            relay.stop()
        server.stop()


def test_writes_keep_committing_while_nats_is_down(outage: Outage) -> None:
    assert not outage.load.errors, outage.load.errors
    assert outage.written_during_outage > 0


def test_backlog_grows_and_nothing_is_marked_published_while_nats_is_down(outage: Outage) -> None:
    assert outage.published_during_outage == 0
    assert outage.backlog_at_restart >= outage.written_during_outage
    assert outage.backlog_at_restart > outage.backlog_at_stop


def test_everything_drains_exactly_once_in_order_after_nats_returns(outage: Outage) -> None:
    assert outage.drained_seconds is not None, f"the backlog was not drained {DRAIN_LIMIT_SECONDS}s after NATS returned"
    assert_stream_holds_exactly(outage.received, outage.created + outage.load.committed, outage.load.rolled_back)
