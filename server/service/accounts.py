"""Authentication and the operator's commands (accounts, apps, credits, tokens)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from server.adapters.accounts_repository import AccountsRepository
from server.domain.caller import ALL_SCOPES, Scope
from server.domain.clock import utcnow
from server.domain.errors import BadRequest, NotFound
from server.domain.tokens import generate_token, hash_token


@dataclass(frozen=True)
class IssuedToken:
    token_id: uuid.UUID
    account_id: uuid.UUID
    token: str  # shown once; only its hash is stored


class AccountService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_account(self, name: str, credits: int) -> IssuedToken:
        _require_name(name)
        _require_non_negative("credits", credits)
        async with self._engine.begin() as connection:
            repo = AccountsRepository(connection)
            account_id = await repo.create_account(name, credits)
            return await _issue_token(repo, account_id, "default", ALL_SCOPES, None)

    async def create_app(self, account_id: uuid.UUID, name: str) -> uuid.UUID:
        _require_name(name)
        async with self._engine.begin() as connection:
            repo = AccountsRepository(connection)
            await self._require_account(repo, account_id)
            return await repo.create_app(account_id, name)

    async def add_credits(self, account_id: uuid.UUID, amount: int) -> int:
        _require_non_negative("amount", amount)
        async with self._engine.begin() as connection:
            credits = await AccountsRepository(connection).add_credits(account_id, amount)
        if credits is None:
            raise NotFound("no such account", accountId=str(account_id))
        return credits

    async def show_account(self, account_id: uuid.UUID) -> dict[str, object]:
        async with self._engine.connect() as connection:
            return await self._require_account(AccountsRepository(connection), account_id)

    async def create_token(self, account_id: uuid.UUID, name: str, scopes: frozenset[Scope] = ALL_SCOPES,
                           expires_at: datetime | None = None) -> IssuedToken:
        if expires_at is not None and expires_at <= utcnow():
            raise BadRequest.single("expires_at", "must be in the future")
        async with self._engine.begin() as connection:
            repo = AccountsRepository(connection)
            await self._require_account(repo, account_id)
            return await _issue_token(repo, account_id, name, scopes, expires_at)

    async def revoke_token(self, token_id: uuid.UUID) -> uuid.UUID:
        async with self._engine.begin() as connection:
            account_id = await AccountsRepository(connection).revoke_token(token_id, utcnow())
        if account_id is None:
            raise NotFound("no live token with this id", tokenId=str(token_id))
        return account_id

    @staticmethod
    async def _require_account(repo: AccountsRepository, account_id: uuid.UUID) -> dict[str, object]:
        account = await repo.account(account_id)
        if account is None:
            raise NotFound("no such account", accountId=str(account_id))
        return account


async def _issue_token(repo: AccountsRepository, account_id: uuid.UUID, name: str, scopes: frozenset[Scope],
                       expires_at: datetime | None) -> IssuedToken:
    token = generate_token()
    token_id = await repo.create_token(account_id, hash_token(token), name, sorted(s.value for s in scopes), expires_at)
    return IssuedToken(token_id, account_id, token)


def _require_name(name: str) -> None:
    if not name.strip():
        raise BadRequest.single("name", "is required")


def _require_non_negative(field_name: str, value: int) -> None:
    if value < 0:
        raise BadRequest.single(field_name, "must not be negative")
