"""The scenarios: each drives one operation, checks that its calls really succeeded (and changed what
they should), and returns a row beside the ceilings measured with the same load generator."""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import validation_pb2 as vpb
from server.domain.pagination import encode_cursor

from . import data, sql_ceiling
from .ceiling_server import METHOD as EMPTY
from .events import wait_for_relay
from .h2load import H2Load, check_call
from .infra import Server, wait_for_connections
from .profile import profiling, summarize
from .pyload import PyLoad, PyLoadResult
from .report import PageCost, Row
from .settings import SQL_CEILING_OF, BenchSettings
from .stats import Measurement

SERVICE = "/licensing.v1.LicenseService"
GET, LIST = f"{SERVICE}/GetLicense", f"{SERVICE}/ListLicenses"
CREATE, UPDATE = f"{SERVICE}/CreateLicenses", f"{SERVICE}/UpdateLicense"
VALIDATE = "/licensing.v1.ValidationService/ValidateLicense"
SIGNING_KEYS = "/licensing.v1.ValidationService/GetSigningKeys"
PAGE = 50  # ListLicenses' default page size
KEYS_PER_LANE = 16  # UpdateLicense: each concurrent call cycles through its own licenses
LAG_KEYS = 10_000
Metadata = tuple[tuple[str, str], ...]


class CheckFailed(AssertionError):
    """A scenario's calls did not do what they should: its figures are not to be trusted."""


@dataclass(frozen=True)
class Fixtures:
    """What the scenarios call on, loaded before anything is measured."""

    get_key: str  # GetLicense's license (main app)
    validate_key: str  # ValidateLicense's license (main app), bound to `hwid` by the scenario
    hwid: str
    update_lanes: list[list[str]]  # UpdateLicense: the licenses of each concurrent call (main app)
    lag_keys: list[list[str]]  # the lag scenario's licenses (lag app): fresh ones for each of its runs
    ceiling_ids: tuple[int, int]  # the SQL ceiling's update targets (ceiling app): first and last id
    deep_after: dict[str, int]  # app name -> row id to list after for a deep page


def load_fixtures(settings: BenchSettings, database_url: str, account: data.BenchAccount) -> Fixtures:
    apps = account.apps
    data.copy_licenses(database_url, apps["big"], settings.rows)
    data.copy_licenses(database_url, apps["small"], settings.small_rows)
    lanes = settings.concurrency
    main = data.copy_licenses(database_url, apps["main"], 2 + lanes * KEYS_PER_LANE)
    data.copy_licenses(database_url, apps["ceiling"], 20_000)
    # At 1k changes/s a license comes round again after 10s: never while its last change is in flight.
    lag_keys = data.copy_licenses(database_url, apps["lag"], 2 * LAG_KEYS)
    data.vacuum(database_url)
    with psycopg.connect(database_url) as connection:
        lo, hi = connection.execute(
            "SELECT min(id), max(id) FROM licenses WHERE app_id = %s", (apps["ceiling"],)).fetchone()  # type: ignore[misc]
        deep = {}
        for name, rows in (("big", settings.rows), ("small", settings.small_rows)):
            # 90% of the way through the app: a traversal's late page.
            row = connection.execute("SELECT id FROM licenses WHERE app_id = %s ORDER BY id OFFSET %s LIMIT 1",
                                     (apps[name], int(rows * 0.9))).fetchone()
            assert row is not None
            deep[name] = int(row[0])
    return Fixtures(
        get_key=main[0], validate_key=main[1], hwid=uuid.uuid4().hex * 2, update_lanes=split_into_lanes(main[2:]),
        lag_keys=[lag_keys[:LAG_KEYS], lag_keys[LAG_KEYS:]], ceiling_ids=(int(lo), int(hi)), deep_after=deep,
    )


@dataclass(frozen=True)
class Fixed:
    """A run of one fixed request, and what it says about side effects."""

    measurement: Measurement
    ok_since_snapshot: int  # successes after the `between` snapshot
    slack: int  # calls the snapshot may also have counted that the load generator did not (in flight at a cut)


