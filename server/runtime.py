"""Process plumbing shared by `serve` and `relay`: signals, metrics endpoint, the relay task."""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal

from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

from server.api.access_log import access_log
from server.config import Settings
from server.outbox.relay import Relay

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers; a record's `fields` extra becomes top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line)


def configure_logging(level: str, json_lines: bool = True) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    access_log.configure(json_lines)


async def wait_for_shutdown_signal() -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()


def start_metrics(settings: Settings) -> None:
    if settings.metrics_listen:
        host, _, port = settings.metrics_listen.rpartition(":")
        registry = None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: serve all of their metrics
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        start_http_server(int(port), addr=host or "0.0.0.0", registry=registry or REGISTRY)
        log.info("Prometheus metrics on http://%s/metrics", settings.metrics_listen)


def relay_wanted(settings: Settings) -> bool:
    """Whether this process should run the outbox relay: enabled, and NATS configured (a warning if not)."""
    if settings.relay_enabled and not settings.nats_url:
        log.warning("NATS_URL is not set: outbox events are stored but not published by this process")
    return settings.relay_enabled and bool(settings.nats_url)


def start_relay(settings: Settings) -> asyncio.Task[None] | None:
    """The outbox relay as a background task, when wanted."""
    if not relay_wanted(settings):
        return None
    return asyncio.create_task(Relay(settings.relay_config()).run(), name="outbox-relay")


async def stop_task(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run_relay(settings: Settings) -> None:
    """`licensing relay`: the relay alone, so it can be scaled apart from the API."""
    start_metrics(settings)
    task = asyncio.create_task(Relay(settings.relay_config()).run(), name="outbox-relay")
    await wait_for_shutdown_signal()
    await stop_task(task)
