"""PostgreSQL, NATS, a throwaway database and stream, and the server processes: started as `make test`
starts them (tests/conftest.py, tests/e2e/conftest.py), all undone by the ExitStack they are entered on.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
import psycopg

from server.adapters.embedded_nats import free_port
from server.adapters.local_services import EventStream, wait_until_serving
from server.adapters.signing import new_signing_key_entry

from .ceiling_server import METHOD as CEILING_METHOD

ROOT = Path(__file__).resolve().parent.parent
def wait_for_connections(database_url: str, needed: int, timeout: float = 300) -> None:
    """Waits until PostgreSQL has `needed` connection slots free. The server may be shared (the
    tests use the same one): starting while it is full would fail with "too many clients"."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(database_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
                " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"
            ).fetchone()
        free = int(row[0]) if row else 0
        if free >= needed:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL has {free} free connections, {needed} needed")
        print(f"    waiting: PostgreSQL has {free} free connections, {needed} needed", flush=True)
        time.sleep(5)


@dataclass
class Process:
    """A child process started by the benchmark, ended with SIGTERM (then SIGKILL) on exit."""

    popen: subprocess.Popen  # type: ignore[type-arg]
    name: str

    def children(self) -> list[int]:
        """Pids of its child processes: `licensing serve`'s workers (spawn also leaves a resource
        tracker, which is not a worker: it is filtered out by its command line)."""
        kids = psutil.Process(self.popen.pid).children()
        return [k.pid for k in kids if "resource_tracker" not in " ".join(k.cmdline())]

    def stop(self, timeout: float = 30) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                for pid in self.children():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                self.popen.kill()
                self.popen.wait()


# The servers' logs (at their default level the access log writes a line per call): kept out of the
# report, overwritten by the next run.
LOG_DIR = Path(tempfile.gettempdir()) / "licensing-bench"


def logged_problems(name: str) -> dict[str, int]:
    """Warnings and errors a started process logged (JSON lines, or text lines naming the level), by message."""
    found: dict[str, int] = {}
    log = LOG_DIR / f"{name.replace(' ', '-')}.log"
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            level, message = str(record.get("level", "")), str(record.get("msg", ""))
        except ValueError:
            level = next((w for w in ("CRITICAL", "ERROR", "WARNING") if w in line), "")
            message = line[:200]
        if level in ("WARNING", "ERROR", "CRITICAL"):
            found[f"{level} {message}"] = found.get(f"{level} {message}", 0) + 1
    return found


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], name: str, tree: Path = ROOT) -> Iterator[Process]:
    """`command` run in `tree` (a checkout of the project: this one, or another revision's with its
    own generated code), its output in LOG_DIR."""
    LOG_DIR.mkdir(exist_ok=True)
    if tree != ROOT:  # its own code first, not the editable install's
        env = {**env, "PYTHONPATH": f"{tree}{os.pathsep}{tree / 'gen'}"}
    with (LOG_DIR / f"{name.replace(' ', '-')}.log").open("wb") as log:
        popen = subprocess.Popen(command, env={**os.environ, **env}, cwd=tree, stdout=log, stderr=subprocess.STDOUT)
        process = Process(popen, name)
        try:
            yield process
        finally:
            process.stop()


@dataclass(frozen=True)
class Server:
    address: str
    metrics: str  # host:port of worker 0's /metrics ("" for the ceiling server)
    process: Process

    def spread(self) -> Spread:
        return connection_spread(self.process.children(), self.address)  # the relay process holds none


def server_env(database_url: str, stream: EventStream, workers: int, **extra: str) -> dict[str, str]:
    # Logging stays at the server's defaults (production shape); BENCH_SERVER_LOG_LEVEL overrides it.
    level = {"LOG_LEVEL": os.environ["BENCH_SERVER_LOG_LEVEL"]} if os.environ.get("BENCH_SERVER_LOG_LEVEL") else {}
    return {
        **stream.env(), "DATABASE_URL": database_url, "GRPC_WORKERS": str(workers),
        "SIGNING_KEYS": new_signing_key_entry("bench"), **level, **extra,
    }


