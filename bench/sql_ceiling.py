"""The SQL ceiling: the smallest transaction that makes an operation's writes (or its smallest read),
issued straight to PostgreSQL, with the same concurrency and the same single account as the service.

Measured twice from the same SQL text: through psycopg (async, one connection per concurrent call,
prepared statements, one process: what a Python service could hope for) and with pgbench (C client,
for reference). Outbox rows are written already published so the relay never sends them as events;
the outbox trigger still NOTIFYs the relay on every commit, as for a real change.
"""
from __future__ import annotations

import asyncio
import random
import re
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .stats import Measurement

_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")  # :name, but not the `::` of a cast

_OUTBOX = "INSERT INTO outbox (event_id, event_type, account_id, app_id, license_key, version, payload)"
_NEW_KEY = "upper(substr(md5(random()::text), 1, 16))"  # unique enough; PostgreSQL does not check key format


@dataclass(frozen=True)
class Transaction:
    name: str
    statements: list[str]  # run in one transaction; `:name` parameters
    params: dict[str, str]  # fixed for the run
    id_range: tuple[int, int] | None = None  # `:id`, drawn per transaction from [lo, hi]


def point_read(key: str) -> Transaction:
    return Transaction("point select by key", ["SELECT * FROM licenses WHERE key = :key"], {"key": key})


def page_read(app_id: uuid.UUID, after: int, limit: int) -> Transaction:
    sql = f"SELECT * FROM licenses WHERE app_id = :app AND id > :after ORDER BY id LIMIT {limit + 1}"
    return Transaction("keyset page select", [sql], {"app": str(app_id), "after": str(after)})


def create(account_id: uuid.UUID, app_id: uuid.UUID, payload: str, quantity: int) -> Transaction:
    """Insert the licenses and their outbox rows (the trigger queues them and NOTIFYs), then debit the
    account, its row locked only from there to the commit: one statement, one round trip, as small as
    these writes get (the server's form, server/adapters/license_issuer.py)."""
    sql = (
        f"WITH new AS (INSERT INTO licenses (key, app_id, max_hwid_slots, unlimited_hwid_slots) "
        f"SELECT {_NEW_KEY}, :app, 1, false FROM generate_series(1, {quantity}) RETURNING key), "
        f"events AS ({_OUTBOX} SELECT gen_random_uuid(), 'license.created', :account, :app, key, 1, "
        f":payload::jsonb FROM new RETURNING 1) "
        f"UPDATE accounts SET credits = credits - {quantity} "
        f"WHERE id = :account AND (SELECT count(*) FROM events) = {quantity}"
    )
    params = {"account": str(account_id), "app": str(app_id), "payload": payload}
    return Transaction(f"create {quantity}", [sql], params)


def update(account_id: uuid.UUID, payload: str, id_range: tuple[int, int]) -> Transaction:
    """Flip one license's revoked flag, bump its version, write its outbox row (the trigger queues it)."""
    sql = (
        "WITH changed AS (UPDATE licenses SET revoked = NOT revoked, version = version + 1, updated_at = now() "
        "WHERE id = :id RETURNING key, app_id, version, revoked) "
        f"{_OUTBOX} SELECT gen_random_uuid(), CASE WHEN revoked THEN 'license.revoked' ELSE 'license.activated' END, "
        ":account, app_id, key, version, :payload::jsonb FROM changed"
    )
    return Transaction("update 1", [sql], {"account": str(account_id), "payload": payload}, id_range=id_range)


def run_psycopg(database_url: str, tx: Transaction, concurrency: int, seconds: float, warmup: float) -> Measurement:
    return asyncio.run(_psycopg(database_url, tx, concurrency, seconds, warmup))


async def _psycopg(database_url: str, tx: Transaction, concurrency: int, seconds: float, warmup: float) -> Measurement:
    statements = [_PARAMETER.sub(r"%(\1)s", s) for s in tx.statements]
    connections = [
        await psycopg.AsyncConnection.connect(database_url, autocommit=True, prepare_threshold=0)
        for _ in range(concurrency)
    ]
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from, end = start + warmup, start + warmup + seconds

    async def loop(connection: psycopg.AsyncConnection) -> None:
        nonlocal errors
        params: dict[str, object] = dict(tx.params)
        while (began := time.perf_counter()) < end:
            if tx.id_range:
                params["id"] = random.randint(*tx.id_range)
            try:
                if len(statements) == 1:
                    await connection.execute(statements[0], params)
                else:
                    async with connection.transaction():
                        for statement in statements:
                            await connection.execute(statement, params)
            except psycopg.Error:
                if began >= measure_from:
                    errors += 1
                continue
            if began >= measure_from:
                latencies.append((time.perf_counter() - began) * 1000)

    try:
        await asyncio.gather(*(loop(c) for c in connections))
    finally:
        for connection in connections:
            await connection.close()
    return Measurement.from_latencies("psycopg", seconds, latencies, errors, window=(measure_from, end))


def run_pgbench(database_url: str, tx: Transaction, concurrency: int, seconds: float, warmup: float,
                threads: int) -> Measurement:
    """pgbench with a custom script of the same SQL; its per-transaction log gives the percentiles."""
    lines = []
    if tx.id_range:
        lines.append(f"\\set id random({tx.id_range[0]}, {tx.id_range[1]})")
    if len(tx.statements) > 1:
        lines.append("BEGIN;")
    lines += [f"{s};" for s in tx.statements]
    if len(tx.statements) > 1:
        lines.append("END;")
    with tempfile.TemporaryDirectory(prefix="bench-pgbench-") as tmp:
        script = Path(tmp) / "tx.sql"
        script.write_text("\n".join(lines) + "\n")
        command = [
            "pgbench", "--no-vacuum", "--protocol=prepared", f"--client={concurrency}",
            f"--jobs={min(threads, concurrency)}", f"--time={max(1, round(warmup + seconds))}", f"--file={script}",
            "--log", f"--log-prefix={tmp}/log",
            *(f"--define={name}={value}" for name, value in tx.params.items()),
            database_url,
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=warmup + seconds + 120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr[-2000:]}")
        records: list[tuple[float, float | None]] = []  # (start, latency ms or None when failed)
        for log in Path(tmp).glob("log.*"):
            for line in log.read_text().splitlines():
                fields = line.split()
                end = int(fields[4]) + int(fields[5]) / 1e6
                if fields[2].isdigit():
                    latency = int(fields[2]) / 1000
                    records.append((end - latency / 1000, latency))
                else:
                    records.append((end, None))
    if not records:
        raise RuntimeError(f"pgbench logged no transaction: {done.stdout[-2000:]}")
    first = min(start for start, _ in records)
    window = (first + warmup, first + warmup + seconds)
    inside = [latency for start, latency in records if window[0] <= start < window[1]]
    latencies = [latency for latency in inside if latency is not None]
    to_monotonic = time.monotonic() - time.time()  # pgbench logs wall-clock times
    window_monotonic = (window[0] + to_monotonic, window[1] + to_monotonic)
    return Measurement.from_latencies("pgbench", seconds, latencies, len(inside) - len(latencies),
                                      window=window_monotonic)