@dataclass(frozen=True)
class Drivers:
    """h2load for fixed requests when installed, else the Python grpc.aio generator (`py`); the
    Python generator with hand-framed calls (`varied`) for requests that must vary."""

    h2: H2Load | None
    py: PyLoad
    varied: PyLoad
    concurrency: int
    seconds: float
    warmup: float

    @property
    def fixed_name(self) -> str:
        return "h2load" if self.h2 else self.py.name

    def fixed(self, address: str, method: str, request: bytes, metadata: Metadata,
              between: Callable[[], None] | None = None, seconds: float | None = None,
              warmup: float | None = None, spread: Callable[[], str] | None = None) -> Fixed:
        # The exact request, once, through a real gRPC client: h2load cannot tell a gRPC error.
        response = check_call(address, method, request, metadata)
        seconds = self.seconds if seconds is None else seconds
        warmup = self.warmup if warmup is None else warmup
        if self.h2:
            m = self.h2.run(address, method, request, metadata, seconds, warmup, len(response), between, spread)
            return Fixed(m, m.ok, 2 * self.concurrency)
        if between is not None:
            between()  # before the warm-up: the Python generator counts warm-up successes too
        result = self.py.run(address, method, metadata, [[request]] * self.concurrency, seconds, warmup, spread)
        no_errors(method, result)
        return Fixed(result.measurement, result.total_ok, 0)


@dataclass
class Ceilings:
    rpc: dict[str, Measurement] = field(default_factory=dict)  # load generator -> bare-server measurement
    sql: dict[str, tuple[Measurement, Measurement | None]] = field(default_factory=dict)  # psycopg, pgbench


def measure_rpc_ceilings(settings: BenchSettings, account: data.BenchAccount, drivers: Drivers,
                         ceiling: Server) -> dict[str, Measurement]:
    """The bare server's calls/s under each load generator the scenarios use."""
    rpc = {}
    print(f"  RPC ceiling, {drivers.fixed_name}")
    rpc[drivers.fixed_name] = drivers.fixed(ceiling.address, EMPTY, b"", account.metadata,
                                            spread=ceiling.spread).measurement
    print(f"  RPC ceiling, {drivers.varied.name}")
    lanes = [[b""]] * drivers.concurrency
    result = drivers.varied.run(ceiling.address, EMPTY, account.metadata, lanes, settings.seconds, settings.warmup,
                                ceiling.spread)
    no_errors(EMPTY, result)
    rpc[drivers.varied.name] = result.measurement
    return rpc


def measure_ceilings(settings: BenchSettings, database_url: str, account: data.BenchAccount, fixtures: Fixtures,
                     drivers: Drivers, ceiling: Server, pgbench: bool) -> Ceilings:
    ceilings = Ceilings(measure_rpc_ceilings(settings, account, drivers, ceiling))
    payload = data.sample_payload(account.apps["ceiling"])
    transactions = {
        "point": sql_ceiling.point_read(fixtures.get_key),
        "page": sql_ceiling.page_read(account.apps["big"], 0, PAGE),
        "create1": sql_ceiling.create(account.account_id, account.apps["ceiling"], payload, 1),
        "create100": sql_ceiling.create(account.account_id, account.apps["ceiling"], payload, 100),
        "update": sql_ceiling.update(account.account_id, payload, fixtures.ceiling_ids),
    }
    needed = {SQL_CEILING_OF[scenario] for scenario in settings.only}
    for name, tx in transactions.items():
        if name not in needed:
            continue
        print(f"  SQL ceiling, {tx.name}")
        wait_for_connections(database_url, settings.concurrency + 5)
        py = sql_ceiling.run_psycopg(database_url, tx, settings.concurrency, settings.seconds, settings.warmup)
        bench = None
        if pgbench:
            wait_for_connections(database_url, settings.concurrency + 5)
            bench = sql_ceiling.run_pgbench(database_url, tx, settings.concurrency, settings.seconds,
                                            settings.warmup, threads=settings.py_processes)
        ceilings.sql[name] = (py, bench)
    data.unqueue_events(database_url)  # the ceilings' outbox rows are not events anybody made
    data.vacuum(database_url)  # the ceilings wrote thousands of rows
    return ceilings


