"""BatchLoader: concurrent lookups share one fetch; each caller gets its own key's answer."""
from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from server.adapters.batching import BatchLoader


class Squares:
    """A fetch that records the keys of each call and knows every key but 13."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[list[int]] = []
        self.delay = delay

    async def __call__(self, keys: Sequence[int]) -> dict[int, int]:
        self.calls.append(list(keys))
        await asyncio.sleep(self.delay)
        return {k: k * k for k in keys if k != 13}


def test_concurrent_loads_share_one_fetch_and_each_gets_its_own_answer() -> None:
    async def scenario() -> tuple[list[int | None], list[list[int]]]:
        fetch = Squares()
        loader = BatchLoader(fetch)
        answers = await asyncio.gather(*(loader.load(k) for k in (1, 2, 3, 2, 13)))
        return answers, fetch.calls

    answers, calls = asyncio.run(scenario())
    assert answers == [1, 4, 9, 4, None]
    assert calls == [[1, 2, 3, 13]]  # one fetch, each key once


def test_a_lone_load_is_answered_without_waiting_for_company() -> None:
    async def scenario() -> int | None:
        return await asyncio.wait_for(BatchLoader(Squares()).load(5), timeout=1)

    assert asyncio.run(scenario()) == 25


def test_loads_arriving_while_a_fetch_runs_go_together_in_the_next() -> None:
    async def scenario() -> list[list[int]]:
        fetch = Squares(delay=0.05)
        loader = BatchLoader(fetch)
        first = asyncio.ensure_future(loader.load(1))
        await asyncio.sleep(0.01)  # the first fetch is running
        later = [asyncio.ensure_future(loader.load(k)) for k in (2, 3, 4)]
        await asyncio.gather(first, *later)
        return fetch.calls

    assert asyncio.run(scenario()) == [[1], [2, 3, 4]]


def test_batches_are_capped_at_max_batch() -> None:
    async def scenario() -> list[list[int]]:
        fetch = Squares()
        loader = BatchLoader(fetch, max_batch=3)
        await asyncio.gather(*(loader.load(k) for k in range(7)))
        return fetch.calls

    assert [len(keys) for keys in asyncio.run(scenario())] == [3, 3, 1]


def test_a_failed_fetch_raises_to_every_caller_of_its_batch_and_the_next_batch_runs() -> None:
    async def scenario() -> tuple[list[BaseException | int | None], int | None]:
        failing = True

        async def fetch(keys: Sequence[int]) -> dict[int, int]:
            if failing:
                raise ConnectionError("database down")
            return {k: k for k in keys}

        loader = BatchLoader(fetch)
        results = await asyncio.gather(loader.load(1), loader.load(2), return_exceptions=True)
        failing = False
        return results, await loader.load(3)

    results, after = asyncio.run(scenario())
    assert all(isinstance(r, ConnectionError) for r in results)
    assert after == 3


def test_a_cancelled_caller_leaves_the_fetch_to_the_others() -> None:
    async def scenario() -> int | None:
        loader = BatchLoader(Squares(delay=0.05))
        leaving = asyncio.ensure_future(loader.load(2))
        staying = asyncio.ensure_future(loader.load(2))
        await asyncio.sleep(0.01)
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await staying

    assert asyncio.run(scenario()) == 4


def test_a_query_whose_callers_all_left_runs_to_its_end_and_the_loader_goes_on() -> None:
    """Cancelling it would cost a cancel request to PostgreSQL, and psycopg waits up to 10 s for
    that, during which the loader (one fetch in flight) would start no other query."""

    async def scenario() -> tuple[list[str], int | None]:
        fetches: list[str] = []

        async def fetch(keys: Sequence[int]) -> dict[int, int]:
            try:
                await asyncio.sleep(0.05)  # a statement running
            except asyncio.CancelledError:
                fetches.append("cancelled")
                raise
            fetches.append("finished")
            return {k: k for k in keys}

        loader = BatchLoader(fetch)
        callers = [asyncio.ensure_future(loader.load(k)) for k in (1, 2)]
        await asyncio.sleep(0.01)
        for caller in callers:
            caller.cancel()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert all(isinstance(result, asyncio.CancelledError) for result in results)
        answer = await asyncio.wait_for(loader.load(3), timeout=1)
        return fetches, answer

    assert asyncio.run(scenario()) == (["finished", "finished"], 3)


def test_a_query_whose_callers_all_left_is_cancelled_when_the_loader_cancels_abandoned_queries() -> None:
    """UpdateLicense's saves: a write waiting on a lock must not commit after its deadline."""

    async def scenario() -> bool:
        cancelled = asyncio.Event()

        async def fetch(keys: Sequence[int]) -> dict[int, int]:
            if not cancelled.is_set():
                try:
                    await asyncio.sleep(10)  # a statement waiting on a lock
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
            return {k: k for k in keys}

        loader = BatchLoader(fetch, cancel_abandoned=True)
        callers = [asyncio.ensure_future(loader.load(k)) for k in (1, 2)]
        await asyncio.sleep(0.01)
        for caller in callers:
            caller.cancel()
        await asyncio.wait_for(cancelled.wait(), timeout=1)
        return await asyncio.wait_for(loader.load(3), timeout=1) == 3  # and the loader goes on

    assert asyncio.run(scenario())


