"""Who is calling: a bearer token names an account (only the token's hash is stored)."""
from __future__ import annotations

import uuid

from server.adapters.hot_reads import HotReads
from server.domain.errors import Unauthenticated
from server.domain.tokens import hash_token


class Authenticator:
    def __init__(self, reads: HotReads) -> None:
        self._reads = reads

    async def authenticate(self, token: str) -> uuid.UUID:
        # Looked up on every call, never cached: a revoked token fails its very next call.
        account = await self._reads.account_of_token(hash_token(token))
        if account is None:
            raise Unauthenticated("unknown or revoked API token")
        return account