@dataclass(frozen=True)
class Context:
    settings: BenchSettings
    database_url: str
    account: data.BenchAccount
    fixtures: Fixtures
    drivers: Drivers
    ceilings: Ceilings
    server: Server

    @property
    def address(self) -> str:
        return self.server.address

    def row(self, operation: str, kind: str, load: Measurement, sql: str | None, per_call: int = 1) -> Row:
        psycopg_ceiling, pgbench_ceiling = self.ceilings.sql.get(sql, (None, None)) if sql else (None, None)
        return Row(operation, kind, load, self.ceilings.rpc.get(load.generator), psycopg_ceiling, pgbench_ceiling,
                   per_call)

    def profile(self, label: str, method: str, request: bytes) -> str:
        """An extra, unmeasured pass of the same load with py-spy on every worker (BENCH_PROFILE only)."""
        out = self.settings.profile_dir
        if out is None:
            return ""
        seconds = self.settings.seconds
        with profiling(self.server.process.children(), seconds, out, label) as raws:
            self.drivers.fixed(self.address, method, request, self.account.metadata, seconds=seconds + 1, warmup=0)
        return f"py-spy, server workers under {label} ({', '.join(str(r) for r in raws)}):\n{summarize(raws)}"


# Reads


def get_license(ctx: Context) -> tuple[Row, str]:
    request = pb.GetLicenseRequest(key=ctx.fixtures.get_key).SerializeToString()
    run = ctx.drivers.fixed(ctx.address, GET, request, ctx.account.metadata, spread=ctx.server.spread)
    return ctx.row("GetLicense", "read", run.measurement, "point"), ctx.profile("GetLicense", GET, request)


def get_license_varied(ctx: Context) -> Row:
    """GetLicense of many distinct keys (the varied-request generator: h2load sends one fixed body). The
    server gathers concurrent reads into one query; with one fixed key, concurrent calls share one
    row too, so this row shows the batching without that help."""
    lanes = [[pb.GetLicenseRequest(key=k).SerializeToString() for k in keys] for keys in ctx.fixtures.update_lanes]
    s = ctx.settings
    result = ctx.drivers.varied.run(ctx.address, GET, ctx.account.metadata, lanes, s.seconds, s.warmup,
                                    ctx.server.spread)
    no_errors(GET, result)
    distinct = sum(len(lane) for lane in lanes)
    return ctx.row(f"GetLicense ({distinct:,} distinct keys)", "read", result.measurement, "point")


def signing_keys(ctx: Context) -> Row:
    """GetSigningKeys: authentication, the call's bookkeeping (metrics, access log) and a small answer,
    no database. Its ratio is about the most any method of this server reaches on this machine; what
    the others lose below it is their own work (a query, a signature)."""
    run = ctx.drivers.fixed(ctx.address, SIGNING_KEYS, b"", ctx.account.metadata, spread=ctx.server.spread)
    return ctx.row("GetSigningKeys (no database)", "read", run.measurement, None)


def validate_license(ctx: Context) -> tuple[Row, str]:
    f = ctx.fixtures
    request = vpb.ValidateLicenseRequest(app_id=str(ctx.account.apps["main"]), key=f.validate_key, hwid=f.hwid,
                                         nonce="bench").SerializeToString()
    bound = vpb.ValidateLicenseResponse.FromString(check_call(ctx.address, VALIDATE, request, ctx.account.metadata))
    if bound.result.code != vpb.VALIDATION_CODE_VALID:
        raise CheckFailed(f"binding the device: {vpb.ValidationCode.Name(bound.result.code)}")
    version = bound.result.license.version
    run = ctx.drivers.fixed(ctx.address, VALIDATE, request, ctx.account.metadata, spread=ctx.server.spread)
    # A bound device on an active license: every call VALID, nothing bound again, no event.
    with psycopg.connect(ctx.database_url) as connection:
        row = connection.execute(
            "SELECT l.version, count(h.hwid) FROM licenses l LEFT JOIN license_hwids h ON h.license_id = l.id "
            "WHERE l.key = %s GROUP BY l.version", (f.validate_key,)).fetchone()
    if row is None or (int(row[0]), int(row[1])) != (version, 1):
        raise CheckFailed(f"ValidateLicense of a bound device changed the license: (version, devices) = {row}")
    measured = ctx.row("ValidateLicense (bound device)", "read", run.measurement, "point")
    return measured, ctx.profile("ValidateLicense", VALIDATE, request)


