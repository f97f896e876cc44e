"""License use cases: each runs in one transaction and records one event per license it changes."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.hot_reads import HotReads
from server.adapters.license_issuer import LicenseIssuer
from server.adapters.license_writer import LicenseWriter
from server.adapters.repository import StoredLicense
from server.adapters.unit_of_work import UnitOfWork, unit_of_work
from server.domain import commands, licenses, limits
from server.domain.caller import Caller
from server.domain.clock import utcnow
from server.domain.errors import BadRequest, Forbidden, NoCredits, NotFound
from server.domain.keys import generate_keys
from server.domain.licenses import EventType, License
from server.domain.pagination import decode_cursor, encode_cursor
from server.service.ownership import ensure_app_owned

_KEY_COLLISION_RETRIES = 3  # 80 random bits: a collision is astronomically rare, but must not surface
# Optimistic attempts before a change queues on the license's row lock instead: only calls racing
# on one license ever get there.
_OPTIMISTIC_ATTEMPTS = 3


@dataclass(frozen=True)
class Page:
    licenses: list[License]
    cursor: str  # empty on the last page


class LicenseService:
    def __init__(self, engine: AsyncEngine, reads: HotReads, issuer: LicenseIssuer, writer: LicenseWriter) -> None:
        self._engine = engine
        self._reads = reads
        self._issuer = issuer
        self._writer = writer

    async def create(self, caller: Caller, cmd: commands.CreateLicenses) -> list[License]:
        await ensure_app_owned(self._reads, cmd.app_id, caller.account_id)
        for attempt in range(_KEY_COLLISION_RETRIES):
            try:
                if cmd.request_id is None:
                    return await self._issue(caller, cmd)
                async with unit_of_work(self._engine) as uow:
                    return await self._create_idempotent(uow, caller, cmd, cmd.request_id)
            except (IntegrityError, psycopg.errors.UniqueViolation) as error:
                if not _is_key_collision(error) or attempt == _KEY_COLLISION_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def _issue(self, caller: Caller, cmd: commands.CreateLicenses) -> list[License]:
        """The common create: one statement (adapters/license_issuer.py)."""
        new = _new_licenses(cmd, utcnow())
        if not await self._issuer.issue(caller, new):
            raise _no_credits(cmd)
        return new

    async def _create_idempotent(
        self, uow: UnitOfWork, caller: Caller, cmd: commands.CreateLicenses, request_id: uuid.UUID
    ) -> list[License]:
        """A create with a request id: the id is claimed in the same transaction as the licenses."""
        now = utcnow()
        ttl = timedelta(hours=limits.IDEMPOTENCY_HOURS)
        prior = await uow.claim_request(caller.account_id, request_id, cmd.fingerprint(), now, ttl)
        if prior is not None:
            fingerprint, keys = prior
            if fingerprint != cmd.fingerprint():
                raise BadRequest.single("request_id", "was already used for a different request")
            return await uow.licenses_by_keys(keys)
        new = _new_licenses(cmd, now)
        await uow.add_licenses(new)
        for lic in new:
            uow.record(EventType.CREATED, caller, lic)
        await uow.remember_request(caller.account_id, request_id, [lic.key for lic in new])
        # Last, so the account's row stays locked for one statement and the commit only.
        if not await uow.debit_credits(caller.account_id, cmd.quantity):
            raise _no_credits(cmd)
        return new

    async def list(self, caller: Caller, cmd: commands.ListLicenses) -> Page:
        after = decode_cursor(cmd.cursor, cmd.app_id)
        await ensure_app_owned(self._reads, cmd.app_id, caller.account_id)
        # One row more than asked tells whether another page follows, without a COUNT.
        rows = await self._reads.page(cmd.app_id, after, cmd.limit + 1)
        more = len(rows) > cmd.limit
        rows = rows[: cmd.limit]
        cursor = encode_cursor(cmd.app_id, rows[-1][0]) if more else ""
        return Page([lic for _, lic in rows], cursor)

    async def get(self, caller: Caller, key: str) -> License:
        return _owned(await self._reads.license(key), caller.account_id).license

    async def update(self, caller: Caller, cmd: commands.UpdateLicense) -> License:
        # Read, decide, write "if still the version read" in one statement (adapters/license_writer.py).
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            stored = _owned(await self._reads.license_to_change(cmd.key), caller.account_id)
            change = licenses.apply(stored.license, cmd.action, utcnow(), cmd.expires_at)
            if change.event is None:
                return change.license  # already so: nothing to write, no event
            if await self._writer.save_if_unchanged(stored, change.license, change.event, caller):
                return change.license
        return await self._update_locked(caller, cmd)

    async def _update_locked(self, caller: Caller, cmd: commands.UpdateLicense) -> License:
        async with unit_of_work(self._engine) as uow:
            stored = _owned(await uow.license(cmd.key, for_update=True), caller.account_id)
            change = licenses.apply(stored.license, cmd.action, utcnow(), cmd.expires_at)
            if change.event is not None:
                await uow.save(stored, change.license)
                uow.record(change.event, caller, change.license)
            return change.license

    async def delete(self, caller: Caller, key: str) -> License:
        for _ in range(_OPTIMISTIC_ATTEMPTS):
            stored = _owned(await self._reads.license_to_change(key), caller.account_id)
            if await self._writer.remove_if_unchanged(stored, licenses.deleted(stored.license, utcnow()).license, caller):
                return stored.license
        return await self._delete_locked(caller, key)

    async def _delete_locked(self, caller: Caller, key: str) -> License:
        async with unit_of_work(self._engine) as uow:
            stored = _owned(await uow.license(key, for_update=True), caller.account_id)
            change = licenses.deleted(stored.license, utcnow())
            await uow.remove(stored)
            uow.record(EventType.DELETED, caller, change.license)
            return stored.license


def _new_licenses(cmd: commands.CreateLicenses, now: datetime) -> list[License]:
    app_id = str(cmd.app_id)
    return [
        License(
            key=key, app_id=app_id, revoked=False, expires_at=cmd.expires_at,
            max_hwid_slots=cmd.max_hwid_slots, unlimited_hwid_slots=cmd.unlimited_hwid_slots,
            label=cmd.label, created_at=now, updated_at=now, version=1,
        )
        for key in generate_keys(cmd.quantity)
    ]


def _no_credits(cmd: commands.CreateLicenses) -> NoCredits:
    return NoCredits(f"creating {cmd.quantity} licenses needs {cmd.quantity} credits", needed=str(cmd.quantity))


def _is_key_collision(error: Exception) -> bool:
    cause = getattr(error, "orig", error)  # SQLAlchemy wraps the psycopg error
    return getattr(getattr(cause, "diag", None), "constraint_name", None) == "licenses_key_key"


def _owned(stored: StoredLicense | None, account_id: uuid.UUID) -> StoredLicense:
    if stored is None:
        raise NotFound("license key does not exist")
    if stored.account_id != account_id:
        raise Forbidden("the license's app does not belong to your account", key=stored.license.key)
    return stored
