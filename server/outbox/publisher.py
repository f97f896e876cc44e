"""JetStream: the stream the relay publishes into, created or updated at start-up."""
from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamConfig
from nats.js.errors import APIError, NotFoundError

from .messages import Message

log = logging.getLogger(__name__)


def nats_servers(url: str) -> list[str]:
    """NATS_URL may list a cluster's servers, comma-separated, so that start-up survives one being down."""
    return [server.strip() for server in url.split(",") if server.strip()]


def _with_ack_errors_delivered(js: JetStreamContext) -> JetStreamContext:
    """Works around nats-py 2.16's publish_async dropping JetStream's error answers
    (https://github.com/nats-io/nats.py/issues/985, fix not released): its reply handler calls
    `APIError.from_error`, which raises instead of returning, so the error escapes into the
    subscription's task and the ack future is never resolved. An event the stream rejects (larger
    than its max_msg_size, say) then cost a full ack timeout, during which the relay waited. This
    wraps the handler (bound when the first publish_async subscribes) and puts the error on the
    future, as the fix does.
    """
    handle = js._handle_async_reply

    async def handle_with_errors(msg: Msg) -> None:
        try:
            await handle(msg)
        except APIError as error:
            token = msg.subject[len(js._nc._inbox_prefix) + 22 + 2:]  # as the original handler reads it
            future = js._publish_async_futures.get(token)
            if future is not None and not future.done():
                future.set_exception(error)

    js._handle_async_reply = handle_with_errors  # type: ignore[method-assign]
    return js


class Publisher:
    def __init__(self, client: Client, stream: str, timeout: float) -> None:
        self._client = client
        self._js: JetStreamContext = _with_ack_errors_delivered(client.jetstream())
        self._stream = stream
        self._timeout = timeout

    @classmethod
    async def connect(cls, url: str, stream: str, subject_prefix: str, duplicate_window: float,
                      timeout: float = 5.0) -> Publisher:
        client = await nats.connect(
            servers=nats_servers(url), name="licensing-relay", max_reconnect_attempts=-1, reconnect_time_wait=0.5,
            allow_reconnect=True, connect_timeout=2,
        )
        publisher = cls(client, stream, timeout)
        await publisher.ensure_stream(subject_prefix, duplicate_window)
        return publisher

    async def ensure_stream(self, subject_prefix: str, duplicate_window: float) -> None:
        config = StreamConfig(name=self._stream, subjects=[f"{subject_prefix}.>"], duplicate_window=duplicate_window)
        try:
            info = await self._js.stream_info(self._stream)
        except NotFoundError:
            await self._js.add_stream(config)
            log.info("created JetStream stream %s for %s.>", self._stream, subject_prefix)
            return
        if info.config.subjects != config.subjects or info.config.duplicate_window != duplicate_window:
            # Change only what we own; keep the operator's replicas, limits and storage settings.
            info.config.subjects, info.config.duplicate_window = config.subjects, duplicate_window
            await self._js.update_stream(info.config)

    async def publish_all(self, messages: list[Message]) -> list[PubAck | Exception]:
        """Sends every message at once and then waits for their acks together (one timeout for all):
        the ack or the error of each, in order. A message not acked in time gets a TimeoutError."""
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for message in messages:
                futures.append(await self._js.publish_async(
                    message.subject, message.body, stream=self._stream, headers=dict(message.headers)))
        except Exception as error:  # the connection is gone: what was not sent fails with its error
            unsent: list[PubAck | Exception] = [error] * (len(messages) - len(futures))
        else:
            unsent = []
        if futures:
            await asyncio.wait(futures, timeout=self._timeout)
        results: list[PubAck | Exception] = []
        for future in futures:
            if not future.done():
                future.cancel()  # its ack may still come: the re-publish is dropped as a duplicate
                results.append(TimeoutError("no JetStream ack in time"))
            elif (failure := future.exception()) is not None:
                results.append(failure if isinstance(failure, Exception) else RuntimeError(repr(failure)))
            else:
                results.append(future.result())
        return results + unsent

    async def close(self) -> None:
        await self._client.close()
