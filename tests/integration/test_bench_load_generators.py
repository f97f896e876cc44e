"""The benchmark's hand-framed HTTP/2 client against real grpc.aio servers: an answer it counts is
the server's answer to that very call, and a gRPC error status is a failed call. The figures and
the side-effect checks of `make bench` rest on both."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest

from bench.ceiling_server import METHOD as EMPTY
from bench.h2client import CallFailed, UnaryConnection
from bench.infra import ceiling_server
from bench.pyload import H2_FRAMES, PyLoad

Context = grpc.aio.ServicerContext  # type: ignore[type-arg]


async def _reverse(request: bytes, context: Context) -> bytes:
    return request[::-1]


async def _refuse(request: bytes, context: Context) -> bytes:
    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "refused")
    raise AssertionError("unreachable")


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Bench", {
        "Reverse": grpc.unary_unary_rpc_method_handler(_reverse),
        "Refuse": grpc.unary_unary_rpc_method_handler(_refuse),
    }),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def test_concurrent_calls_each_get_their_own_answer() -> None:
    async def scenario() -> None:
        async with _server() as address:
            connection = await UnaryConnection.open(address, "/test.Bench/Reverse", (("x-request-id", "bench"),))
            try:
                # Many calls written in one loop turn, of many sizes, some past one TCP segment.
                messages = [f"call {i};".encode() * (1 + i % 300) for i in range(500)]
                answers = await asyncio.gather(*(connection.call(message) for message in messages))
                assert answers == [message[::-1] for message in messages]
            finally:
                await connection.close()

    asyncio.run(scenario())


def test_an_error_status_fails_the_call() -> None:
    async def scenario() -> None:
        async with _server() as address:
            connection = await UnaryConnection.open(address, "/test.Bench/Refuse", ())
            try:
                with pytest.raises(CallFailed, match="gRPC error status"):
                    await connection.call(b"anything")
            finally:
                await connection.close()

    asyncio.run(scenario())


def test_the_varied_request_generator_counts_the_calls_the_server_answered() -> None:
    with ceiling_server(workers=1) as server:
        result = PyLoad(processes=2, connections=2, client=H2_FRAMES).run(
            server.address, EMPTY, (), [[b""], [b"", b""]] * 4, seconds=1, warmup=0.2)
    assert result.first_error == ""
    assert result.measurement.errors == 0
    assert result.total_ok >= result.measurement.ok > 0
