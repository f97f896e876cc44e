"""Who is calling: a bearer token names an account (only the token's hash is stored)."""
from __future__ import annotations

from server.adapters.hot_reads import HotReads
from server.domain.caller import Caller, Scope
from server.domain.errors import Unauthenticated
from server.domain.tokens import hash_token

_KNOWN = {s.value for s in Scope}  # a scope a later version added is ignored, not an error


class Authenticator:
    def __init__(self, reads: HotReads) -> None:
        self._reads = reads

    async def authenticate(self, token: str) -> Caller:
        # Cached per process (HotReads' TokenCache) only while a NOTIFY of every api_tokens change can
        # empty the cache, with expires_at checked on each hit: a revoked token fails within
        # milliseconds of the revocation's commit, an expired one on its very next call.
        row = await self._reads.live_token(hash_token(token))
        if row is None:
            raise Unauthenticated("unknown, expired or revoked API token")
        return Caller(row.account_id, row.id, frozenset(Scope(s) for s in row.scopes if s in _KNOWN))
