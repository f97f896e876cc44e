"""Reads and writes of licenses and what creating them touches, in SQLAlchemy Core."""
from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Text, any_, bindparam, delete, func, insert, literal_column, select, update
from sqlalchemy.dialects.postgresql import ARRAY, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from server.domain.licenses import HwidBinding, License

from .tables import accounts, apps, idempotency, license_hwids, licenses

# A license's HWID bindings as one JSON array column, so that a license is read in one query.
_HWIDS = (
    select(func.coalesce(
        func.json_agg(aggregate_order_by(
            func.json_build_array(license_hwids.c.hwid, license_hwids.c.bound_at, license_hwids.c.last_seen_at),
            license_hwids.c.bound_at, license_hwids.c.hwid,
        )),
        literal_column("'[]'::json"),
    ))
    .where(license_hwids.c.license_id == licenses.c.id)
    .scalar_subquery()
    .label("hwids")
)
_LICENSE_COLUMNS = (
    licenses.c.id, licenses.c.key, licenses.c.app_id, licenses.c.revoked, licenses.c.expires_at,
    licenses.c.max_hwid_slots, licenses.c.unlimited_hwid_slots, licenses.c.label,
    licenses.c.created_at, licenses.c.updated_at, licenses.c.version, _HWIDS,
)


APP_OWNER = select(apps.c.account_id).where(apps.c.id == bindparam("app_id"))

# Licenses by any of `keys`, with their owner: one statement for the unit of work and the hot read
# path, which gathers concurrent calls' reads into one query.
LICENSES_BY_KEYS = (
    select(*_LICENSE_COLUMNS, apps.c.account_id)
    .join(apps, apps.c.id == licenses.c.app_id)
    .where(licenses.c.key == any_(bindparam("keys", type_=ARRAY(Text))))
)


# Up to `limit` licenses of an app after row `after_id`: an index range scan on (app_id, id), the
# same cost at any depth.
LICENSE_PAGE = (
    select(*_LICENSE_COLUMNS)
    .where(licenses.c.app_id == bindparam("app_id"), licenses.c.id > bindparam("after_id"))
    .order_by(licenses.c.id)
    .limit(bindparam("limit"))
)


@dataclass(frozen=True)
class StoredLicense:
    id: int  # the row id: keyset position and foreign key of its HWID bindings
    account_id: uuid.UUID
    license: License


