"""Transactions commit out of id order; the relay still publishes every committed event, once, in
version order per license, and nothing from a rolled back transaction."""
from __future__ import annotations

import threading
import time

import psycopg

from tests.conftest import EventStream

from .conftest import StartRelay
from .harness import (
    App,
    ServiceLikeWriter,
    WriterPool,
    Written,
    assert_stream_holds_exactly,
    create_licenses,
    new_keys,
    stream_events,
    wait_until,
    wait_until_drained,
)

HOLD_SECONDS = 3.0


def test_out_of_order_commits_all_arrive_once_in_version_order_per_license(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    keys = new_keys(12)
    created = create_licenses(relay_database, app, keys)
    relay = start_relay(relay_database, relay_stream)
    wait_until(relay.is_active, 10, "the relay is active")

    # One create stays uncommitted for seconds while many later rows (higher ids) commit and are
    # published; then its license gets two more versions.
    held_key = new_keys(1)[0]
    held: list[Written] = []
    holder = ServiceLikeWriter(relay_database, app)

    def hold() -> None:
        held.append(holder.create(held_key, pause=HOLD_SECONDS))
        held.extend(holder.change(held_key) for _ in range(2))

    holding = threading.Thread(target=hold)
    holding.start()
    time.sleep(0.2)  # its outbox row has its id before the writers start
    try:
        with WriterPool(relay_database, app, keys, writers=6, max_pause=0.03, rollback_rate=0.2, seed=1) as pool:
            holding.join(timeout=HOLD_SECONDS + 10)
            time.sleep(0.3)
    finally:
        holding.join(timeout=10)
        holder.close()
    load = pool.load
    assert not load.errors, load.errors
    assert len(held) == 3 and load.rolled_back, "the scenario needs the held transaction and some rollbacks"
    with psycopg.connect(relay_database) as connection:
        later = connection.execute(
            "SELECT count(*) FROM outbox WHERE id > (SELECT id FROM outbox WHERE event_id = %s)", (held[0].event_id,),
        ).fetchone()
    assert later and later[0] >= 50, "rows with higher ids must have committed while the first was held open"

    committed = created + load.committed + held
    wait_until_drained(relay_database, timeout=15)
    received = stream_events(relay_stream, len(committed))

    assert_stream_holds_exactly(received, committed, load.rolled_back)
