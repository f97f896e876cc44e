"""Several server processes sharing one port (`grpc.so_reuseport`), so every core serves calls.

The kernel spreads connections, not calls, over the processes. Only the first worker runs the
outbox relay and the metrics endpoint: more relays in one host would only stand by.
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
from server.runtime import configure_logging


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
    status = run_processes(_worker, [(settings, index) for index in range(settings.workers)])
    metrics_dir.cleanup()
    return status


def run_processes(target: Callable[..., None], args: Sequence[tuple[Any, ...]]) -> int:
    """Runs `target(*a)` for each `a` in its own process until all end, forwarding SIGTERM and
    SIGINT to them (each drains its own calls); returns the worst exit status."""
    # spawn, not fork: gRPC's core must not be inherited across fork.
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=target, args=a) for a in args]

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
    settings = replace(
        settings,
        relay_enabled=settings.relay_enabled and first,
        metrics_listen=settings.metrics_listen if first else None,
    )
    asyncio.run(serve(settings, reuse_port=True))
