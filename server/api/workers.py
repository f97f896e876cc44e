"""Several server processes sharing one port (`grpc.so_reuseport`), so every core serves calls.

The kernel spreads connections, not calls, over the processes. The outbox relay runs in a process
of its own beside them: in a worker's event loop its publish waves delayed that worker's calls, and
under a load that kept the loop busy it fell far behind (81 s to catch up after a CreateLicenses(100)
run of the benchmark, 19 s in a process of its own). A lower CPU priority for it was tried and left
out: it starved the relay of the idle moments it needs, and events arrived tens of ms later. The
first worker serves the metrics endpoint, for all of them and the relay.
"""
from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from types import FrameType
from typing import Any

from server.config import Settings
from server.runtime import configure_logging, relay_wanted


def serve_workers(settings: Settings) -> int:
    """Serves until SIGTERM/SIGINT; returns the exit status (non-zero when a worker failed)."""
    from .server import serve, with_signing_keys

    settings = with_signing_keys(settings)  # resolved once, so every worker signs with the same key
    if settings.workers <= 1:
        asyncio.run(serve(settings))
        return 0
    # The workers' metrics go to files that worker 0's endpoint adds up (prometheus-client's
    # multiprocess mode); set before the workers start, so they create their metrics there.
    metrics_dir = tempfile.TemporaryDirectory(prefix="licensing-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    targets: list[tuple[Callable[..., None], tuple[Any, ...]]] = [
        (_worker, (settings, index)) for index in range(settings.workers)]
    if relay_wanted(settings):
        targets.append((_relay, (settings,)))
    status = run_targets(targets)
    metrics_dir.cleanup()
    return status


def run_processes(target: Callable[..., None], args: Sequence[tuple[Any, ...]]) -> int:
    """Runs `target(*a)` for each `a` in its own process; see run_targets."""
    return run_targets([(target, a) for a in args])


def run_targets(targets: Sequence[tuple[Callable[..., None], tuple[Any, ...]]]) -> int:
    """Runs each `target(*args)` in its own process until all end, forwarding SIGTERM and SIGINT
    to them (each drains its own calls); returns the worst exit status."""
    # spawn, not fork: gRPC's core must not be inherited across fork.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=args) for target, args in targets]

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)  # before starting: a signal must never orphan a worker
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return max(abs(process.exitcode or 0) for process in processes)


def _worker(settings: Settings, index: int) -> None:
    from .server import serve

    configure_logging(settings.log_level, settings.log_json)  # a spawned process starts with Python's defaults
    first = index == 0
    settings = replace(settings, relay_enabled=False, metrics_listen=settings.metrics_listen if first else None)
    asyncio.run(serve(settings, reuse_port=True))


def _relay(settings: Settings) -> None:
    from server.runtime import run_relay

    configure_logging(settings.log_level, settings.log_json)
    asyncio.run(run_relay(replace(settings, metrics_listen=None)))
