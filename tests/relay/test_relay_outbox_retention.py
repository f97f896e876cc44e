"""Retention: the relay deletes published rows older than OUTBOX_RETENTION_HOURS, never others.

Its first retention pass runs right after its first batch, so rows are backdated before it starts.
"""
from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import psycopg
from psycopg.types.json import Jsonb

from tests.conftest import EventStream

from .conftest import StartRelay
from .harness import App, Written, create_licenses, new_keys, published, stream_events, wait_until


def _backdate(database_url: str, rows: Sequence[Written], created: str) -> None:
    """Sets the rows' created_at to `now() - <interval>`."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            "UPDATE outbox SET created_at = now() - %s::interval WHERE event_id = ANY(%s)",
            (created, [w.event_id for w in rows]),
        )


@contextmanager
def _unreadable(database_url: str, rows: Sequence[Written]) -> Iterator[None]:
    """Makes the rows' payloads unreadable, so the relay fails them and holds their licenses back:
    they stay unpublished until the payloads are restored."""
    ids = [w.event_id for w in rows]
    with psycopg.connect(database_url, autocommit=True) as connection:
        payloads = connection.execute("SELECT event_id, payload FROM outbox WHERE event_id = ANY(%s)", (ids,)).fetchall()
        connection.execute("UPDATE outbox SET payload = '{}' WHERE event_id = ANY(%s)", (ids,))
        yield
        for event_id, payload in payloads:
            connection.execute("UPDATE outbox SET payload = %s WHERE event_id = %s", (Jsonb(payload), event_id))


def test_published_rows_older_than_the_retention_are_deleted_and_newer_ones_kept(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    expired = create_licenses(relay_database, app, new_keys(3))
    recent = create_licenses(relay_database, app, new_keys(3))
    _backdate(relay_database, expired, created="2 hours")
    _backdate(relay_database, recent, created="30 minutes")

    start_relay(relay_database, relay_stream, OUTBOX_RETENTION_HOURS="1")
    wait_until(lambda: not published(relay_database, expired), 10, "published rows 2 hours old are deleted")

    assert published(relay_database, recent) == {str(w.event_id): True for w in recent}


def test_unpublished_rows_are_never_deleted_however_old(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    witness = create_licenses(relay_database, app, new_keys(2))
    unpublished = create_licenses(relay_database, app, new_keys(3))
    _backdate(relay_database, witness, created="30 days")
    _backdate(relay_database, unpublished, created="30 days")

    with _unreadable(relay_database, unpublished):
        relay = start_relay(relay_database, relay_stream, OUTBOX_RETENTION_HOURS="0.0001")
        wait_until(lambda: not published(relay_database, witness), 10, "the relay's retention pass ran")
        assert published(relay_database, unpublished) == {str(w.event_id): False for w in unpublished}

    # Within the relay's longest retry backoff (10 s) of the held licenses:
    wait_until(lambda: all(published(relay_database, unpublished).values()), 20, "the kept rows are published")
    assert relay.alive()
    assert sorted(r.event.event_id for r in stream_events(relay_stream, 5)) == sorted(
        str(w.event_id) for w in [*witness, *unpublished]
    )


def _request_ids(database_url: str, app: App, ages: Sequence[str]) -> list[uuid.UUID]:
    """Idempotency records (request ids of creates) of the app's account, created `age` ago each."""
    ids = [uuid.uuid4() for _ in ages]
    with psycopg.connect(database_url, autocommit=True) as connection:
        for request_id, age in zip(ids, ages):
            connection.execute(
                "INSERT INTO idempotency (account_id, request_id, fingerprint, license_keys, created_at)"
                " VALUES (%s, %s, '\\x00', '{}', now() - %s::interval)",
                (app.account_id, request_id, age),
            )
    return ids


def _kept(database_url: str, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    with psycopg.connect(database_url, autocommit=True) as connection:
        rows = connection.execute("SELECT request_id FROM idempotency WHERE request_id = ANY(%s)", (list(ids),))
        return {row[0] for row in rows.fetchall()}


def test_request_ids_older_than_their_24_hours_are_swept_and_younger_ones_kept(
    relay_database: str, relay_stream: EventStream, app: App, start_relay: StartRelay,
) -> None:
    expired = _request_ids(relay_database, app, ["25 hours", "3 days"])
    live = _request_ids(relay_database, app, ["1 hour", "23 hours"])

    start_relay(relay_database, relay_stream)
    wait_until(lambda: not _kept(relay_database, expired), 10, "request ids past 24 hours are deleted")

    assert _kept(relay_database, live) == set(live)
