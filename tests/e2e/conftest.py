"""A real `licensing serve` process on a free port, and accounts made with the real admin CLI."""
from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from licensing.v1 import licenses_pb2_grpc, validation_pb2_grpc
from server.adapters.signing import new_signing_key_entry
from tests.conftest import EventStream
from tests.server_process import running_server
from tests.support import Account, MakeAccount, new_account

# The server's configured keys: the second is published too, as during a rotation.
SIGNING_KEYS = f"{new_signing_key_entry('test-active')},{new_signing_key_entry('test-previous')}"


@pytest.fixture(scope="session")
def event_stream(new_event_stream) -> EventStream:  # type: ignore[no-untyped-def]
    """The stream the session's server relays its outbox into."""
    stream: EventStream = new_event_stream()
    return stream


@pytest.fixture(scope="session")
def server_address(database_url: str, event_stream: EventStream) -> Iterator[str]:
    env = {**event_stream.env(), "DATABASE_URL": database_url, "RELAY_POLL_SECONDS": "0.2", "SIGNING_KEYS": SIGNING_KEYS}
    with running_server(env) as address:
        yield address


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
