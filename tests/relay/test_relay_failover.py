"""Two relays on one database: the active one is SIGKILLed mid-batch while writers keep committing.

The scenario runs once for the module; each test checks one of its outcomes.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

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
    wait_for_batch_in_flight,
    wait_until,
)

TAKEOVER_LIMIT_SECONDS = 5.0
ACTIVE_LOG_LINE = "this process is now the active outbox relay"


@dataclass(frozen=True)
class Failover:
    standby_idle_before: bool  # the second relay was not active while the first led
    killed_mid_batch: bool  # the leader's connection held claimed, unmarked rows when it was killed
    takeover_seconds: float | None  # from the SIGKILL until the standby reported itself active
    standby_log: str
    created: list[Written]
    load: Load
    drained_seconds: float | None
    received: list[Received]


@pytest.fixture(scope="module")
def failover(fresh_database: Callable[[], str], new_event_stream: Callable[[], EventStream],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Failover]:
    database_url, stream = fresh_database(), new_event_stream()
    logs = tmp_path_factory.mktemp("failover")
    app = make_app(database_url)
    keys = new_keys(30)
    created = create_licenses(database_url, app, keys)
    relays: list[RelayProcess] = []
    try:
        relays.append(leader := spawn_relay(database_url, stream, logs / "leader.log"))
        wait_until(leader.is_active, 10, "the first relay is active")
        relays.append(standby := spawn_relay(database_url, stream, logs / "standby.log"))
        time.sleep(0.6)  # a few of its poll intervals
        standby_idle_before = standby.metric("licensing_outbox_relay_active") == 0.0

        with WriterPool(database_url, app, keys, writers=6, max_pause=0.005, rollback_rate=0.2, seed=4) as pool:
            wait_until(lambda: pool.load.committed_count() >= 150, 10, "writers committed some changes")
            killed_mid_batch = wait_for_batch_in_flight(database_url, stream, timeout=5)
            leader.kill()
            killed_at = time.monotonic()
            takeover_seconds: float | None = None
            while time.monotonic() - killed_at < 2 * TAKEOVER_LIMIT_SECONDS:
                if standby.is_active():
                    takeover_seconds = time.monotonic() - killed_at
                    break
                time.sleep(0.02)
            time.sleep(0.5)  # writers keep committing under the new leader

        committed = created + pool.load.committed
        drained_seconds: float | None
        try:
            drained_seconds = wait_until(lambda: backlog(database_url) == 0, 15, "the outbox is drained")
        except AssertionError:
            drained_seconds = None
        received = stream_events(stream, len(committed))
        yield Failover(standby_idle_before, killed_mid_batch, takeover_seconds, standby.log(), created, pool.load,
                       drained_seconds, received)
    finally:
        for relay in relays:
            relay.stop()


def test_standby_stays_idle_while_another_relay_leads(failover: Failover) -> None:
    assert failover.standby_idle_before


def test_standby_takes_over_within_seconds_when_the_leader_is_killed_mid_batch(failover: Failover) -> None:
    assert failover.killed_mid_batch, "the leader was never seen inside a batch"
    assert failover.takeover_seconds is not None, f"the standby never became active:\n{failover.standby_log}"
    assert failover.takeover_seconds < TAKEOVER_LIMIT_SECONDS
    assert ACTIVE_LOG_LINE in failover.standby_log


def test_no_event_is_lost_duplicated_or_reordered_across_a_failover(failover: Failover) -> None:
    assert not failover.load.errors, failover.load.errors
    assert failover.drained_seconds is not None, "the new leader did not drain the outbox"
    assert_stream_holds_exactly(failover.received, failover.created + failover.load.committed,
                                failover.load.rolled_back)
