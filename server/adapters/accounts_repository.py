"""Accounts, apps and API tokens: the operator's side, plus token lookup for authentication."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, any_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import accounts, api_tokens, apps

# Live tokens by the hashes of their bearer tokens: the hot read path looks up every waiting call's
# token in one query, and keeps what it found in its TokenCache until any token changes (a NOTIFY)
# or the row's expires_at passes: a revocation takes effect within milliseconds of its commit, an
# expiry exactly. expires_at is selected for that check.
LIVE_TOKENS = select(
    api_tokens.c.token_hash, api_tokens.c.id, api_tokens.c.account_id, api_tokens.c.scopes, api_tokens.c.expires_at,
).where(
    api_tokens.c.token_hash == any_(bindparam("token_hashes", type_=ARRAY(LargeBinary))),
    api_tokens.c.revoked_at.is_(None),
    or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > func.now()),
)


class AccountsRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self.connection = connection

    async def account_of_token(self, token_hash: bytes) -> uuid.UUID | None:
        row = (await self.connection.execute(LIVE_TOKENS, {"token_hashes": [token_hash]})).one_or_none()
        return row.account_id if row else None

    async def create_account(self, name: str, credits: int) -> uuid.UUID:
        return await self._insert_returning_id(insert(accounts).values(name=name, credits=credits).returning(accounts.c.id))

    async def create_app(self, account_id: uuid.UUID, name: str) -> uuid.UUID:
        return await self._insert_returning_id(insert(apps).values(account_id=account_id, name=name).returning(apps.c.id))

    async def create_token(self, account_id: uuid.UUID, token_hash: bytes, name: str, scopes: list[str],
                           expires_at: datetime | None) -> uuid.UUID:
        return await self._insert_returning_id(
            insert(api_tokens)
            .values(account_id=account_id, token_hash=token_hash, name=name, scopes=scopes, expires_at=expires_at)
            .returning(api_tokens.c.id)
        )

    async def revoke_token(self, token_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
        """Revokes a token; returns its account, or None when no live token has that id."""
        return await self.connection.scalar(
            update(api_tokens)
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
            .returning(api_tokens.c.account_id)
        )

    async def add_credits(self, account_id: uuid.UUID, amount: int) -> int | None:
        return await self.connection.scalar(
            update(accounts).where(accounts.c.id == account_id)
            .values(credits=accounts.c.credits + amount).returning(accounts.c.credits)
        )

    async def account(self, account_id: uuid.UUID) -> dict[str, object] | None:
        row = (await self.connection.execute(
            select(accounts.c.id, accounts.c.name, accounts.c.credits).where(accounts.c.id == account_id)
        )).one_or_none()
        if row is None:
            return None
        app_rows = await self.connection.execute(
            select(apps.c.id, apps.c.name).where(apps.c.account_id == account_id).order_by(apps.c.created_at)
        )
        live_tokens = await self.connection.scalar(
            select(func.count()).where(api_tokens.c.account_id == account_id, api_tokens.c.revoked_at.is_(None))
        )
        return {
            "account_id": str(row.id), "name": row.name, "credits": row.credits,
            "apps": [{"app_id": str(a.id), "name": a.name} for a in app_rows],
            "tokens": live_tokens,
        }

    async def _insert_returning_id(self, statement: Any) -> uuid.UUID:
        result: uuid.UUID = await self.connection.scalar(statement)
        return result
