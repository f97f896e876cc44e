"""A/B of two revisions of the server under the same load, in alternating rounds.

A change worth a few % cannot be told apart by two `make bench` runs: the machine's speed drifts by
more than that between them. Here both servers run in every round, one after the other, in an order
that alternates (AB, BA, AB, ...), each on a fresh start against the same database, with the same
load and the same even spread of connections, so that drift falls on both alike: h2load with one
fixed request (`--op validate|get|keys`), or the hand-framed Python generator for UpdateLicense
(`--op update`: revoke/activate, each concurrent call on licenses of its own). Each round reports
calls/s and the server's CPU time per call (its workers and relay, user + system).

    python -m bench.compare HEAD~1                  # HEAD~1 against this working tree, changes and all
    python -m bench.compare --op get main HEAD      # two revisions
    python -m bench.compare --rounds 8 --seconds 6 v1 v2
    python -m bench.compare --env-b LOG_LEVEL=WARNING HEAD   # one setting of the server against another

A revision is checked out in a temporary git worktree with its own generated code; the database is
migrated by this tree, so both revisions must share the schema. Needs h2load.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import validation_pb2 as vpb
from server.adapters.local_services import event_stream, fresh_database, nats_server, postgres_server_url

from . import data
from .h2load import H2Load, check_call, h2load_binary
from .infra import ROOT, Server, licensing_server, wait_for_connections
from .pyload import H2_FRAMES, PyLoad
from .scenarios import (
    GET,
    KEYS_PER_LANE,
    SIGNING_KEYS,
    UPDATE,
    VALIDATE,
    no_errors,
    revoke_activate_lanes,
    split_into_lanes,
)

WORKING_TREE = "."


@dataclass(frozen=True)
class Round:
    rps: float
    cpu_us: float  # server CPU per call
    spread: str


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The tree of `revision` ("." is this working tree, uncommitted changes included)."""
    if revision == WORKING_TREE:
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(tree), revision],
                       check=True)
        try:
            protos = sorted(str(p.relative_to(tree / "protos")) for p in (tree / "protos").rglob("*.proto"))
            (tree / "gen").mkdir()
            subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", "--python_out=gen",
                            "--grpc_python_out=gen", *protos], cwd=tree, check=True)
            for package in ("gen/licensing", "gen/licensing/v1"):
                (tree / package / "__init__.py").touch()
            yield tree
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def server_cpu_seconds(server: Server) -> float:
    total = 0.0
    for pid in server.process.children():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


@dataclass(frozen=True)
class Load:
    """One fixed request (h2load), or lanes of requests that vary (the hand-framed Python generator)."""

    method: str
    request: bytes = b""
    lanes: list[list[bytes]] | None = None


def load_of(op: str, database_url: str, account: data.BenchAccount, concurrency: int) -> Load:
    app = account.apps["main"]
    if op == "update":
        # Every concurrent call revokes and activates licenses of its own, so each call is a change; a round
        # that ends mid-lane leaves some revoked, whose first revoke of the next round changes nothing.
        keys = data.copy_licenses(database_url, app, concurrency * KEYS_PER_LANE)
        return Load(UPDATE, lanes=revoke_activate_lanes(split_into_lanes(keys)))
    if op == "keys":
        return Load(SIGNING_KEYS)
    (key,) = data.copy_licenses(database_url, app, 1)
    if op == "get":
        return Load(GET, pb.GetLicenseRequest(key=key).SerializeToString())
    validate = vpb.ValidateLicenseRequest(app_id=str(app), key=key, hwid=uuid.uuid4().hex, nonce="bench")
    return Load(VALIDATE, validate.SerializeToString())