@contextlib.contextmanager
def licensing_server(database_url: str, stream: EventStream, workers: int, tree: Path = ROOT,
                     name: str = "licensing serve", extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`licensing serve` in its production shape: `workers` processes on one port, the relay on."""
    address, metrics = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = server_env(database_url, stream, workers, GRPC_LISTEN=address, METRICS_LISTEN=metrics, **(extra_env or {}))
    with started([sys.executable, "-m", "server.cli", "serve"], env, name, tree) as process:
        with grpc.insecure_channel(address) as channel:
            wait_until_serving(channel, f"{process.name} on {address} (log: {LOG_DIR})",
                               lambda: process.popen.poll() is not None, timeout=60)
        _wait_for_workers(process, workers)
        yield Server(address, metrics, process)


@contextlib.contextmanager
def relay_process(database_url: str, stream: EventStream) -> Iterator[Process]:
    """`licensing relay` alone (the server is stopped, so it is the active relay at once)."""
    env = server_env(database_url, stream, 1)
    with started([sys.executable, "-m", "server.cli", "relay"], env, "licensing relay") as process:
        yield process


@contextlib.contextmanager
def ceiling_server(workers: int) -> Iterator[Server]:
    """bench/ceiling_server.py on a free port, serving once its empty method answers."""
    address = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "bench.ceiling_server", "--listen", address, "--workers", str(workers)]
    with started(command, {}, "ceiling server") as process:
        _wait_until_answering(address, process)
        _wait_for_workers(process, workers)
        yield Server(address, "", process)


@dataclass(frozen=True)
class Spread:
    """Established client connections per server process, most first: "5/3"."""

    counts: tuple[int, ...]

    def __str__(self) -> str:
        return "/".join(str(n) for n in self.counts)

    @property
    def even(self) -> bool:
        """No process holds more than half a fair share more than another: of 8 over 2, 4/4 and 5/3.
        The kernel spreads connections, not calls, over processes sharing a port, each connection to
        a random one: 6/2 or worse comes up in 29% of runs, and then one core does up to 3/4 of the
        work (an 8/0 run measured 0.40 of a ceiling that a 6/2 run had measured)."""
        if len(self.counts) < 2:
            return True
        return self.counts[0] - self.counts[-1] <= max(1, sum(self.counts) // (2 * len(self.counts)))


# How often a load generator reconnects for an even spread before it measures whatever it got.
EVEN_SPREAD_ATTEMPTS = 12


def keep_connections(seen: Spread | None, attempt: int) -> bool:
    """Whether a load generator measures on the connections it has: they are spread evenly, no spread
    was asked for (None), or this was its last try."""
    return seen is None or seen.even or attempt == EVEN_SPREAD_ATTEMPTS


def connection_spread(pids: list[int], address: str) -> Spread:
    """Established client connections to `address` per server process."""
    port = int(address.rpartition(":")[2])
    counts = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            conns = psutil.Process(pid).net_connections("tcp")
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in conns):  # a server process
                counts.append(sum(1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port))
    return Spread(tuple(sorted(counts, reverse=True)))


def settled_spread(spread: Callable[[], Spread], connections: int, timeout: float = 5) -> Spread:
    """The spread once the server holds exactly the load generator's `connections`: just after they
    open, some are not accepted yet, and those of a generator that just stopped may not be closed."""
    deadline = time.monotonic() + timeout
    seen = spread()
    while sum(seen.counts) != connections and time.monotonic() < deadline:
        time.sleep(0.02)
        seen = spread()
    return seen


def _wait_until_answering(address: str, process: Process) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(address) as channel:
        call = channel.unary_unary(CEILING_METHOD, request_serializer=None, response_deserializer=None)
        while time.monotonic() < deadline:
            if process.popen.poll() is not None:
                raise RuntimeError(f"{process.name} exited during start-up")
            try:
                call(b"", timeout=1)
                return
            except grpc.RpcError:
                time.sleep(0.1)
    raise TimeoutError(f"{process.name} on {address} did not answer")


def _wait_for_workers(process: Process, workers: int) -> None:
    """The first worker to listen answers the health check; the others may still be starting, and a
    connection made now would all go to the first. Wait until every worker has its listening socket."""
    if workers <= 1:
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listening = 0
        for pid in process.children():
            with contextlib.suppress(psutil.Error):
                if any(c.status == psutil.CONN_LISTEN for c in psutil.Process(pid).net_connections("tcp")):
                    listening += 1
        if listening >= workers:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{process.name}: not all {workers} workers listen")
