"""Runs a real `licensing serve` process on a free port until the block ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from server.adapters.embedded_nats import free_port
from server.adapters.local_services import wait_until_serving

ROOT = Path(__file__).resolve().parent.parent


def open_channel(address: str, credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    return grpc.secure_channel(address, credentials) if credentials else grpc.insecure_channel(address)


@contextmanager
def running_server(env: dict[str, str], credentials: grpc.ChannelCredentials | None = None) -> Iterator[str]:
    """Yields the address of a healthy server started with `env` over the current environment; on
    exit sends SIGTERM and checks that the server shut down cleanly."""
    address = f"127.0.0.1:{free_port()}"
    full_env = {**os.environ, "LOG_LEVEL": "WARNING", **env, "GRPC_LISTEN": address}
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=full_env, cwd=ROOT)
    try:
        with open_channel(address, credentials) as channel:
            wait_until_serving(channel, f"server on {address}", lambda: process.poll() is not None, timeout=30)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "the server must shut down cleanly on SIGTERM"
