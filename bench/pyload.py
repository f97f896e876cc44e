"""A multi-process Python load generator, for calls whose requests must vary (and as h2load's stand-in).

Kept cheap so that it measures the server, not itself: requests are serialized before the clock
starts and sent as raw bytes (no serializer), responses are not decoded, several processes each run
many concurrent calls over several connections. Two clients: grpc.aio (`GRPC_AIO`, h2load's
stand-in), and unary calls framed by hand on HTTP/2 (`H2_FRAMES`, `h2client.py`), which costs the
machine less per call and so leaves the server more of it: for the scenarios h2load cannot drive.

Load is described as lanes: a lane is a sequence of requests sent one after the other, cycled until
the time is up, so whatever must not overlap (two changes of one license) goes in one lane.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Barrier

import grpc

from .h2client import CallFailed, UnaryConnection
from .infra import EVEN_SPREAD_ATTEMPTS, Spread, keep_connections, settled_spread
from .stats import Measurement

Metadata = tuple[tuple[str, str], ...]
Call = Callable[[bytes], Awaitable[bytes]]

GRPC_AIO = "grpc.aio"
H2_FRAMES = "h2 frames"


@dataclass(frozen=True)
class Work:
    address: str
    method: str
    metadata: Metadata
    lanes: list[list[bytes]]  # one per concurrent call
    connections: int  # of this process
    client: str  # GRPC_AIO or H2_FRAMES
    warmup: float
    seconds: float


@dataclass(frozen=True)
class ProcessResult:
    latencies_ms: bytes  # array('d') of calls that started in the window and succeeded
    errors: int  # failed calls that started in the window
    total_ok: int  # successes from the first call on, warm-up included: for side-effect checks
    first_error: str


@dataclass(frozen=True)
class PyLoadResult:
    measurement: Measurement
    total_ok: int  # warm-up included
    first_error: str  # "" when every call succeeded


@dataclass(frozen=True)
class PyLoad:
    processes: int
    connections: int  # in all
    client: str = GRPC_AIO

    @property
    def name(self) -> str:
        return f"python {self.client} ({self.processes} proc)"

    def run(self, address: str, method: str, metadata: Metadata, lanes: list[list[bytes]], seconds: float,
            warmup: float, spread: Callable[[], Spread] | None = None) -> PyLoadResult:
        """Runs every lane concurrently, spread over the processes, for `warmup` + `seconds`. With
        `spread`, the processes connect again until their connections are spread evenly over the
        server's processes."""
        processes = min(self.processes, len(lanes))
        per_process = max(1, self.connections // processes)
        works = [Work(address, method, metadata, lanes[i::processes], per_process, self.client, warmup, seconds)
                 for i in range(processes)]
        context = multiprocessing.get_context("spawn")  # gRPC's core must not be inherited across fork
        # The barrier (the children and this process) starts every child's clock together once all
        # are connected and the spread is even, so the measured windows coincide and calls/s add up.
        barrier = context.Barrier(processes + 1)
        go = context.Value("b", 0)
        queue = context.Queue()
        children = [context.Process(target=_run_process, args=(work, barrier, go, queue)) for work in works]
        started = time.monotonic()
        for child in children:
            child.start()
        try:
            seen = None
            for attempt in range(1, EVEN_SPREAD_ATTEMPTS + 1):
                barrier.wait(timeout=120)  # every child connected
                seen = settled_spread(spread, per_process * processes) if spread else None
                go.value = keep_connections(seen, attempt)
                barrier.wait(timeout=60)  # every child knows whether to start or to connect again
                if go.value:
                    break
            results: list[ProcessResult] = [queue.get(timeout=warmup + seconds + 120) for _ in children]
        finally:
            for child in children:
                child.join(timeout=10)
                if child.is_alive():
                    child.terminate()
        latencies: list[float] = []
        errors = total_ok = 0
        for result in results:
            latencies.extend(array("d", result.latencies_ms))
            errors += result.errors
            total_ok += result.total_ok
        first_error = next((r.first_error for r in results if r.first_error), "")
        # The children start measuring after spawning, connecting and warming up: about this window.
        ended = time.monotonic()
        measurement = Measurement.from_latencies(self.name, seconds, latencies, errors, str(seen or ""),
                                                 (max(started, ended - seconds), ended))
        return PyLoadResult(measurement, total_ok, first_error)


def _run_process(work: Work, barrier: Barrier, go: Synchronized, queue: Queue) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(_drive(work, barrier, go)))


async def _drive(work: Work, barrier: Barrier, go: Synchronized) -> ProcessResult:  # type: ignore[type-arg]
    while True:
        calls, close = await _connect(work)
        # Blocking is fine: nothing else runs in this process yet.
        barrier.wait(timeout=120)  # every process connected: the parent looks at the spread
        barrier.wait(timeout=60)
        if go.value:
            break
        await close()
    try:
        start = time.perf_counter()
        measure_from, end = start + work.warmup, start + work.warmup + work.seconds
        latencies = array("d")
        counters = {"errors": 0, "ok": 0}
        first_error: list[str] = []

        async def lane(index: int, requests: list[bytes]) -> None:
            call = calls[index % len(calls)]
            n = len(requests)
            i = 0
            while True:
                began = time.perf_counter()
                if began >= end:
                    return
                try:
                    await call(requests[i % n])
                except (grpc.aio.AioRpcError, CallFailed) as error:
                    if began >= measure_from:
                        counters["errors"] += 1
                    if not first_error:
                        first_error.append(_describe(error))
                    await asyncio.sleep(0)  # a closed connection fails at once: let the other lanes run
                else:
                    counters["ok"] += 1
                    if began >= measure_from:
                        latencies.append((time.perf_counter() - began) * 1000)
                i += 1

        # A hand-framed call has no deadline of its own: one the server never answers ends the run here.
        await asyncio.wait_for(asyncio.gather(*(lane(i, requests) for i, requests in enumerate(work.lanes))),
                               work.warmup + work.seconds + 30)
        return ProcessResult(latencies.tobytes(), counters["errors"], counters["ok"],
                             first_error[0] if first_error else "")
    finally:
        await close()


async def _connect(work: Work) -> tuple[list[Call], Callable[[], Awaitable[None]]]:
    """A call function per connection, and what closes them all."""
    if work.client == H2_FRAMES:
        connections = [await UnaryConnection.open(work.address, work.method, work.metadata)
                       for _ in range(work.connections)]

        async def close_connections() -> None:
            for connection in connections:
                await connection.close()

        return [connection.call for connection in connections], close_connections
    channels = await open_channels(work.address, work.connections)

    def grpc_call(channel: grpc.aio.Channel) -> Call:
        method = channel.unary_unary(work.method, request_serializer=None, response_deserializer=None)
        return lambda request: method(request, metadata=work.metadata, timeout=30)

    async def close_channels() -> None:
        for channel in channels:
            await channel.close()

    return [grpc_call(channel) for channel in channels], close_channels


def _describe(error: Exception) -> str:
    if isinstance(error, grpc.aio.AioRpcError):
        return f"{error.code().name}: {error.details()}"
    return str(error)


async def open_channels(address: str, n: int) -> list[grpc.aio.Channel]:
    """`n` connected channels, each its own TCP connection (its own subchannel pool), so that the
    kernel spreads them over the server's processes."""
    channels = [grpc.aio.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
                for _ in range(n)]
    for channel in channels:
        await asyncio.wait_for(channel.channel_ready(), 10)
    return channels
