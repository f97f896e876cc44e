"""The benchmark's knobs, from the environment (bench/README.md lists them)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


# BENCH_ONLY names, and the SQL ceiling each scenario is compared with.
SQL_CEILING_OF = {"get": "point", "validate": "point", "list": "page", "update": "update", "create1": "create1",
                  "create100": "create100", "lag": None, "relay": None}
SCENARIOS = frozenset(SQL_CEILING_OF)


def _only() -> frozenset[str]:
    names = {n.strip() for n in os.environ.get("BENCH_ONLY", "").split(",") if n.strip()}
    if unknown := names - SCENARIOS:
        raise SystemExit(f"BENCH_ONLY: unknown {', '.join(sorted(unknown))}; known: {', '.join(sorted(SCENARIOS))}")
    return frozenset(names) or SCENARIOS


@dataclass(frozen=True)
class BenchSettings:
    seconds: float  # measured time of each scenario
    warmup: float  # unmeasured load just before it
    rows: int  # licenses of the big app ListLicenses is measured on
    small_rows: int  # licenses of the small app it is compared with
    connections: int  # HTTP/2 connections: the kernel spreads connections, not calls, over server processes
    streams: int  # concurrent calls per connection
    py_processes: int  # processes of the Python load generator
    workers: int  # server processes (GRPC_WORKERS; 0 = one per core, as `licensing serve`)
    lag_rate: float  # changes/s of the call-to-event lag scenario
    relay_events: int  # outbox backlog the relay scenario drains
    profile_dir: Path | None  # when set: py-spy profiles of the server under GetLicense, ValidateLicense and CreateLicenses
    results: Path
    only: frozenset[str] = SCENARIOS  # BENCH_ONLY: the scenarios to run (and the SQL ceilings they need)

    def wants(self, scenario: str) -> bool:
        return scenario in self.only

    @property
    def concurrency(self) -> int:
        """Calls in flight, the same for every load generator and the SQL ceilings."""
        return self.connections * self.streams

    @classmethod
    def from_env(cls) -> BenchSettings:
        profile = os.environ.get("BENCH_PROFILE")
        return cls(
            seconds=_float("BENCH_SECONDS", 10),
            warmup=_float("BENCH_WARMUP", 2),
            rows=_int("BENCH_ROWS", 1_000_000),
            small_rows=_int("BENCH_SMALL_ROWS", 10_000),
            connections=_int("BENCH_CONNECTIONS", 8),
            streams=_int("BENCH_STREAMS", 8),
            py_processes=_int("BENCH_PY_PROCESSES", os.cpu_count() or 2),
            workers=_int("GRPC_WORKERS", 0) or os.cpu_count() or 1,
            lag_rate=_float("BENCH_LAG_RATE", 1000),
            relay_events=_int("BENCH_RELAY_EVENTS", 50_000),
            profile_dir=Path(profile) if profile else None,
            results=Path(os.environ.get("BENCH_RESULTS") or Path(__file__).parent / "results.json"),
            only=_only(),
        )
