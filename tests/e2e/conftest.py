"""A real `licensing serve` process on a free port, and accounts made with the real admin CLI."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from licensing.v1 import licenses_pb2_grpc, validation_pb2_grpc
from server.adapters.signing import new_signing_key_entry
from tests.conftest import EventStream
from tests.support import Account, MakeAccount, new_account

ROOT = Path(__file__).resolve().parents[2]
# The server's configured keys: the second is published too, as during a rotation.
SIGNING_KEYS = f"{new_signing_key_entry('test-active')},{new_signing_key_entry('test-previous')}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def event_stream(new_event_stream) -> EventStream:  # type: ignore[no-untyped-def]
    """The stream the session's server relays its outbox into."""
    stream: EventStream = new_event_stream()
    return stream


@pytest.fixture(scope="session")
def server_address(database_url: str, event_stream: EventStream) -> Iterator[str]:
    address = f"127.0.0.1:{_free_port()}"
    env = {**os.environ, **event_stream.env(), "DATABASE_URL": database_url, "GRPC_LISTEN": address,
           "LOG_LEVEL": "WARNING", "RELAY_POLL_SECONDS": "0.2",
           "SIGNING_KEYS": SIGNING_KEYS}
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], env=env, cwd=ROOT)
    try:
        _wait_until_serving(address, process)
        yield address
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, "the server must shut down cleanly on SIGTERM"


def _wait_until_serving(address: str, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 30
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < deadline:
            assert process.poll() is None, "the server exited during start-up"
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=1).status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.1)
    raise TimeoutError(f"server on {address} did not become healthy")


@pytest.fixture(scope="session")
def channel(server_address: str) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server_address) as ch:
        yield ch


@pytest.fixture(scope="session")
def stub(channel: grpc.Channel) -> licenses_pb2_grpc.LicenseServiceStub:
    return licenses_pb2_grpc.LicenseServiceStub(channel)


@pytest.fixture(scope="session")
def validation(channel: grpc.Channel) -> validation_pb2_grpc.ValidationServiceStub:
    return validation_pb2_grpc.ValidationServiceStub(channel)


@pytest.fixture
def make_account(database_url: str) -> MakeAccount:
    """Makes a new account with `credits` credits and one app (`tests.support.new_account`), so tests never
    share state; the admin CLI reaches the test database through DATABASE_URL, set by `database_url`."""
    return new_account


@pytest.fixture
def account(make_account: MakeAccount) -> Account:
    return make_account()
