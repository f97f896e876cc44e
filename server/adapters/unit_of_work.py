"""One database transaction per use case; the outbox rows of its changes are written inside it.

Nothing can change without its event, and no event can be written for a change that rolls back:
the use case records events, and `commit()` writes them in the same transaction just before COMMIT.
"""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from server.domain.caller import Caller
from server.domain.licenses import EventType, License

from .repository import Repository
from .serialization import license_to_json
from .tables import outbox


@dataclass(frozen=True)
class PendingEvent:
    type: EventType
    caller: Caller
    license: License


class UnitOfWork(Repository):
    def __init__(self, connection: AsyncConnection) -> None:
        super().__init__(connection)
        self._events: list[PendingEvent] = []

    def record(self, event_type: EventType, caller: Caller, lic: License) -> None:
        self._events.append(PendingEvent(event_type, caller, lic))

    async def flush_events(self) -> None:
        if not self._events:
            return
        rows = [
            {
                "event_id": uuid.uuid4(),
                "event_type": e.type.value,
                "account_id": e.caller.account_id,
                "actor_token_id": e.caller.token_id,
                "app_id": uuid.UUID(e.license.app_id),
                "license_key": e.license.key,
                "version": e.license.version,
                "payload": license_to_json(e.license),
                "created_at": e.license.updated_at,  # the event's time is the change's time
            }
            for e in self._events
        ]
        # The outbox_enqueue trigger (migration 0006) queues the row for the relay and NOTIFYs it at commit.
        await self.connection.execute(insert(outbox), rows)
        self._events.clear()


@asynccontextmanager
async def unit_of_work(engine: AsyncEngine) -> AsyncIterator[UnitOfWork]:
    """Commits when the block ends normally (events included), rolls everything back otherwise."""
    async with engine.connect() as connection:
        async with connection.begin():
            uow = UnitOfWork(connection)
            yield uow
            await uow.flush_events()
