"""Validation use cases: the hot path reads once and writes only to bind a device or, rarely, to
refresh a device's last_seen_at."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.hot_reads import HotReads
from server.adapters.repository import StoredLicense
from server.adapters.unit_of_work import UnitOfWork, unit_of_work
from server.domain import validation
from server.domain.caller import Caller
from server.domain.clock import utcnow
from server.domain.licenses import License
from server.domain.validation import Check, Code, Mode, Verdict
from server.service.ownership import ensure_app_owned


class Outcome(NamedTuple):
    verdict: Verdict
    license: License | None  # None when the key is not the caller's
    checked_at: datetime


class ValidationService:
    def __init__(self, engine: AsyncEngine, reads: HotReads) -> None:
        self._engine = engine
        self._reads = reads

    async def check(self, caller: Caller, check: Check, mode: Mode) -> Outcome:
        now = utcnow()
        stored = _visible(await self._reads.license(check.key), caller.account_id)  # the hot path: this read only
        if stored is None or stored.license.app_id != check.app_id:
            # The license does not prove the app is the caller's: ask (a rare, off-hot-path read).
            await ensure_app_owned(self._reads, uuid.UUID(check.app_id), caller.account_id)
        lic = stored.license if stored else None
        verdict = validation.judge(lic, check, mode, now)
        if verdict.bind:
            return await self._bind(caller, check, mode)
        if verdict.touch and stored is not None:
            lic = await self._touch(stored, check.hwid, now)
        return Outcome(verdict, lic, now)

    async def _touch(self, stored: StoredLicense, hwid: str, now: datetime) -> License:
        """Refreshes last_seen_at (at most once a minute per device, so rarely)."""
        async with self._engine.begin() as connection:
            await UnitOfWork(connection).touch_hwid(stored.id, hwid, now, validation.LAST_SEEN_RESOLUTION)
        # Racing calls store only one time: answer with what is stored.
        refreshed = await self._reads.license(stored.license.key)
        return refreshed.license if refreshed else stored.license

    async def _bind(self, caller: Caller, check: Check, mode: Mode) -> Outcome:
        """Binds under the license's row lock: racing devices serialize, so seats never exceed the limit."""
        async with unit_of_work(self._engine) as uow:
            stored = _visible(await uow.license(check.key, for_update=True), caller.account_id)
            now = utcnow()  # after the lock: bindings are stamped in the order they commit
            lic = stored.license if stored else None
            verdict = validation.judge(lic, check, mode, now)  # again: the license may have changed meanwhile
            if not verdict.bind or stored is None:
                return Outcome(verdict._replace(bind=False), lic, now)
            change = validation.bind(stored.license, check.hwid, now)
            await uow.bind_hwid(stored, change.license, check.hwid, now)
            assert change.event is not None
            uow.record(change.event, caller, change.license)
            return Outcome(verdict, change.license, now)


def _visible(stored: StoredLicense | None, account_id: uuid.UUID) -> StoredLicense | None:
    # Another account's key reads as not found: existence never leaks across accounts.
    return stored if stored is not None and stored.account_id == account_id else None


__all__ = ["Code", "Outcome", "ValidationService"]
