"""Every call is counted on /metrics, by method and status code, with its duration, also when the
server runs several workers (prometheus-client's multiprocess mode, served by worker 0)."""
from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import licenses_pb2_grpc
from server.adapters.embedded_nats import free_port
from server.adapters.local_services import EventStream
from server.adapters.signing import new_signing_key_entry
from tests.server_process import running_server
from tests.support import Account, new_account

Metrics = dict[str, float]


@pytest.fixture(scope="module")
def metered(database_url: str, event_stream: EventStream) -> Iterator[tuple[str, str]]:
    """A server of 2 workers with its metrics endpoint: (gRPC address, metrics address)."""
    metrics = f"127.0.0.1:{free_port()}"
    env = {**event_stream.env(), "DATABASE_URL": database_url, "SIGNING_KEYS": new_signing_key_entry("metrics"),
           "GRPC_WORKERS": "2", "METRICS_LISTEN": metrics, "RELAY_ENABLED": "false"}
    with running_server(env) as address:
        yield address, metrics


def _scrape(address: str) -> Metrics:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"(licensing_rpc_\w+\{[^}]*\}) (\S+)", line):
            samples[match.group(1)] = float(match.group(2))
    return samples


def _until(address: str, expected: Metrics, timeout: float = 10) -> Metrics:
    """The scraped samples once they show `expected` (calls are counted a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = _scrape(address)
        if all(samples.get(name) == value for name, value in expected.items()) or time.monotonic() > deadline:
            return samples
        time.sleep(0.1)


def test_calls_are_counted_by_method_and_code_with_their_durations(metered: tuple[str, str]) -> None:
    address, metrics = metered
    account: Account = new_account()
    with grpc.insecure_channel(address) as channel:
        stub = licenses_pb2_grpc.LicenseServiceStub(channel)
        key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
        for _ in range(3):
            stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=account.auth)
        with pytest.raises(grpc.RpcError):
            stub.GetLicense(pb.GetLicenseRequest(key="AAAA-AAAA-AAAA-AAAA"), metadata=account.auth)

    expected = {
        'licensing_rpc_total{code="OK",method="CreateLicenses"}': 1.0,
        'licensing_rpc_total{code="OK",method="GetLicense"}': 3.0,
        'licensing_rpc_total{code="NOT_FOUND",method="GetLicense"}': 1.0,
        'licensing_rpc_duration_seconds_count{method="GetLicense"}': 4.0,
    }
    samples = _until(metrics, expected)
    assert {name: samples.get(name) for name in expected} == expected
    assert 0 < samples['licensing_rpc_duration_seconds_sum{method="GetLicense"}'] < 4 * 5
