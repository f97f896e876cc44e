"""What the relay tests drive and observe: service-like writers, relay processes, the outbox, the stream.

Writers commit the way the service's unit of work does (server/adapters/unit_of_work.py): one
transaction per change, the license row locked by its UPDATE so a license's versions commit one
after another, the outbox row inserted just before COMMIT together with `NOTIFY outbox`.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psycopg
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from server.adapters.embedded_nats import free_port
from server.adapters.serialization import license_to_json
from server.domain.licenses import EventType, License
from server.outbox.messages import OutboxRow, to_message
from server.outbox.store import ROW_COLUMNS
from tests.conftest import EventStream
from tests.events import Received, read_events

ROOT = Path(__file__).resolve().parents[2]
DUPLICATE_WINDOW_SECONDS = 600.0  # the relay's default NATS_DUPLICATE_WINDOW_SECONDS


# Waiting


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 0.05) -> float:
    """Polls `condition` until it holds; returns the seconds it took, fails the test after `timeout`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting until {what}")
        time.sleep(interval)
    return time.monotonic() - started


# The database


@dataclass(frozen=True)
class App:
    account_id: uuid.UUID
    app_id: uuid.UUID


def make_app(database_url: str) -> App:
    with psycopg.connect(database_url, autocommit=True) as connection:
        account = connection.execute(
            "INSERT INTO accounts (name, credits) VALUES (%s, 1000000) RETURNING id", (f"relay-{uuid.uuid4().hex[:8]}",)
        ).fetchone()
        assert account is not None
        app = connection.execute(
            "INSERT INTO apps (account_id, name) VALUES (%s, 'app') RETURNING id", (account[0],)
        ).fetchone()
        assert app is not None
        return App(account[0], app[0])


def new_keys(count: int) -> list[str]:
    return [f"LK-{uuid.uuid4().hex[:16].upper()}" for _ in range(count)]


def backlog(database_url: str) -> int:
    """Outbox rows not yet marked published (their ids still in outbox_pending)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM outbox_pending").fetchone()
        assert row is not None
        return int(row[0])


def published(database_url: str, rows: Sequence[Written]) -> dict[str, bool]:
    """Event id -> whether it is marked published, for the rows still in the outbox."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        found = connection.execute(
            "SELECT o.event_id::text, NOT EXISTS (SELECT FROM outbox_pending p WHERE p.id = o.id)"
            " FROM outbox o WHERE o.event_id = ANY(%s)",
            ([w.event_id for w in rows],),
        ).fetchall()
    return dict(found)


def wait_until_drained(database_url: str, timeout: float) -> float:
    return wait_until(lambda: backlog(database_url) == 0, timeout, "the outbox backlog is 0", interval=0.1)


