"""Reading what the relay published: a JetStream consumer for tests."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, DeliverPolicy

from licensing.v1 import events_pb2
from tests.conftest import EventStream


@dataclass(frozen=True)
class Received:
    subject: str
    headers: dict[str, str]
    event: events_pb2.LicenseEvent


def read_events(stream: EventStream, subject_filter: str, count: int, timeout: float = 10.0,
                settle: float = 0.3) -> list[Received]:
    """Every event on `subject_filter` from the stream's start: waits until `count` arrived (or
    `timeout`), then `settle` seconds more so that extra, unexpected events show up too."""
    return asyncio.run(_read(stream, subject_filter, count, timeout, settle))


def app_events(stream: EventStream, app_id: str, count: int, **kwargs: float) -> list[Received]:
    return read_events(stream, f"{stream.prefix}.{app_id}.>", count, **kwargs)


async def _read(stream: EventStream, subject_filter: str, count: int, timeout: float, settle: float) -> list[Received]:
    client = await nats.connect(stream.nats_url)
    try:
        subscription = await client.jetstream().subscribe(
            subject_filter, stream=stream.name, ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )
        received: list[Received] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wait = (deadline - loop.time()) if len(received) < count else settle
            if wait <= 0:
                break
            try:
                message = await subscription.next_msg(timeout=wait)
            except NatsTimeout:
                if len(received) >= count or loop.time() >= deadline:
                    break
                continue
            received.append(Received(message.subject, dict(message.headers or {}),
                                     events_pb2.LicenseEvent.FromString(message.data)))
        return received
    finally:
        await client.close()
