"""The RPC ceiling: a bare grpc.aio server with one empty unary method, in the server's production shape.

Same process count and the same `grpc.so_reuseport` setup as `licensing serve` (server/api/workers.py),
so the gap between it and a real operation is what the service itself costs: no auth, no SQL, no
protobuf (requests and responses stay raw bytes).

Run: python -m bench.ceiling_server --listen 127.0.0.1:PORT --workers N
"""
from __future__ import annotations

import argparse
import asyncio
import os

import grpc

from server.api.workers import run_processes
from server.runtime import wait_for_shutdown_signal

METHOD = "/bench.Ceiling/Empty"


async def _empty(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return b""


async def _serve(listen: str) -> None:
    server = grpc.aio.server(options=[("grpc.so_reuseport", 1)], maximum_concurrent_rpcs=1000)
    # No serializers: the handler sees and returns bytes, so it costs only the RPC machinery.
    handler = grpc.method_handlers_generic_handler(
        "bench.Ceiling", {"Empty": grpc.unary_unary_rpc_method_handler(_empty)}
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(listen)
    await server.start()
    await wait_for_shutdown_signal()
    await server.stop(1)


def _worker(listen: str) -> None:
    asyncio.run(_serve(listen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # The same process model as the real server (spawned workers sharing the port).
    run_processes(_worker, [(args.listen,)] * args.workers)


if __name__ == "__main__":
    main()
