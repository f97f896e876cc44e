"""Unary gRPC calls driven by h2load (nghttp2): HTTP/2 prior knowledge, a pre-framed request body.

h2load knows nothing of gRPC: it counts HTTP 200 even when `grpc-status` in the trailers is an error.
Three guards make up for it: the caller sends the exact request once with a real gRPC client first
(`check_call`); every run here asserts that the response bytes received add up to one full response
per counted request (an error answer is trailers-only: no body); and the scenarios check side
effects in the database afterwards.

h2load reports no percentiles: they come from `--log-file` (start time, HTTP status, duration in µs
per request). The warm-up is a separate, discarded h2load run, so that the measured run's byte
counts cover exactly its own requests. The measured run starts over on new connections until the
kernel has spread them evenly over the server's processes (`Spread.even`).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from .infra import EVEN_SPREAD_ATTEMPTS, Spread, keep_connections, settled_spread
from .stats import Measurement

Metadata = tuple[tuple[str, str], ...]


def h2load_binary() -> str | None:
    return shutil.which("h2load")


def h2load_version() -> str:
    binary = h2load_binary()
    if not binary:
        return ""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    return out.strip()


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def check_call(address: str, method: str, request: bytes, metadata: Metadata) -> bytes:
    """Sends `request` once with a real gRPC client; raises grpc.RpcError unless it succeeds."""
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        response: bytes = call(request, metadata=metadata, timeout=30)
    return response


@dataclass(frozen=True)
class H2Load:
    connections: int
    streams: int
    threads: int = 1  # one h2load thread drives ~10k+ calls/s: far above what the server answers here

    def run(self, address: str, method: str, request: bytes, metadata: Metadata, seconds: float, warmup: float,
            response_size: int, between: Callable[[], None] | None = None,
            spread: Callable[[], Spread] | None = None) -> Measurement:
        """Drives `method` with the same request for `seconds` after `warmup`.

        `response_size` is the serialized response's length (from `check_call`): with it, the bytes
        received prove that (nearly) every counted request got a body, i.e. succeeded. `spread` tells
        how the connections are spread over the server's processes, and the measured run starts over
        on new connections until it is even. `between` runs after the warm-up, before each start of
        the measured run (a side-effect snapshot): the calls of a start given up for its spread are
        in no count, so their side effects must not fall after the snapshot that is used.
        """
        with tempfile.TemporaryDirectory(prefix="bench-h2load-") as tmp:
            body = Path(tmp) / "request.bin"
            body.write_bytes(grpc_frame(request))
            log = Path(tmp) / "requests.log"
            if warmup > 0:
                self._h2load(address, method, body, metadata, warmup, None)
            summary, spread_seen, started = self._h2load(address, method, body, metadata, seconds, log, spread,
                                                         between)
            latencies, errors = _read_log(log)
        expected = len(latencies) * (5 + response_size)
        received = summary.data_bytes
        # Responses vary by a few bytes (a timestamp's nanos take 1-5 bytes), either way; an error is
        # a whole missing body, so only a shortfall means failed calls.
        if expected and expected - received > 0.02 * expected:
            raise AssertionError(
                f"{method}: received {received} response bytes for {len(latencies)} requests answered 200, "
                f"expected ~{expected}: some calls failed with a gRPC error status"
            )
        return Measurement.from_latencies("h2load", seconds, latencies, errors, str(spread_seen or ""),
                                          (started, started + seconds))

    def _h2load(self, address: str, method: str, body: Path, metadata: Metadata, seconds: float,
                log: Path | None, spread: Callable[[], Spread] | None = None,
                before_each: Callable[[], None] | None = None) -> tuple[_Summary, Spread | None, float]:
        """One h2load run: its summary, the spread it ran with, and when it started (monotonic)."""
        binary = h2load_binary()
        assert binary, "h2load is not installed"
        command = [
            binary, f"--clients={self.connections}", f"--max-concurrent-streams={self.streams}",
            f"--threads={self.threads}", f"--duration={round(seconds * 1000)}ms", f"--data={body}",
            "--header=content-type: application/grpc", "--header=te: trailers",
            *(f"--header={name}: {value}" for name, value in metadata),
        ]
        if log is not None:
            command.append(f"--log-file={log}")
        command.append(f"http://{address}{method}")
        for attempt in range(1, EVEN_SPREAD_ATTEMPTS + 1):
            if log is not None:
                log.unlink(missing_ok=True)  # a killed attempt's lines are not the measured run's
            if before_each is not None:
                before_each()
            started = time.monotonic()
            h2load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            seen = settled_spread(spread, self.connections) if spread else None
            if keep_connections(seen, attempt):
                break
            h2load.kill()  # its connections close with it; the next run opens new ones
            h2load.communicate()
        with h2load:
            stdout, stderr = h2load.communicate(timeout=seconds + 60)
        if h2load.returncode != 0:
            raise RuntimeError(f"h2load failed ({h2load.returncode}): {stderr or stdout}")
        return _Summary.parse(stdout), seen, started


@dataclass(frozen=True)
class _Summary:
    succeeded: int
    data_bytes: int

    @classmethod
    def parse(cls, out: str) -> _Summary:
        requests = re.search(r"requests: .*?(\d+) succeeded", out)
        traffic = re.search(r"traffic: .*?\((\d+)\) data", out)
        if not requests or not traffic:
            raise RuntimeError(f"cannot read h2load's summary:\n{out}")
        return cls(int(requests.group(1)), int(traffic.group(1)))


def _read_log(log: Path) -> tuple[list[float], int]:
    """Latencies (ms) of requests answered 200, and the count of the others."""
    latencies: list[float] = []
    errors = 0
    with log.open() as lines:
        for line in lines:
            fields = line.split("\t")
            if len(fields) < 3:
                continue
            if fields[1] == "200":
                latencies.append(int(fields[2]) / 1000)
            else:
                errors += 1
    return latencies, errors