def list_licenses(ctx: Context) -> tuple[list[Row], list[PageCost], list[str]]:
    """The big app's rows come first in id order, the small app's after them (an app created later)."""
    apps, s = ctx.account.apps, ctx.settings
    rows: dict[tuple[str, str], Row] = {}
    plans: list[str] = []
    for page in ("first", "deep"):
        for name, count in (("big", s.rows), ("small", s.small_rows)):
            app = apps[name]
            after = ctx.fixtures.deep_after[name] if page == "deep" else 0
            cursor = encode_cursor(app, after) if after else ""
            request = pb.ListLicensesRequest(app_id=str(app), limit=PAGE, cursor=cursor).SerializeToString()
            answer = pb.ListLicensesResponse.FromString(check_call(ctx.address, LIST, request, ctx.account.metadata))
            if len(answer.licenses) != PAGE or not answer.cursor:
                raise CheckFailed(f"ListLicenses {page} page of {name}: {len(answer.licenses)} licenses")
            run = ctx.drivers.fixed(ctx.address, LIST, request, ctx.account.metadata, spread=ctx.server.spread)
            label = f"ListLicenses {page} page, {_count(count)} app"
            # The SQL column shows the big app's first page select for every page: keyset pages cost the same.
            rows[(page, name)] = ctx.row(label, "read", run.measurement, "page")
            plans.append(f"{label}: {_page_plan(ctx.database_url, app, after)}")
    costs = [PageCost(page, rows[(page, "big")], rows[(page, "small")]) for page in ("first", "deep")]
    return list(rows.values()), costs, plans


def _page_query() -> str:
    """The server's own keyset page query (repository.LICENSE_PAGE), so the plan shown is the plan it
    gets; a plain equivalent should that statement move."""
    try:
        from sqlalchemy.dialects.postgresql.psycopg import dialect

        from server.adapters.repository import LICENSE_PAGE
    except ImportError:
        return "SELECT * FROM licenses WHERE app_id = %(app_id)s AND id > %(after_id)s ORDER BY id LIMIT %(limit)s"
    return str(LICENSE_PAGE.compile(dialect=dialect()))


def _page_plan(database_url: str, app: uuid.UUID, after: int) -> str:
    """How PostgreSQL runs the page query with these values (as the server sends it: unprepared, so
    planned with its values): it should be an index range scan on (app_id, id), whatever the app's
    size and place in the table."""
    with psycopg.connect(database_url) as connection:
        plan = connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {_page_query()}",
                                  {"app_id": app, "after_id": after, "limit": PAGE + 1},
                                  prepare=False).fetchone()[0][0]  # type: ignore[index]
    scans = []
    nodes = [plan["Plan"]]
    while nodes:
        node = nodes.pop()
        if "Index Name" in node and node.get("Relation Name") == "licenses":
            removed = node.get("Rows Removed by Filter", 0)
            scans.append(f"{node['Node Type']} on {node['Index Name']}"
                         + (f", {removed:,} rows removed by filter" if removed else ""))
        nodes.extend(node.get("Plans", []))
    return f"{'; '.join(scans) or plan['Plan']['Node Type']}, {plan['Execution Time']:.2f} ms"


# Writes


def split_into_lanes(keys: list[str]) -> list[list[str]]:
    """KEYS_PER_LANE keys for each concurrent call."""
    return [keys[i:i + KEYS_PER_LANE] for i in range(0, len(keys), KEYS_PER_LANE)]


