"""TokenCache's rules: what it may answer from memory, and what it must refuse to keep."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from server.adapters.token_cache import TokenCache

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    account_id: str = "acct"
    expires_at: datetime | None = None


class Clocks:
    """A monotonic clock and a wall clock that move only when told to."""

    def __init__(self) -> None:
        self.seconds = 100.0

    def monotonic(self) -> float:
        return self.seconds

    def wall(self) -> datetime:
        return NOW + timedelta(seconds=self.seconds - 100.0)

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def _live_cache(ttl: float = 5.0, **options: int) -> tuple[TokenCache, Clocks]:
    clocks = Clocks()
    cache = TokenCache(ttl, monotonic=clocks.monotonic, wall_clock=clocks.wall, **options)
    cache.listening(True)
    return cache, clocks


def test_a_stored_token_is_served_until_its_ttl_passes() -> None:
    cache, clocks = _live_cache(ttl=5.0)
    row = Row()
    cache.store({b"t": row}, cache.generation)
    clocks.advance(4.9)
    assert cache.get(b"t") is row
    clocks.advance(0.1)
    assert cache.get(b"t") is None


def test_a_token_past_its_expires_at_is_not_served_though_its_ttl_has_not_passed() -> None:
    cache, clocks = _live_cache(ttl=60.0)
    cache.store({b"t": Row(expires_at=NOW + timedelta(seconds=1))}, cache.generation)
    clocks.advance(0.999)
    assert cache.get(b"t") is not None
    clocks.advance(0.001)
    assert cache.get(b"t") is None


def test_a_query_that_started_before_an_invalidation_cannot_store_its_rows() -> None:
    cache, _ = _live_cache()
    before_query = cache.generation
    cache.invalidate()  # a revocation's NOTIFY arrived while the query ran
    cache.store({b"t": Row()}, before_query)
    assert cache.get(b"t") is None
    cache.store({b"t": Row()}, cache.generation)  # a query that started afterwards may
    assert cache.get(b"t") is not None


def test_an_invalidation_forgets_every_token() -> None:
    cache, _ = _live_cache()
    cache.store({b"a": Row(), b"b": Row()}, cache.generation)
    cache.invalidate()
    assert (cache.get(b"a"), cache.get(b"b")) == (None, None)


def test_a_cache_that_is_not_listening_serves_and_keeps_nothing() -> None:
    cache, _ = _live_cache()
    cache.store({b"t": Row()}, cache.generation)
    cache.listening(False)  # the listener's connection was lost
    assert cache.get(b"t") is None
    cache.store({b"t": Row()}, cache.generation)
    assert cache.get(b"t") is None


def test_listening_again_starts_from_an_empty_cache_and_refuses_older_queries() -> None:
    cache, _ = _live_cache()
    cache.store({b"t": Row()}, cache.generation)
    while_not_listening = cache.generation
    cache.listening(False)
    cache.listening(True)
    assert cache.get(b"t") is None
    cache.store({b"t": Row()}, while_not_listening)
    assert cache.get(b"t") is None


def test_a_cache_that_never_listened_serves_nothing() -> None:
    cache = TokenCache(5.0)
    cache.store({b"t": Row()}, cache.generation)
    assert not cache.live
    assert cache.get(b"t") is None


def test_the_cache_starts_over_when_it_would_grow_past_its_bound() -> None:
    cache, _ = _live_cache(max_entries=3)
    cache.store({b"a": Row(), b"b": Row(), b"c": Row()}, cache.generation)
    assert cache.get(b"a") is not None
    cache.store({b"d": Row()}, cache.generation)
    assert [cache.get(t) is not None for t in (b"a", b"b", b"c", b"d")] == [False, False, False, True]


def test_ttl_zero_disables_the_cache() -> None:
    cache, _ = _live_cache(ttl=0)
    assert not cache.live
    cache.store({b"t": Row()}, cache.generation)
    assert cache.get(b"t") is None
    asyncio.run(asyncio.wait_for(cache.listen("postgresql://nobody@127.0.0.1:1/none"), timeout=1))  # returns at once
    assert not cache.live
