"""`make bench`: PostgreSQL and NATS as `make test` starts them, a fresh database and stream, the data,
the ceilings, then the server in its production shape under each scenario; one table and
bench/results.json. Everything it starts is stopped, its database dropped and its stream deleted.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from types import FrameType
from typing import TypeVar

import grpc
import psycopg
from psycopg.conninfo import conninfo_to_dict

from server.adapters.local_services import EventStream, event_stream, fresh_database, nats_server, postgres_server_url

from . import data, events, scenarios
from .h2load import H2Load, h2load_binary, h2load_version
from .infra import ceiling_server, licensing_server, logged_problems, wait_for_connections
from .machine_load import MachineLoad
from .pyload import GRPC_AIO, H2_FRAMES, PyLoad
from .report import Report, machine
from .settings import BenchSettings

T = TypeVar("T")
_STARTED = time.monotonic()
_FAILURES = (scenarios.CheckFailed, grpc.RpcError, psycopg.Error, RuntimeError, AssertionError, TimeoutError)


def step(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


@dataclass
class Run:
    """The report being filled in, and what failed: a failed scenario is noted and the run goes on."""

    report: Report
    failures: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)

    def attempt(self, name: str, run: Callable[[], T]) -> T | None:
        step(name)
        try:
            return run()
        except _FAILURES as error:
            detail = f"{error.code().name}: {error.details()}" if isinstance(error, grpc.Call) else str(error)
            self.report.notes.append(f"{name} FAILED: {detail}")
            self.failures.append(name)
            print(f"    FAILED: {detail}", flush=True)
            return None

    def drain(self, ctx: scenarios.Context, after: str) -> None:
        """The relay catches up before the next scenario, which would otherwise share the CPU with it."""
        waited = self.attempt(f"waiting for the relay to publish the events of {after}", lambda: scenarios.drain(ctx))
        if waited and waited > 1:
            self.report.notes.append(f"the relay needed {waited:.1f}s after {after} to publish its backlog")


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so that every process is stopped and the database dropped.
    def terminate(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)
    settings = BenchSettings.from_env()
    h2 = H2Load(settings.connections, settings.streams) if h2load_binary() else None
    py = PyLoad(settings.py_processes, settings.connections, GRPC_AIO)
    varied = PyLoad(settings.py_processes, settings.connections, H2_FRAMES)
    drivers = scenarios.Drivers(h2, py, varied, settings.concurrency, settings.seconds, settings.warmup)
    fixed = (f"{h2load_version()} (-c {settings.connections} -m {settings.streams})" if h2
             else f"{py.name} (h2load not found), {settings.concurrency} calls in flight")
    generator = f"{fixed}; {varied.name} where requests must vary"
    about = machine() | {
        "load_generator": generator,
        "server": f"licensing serve, {settings.workers} processes sharing the port (grpc.so_reuseport), relay on",
    }
    run = Run(Report(about, {k: str(v) for k, v in asdict(settings).items()}))

    with contextlib.ExitStack() as stack:
        step("PostgreSQL, NATS, a fresh database")
        database_url = stack.enter_context(fresh_database(postgres_server_url(), "licensing_bench"))
        load = stack.enter_context(MachineLoad(str(conninfo_to_dict(database_url)["dbname"])))
        run_started = time.monotonic()
        stream = stack.enter_context(event_stream(stack.enter_context(nats_server()), "licensing_bench"))
        step(f"account and apps; COPY {settings.rows:,} + {settings.small_rows:,} licenses")
        account = data.create_account(database_url)
        fixtures = scenarios.load_fixtures(settings, database_url, account)

        with ceiling_server(settings.workers) as ceiling:
            ceilings = run.attempt(
                f"ceilings ({settings.workers} server processes, {settings.concurrency} in flight)",
                lambda: scenarios.measure_ceilings(settings, database_url, account, fixtures, drivers, ceiling,
                                                   pgbench=shutil.which("pgbench") is not None),
            ) or scenarios.Ceilings()

        step("licensing serve")
        # Each worker pools up to 3 x DB_POOL_SIZE (10) connections; the relay and the checks a few more.
        wait_for_connections(database_url, settings.workers * 30 + 10)
        with licensing_server(database_url, stream, settings.workers) as server:
            ctx = scenarios.Context(settings, database_url, account, fixtures, drivers, ceilings, server)
            _scenarios(run, ctx)
            if settings.wants("lag"):
                _lag(run, ctx, stream)
            step("stopping licensing serve")
        _server_log(run, "licensing serve")

        # The machine's speed drifts over a run: the rows' RPC ceiling is the mean of before and after.
        if run.report.rows:
            with ceiling_server(settings.workers) as ceiling:
                after = run.attempt("RPC ceilings again, after the scenarios",
                                    lambda: scenarios.measure_rpc_ceilings(settings, account, drivers, ceiling))
            if after:
                run.report.rows = [replace(r, rpc_after=after.get(r.load.generator)) for r in run.report.rows]

        if settings.wants("relay"):
            run.report.relay = run.attempt(
                f"relay: {settings.relay_events:,} events backlog, `licensing relay` alone",
                lambda: events.measure_relay(database_url, stream, account.account_id, account.apps["relay"],
                                             settings.relay_events))
            _server_log(run, "licensing relay")
        if runs := data.autovacuum_runs(database_url):
            run.report.notes.append(f"autovacuum/autoanalyze ran during the run (it takes CPU from whatever was "
                                    f"measured then): {runs}")
        report = run.report
        report.rows = [replace(r, other_cpu=load.other_share(*r.load.window)) for r in report.rows]
        report.other_cpu = load.other_share(run_started, time.monotonic())
        step("cleaning up: dropping the database, deleting the stream")

    run.report.seconds = time.monotonic() - _STARTED
    run.report.machine["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(run.report.render())
    for profile in filter(None, run.profiles):
        print()
        print(profile)
    run.report.write(settings.results)
    print(f"\nwritten: {settings.results}")
    if run.failures:
        print(f"FAILED: {', '.join(run.failures)}", file=sys.stderr)
    return 1 if run.failures else 0


def _server_log(run: Run, name: str) -> None:
    """What the server warned about under load belongs with the figures (e.g. health flapping)."""
    for message, count in logged_problems(name).items():
        run.report.notes.append(f"{name} logged {count}x: {message[:300]}")


def _scenarios(run: Run, ctx: scenarios.Context) -> None:
    """Reads first (no relay backlog yet), then writes, each followed by the relay's catch-up."""
    rows, wants = run.report.rows, ctx.settings.wants
    if wants("get") and (got := run.attempt("GetLicense", lambda: scenarios.get_license(ctx))) is not None:
        rows.append(got[0])
        run.profiles.append(got[1])
    if wants("get") and (row := run.attempt("GetLicense, distinct keys",
                                            lambda: scenarios.get_license_varied(ctx))) is not None:
        rows.append(row)
    if wants("validate") and (validated := run.attempt("ValidateLicense",
                                                       lambda: scenarios.validate_license(ctx))) is not None:
        rows.append(validated[0])
        run.profiles.append(validated[1])
    if wants("validate") and (row := run.attempt("GetSigningKeys", lambda: scenarios.signing_keys(ctx))) is not None:
        rows.append(row)
    if wants("list") and (listed := run.attempt("ListLicenses", lambda: scenarios.list_licenses(ctx))) is not None:
        rows.extend(listed[0])
        run.report.page_costs.extend(listed[1])
        run.report.plans.extend(listed[2])
    if wants("update"):
        if (row := run.attempt("UpdateLicense", lambda: scenarios.update_license(ctx))) is not None:
            rows.append(row)
        run.drain(ctx, "UpdateLicense")
    for quantity in (1, 100):
        if not wants(f"create{quantity}"):
            continue
        created = run.attempt(f"CreateLicenses({quantity})", lambda: scenarios.create_licenses(ctx, quantity))
        if created is not None:
            rows.append(created[0])
            run.profiles.append(created[1])
        run.drain(ctx, f"CreateLicenses({quantity})")


