"""Health turns NOT_SERVING when the database cannot be reached, so traffic goes elsewhere."""
from __future__ import annotations

import time

import grpc
import psycopg
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.server_process import running_server


def _status(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=2).status


def test_health_is_not_serving_once_the_database_is_gone(fresh_database, postgres_server_url: str) -> None:
    url = fresh_database()
    name = url.rsplit("/", 1)[1].split("?")[0]
    with running_server({"DATABASE_URL": url, "GRPC_WORKERS": "1", "RELAY_ENABLED": "false"}) as address:
        assert _status(address, "licensing.v1.LicenseService") == health_pb2.HealthCheckResponse.SERVING
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        deadline = time.monotonic() + 10
        while _status(address, "licensing.v1.LicenseService") == health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "health still SERVING 10 s after the database went away"
            time.sleep(0.2)
        assert _status(address, "") == health_pb2.HealthCheckResponse.NOT_SERVING


def test_calls_answer_unavailable_while_the_database_is_gone(fresh_database, postgres_server_url: str) -> None:
    """Soon, not at their deadline: no call waits for a connection longer than a statement may run."""
    url = fresh_database()
    name = url.rsplit("/", 1)[1].split("?")[0]
    env = {"DATABASE_URL": url, "GRPC_WORKERS": "1", "RELAY_ENABLED": "false", "DB_STATEMENT_TIMEOUT_MS": "1000"}
    with running_server(env) as address:
        with psycopg.connect(postgres_server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        with grpc.insecure_channel(address) as channel:
            get = channel.unary_unary("/licensing.v1.LicenseService/GetLicense")
            codes = set()
            for _ in range(5):  # several, so that batched lookups fail together too
                try:
                    get(b"\x0a\x13AAAA-BBBB-CCCC-DDDD", metadata=[("authorization", "Bearer t")], timeout=5)
                except grpc.RpcError as error:
                    codes.add(error.code())  # type: ignore[attr-defined]
        assert codes == {grpc.StatusCode.UNAVAILABLE}, codes