def outbox_rows(database_url: str) -> list[OutboxRow]:
    """Every outbox row as the relay claims it, in id order."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        with connection.cursor(row_factory=class_row(OutboxRow)) as cursor:
            cursor.execute(f"SELECT {ROW_COLUMNS} FROM outbox ORDER BY id")  # type: ignore[arg-type]
            return cursor.fetchall()


# Writing like the service


@dataclass(frozen=True)
class Written:
    event_id: uuid.UUID
    license_key: str
    version: int


_LICENSE_COLUMNS = (
    "key, app_id, revoked, expires_at, max_hwid_slots, unlimited_hwid_slots, label, created_at, updated_at, version"
)


class ServiceLikeWriter:
    """One connection writing license changes with their outbox rows, one transaction per change."""

    def __init__(self, database_url: str, app: App) -> None:
        self._connection = psycopg.connect(database_url, autocommit=True)
        self._app = app

    def create(self, key: str, pause: float = 0.0, rollback: bool = False) -> Written:
        """Inserts a license (version 1) and its `license.created` row; returns the event written."""
        return self._transaction(
            f"INSERT INTO licenses (key, app_id, max_hwid_slots, unlimited_hwid_slots) VALUES (%s, %s, 1, false)"
            f" RETURNING {_LICENSE_COLUMNS}",
            (key, self._app.app_id), pause, rollback,
        )

    def change(self, key: str, pause: float = 0.0, rollback: bool = False, label: str | None = None) -> Written:
        """Revokes or re-activates a license (and sets its label, if given): locks its row, bumps its
        version, writes the row for it."""
        return self._transaction(
            "UPDATE licenses SET revoked = NOT revoked, label = coalesce(%s, label), version = version + 1,"
            f" updated_at = now() WHERE key = %s RETURNING {_LICENSE_COLUMNS}",
            (label, key), pause, rollback,
        )

    def _transaction(self, statement: str, params: tuple[Any, ...], pause: float, rollback: bool) -> Written:
        """`pause` seconds pass between writing and COMMIT (or ROLLBACK when `rollback`)."""
        with self._connection.transaction():
            row = self._connection.execute(statement, params).fetchone()
            assert row is not None, f"no such license: {params}"
            lic = License(
                key=row[0], app_id=str(row[1]), revoked=row[2], expires_at=row[3], max_hwid_slots=row[4],
                unlimited_hwid_slots=row[5], label=row[6], created_at=row[7], updated_at=row[8], version=row[9],
            )
            event_type = EventType.CREATED if lic.version == 1 else (
                EventType.REVOKED if lic.revoked else EventType.ACTIVATED
            )
            written = Written(uuid.uuid4(), lic.key, lic.version)
            self._connection.execute(
                "INSERT INTO outbox (event_id, event_type, account_id, app_id, license_key, version, payload,"
                " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (written.event_id, event_type.value, self._app.account_id, self._app.app_id, lic.key, lic.version,
                 Jsonb(license_to_json(lic)), lic.updated_at),
            )
            # No explicit NOTIFY: the outbox_enqueue trigger queues the row and wakes the relay, as for the service's writes.
            if pause > 0:
                time.sleep(pause)
            if rollback:
                raise psycopg.Rollback()
        return written  # committed unless `rollback`

    def close(self) -> None:
        self._connection.close()


@dataclass
class Load:
    """What a WriterPool did: the changes committed, those rolled back, and any writer failure."""

    committed: list[Written] = field(default_factory=list)
    rolled_back: list[Written] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def committed_count(self) -> int:
        with self.lock:
            return len(self.committed)


class WriterPool:
    """Concurrent writer threads changing random licenses until stopped.

    Each transaction pauses a random time (up to `max_pause`) between writing and committing, and
    rolls back with probability `rollback_rate`; the license's next change then takes the same
    version again, as the service's would, so every license's committed versions stay contiguous.
    """

    def __init__(self, database_url: str, app: App, keys: Sequence[str], writers: int, *,
                 max_pause: float = 0.01, rollback_rate: float = 0.0, seed: int = 0) -> None:
        self.load = Load()
        self._database_url, self._app, self._keys = database_url, app, list(keys)
        self._max_pause, self._rollback_rate, self._seed = max_pause, rollback_rate, seed
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(i,), daemon=True) for i in range(writers)]

    def __enter__(self) -> WriterPool:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> Load:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=30)
        return self.load

    def _write(self, index: int) -> None:
        rng = random.Random(self._seed * 1000 + index)
        writer = ServiceLikeWriter(self._database_url, self._app)
        try:
            while not self._stopping.is_set():
                key = rng.choice(self._keys)
                rollback = rng.random() < self._rollback_rate
                written = writer.change(key, pause=rng.uniform(0, self._max_pause), rollback=rollback)
                with self.load.lock:
                    (self.load.rolled_back if rollback else self.load.committed).append(written)
        except BaseException as error:  # noqa: BLE001 - reported by the test
            with self.load.lock:
                self.load.errors.append(error)
        finally:
            writer.close()


def create_licenses(database_url: str, app: App, keys: Sequence[str]) -> list[Written]:
    writer = ServiceLikeWriter(database_url, app)
    try:
        return [writer.create(key) for key in keys]
    finally:
        writer.close()


# Relay processes


@dataclass
class RelayProcess:
    """A `python -m server.cli relay` child process, its metrics port and its log file."""

    process: subprocess.Popen[bytes]
    metrics_port: int
    log_path: Path

    def metrics(self) -> dict[str, float] | None:
        """The process's Prometheus samples by name (labels included), None while unreachable."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=1) as response:
                text = response.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def metric(self, name: str) -> float | None:
        samples = self.metrics()
        return None if samples is None else samples.get(name)

    def is_active(self) -> bool:
        return self.metric("licensing_outbox_relay_active") == 1.0

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: a relay that falls behind (a long GC pause, a starved VM)."""
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no cancellation, no ROLLBACK, no goodbye to NATS."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.resume()
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def spawn_relay(database_url: str, stream: EventStream, log_path: Path, **env: str) -> RelayProcess:
    """Starts a relay with fast test settings and waits until its metrics endpoint answers."""
    port = free_port()
    full_env = {
        **os.environ, **stream.env(), "DATABASE_URL": database_url, "METRICS_LISTEN": f"127.0.0.1:{port}",
        "LOG_LEVEL": "INFO", "RELAY_POLL_SECONDS": "0.2", "RELAY_BATCH_SIZE": "50", **env,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "relay"], env=full_env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    relay = RelayProcess(process, port, log_path)
    try:
        wait_until(lambda: not relay.alive() or relay.metrics() is not None, 20, "the relay serves its metrics")
        assert relay.alive(), f"the relay exited at start-up:\n{relay.log()}"
    except BaseException:
        relay.stop()
        raise
    return relay


# The stream


def stream_events(stream: EventStream, expected: int, timeout: float = 15.0) -> list[Received]:
    """Everything in the stream under the test's prefix, in stream order."""
    return read_events(stream, f"{stream.prefix}.>", expected, timeout=timeout, settle=0.5)


