"""Events: the relay's sustained events/s, and the lag from a call to its event at a fixed change rate."""
from __future__ import annotations

import asyncio
import multiprocessing
import time
import uuid
from dataclasses import dataclass
from typing import Any

import nats
import psycopg
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from licensing.v1 import licenses_pb2 as pb
from server.adapters.local_services import EventStream

from .data import copy_outbox_backlog
from .h2client import CallFailed, UnaryConnection
from .infra import (
    EVEN_SPREAD_ATTEMPTS,
    Spread,
    connection_spread,
    keep_connections,
    relay_process,
    settled_spread,
)
from .stats import percentile

UPDATE = "/licensing.v1.LicenseService/UpdateLicense"
Metadata = tuple[tuple[str, str], ...]


def backlog(database_url: str) -> int:
    with psycopg.connect(database_url) as connection:
        row = connection.execute("SELECT count(*) FROM outbox_pending").fetchone()
    return int(row[0]) if row else 0


def wait_for_relay(database_url: str, timeout: float = 300) -> float:
    """Waits until every outbox row is published (so the next scenario does not share the machine
    with the relay's catch-up, and lag is not measured behind a backlog); returns the seconds waited."""
    started = time.monotonic()
    with psycopg.connect(database_url, autocommit=True) as connection:
        _poll(connection, _QUEUE_EMPTY, (), started + timeout, 0.2, database_url)
    return time.monotonic() - started


# Index probes, not counts: polled while the relay works, and the relay needs PostgreSQL's CPU.
_QUEUE_EMPTY = "SELECT NOT EXISTS (SELECT FROM outbox_pending)"
_ROW_PUBLISHED = "SELECT NOT EXISTS (SELECT FROM outbox_pending WHERE id = %s)"


def _poll(connection: psycopg.Connection, sql: str, params: tuple[object, ...], deadline: float, interval: float,
          database_url: str) -> float:
    """Runs `sql` every `interval` seconds until it answers true; returns when (monotonic)."""
    while not connection.execute(sql, params).fetchone()[0]:  # type: ignore[index]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the relay left {backlog(database_url)} events unpublished")
        time.sleep(interval)
    return time.monotonic()


# The relay's throughput


@dataclass(frozen=True)
class RelayResult:
    events: int
    events_per_second: float  # from the first published batch to an empty backlog
    drain_seconds: float  # from starting `licensing relay` to a zero backlog, start-up included

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "events_per_second": round(self.events_per_second, 1),
                "drain_seconds": round(self.drain_seconds, 2)}


def measure_relay(database_url: str, stream: EventStream, account_id: uuid.UUID, app_id: uuid.UUID,
                  events: int) -> RelayResult:
    """Pre-loads `events` unpublished outbox rows with no relay running, starts `licensing relay`,
    and polls every 20 ms until the backlog is empty. The rate runs from the moment the first batch
    is out (the oldest row left the queue; the backlog is counted then) to the empty queue, so it
    excludes the relay's start-up. The polls are index probes: counting the queue every 20 ms would
    take PostgreSQL's CPU from the relay."""
    assert backlog(database_url) == 0, "the relay scenario needs an empty backlog to start from"
    copy_outbox_backlog(database_url, account_id, app_id, events)
    with psycopg.connect(database_url, autocommit=True) as connection:
        oldest = connection.execute("SELECT min(id) FROM outbox_pending").fetchone()[0]  # type: ignore[index]
        started = time.monotonic()
        deadline = started + 60 + events / 200  # gives up below 200 events/s
        with relay_process(database_url, stream):
            first_out = _poll(connection, _ROW_PUBLISHED, (oldest,), deadline, 0.02, database_url)
            left = backlog(database_url)
            emptied = _poll(connection, _QUEUE_EMPTY, (), deadline, 0.02, database_url)
    rate = left / (emptied - first_out) if emptied > first_out else float("nan")
    return RelayResult(events, rate, emptied - started)


# Call-to-event lag

MAX_IN_FLIGHT = 512  # the paced client's queue: past it, calls are skipped (counted), not piled up for ever


@dataclass(frozen=True)
class LagResult:
    rate_asked: float
    rate_achieved: float  # changes/s answered in the window
    p50_ms: float
    p99_ms: float
    call_p50_ms: float  # the call alone (sent to answered): the lag's share spent in the server
    call_p99_ms: float
    after_p50_ms: float  # answered to event received: the relay's share
    after_p99_ms: float
    matched: int
    missing: int  # changes in the window whose event never arrived
    errors: int
    skipped: int  # calls not sent: MAX_IN_FLIGHT calls were already waiting
    first_error: str
    spread: str  # the paced client's connections per server process

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in self.__dict__.items()}

    @property
    def ok(self) -> bool:
        return self.p50_ms < 20 and self.p99_ms < 100 and not self.missing and not self.errors and not self.skipped


@dataclass(frozen=True)
class _Pace:
    address: str
    metadata: Metadata
    keys: list[str]  # all active, each changed at most once at a time
    rate: float
    seconds: float  # warm-up included
    connections: int
    server_pids: tuple[int, ...]  # the processes sharing the port, to spread the connections evenly over


@dataclass(frozen=True)
class _Paced:
    changes: list[tuple[str, int, float, float]]  # key, version after, monotonic just before sending, answered
    errors: int
    skipped: int
    first_error: str
    spread: str


def measure_lag(address: str, metadata: Metadata, stream: EventStream, app_id: uuid.UUID, keys: list[str],
                rate: float, seconds: float, warmup: float, connections: int,
                server_pids: tuple[int, ...]) -> LagResult:
    """A paced client (own process) revokes/activates `keys` round-robin at `rate` changes/s; a
    JetStream consumer (this process) stamps each event's arrival. Lag = arrival - just before the
    call was sent, matched by license key + version. Both use CLOCK_MONOTONIC, which is system-wide."""
    pace = _Pace(address, metadata, keys, rate, warmup + seconds, connections, server_pids)
    return asyncio.run(_lag(pace, stream, app_id, seconds, warmup))


