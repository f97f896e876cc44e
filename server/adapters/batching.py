"""Concurrent lookups gathered into one query: while the queries already in flight run, new keys
wait and then go together in the next one.

One query per call costs more Python time (psycopg, the pool, a send per statement) than the gRPC
call itself; under load, one `WHERE key = ANY(...)` for every call waiting costs about as much as
one. Calls enter the event loop one at a time, so a query started at once would almost always carry
one key: a lookup first lets the loop go round (running the other calls up to their own lookups)
as long as new lookups keep joining, at most `max_rounds` times. A lone caller waits a few empty
rounds (tens of microseconds); under load one query answers many calls.

With `linger`, a loader whose last query answered `busy_batch` callers or more (a busy server) lets
the next one wait that long on a timer instead: going round the loop costs a system call and a
callback per round, and at saturation the rounds cost about what the bigger batches saved.
"""
from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Fetch = Callable[[Sequence[K]], Awaitable[dict[K, V]]]


class BatchLoader(Generic[K, V]):
    """`load(key)` answers what `fetch` returned for that key, or None when it returned nothing.

    `fetch` receives distinct keys, at most `max_batch` at a time, and at most `max_in_flight`
    fetches run at once. A caller that is cancelled (its deadline passed) stops waiting; the query it
    joined runs on for the others. Once no caller is left to answer, it is cancelled only with
    `cancel_abandoned` (a write waiting on a lock must not commit after its calls' deadlines): a
    read runs to its end, because cancelling a running psycopg query sends PostgreSQL a cancel
    request over a new connection, and psycopg waits up to 5 s for that and 5 s more for the query
    to stop, all the while counting as a fetch in flight (with one, every later lookup waits). An
    error of `fetch` is raised to every caller of that batch.
    """

    def __init__(self, fetch: Fetch[K, V], *, max_batch: int = 256, max_in_flight: int = 1,
                 max_rounds: int = 64, quiet_rounds: int = 8, linger: float = 0.0, busy_batch: int = 8,
                 cancel_abandoned: bool = False) -> None:
        self._fetch = fetch
        self._cancel_abandoned = cancel_abandoned
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._max_rounds = max_rounds
        self._quiet_rounds = quiet_rounds
        self._linger = linger
        self._busy_batch = busy_batch
        self._last_callers = 0  # how many callers the last started queries answer
        self._waiting: dict[K, list[asyncio.Future[V | None]]] = {}
        self._loads = 0  # lookups so far: tells a round in which one joined from a quiet one
        self._in_flight = 0
        self._scheduled = False
        self._running: dict[asyncio.Task[None], dict[K, list[asyncio.Future[V | None]]]] = {}

    async def load(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V | None] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)  # the same key twice: one answer for both
        self._loads += 1
        self._schedule(loop)
        try:
            return await future
        except asyncio.CancelledError:
            self._abandon(key, future)
            raise

    def _abandon(self, key: K, future: asyncio.Future[V | None]) -> None:
        """A caller left: forget its lookup, or (`cancel_abandoned`) stop its query if it was the last
        one waiting for it."""
        if future in self._waiting.get(key, ()):
            self._waiting[key].remove(future)
            if not self._waiting[key]:
                del self._waiting[key]
            return
        if not self._cancel_abandoned:
            return
        for task, batch in self._running.items():
            if future in batch.get(key, ()) and not _pending(batch):
                task.cancel()

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._waiting and not self._scheduled and self._in_flight < self._max_in_flight:
            self._scheduled = True
            if self._linger and self._last_callers >= self._busy_batch:
                loop.call_later(self._linger, self._start, loop)
            else:
                loop.call_soon(self._gather, loop, 1, 0, self._loads)

    def _gather(self, loop: asyncio.AbstractEventLoop, rounds: int, quiet: int, loads: int) -> None:
        """One more round of the event loop, unless the last `quiet_rounds` brought no lookup."""
        quiet = quiet + 1 if self._loads == loads else 0
        if rounds >= self._max_rounds or quiet >= self._quiet_rounds or len(self._waiting) >= self._max_batch:
            self._start(loop)
        else:
            loop.call_soon(self._gather, loop, rounds + 1, quiet, self._loads)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        self._last_callers = 0
        while self._waiting and self._in_flight < self._max_in_flight:
            keys = list(self._waiting)[: self._max_batch]
            batch = {key: self._waiting.pop(key) for key in keys}
            self._last_callers += sum(len(futures) for futures in batch.values())
            self._in_flight += 1
            task = loop.create_task(self._run(batch))
            self._running[task] = batch  # also the strong reference a task needs: the loop keeps weak ones
            task.add_done_callback(functools.partial(self._finished, loop))

    def _finished(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        """However the batch's task ended. Here and not in the task: a task cancelled before its first
        step (with `cancel_abandoned`, every caller left in between; or the server is stopping) never
        runs its body, and the loader must go on."""
        for future in _pending(self._running.pop(task)):
            future.cancel()  # the task was cancelled: no caller is left, or the server is stopping
        self._in_flight -= 1
        self._schedule(loop)

    async def _run(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._fetch(list(batch))
        except Exception as error:  # handed to every caller of the batch, each sees it raised
            for future in _pending(batch):
                future.set_exception(error)
        else:
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():  # its caller may have been cancelled meanwhile
                        future.set_result(found.get(key))


def _pending(batch: dict[K, list[asyncio.Future[V | None]]]) -> list[asyncio.Future[V | None]]:
    return [future for futures in batch.values() for future in futures if not future.done()]
