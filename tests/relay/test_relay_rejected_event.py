"""JetStream rejects one event (the operator's stream has a max_msg_size, and one license's change
is larger): that license's later events wait behind it, so nothing arrives out of order, while other
licenses keep flowing (server/outbox/relay.py, `Relay._publish`)."""
from __future__ import annotations

import time
import uuid

import psycopg

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


def _unreadable_event(database_url: str, app: App, key: str) -> Written:
    """An outbox row whose payload this version cannot read (a bug, or a newer writer's format)."""
    written = Written(uuid.uuid4(), key, 1)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO outbox (event_id, event_type, account_id, app_id, license_key, version, payload)"
            " VALUES (%s, 'license.created', %s, %s, %s, 1, '{}')",
            (written.event_id, app.account_id, app.app_id, key),
        )
    return written


def test_an_unreadable_event_is_held_back_like_a_rejected_one_and_the_relay_keeps_publishing(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    broken_key, *others = new_keys(4)
    unreadable = _unreadable_event(relay_database, app, broken_key)
    created = create_licenses(relay_database, app, others)

    relay = start_relay(relay_database, relay_stream)
    wait_until(lambda: all(_published(relay_database, created)), 10, "the readable events are out")

    assert _published(relay_database, [unreadable]) == [False]
    assert relay.alive()
    assert relay.metric("licensing_outbox_held_licenses") == 1.0
    assert_stream_holds_exactly(stream_events(relay_stream, len(created), timeout=5), created)
