"""The RPC ceiling: a bare grpc.aio server with one empty unary method, in the server's production shape.

Same process count and the same `grpc.so_reuseport` setup as `licensing serve` (server/api/workers.py),
so the gap between it and a real operation is what the service itself costs: no auth, no SQL, no
protobuf (requests and responses stay raw bytes).

Run: python -m bench.ceiling_server --listen 127.0.0.1:PORT --workers N
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
from types import FrameType

import grpc

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
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await server.stop(1)


def _worker(listen: str) -> None:
    asyncio.run(_serve(listen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    # spawn, not fork, as the real server: gRPC's core must not be inherited across fork.
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker, args=(args.listen,)) for _ in range(args.workers)]

    def forward(signum: int, frame: FrameType | None) -> None:
        for worker in workers:
            if worker.is_alive() and worker.pid:
                os.kill(worker.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
