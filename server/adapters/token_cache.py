"""The callers' live tokens, kept per server process and forgotten whenever any token changes.

Authenticating each call with a query cost ~14% of a worker's CPU under GetLicense load, for
answers that almost never change. A live token is served from memory instead, but only while a
connection of this cache LISTENs on `api_tokens`: the trigger of migration 0007 notifies that
channel at the commit of every statement that updates or deletes tokens (a revocation), and each
notification empties the cache. So a revocation takes effect once its notification arrives, within
milliseconds of its commit, on every server.

The rules that keep that promise:
- Not listening (not connected yet, connection lost, reconnecting): no hits and nothing stored, as
  notifications may be missed meanwhile; listening again starts from an empty cache.
- A row is stored only if nothing was invalidated since just before its query started: a query
  that read a token before its revocation committed may answer after the notification emptied the
  cache, and must not put the revoked token back (the `generation` check).
- An entry older than `ttl_seconds` is not served: a backstop for a notification that is lost while
  the connection looks alive.
- `expires_at` is compared with the wall clock on every hit, as the query compares it with now(),
  so expiry stays exact.
- Only live tokens are kept: an unknown, revoked or expired one is looked up again on every call,
  so a newly created token needs no notification.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

import psycopg

from server.domain.clock import utcnow

log = logging.getLogger(__name__)

CHANNEL = "api_tokens"
APPLICATION_NAME = "licensing-token-cache"  # the listener in pg_stat_activity
MAX_ENTRIES = 10_000  # tokens are few; past this many, starting over is simpler than evicting
_CONNECT_SECONDS = 5.0
_FIRST_RETRY_SECONDS = 0.1
_MAX_RETRY_SECONDS = 5.0


class TokenRow(Protocol):
    @property
    def expires_at(self) -> datetime | None: ...


class TokenCache:
    """token hash -> (row, when it was stored); `ttl_seconds` <= 0 disables caching (never live)."""

    def __init__(self, ttl_seconds: float, *, max_entries: int = MAX_ENTRIES,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], datetime] = utcnow) -> None:
        self.ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._entries: dict[bytes, tuple[TokenRow, float]] = {}
        self._generation = 0  # bumped by every invalidation
        self._live = False

    @property
    def live(self) -> bool:
        """Whether this cache hears about every token change now, and so may answer."""
        return self._live

    @property
    def generation(self) -> int:
        """Read just before a token query starts, and handed back to `store` with its result."""
        return self._generation

    def get(self, token_hash: bytes) -> TokenRow | None:
        entry = self._entries.get(token_hash)
        if entry is None or not self._live:
            return None
        row, stored_at = entry
        expired = row.expires_at is not None and row.expires_at <= self._wall_clock()
        if expired or self._monotonic() - stored_at >= self.ttl_seconds:
            del self._entries[token_hash]
            return None
        return row

    def store(self, found: Mapping[bytes, TokenRow], generation: int) -> None:
        """Keeps the live tokens a query found, unless something was invalidated since it started."""
        if not self._live or generation != self._generation:
            return
        if len(self._entries) + len(found) > self._max_entries:
            self._entries.clear()
        now = self._monotonic()
        for token_hash, row in found.items():
            self._entries[token_hash] = (row, now)

    def invalidate(self) -> None:
        """Forgets every token; a query already running will not store what it read."""
        self._generation += 1
        self._entries.clear()

    def listening(self, live: bool) -> None:
        """Notifications reach the cache from now on (True) or may be missed (False). Either way it
        starts over: what it held may have been revoked while no notification could arrive."""
        self.invalidate()
        self._live = live and self.ttl_seconds > 0

    async def listen(self, database_url: str) -> None:
        """Keeps the cache live until cancelled: LISTENs on a connection of its own and empties the
        cache on every notification; on any failure the cache goes dark and reconnects (capped backoff)."""
        if self.ttl_seconds <= 0:
            return  # disabled: never live, every call asks the database
        retry = _FIRST_RETRY_SECONDS
        try:
            while True:
                try:
                    await self._follow(database_url)
                except Exception as error:  # whatever it was, notifications may be lost from here on
                    # A connection that was listening is replaced at once; failed attempts back off.
                    retry = _FIRST_RETRY_SECONDS if self._live else min(retry * 2, _MAX_RETRY_SECONDS)
                    self.listening(False)
                    log.warning("token cache off (no LISTEN %s), retrying in %.1fs: %s", CHANNEL, retry, error)
                await asyncio.sleep(retry)
        finally:
            self.listening(False)

    async def _follow(self, database_url: str) -> None:
        async with asyncio.timeout(_CONNECT_SECONDS):
            connection = await psycopg.AsyncConnection.connect(
                database_url, autocommit=True, application_name=APPLICATION_NAME)
        async with connection:
            async with asyncio.timeout(_CONNECT_SECONDS):
                await connection.execute(f"LISTEN {CHANNEL}")
            self.listening(True)  # autocommit: every change committed from now on is notified
            log.info("token cache live (LISTEN %s)", CHANNEL)
            async for _ in connection.notifies():
                self.invalidate()
        raise ConnectionError("notifications stopped")  # notifies() only ends by raising; in case it returns