def one_round(h2: H2Load, varied: PyLoad, server: Server, load: Load, account: data.BenchAccount,
              seconds: float, warmup: float) -> Round:
    cpu_before = [0.0]

    def snapshot() -> None:
        cpu_before[0] = server_cpu_seconds(server)

    if load.lanes is not None:
        snapshot()  # the generator counts its warm-up calls too: so does the CPU
        result = varied.run(server.address, load.method, account.metadata, load.lanes, seconds, warmup, server.spread)
        no_errors(load.method, result)
        calls, m = result.total_ok, result.measurement
    else:
        check_call(server.address, load.method, load.request, account.metadata)  # binds the device, the first time
        response_size = len(check_call(server.address, load.method, load.request, account.metadata))
        m = h2.run(server.address, load.method, load.request, account.metadata, seconds, warmup, response_size,
                   snapshot, server.spread)
        calls = m.ok
    return Round(m.rps, (server_cpu_seconds(server) - cpu_before[0]) / max(1, calls) * 1e6, m.spread)


def _env(parser: argparse.ArgumentParser, pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            parser.error(f"expected NAME=VALUE, got {pair!r}")
        env[name] = value
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="revision A")
    parser.add_argument("changed", nargs="?", default=WORKING_TREE, help="revision B (default: this working tree)")
    parser.add_argument("--op", choices=("validate", "get", "keys", "update"), default="validate")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=psutil.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--streams", type=int, default=8)
    for label in ("a", "b"):
        parser.add_argument(f"--env-{label}", action="append", default=[], metavar="NAME=VALUE",
                            help=f"an environment variable of server {label.upper()} (repeatable)")
    args = parser.parse_args()
    envs = {"A": _env(parser, args.env_a), "B": _env(parser, args.env_b)}
    if not h2load_binary():
        parser.error("h2load is not installed (Debian: nghttp2-client)")
    h2 = H2Load(args.connections, args.streams)
    varied = PyLoad(psutil.cpu_count() or 1, args.connections, H2_FRAMES)
    results: dict[str, list[Round]] = {"A": [], "B": []}

    with contextlib.ExitStack() as stack:
        trees = {"A": stack.enter_context(checkout(args.base)), "B": stack.enter_context(checkout(args.changed))}
        database_url = stack.enter_context(fresh_database(postgres_server_url(), "licensing_compare"))
        stream = stack.enter_context(event_stream(stack.enter_context(nats_server()), "licensing_compare"))
        account = data.create_account(database_url)
        load = load_of(args.op, database_url, account, args.connections * args.streams)
        wait_for_connections(database_url, args.workers * 30 + 10)
        print(f"{args.op}: A = {args.base} {envs['A'] or ''}, B = {args.changed} {envs['B'] or ''}; "
              f"{args.rounds} rounds of {args.warmup:g} s warm-up "
              f"+ {args.seconds:g} s, {varied.name if load.lanes else 'h2load'} -c {args.connections} -m {args.streams}, "
              f"{args.workers} workers",
              flush=True)
        for n in range(args.rounds):
            for label in ("AB" if n % 2 == 0 else "BA"):
                with licensing_server(database_url, stream, args.workers, trees[label], f"compare {label}",
                                      envs[label]) as server:
                    r = one_round(h2, varied, server, load, account, args.seconds, args.warmup)
                results[label].append(r)
                print(f"  round {n + 1} {label}: {r.rps:8,.0f} calls/s  {r.cpu_us:6.1f} µs CPU/call  "
                      f"spread {r.spread}", flush=True)

    a, b = results["A"], results["B"]
    ratios = [y.rps / x.rps for x, y in zip(a, b, strict=True)]
    cpu = [y.cpu_us / x.cpu_us for x, y in zip(a, b, strict=True)]
    print(f"\nB/A calls/s: mean {statistics.fmean(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f}); "
          f"A {statistics.fmean(r.rps for r in a):,.0f}, B {statistics.fmean(r.rps for r in b):,.0f}")
    print(f"B/A server CPU per call: mean {statistics.fmean(cpu):.3f} (rounds {min(cpu):.3f}-{max(cpu):.3f}); "
          f"A {statistics.fmean(r.cpu_us for r in a):.1f} µs, B {statistics.fmean(r.cpu_us for r in b):.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
