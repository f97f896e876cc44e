"""The publisher hands back JetStream's refusal of a message as that message's error, at once:
nats-py 2.16 would leave its ack future unresolved until the timeout (server/outbox/publisher.py)."""
from __future__ import annotations

import asyncio
import time

from nats.js.errors import APIError

from server.outbox.messages import Message
from server.outbox.publisher import Publisher
from tests.conftest import EventStream

from .harness import DUPLICATE_WINDOW_SECONDS, create_stream

MAX_MSG_SIZE = 1024
TIMEOUT = 5.0


async def _publish(stream: EventStream, messages: list[Message]) -> tuple[list[object], float]:
    publisher = await Publisher.connect(stream.nats_url, stream.name, stream.prefix, DUPLICATE_WINDOW_SECONDS,
                                        timeout=TIMEOUT)
    try:
        started = time.monotonic()
        results = await publisher.publish_all(messages)
        return list(results), time.monotonic() - started
    finally:
        await publisher.close()


def test_a_message_the_stream_refuses_fails_with_its_error_well_before_the_ack_timeout(
    relay_stream: EventStream,
) -> None:
    create_stream(relay_stream, max_msg_size=MAX_MSG_SIZE)
    fits = Message(f"{relay_stream.prefix}.app.license.created", {"Nats-Msg-Id": "fits"}, b"x")
    too_large = Message(f"{relay_stream.prefix}.app.license.created", {"Nats-Msg-Id": "too-large"},
                        b"x" * (2 * MAX_MSG_SIZE))

    (accepted, refused), seconds = asyncio.run(_publish(relay_stream, [fits, too_large]))

    assert not isinstance(accepted, Exception)
    assert isinstance(refused, APIError), refused
    assert refused.err_code == 10054  # message size exceeds maximum allowed
    assert seconds < TIMEOUT / 2