async def _lag(pace: _Pace, stream: EventStream, app_id: uuid.UUID, seconds: float, warmup: float) -> LagResult:
    received: dict[tuple[str, int], float] = {}

    async def on_event(msg: Msg) -> None:
        headers = msg.headers or {}
        received[(headers["ce-subject"], int(headers["ce-sequence"]))] = time.monotonic()

    client = await nats.connect(stream.nats_url)
    try:
        # Headers only: the key (ce-subject) and version (ce-sequence) are all the match needs.
        subscription = await client.jetstream().subscribe(
            f"{stream.prefix}.{app_id}.>", stream=stream.name, cb=on_event, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW, headers_only=True,
        )
        context = multiprocessing.get_context("spawn")
        loop = asyncio.get_running_loop()
        with context.Pool(1) as pool:
            paced: _Paced = await loop.run_in_executor(None, pool.apply, _run_paced, (pace,))
        first = min(c[2] for c in paced.changes) if paced.changes else 0.0
        window = [c for c in paced.changes if first + warmup <= c[2] < first + warmup + seconds]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any((k, v) not in received for k, v, _, _ in window):
            await asyncio.sleep(0.1)
        await subscription.unsubscribe()
    finally:
        await client.close()
    matched = [(received[(k, v)], began, answered) for k, v, began, answered in window if (k, v) in received]
    lags = sorted((got - began) * 1000 for got, began, _ in matched)
    calls = sorted((answered - began) * 1000 for _, began, answered in matched)
    after = sorted((got - answered) * 1000 for got, _, answered in matched)
    return LagResult(pace.rate, len(window) / seconds, percentile(lags, 0.5), percentile(lags, 0.99),
                     percentile(calls, 0.5), percentile(calls, 0.99), percentile(after, 0.5), percentile(after, 0.99),
                     len(lags), len(window) - len(lags), paced.errors, paced.skipped, paced.first_error,
                     paced.spread)


def _run_paced(pace: _Pace) -> _Paced:
    return asyncio.run(_paced(pace))


async def _paced(pace: _Pace) -> _Paced:
    """Open loop: call i is due at start + i/rate, whether or not earlier calls have answered.

    Every call must be a real change with an event: a license is never changed twice at once, the
    action is the opposite of its last answered state, and a license whose call failed (its state is
    then unknown) is left out from then on.
    """
    requests = {
        (key, revoke): pb.UpdateLicenseRequest(
            key=key, action=pb.LICENSE_ACTION_REVOKE if revoke else pb.LICENSE_ACTION_ACTIVATE
        ).SerializeToString()
        for key in pace.keys for revoke in (True, False)
    }
    revoked = dict.fromkeys(pace.keys, False)
    versions: dict[str, int] = {}
    unusable: set[str] = set()  # in flight, or its state unknown after an error
    changes: list[tuple[str, int, float, float]] = []
    errors = skipped = 0
    first_error = ""
    connections, spread = await _open_evenly(pace)
    tasks: set[asyncio.Task[None]] = set()

    async def change(i: int, key: str) -> None:
        nonlocal errors, first_error
        unusable.add(key)
        began = time.monotonic()
        try:
            response = await connections[i % len(connections)].call(requests[(key, not revoked[key])])
        except CallFailed as error:
            errors += 1
            first_error = first_error or str(error)
            return  # stays unusable
        answered = time.monotonic()
        lic = pb.UpdateLicenseResponse.FromString(response).license
        if lic.version <= versions.get(key, 1):  # COPYed at version 1
            errors += 1
            first_error = first_error or f"a no-op: {key} stayed at version {lic.version}"
            return
        versions[key] = lic.version
        revoked[key] = lic.status == pb.LICENSE_STATUS_REVOKED
        changes.append((key, lic.version, began, answered))
        unusable.discard(key)

    try:
        total = int(pace.rate * pace.seconds)
        start = time.monotonic()
        i = 0
        while i < total:
            due = min(total, int((time.monotonic() - start) * pace.rate) + 1)
            while i < due:
                key = pace.keys[i % len(pace.keys)]
                if len(tasks) >= MAX_IN_FLIGHT or key in unusable:
                    skipped += 1
                else:
                    task = asyncio.create_task(change(i, key))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                i += 1
            await asyncio.sleep(max(0.0, start + i / pace.rate - time.monotonic()))
        if tasks:
            _, unanswered = await asyncio.wait(tasks, timeout=45)
            if unanswered:  # the raw client has no deadline: a call still waiting is a failed one
                errors += len(unanswered)
                first_error = first_error or f"{len(unanswered)} calls unanswered 45 s after the last was sent"
    finally:
        for connection in connections:
            await connection.close()
    return _Paced(changes, errors, skipped, first_error, str(spread))


async def _open_evenly(pace: _Pace) -> tuple[list[UnaryConnection], Spread]:
    """The paced client's connections, opened again until they are spread evenly over the server's
    processes (or `EVEN_SPREAD_ATTEMPTS` tries), and their spread."""
    for attempt in range(1, EVEN_SPREAD_ATTEMPTS + 1):
        connections = [await UnaryConnection.open(pace.address, UPDATE, pace.metadata) for _ in range(pace.connections)]
        seen = settled_spread(lambda: connection_spread(list(pace.server_pids), pace.address), pace.connections)
        if keep_connections(seen, attempt):
            break
        for connection in connections:
            await connection.close()
    return connections, seen