class Repository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    # Apps and credits

    async def debit_credits(self, account_id: uuid.UUID, amount: int) -> bool:
        """Takes `amount` credits in one conditional statement; False (and no change) if there are too few."""
        taken = await self.connection.scalar(
            update(accounts)
            .where(accounts.c.id == account_id, accounts.c.credits >= amount)
            .values(credits=accounts.c.credits - amount)
            .returning(accounts.c.id)
        )
        return taken is not None

    # Idempotent create (AIP-155)

    async def claim_request(
        self, account_id: uuid.UUID, request_id: uuid.UUID, fingerprint: bytes, now: datetime, ttl: timedelta
    ) -> tuple[bytes, list[str]] | None:
        """Claims a request id for this transaction; if an earlier request holds it, returns its fingerprint and keys.

        A concurrent retry waits on the unique key until the first attempt commits or rolls back.
        """
        key = (idempotency.c.account_id == account_id) & (idempotency.c.request_id == request_id)
        await self.connection.execute(delete(idempotency).where(key, idempotency.c.created_at < now - ttl))
        claimed = await self.connection.scalar(
            pg_insert(idempotency)
            .values(account_id=account_id, request_id=request_id, fingerprint=fingerprint, license_keys=[])
            .on_conflict_do_nothing()
            .returning(idempotency.c.request_id)
        )
        if claimed is not None:
            return None
        prior = (await self.connection.execute(
            select(idempotency.c.fingerprint, idempotency.c.license_keys).where(key)
        )).one()
        return prior.fingerprint, list(prior.license_keys)

    async def remember_request(self, account_id: uuid.UUID, request_id: uuid.UUID, keys: list[str]) -> None:
        await self.connection.execute(
            update(idempotency)
            .where(idempotency.c.account_id == account_id, idempotency.c.request_id == request_id)
            .values(license_keys=keys)
        )

    # Licenses

    async def add_licenses(self, new: Sequence[License]) -> None:
        await self.connection.execute(insert(licenses), [
            {
                "key": lic.key, "app_id": uuid.UUID(lic.app_id), "revoked": lic.revoked,
                "expires_at": lic.expires_at, "max_hwid_slots": lic.max_hwid_slots,
                "unlimited_hwid_slots": lic.unlimited_hwid_slots, "label": lic.label,
                "created_at": lic.created_at, "updated_at": lic.updated_at, "version": lic.version,
            }
            for lic in new
        ])

    async def license(self, key: str, *, for_update: bool = False) -> StoredLicense | None:
        if for_update:
            # Lock first, read after: a statement that waited for the lock would see the license row
            # as it is now but the HWID bindings as they were when the statement began.
            locked = select(licenses.c.id).where(licenses.c.key == key).with_for_update()
            if await self.connection.scalar(locked) is None:
                return None
        row = (await self.connection.execute(LICENSES_BY_KEYS, {"keys": [key]})).one_or_none()
        return None if row is None else stored_license(row)

    async def licenses_by_keys(self, keys: Sequence[str]) -> list[License]:
        """In the order they were created."""
        rows = (await self.connection.execute(LICENSES_BY_KEYS, {"keys": list(keys)})).all()
        return [license_of(row) for row in sorted(rows, key=lambda row: row.id)]

    async def save(self, stored: StoredLicense, lic: License) -> None:
        await self.connection.execute(
            update(licenses).where(licenses.c.id == stored.id).values(
                revoked=lic.revoked, expires_at=lic.expires_at, updated_at=lic.updated_at, version=lic.version,
            )
        )
        if stored.license.hwids and not lic.hwids:
            await self.connection.execute(delete(license_hwids).where(license_hwids.c.license_id == stored.id))

    async def bind_hwid(self, stored: StoredLicense, lic: License, hwid: str, now: datetime) -> None:
        await self.connection.execute(
            insert(license_hwids).values(license_id=stored.id, hwid=hwid, bound_at=now, last_seen_at=now)
        )
        await self.save(stored, lic)

    async def touch_hwid(self, license_id: int, hwid: str, now: datetime, resolution: timedelta) -> None:
        """Refreshes last_seen_at unless another call did within `resolution`: no event, no version."""
        await self.connection.execute(
            update(license_hwids)
            .where(
                license_hwids.c.license_id == license_id,
                license_hwids.c.hwid == hwid,
                license_hwids.c.last_seen_at < now - resolution,
            )
            .values(last_seen_at=now)
        )

    async def remove(self, stored: StoredLicense) -> None:
        await self.connection.execute(delete(licenses).where(licenses.c.id == stored.id))


def stored_license(row: Any) -> StoredLicense:
    """A row of LICENSES_BY_KEYS, from SQLAlchemy or psycopg alike (attribute access)."""
    return StoredLicense(row.id, row.account_id, license_of(row))


def license_of(row: Any) -> License:
    hwids = tuple(
        HwidBinding(hwid, datetime.fromisoformat(bound_at), datetime.fromisoformat(last_seen_at))
        for hwid, bound_at, last_seen_at in row.hwids
    )
    return License(
        key=row.key, app_id=str(row.app_id), revoked=row.revoked, expires_at=row.expires_at,
        max_hwid_slots=row.max_hwid_slots, unlimited_hwid_slots=row.unlimited_hwid_slots, label=row.label,
        created_at=row.created_at, updated_at=row.updated_at, version=row.version, hwids=hwids,
    )
