"""`licensing events tail`: a JetStream consumer printing events as JSON lines; the model for consumers."""
from __future__ import annotations

import json
import sys

import nats
from google.protobuf.json_format import MessageToDict
from nats.js.api import ConsumerConfig, DeliverPolicy

from licensing.v1 import events_pb2
from server.outbox.publisher import nats_servers


def filter_subject(prefix: str, app_id: str | None, event_type: str | None) -> str:
    """Subjects are `<prefix>.<app_id>.<type>`, and types contain a dot (`license.revoked`)."""
    return f"{prefix}.{app_id or '*'}.{event_type or '>'}"


async def tail(nats_url: str, stream: str, prefix: str, app_id: str | None, event_type: str | None,
               from_start: bool, limit: int | None = None) -> None:
    client = await nats.connect(servers=nats_servers(nats_url))
    try:
        js = client.jetstream()
        # An ordered consumer: ephemeral, flow-controlled, re-created by the client after a gap.
        subscription = await js.subscribe(
            filter_subject(prefix, app_id, event_type),
            stream=stream,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL if from_start else DeliverPolicy.NEW),
        )
        printed = 0
        async for message in subscription.messages:
            event = events_pb2.LicenseEvent.FromString(message.data)
            line = {"subject": message.subject, **MessageToDict(event, preserving_proto_field_name=True)}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()
            printed += 1
            if limit is not None and printed >= limit:
                return
    finally:
        await client.close()
