"""Who is calling: a bearer token names an account (only the token's hash is stored)."""
from __future__ import annotations

from typing import Any

from server.adapters.hot_reads import HotReads
from server.domain.caller import Caller, Scope
from server.domain.errors import Unauthenticated
from server.domain.tokens import hash_token

_KNOWN = {s.value for s in Scope}  # a scope a later version added is ignored, not an error


_CALLERS_KEPT = 10_000


class Authenticator:
    def __init__(self, reads: HotReads) -> None:
        self._reads = reads
        # The Caller made of each cached token row, reused while the cache answers with that same row
        # (a new query or an invalidation makes a new row, and so a new Caller): it saves building
        # a frozenset of scopes per call.
        self._callers: dict[bytes, tuple[Any, Caller]] = {}

    async def authenticate(self, token: str) -> Caller:
        # Cached per process (HotReads' TokenCache) only while a NOTIFY of every api_tokens change can
        # empty the cache, with expires_at checked on each hit: a revoked token fails within
        # milliseconds of the revocation's commit, an expired one on its very next call.
        token_hash = hash_token(token)
        row = await self._reads.live_token(token_hash)
        if row is None:
            raise Unauthenticated("unknown, expired or revoked API token")
        made = self._callers.get(token_hash)
        if made is not None and made[0] is row:
            return made[1]
        caller = Caller(row.account_id, row.id, frozenset(Scope(s) for s in row.scopes if s in _KNOWN))
        if len(self._callers) >= _CALLERS_KEPT:
            self._callers.clear()
        self._callers[token_hash] = (row, caller)
        return caller