def publish_as_crashed_relay(stream: EventStream, rows: Sequence[OutboxRow]) -> None:
    """What a relay that died after publishing but before COMMIT left behind: the messages, same headers."""
    asyncio.run(_publish(stream, rows))


def create_stream(stream: EventStream, max_msg_size: int = -1) -> None:
    """The stream as an operator would create it ahead of the relay, with limits of their own."""
    asyncio.run(_with_jetstream(stream, lambda js: js.add_stream(_stream_config(stream, max_msg_size))))


def set_max_msg_size(stream: EventStream, max_msg_size: int) -> None:
    asyncio.run(_with_jetstream(stream, lambda js: js.update_stream(_stream_config(stream, max_msg_size))))


def _stream_config(stream: EventStream, max_msg_size: int) -> StreamConfig:
    return StreamConfig(name=stream.name, subjects=[f"{stream.prefix}.>"], duplicate_window=DUPLICATE_WINDOW_SECONDS,
                        max_msg_size=max_msg_size)


async def _with_jetstream(stream: EventStream, action: Callable[[JetStreamContext], Awaitable[object]]) -> None:
    client = await nats.connect(stream.nats_url)
    try:
        await action(client.jetstream())
    finally:
        await client.close()


async def _publish(stream: EventStream, rows: Sequence[OutboxRow]) -> None:
    client = await nats.connect(stream.nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(_stream_config(stream, -1))
        for row in rows:
            message = to_message(stream.prefix, row)
            ack = await js.publish(message.subject, message.body, stream=stream.name, headers=dict(message.headers))
            assert not ack.duplicate
    finally:
        await client.close()


def assert_stream_holds_exactly(received: Sequence[Received], committed: Sequence[Written],
                                rolled_back: Sequence[Written] = ()) -> None:
    """Every committed event exactly once, nothing else, and each license's versions 1..n in stream order."""
    by_key_committed: dict[str, list[int]] = defaultdict(list)
    for w in committed:
        by_key_committed[w.license_key].append(w.version)
    for key, versions in by_key_committed.items():  # the harness's own promise, checked first
        assert sorted(versions) == list(range(1, len(versions) + 1)), f"writers committed {key} versions {versions}"

    ids = [r.event.event_id for r in received]
    duplicated = {event_id: n for event_id, n in Counter(ids).items() if n > 1}
    assert not duplicated, f"{len(duplicated)} events are in the stream more than once: {duplicated}"
    expected = {str(w.event_id) for w in committed}
    missing = expected - set(ids)
    assert not missing, f"{len(missing)} of {len(expected)} committed events never reached the stream"
    from_rollbacks = {str(w.event_id) for w in rolled_back} & set(ids)
    assert not from_rollbacks, f"events of rolled back transactions were published: {from_rollbacks}"
    unexpected = set(ids) - expected
    assert not unexpected, f"{len(unexpected)} events in the stream were never committed"

    in_stream: dict[str, list[int]] = defaultdict(list)
    for r in received:
        assert r.headers["Nats-Msg-Id"] == r.event.event_id
        in_stream[r.event.license_key].append(r.event.version)
    for key, versions in in_stream.items():
        assert versions == list(range(1, len(versions) + 1)), f"license {key} arrived as versions {versions}"


def wait_for_batch_in_flight(database_url: str, stream: EventStream, timeout: float) -> bool:
    """Waits until the active relay is inside a batch: the newest event in the stream is acknowledged
    while its row is still queued (published, not yet marked). False if never seen."""
    return asyncio.run(_batch_in_flight(database_url, stream, timeout))


async def _batch_in_flight(database_url: str, stream: EventStream, timeout: float) -> bool:
    client = await nats.connect(stream.nats_url)
    try:
        jsm = client.jetstream()
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as connection:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                last = (await jsm.stream_info(stream.name)).state.last_seq
                if last:
                    event_id = (await jsm.get_msg(stream.name, last)).headers["Nats-Msg-Id"]  # type: ignore[index]
                    cursor = await connection.execute(
                        "SELECT EXISTS (SELECT FROM outbox_pending p JOIN outbox o ON o.id = p.id"
                        " WHERE o.event_id = %s)", (event_id,))
                    if (row := await cursor.fetchone()) and row[0]:
                        return True
                await asyncio.sleep(0.001)
    finally:
        await client.close()
    return False
