"""JetStream rejects one event (the operator's stream has a max_msg_size, and one license's change
is larger): that license's later events wait behind it, so nothing arrives out of order, while other
licenses keep flowing (server/outbox/relay.py, `Relay._publish`)."""
from __future__ import annotations

import time

from tests.conftest import EventStream

from .conftest import StartRelay
from .harness import (
    App,
    ServiceLikeWriter,
    Written,
    assert_stream_holds_exactly,
    backlog,
    create_licenses,
    create_stream,
    new_keys,
    published,
    set_max_msg_size,
    stream_events,
    wait_until,
    wait_until_drained,
)

MAX_MSG_SIZE = 2048
TOO_LARGE_LABEL = "x" * 4 * MAX_MSG_SIZE


def _published(database_url: str, rows: list[Written]) -> list[bool]:
    found = published(database_url, rows)
    return [found[str(w.event_id)] for w in rows]


def test_a_rejected_event_holds_back_its_license_and_all_arrive_in_order_once_accepted(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    create_stream(relay_stream, max_msg_size=MAX_MSG_SIZE)
    poisoned, *others = new_keys(4)
    created = create_licenses(relay_database, app, [poisoned, *others])
    writer = ServiceLikeWriter(relay_database, app)
    try:
        rejected = writer.change(poisoned, label=TOO_LARGE_LABEL)
        held_back = [writer.change(poisoned, label="") for _ in range(3)]
        flowing = [writer.change(key) for key in others for _ in range(3)]
    finally:
        writer.close()

    relay = start_relay(relay_database, relay_stream)
    wait_until(lambda: all(_published(relay_database, created + flowing)), 10, "the other licenses' events are out")
    time.sleep(0.5)  # a few more attempts at the rejected one
    assert _published(relay_database, [rejected, *held_back]) == [False] * 4
    assert relay.metric("licensing_outbox_held_licenses") == 1.0
    so_far = stream_events(relay_stream, len(created + flowing), timeout=5)
    assert_stream_holds_exactly(so_far, created + flowing)

    set_max_msg_size(relay_stream, -1)  # the operator lifts the limit
    wait_until_drained(relay_database, timeout=20)
    received = stream_events(relay_stream, len(created + flowing) + 4)
    wait_until(lambda: relay.metric("licensing_outbox_held_licenses") == 0.0, 5, "no license is held back")

    assert_stream_holds_exactly(received, created + flowing + [rejected, *held_back])


def test_a_rejected_event_does_not_stall_other_licenses_when_its_held_back_events_fill_a_batch(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    create_stream(relay_stream, max_msg_size=MAX_MSG_SIZE)
    poisoned, *others = new_keys(6)
    created = create_licenses(relay_database, app, [poisoned, *others])
    writer = ServiceLikeWriter(relay_database, app)
    try:
        writer.change(poisoned, label=TOO_LARGE_LABEL)
        for _ in range(60):  # more than RELAY_BATCH_SIZE (50) events wait behind the rejected one
            writer.change(poisoned, label="")
        flowing = [writer.change(key) for key in others]
    finally:
        writer.close()

    start_relay(relay_database, relay_stream, RELAY_BATCH_SIZE="50")

    try:
        wait_until(lambda: all(_published(relay_database, created + flowing)), 5, "the other licenses' events are out")
    except AssertionError as error:
        stuck = sum(1 for p in _published(relay_database, flowing) if not p)
        raise AssertionError(
            f"{stuck} of {len(flowing)} events of other licenses are still unpublished ({backlog(relay_database)}"
            " rows in the backlog): the rejected license's held-back rows fill every claimed batch"
        ) from error