def test_a_caller_that_leaves_before_its_query_starts_is_not_looked_up() -> None:
    async def scenario() -> list[list[int]]:
        fetch = Squares(delay=0.05)
        loader = BatchLoader(fetch)
        first = asyncio.ensure_future(loader.load(1))
        await asyncio.sleep(0.01)  # the first fetch is running: the next lookups wait
        leaving, staying = asyncio.ensure_future(loader.load(2)), asyncio.ensure_future(loader.load(3))
        await asyncio.sleep(0)
        leaving.cancel()
        await asyncio.gather(first, staying)
        return fetch.calls

    assert asyncio.run(scenario()) == [[1], [3]]


def test_callers_that_all_leave_before_their_query_task_first_runs_do_not_stop_the_loader() -> None:
    """The window a bench run hit when its clients went away together: the batch's task is created,
    every caller of it is cancelled before the task's first step, so the task is cancelled before its
    body ever runs. One worker then answered no license read until restarted."""

    async def scenario() -> int | None:
        loader = BatchLoader(Squares(), max_rounds=1)  # the batch starts on the loop's next round
        caller = asyncio.ensure_future(loader.load(2))
        await asyncio.sleep(0)  # the caller asks: the batch is due next round
        caller.cancel()  # its wake-up comes after the batch starts, before the batch's task first runs
        await asyncio.sleep(0)
        with pytest.raises(asyncio.CancelledError):
            await caller
        return await asyncio.wait_for(loader.load(3), timeout=1)

    assert asyncio.run(scenario()) == 9


async def _staggered(loader: BatchLoader[int, int], keys: Sequence[int], gap: float) -> list[int | None]:
    """Loads of `keys` started `gap` seconds apart."""
    loads = []
    for key in keys:
        loads.append(asyncio.ensure_future(loader.load(key)))
        await asyncio.sleep(gap)
    return list(await asyncio.gather(*loads))


@pytest.mark.parametrize("linger", [0.0, 0.2])
def test_a_busy_loader_lingers_so_that_staggered_loads_share_the_next_fetch(linger: float) -> None:
    async def scenario() -> list[list[int]]:
        fetch = Squares()
        loader = BatchLoader(fetch, linger=linger, busy_batch=3)
        await asyncio.gather(*(loader.load(k) for k in (1, 2, 3)))  # a busy fetch
        assert await _staggered(loader, (4, 5, 6), gap=0.02) == [16, 25, 36]
        return fetch.calls

    calls = asyncio.run(scenario())
    assert calls[0] == [1, 2, 3]
    assert calls[1:] == ([[4, 5, 6]] if linger else [[4], [5], [6]])


def test_a_loader_that_was_not_busy_does_not_linger() -> None:
    async def scenario() -> tuple[list[list[int]], float]:
        fetch = Squares()
        loader = BatchLoader(fetch, linger=5.0, busy_batch=3)
        await asyncio.gather(*(loader.load(k) for k in (1, 2)))  # below busy_batch
        started = asyncio.get_running_loop().time()
        await loader.load(3)
        return fetch.calls, asyncio.get_running_loop().time() - started

    calls, waited = asyncio.run(scenario())
    assert calls == [[1, 2], [3]]
    assert waited < 1


def test_a_lingering_loader_answers_a_lone_load_after_its_linger_and_stops_lingering_once_quiet() -> None:
    async def scenario() -> list[float]:
        loader = BatchLoader(Squares(), linger=0.2, busy_batch=3)
        await asyncio.gather(*(loader.load(k) for k in (1, 2, 3)))  # busy
        waits = []
        for key in (4, 5):
            started = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(loader.load(key), timeout=2) == key * key
            waits.append(asyncio.get_running_loop().time() - started)
        return waits

    after_busy, after_quiet = asyncio.run(scenario())
    assert after_busy >= 0.2  # waited for company that did not come
    assert after_quiet < 0.1  # that fetch answered one caller: the loader is not busy any more
