"""A relay that dies after publishing but before its COMMIT leaves the rows unpublished; the next
relay publishes them again and JetStream drops the copies (Nats-Msg-Id = event id)."""
from __future__ import annotations

import random
import time

from tests.conftest import EventStream

from .conftest import StartRelay
from .harness import (
    App,
    ServiceLikeWriter,
    WriterPool,
    Written,
    assert_stream_holds_exactly,
    backlog,
    create_licenses,
    new_keys,
    outbox_rows,
    publish_as_crashed_relay,
    stream_events,
    wait_for_batch_in_flight,
    wait_until,
    wait_until_drained,
)


def _changes(database_url: str, app: App, keys: list[str], count: int) -> list[Written]:
    writer = ServiceLikeWriter(database_url, app)
    rng = random.Random(2)
    try:
        return [writer.change(rng.choice(keys)) for _ in range(count)]
    finally:
        writer.close()


def test_events_published_before_a_crash_are_in_the_stream_once_after_the_relay_republishes(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    keys = new_keys(5)
    committed = create_licenses(relay_database, app, keys) + _changes(relay_database, app, keys, 55)
    rows = outbox_rows(relay_database)
    crashed_batch = rows[: len(rows) // 2]  # the oldest rows, as a claim would take them
    publish_as_crashed_relay(relay_stream, crashed_batch)
    assert backlog(relay_database) == len(rows)

    relay = start_relay(relay_database, relay_stream)
    wait_until_drained(relay_database, timeout=10)
    received = stream_events(relay_stream, len(committed))

    assert_stream_holds_exactly(received, committed)
    wait_until(lambda: relay.metric("licensing_outbox_published_total") == len(rows), 5, "the gauges settle")
    assert relay.metric("licensing_outbox_duplicates_total") == len(crashed_batch), \
        "every re-published event of the crashed batch must have been acknowledged as a duplicate"


def test_relay_killed_mid_batch_and_restarted_loses_and_duplicates_nothing(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    keys = new_keys(30)
    created = create_licenses(relay_database, app, keys)
    first = start_relay(relay_database, relay_stream)
    wait_until(first.is_active, 10, "the first relay is active")

    with WriterPool(relay_database, app, keys, writers=6, max_pause=0.005, rollback_rate=0.2, seed=3) as pool:
        wait_until(lambda: pool.load.committed_count() >= 150, 10, "writers committed some changes")
        assert wait_for_batch_in_flight(relay_database, relay_stream, timeout=5), "the relay was never seen inside a batch"
        first.kill()
        second = start_relay(relay_database, relay_stream)
        wait_until(second.is_active, 10, "the restarted relay is active")
        time.sleep(0.5)
    load = pool.load
    assert not load.errors, load.errors

    committed = created + load.committed
    wait_until_drained(relay_database, timeout=15)
    received = stream_events(relay_stream, len(committed))

    assert_stream_holds_exactly(received, committed, load.rolled_back)