def revoke_activate_lanes(keys_of_lanes: list[list[str]]) -> list[list[bytes]]:
    """UpdateLicense requests, a lane per list of keys: revoke each license, then activate each."""
    lanes = []
    for keys in keys_of_lanes:
        revoke = [pb.UpdateLicenseRequest(key=k, action=pb.LICENSE_ACTION_REVOKE).SerializeToString() for k in keys]
        activate = [pb.UpdateLicenseRequest(key=k, action=pb.LICENSE_ACTION_ACTIVATE).SerializeToString() for k in keys]
        lanes.append(revoke + activate)
    return lanes


def update_license(ctx: Context) -> Row:
    """Revoke/activate alternating on many licenses, each concurrent call on licenses of its own, so
    that every call is a real change (a new version and an event), never a no-op."""
    lanes = revoke_activate_lanes(ctx.fixtures.update_lanes)
    keys = [k for lane in ctx.fixtures.update_lanes for k in lane]
    before = _versions_and_events(ctx.database_url, keys)
    s = ctx.settings
    result = ctx.drivers.varied.run(ctx.address, UPDATE, ctx.account.metadata, lanes, s.seconds, s.warmup,
                                    ctx.server.spread)
    no_errors(UPDATE, result)
    after = _versions_and_events(ctx.database_url, keys)
    changes, events = after[0] - before[0], after[1] - before[1]
    if not changes == events == result.total_ok:
        raise CheckFailed(f"UpdateLicense: {result.total_ok} calls succeeded, but {changes} versions and "
                          f"{events} events were added")
    return ctx.row("UpdateLicense (revoke/activate)", "write", result.measurement, "update")


def create_licenses(ctx: Context, quantity: int) -> tuple[Row, str]:
    data.add_credits(ctx.database_url, ctx.account)  # never the limit
    app = ctx.account.apps["main"]
    request = pb.CreateLicensesRequest(app_id=str(app), quantity=quantity).SerializeToString()
    snapshot: list[tuple[int, int]] = []
    run = ctx.drivers.fixed(ctx.address, CREATE, request, ctx.account.metadata,
                            between=lambda: snapshot.append(_licenses_and_credits(ctx, app)), spread=ctx.server.spread)
    time.sleep(1)  # calls the load generator gave up on at its deadline may still commit
    licenses_before, credits_before = snapshot[-1]  # taken just before the measured run's start
    licenses_after, credits_after = _licenses_and_credits(ctx, app)
    created, spent = licenses_after - licenses_before, credits_before - credits_after
    if created != spent:
        raise CheckFailed(f"CreateLicenses({quantity}): {created} licenses created but {spent} credits spent")
    low, high = run.ok_since_snapshot * quantity, (run.ok_since_snapshot + run.slack) * quantity
    if not low <= created <= high:
        raise CheckFailed(f"CreateLicenses({quantity}): {run.ok_since_snapshot} calls answered, so {low}-{high} "
                          f"licenses expected, {created} created")
    sql = "create1" if quantity == 1 else "create100"
    row = ctx.row(f"CreateLicenses({quantity})", "write", run.measurement, sql, per_call=quantity)
    return row, ctx.profile(f"CreateLicenses({quantity})", CREATE, request)


def no_errors(method: str, result: PyLoadResult) -> None:
    if result.first_error or not result.total_ok:
        raise CheckFailed(f"{method}: {result.measurement.errors} calls failed in the window, "
                          f"{result.total_ok} succeeded; first error: {result.first_error}")


def drain(ctx: Context) -> float:
    """Waits for the relay to publish every event, then vacuums what the scenario wrote."""
    waited = wait_for_relay(ctx.database_url)
    data.vacuum(ctx.database_url)
    return waited


def _licenses_and_credits(ctx: Context, app: uuid.UUID) -> tuple[int, int]:
    with psycopg.connect(ctx.database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT count(*) FROM licenses WHERE app_id = %s), (SELECT credits FROM accounts WHERE id = %s)",
            (app, ctx.account.account_id)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _versions_and_events(database_url: str, keys: list[str]) -> tuple[int, int]:
    with psycopg.connect(database_url) as connection:
        row = connection.execute(
            "SELECT (SELECT coalesce(sum(version), 0) FROM licenses WHERE key = ANY(%s)), "
            "(SELECT count(*) FROM outbox WHERE license_key = ANY(%s))", (keys, keys)).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _count(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"