def _lag(run: Run, ctx: scenarios.Context, stream: EventStream) -> None:
    s = ctx.settings

    def at(rate: float, keys: list[str]) -> None:
        lag = run.attempt(f"call-to-event lag at {rate:,.0f} changes/s", lambda: events.measure_lag(
            ctx.address, ctx.account.metadata, stream, ctx.account.apps["lag"], keys, rate,
            s.seconds, s.warmup, connections=s.connections, server_pids=tuple(ctx.server.process.children())))
        if lag is not None:
            run.report.lags.append(lag)
            if not lag.matched:
                run.failures.append(f"lag at {rate:,.0f}/s")
                run.report.notes.append(f"lag at {rate:,.0f}/s: no event matched a call ({lag.first_error})")
        run.drain(ctx, f"the lag scenario at {rate:,.0f}/s")

    at(s.lag_rate, ctx.fixtures.lag_keys[0])
    # Past what the server sustains, the lag is the queue in front of it: measure it again at half
    # the UpdateLicense throughput, where it shows what the relay adds.
    updates = next((r.load.rps for r in run.report.rows if r.operation.startswith("UpdateLicense")), 0.0)
    if updates and s.lag_rate > updates / 2:
        at(max(10.0, round(updates / 2, -1)), ctx.fixtures.lag_keys[1])


if __name__ == "__main__":
    sys.exit(main())
