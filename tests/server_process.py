"""Runs a real `licensing serve` process on a free port until the block ends."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        _wait_until_serving(address, process, credentials)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "the server must shut down cleanly on SIGTERM"


def _wait_until_serving(address: str, process: subprocess.Popen[bytes],
                        credentials: grpc.ChannelCredentials | None) -> None:
    deadline = time.monotonic() + 30
    with open_channel(address, credentials) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited during start-up"
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise TimeoutError(f"server on {address} did not become healthy")
