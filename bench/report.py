"""The results: one table on stdout, the same figures as JSON (bench/results.json) for comparing runs."""
from __future__ import annotations

import json
import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .events import LagResult, RelayResult
from .stats import Measurement


@dataclass(frozen=True)
class Row:
    """One operation under load, beside the ceilings measured with the same load generator."""

    operation: str
    kind: str  # "read": ratio against the RPC ceiling; "write": against min(RPC, SQL)
    load: Measurement
    rpc: Measurement | None  # bare grpc.aio server, same processes, same load generator, before the scenarios
    sql: Measurement | None  # smallest transaction through psycopg
    pgbench: Measurement | None  # the same SQL through pgbench, for reference
    per_call: int = 1  # licenses per call (CreateLicenses quantity)
    other_cpu: float = float("nan")  # share of the machine's CPU other work used during the measured run
    rpc_after: Measurement | None = None  # the same bare server again, after the scenarios

    @property
    def rpc_rps(self) -> float:
        """The RPC ceiling: the mean of its runs before and after the scenarios, which happened in
        between (the machine's speed drifts by several % over a run; one end alone moved every ratio)."""
        runs = [m.rps for m in (self.rpc, self.rpc_after) if m is not None]
        return sum(runs) / len(runs) if runs else math.inf

    @property
    def ceiling(self) -> float:
        rpc = self.rpc_rps
        if self.kind == "read" or not self.sql:
            return rpc
        return min(rpc, self.sql.rps)

    @property
    def ratio(self) -> float:
        return self.load.rps / self.ceiling if self.ceiling not in (0, math.inf) else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "operation": self.operation, "kind": self.kind, "per_call": self.per_call,
            "load": self.load.to_json(), "licenses_per_second": round(self.load.rps * self.per_call, 1),
            "rpc_ceiling": self.rpc.to_json() if self.rpc else None,
            "rpc_ceiling_after": self.rpc_after.to_json() if self.rpc_after else None,
            "sql_ceiling": self.sql.to_json() if self.sql else None,
            "pgbench": self.pgbench.to_json() if self.pgbench else None,
            "ceiling": round(self.ceiling, 1), "ratio": round(self.ratio, 3),
            "other_cpu": None if math.isnan(self.other_cpu) else round(self.other_cpu, 3),
        }


@dataclass(frozen=True)
class PageCost:
    """ListLicenses on a big app versus a small one: keyset pages should cost the same (target <= 1.5x)."""

    page: str  # "first" | "deep"
    big: Row
    small: Row

    @property
    def cost_ratio(self) -> float:
        """Time per page on the big app over the small one's (from calls/s at the same concurrency)."""
        return self.small.load.rps / self.big.load.rps if self.big.load.rps else float("nan")

    @property
    def p50_ratio(self) -> float:
        return self.big.load.p50_ms / self.small.load.p50_ms if self.small.load.p50_ms else float("nan")


@dataclass
class Report:
    machine: dict[str, Any]
    settings: dict[str, Any]
    rows: list[Row] = field(default_factory=list)
    page_costs: list[PageCost] = field(default_factory=list)
    relay: RelayResult | None = None
    lags: list[LagResult] = field(default_factory=list)  # at BENCH_LAG_RATE, then at a rate the server sustains
    plans: list[str] = field(default_factory=list)  # PostgreSQL's plan of each ListLicenses page query
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    other_cpu: float = float("nan")  # over the whole run

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine, "settings": self.settings, "run_seconds": round(self.seconds, 1),
            "other_cpu": None if math.isnan(self.other_cpu) else round(self.other_cpu, 3),
            "rows": [r.to_json() for r in self.rows],
            "list_page_cost": [{"page": c.page, "big": c.big.operation, "small": c.small.operation,
                                "cost_ratio": round(c.cost_ratio, 3), "p50_ratio": round(c.p50_ratio, 3)}
                               for c in self.page_costs],
            "list_page_plans": self.plans,
            "relay": self.relay.to_json() if self.relay else None,
            "lag": [lag.to_json() for lag in self.lags],
            "notes": self.notes,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    def render(self) -> str:
        out = [_machine_line(self.machine), ""]
        header = ("operation", "load generator", "conns", "req/s", "p50 ms", "p99 ms", "RPC ceil", "(conns)",
                  "SQL ceil", "pgbench", "ceiling", "ratio", "other CPU")
        table = [header]
        for r in self.rows:
            table.append((
                r.operation, r.load.generator, r.load.spread or "-", _rate(r.load.rps, r.per_call), _ms(r.load.p50_ms),
                _ms(r.load.p99_ms), _rate(r.rpc_rps), (r.rpc.spread or "-") if r.rpc else "-",
                _rate(r.sql.rps, r.per_call) if r.sql else "-",
                _rate(r.pgbench.rps, r.per_call) if r.pgbench else "-", _rate(r.ceiling), f"{r.ratio:.2f}",
                "-" if math.isnan(r.other_cpu) else f"{100 * r.other_cpu:.0f}%",
            ))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        for n, row in enumerate(table):
            cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))]
            out.append("  ".join(cells).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        out.append("")
        out.append("req/s of CreateLicenses(100) is calls/s (licenses/s in brackets); SQL/pgbench ceilings are "
                   "transactions/s (licenses/s in brackets).")
        out.append("ceiling = RPC ceiling for reads, min(RPC, SQL) for writes; ratio = req/s / ceiling.")
        out.append(f"RPC ceil = the bare server's calls/s, the mean of its runs before and after the scenarios "
                   f"({self._rpc_runs()}).")
        out.append("conns = the load generator's connections per server process during the run (the kernel spreads "
                   "connections, not calls); (conns) the same for the RPC ceiling.")
        out.append(f"other CPU = share of the machine's CPU that work outside the benchmark used during the row's run "
                   f"(whole run: {_share(self.other_cpu)}); above a few % the row's figures are low.")
        out.append("")
        out.extend(self._targets())
        if self.notes:
            out.append("")
            out.extend(f"note: {n}" for n in self.notes)
        out.append(f"\nrun time: {self.seconds:.0f}s")
        return "\n".join(out)

    def _rpc_runs(self) -> str:
        runs: dict[str, str] = {}
        for r in self.rows:
            if r.rpc is not None:
                after = f" then {r.rpc_after.rps:,.0f}" if r.rpc_after else ", not measured after"
                runs.setdefault(r.load.generator, f"{r.load.generator}: {r.rpc.rps:,.0f}{after}")
        return "; ".join(runs.values()) or "none"

    def _targets(self) -> list[str]:
        lines = ["targets:"]
        for row in self.rows:
            goal = _ratio_target(row.operation)
            if goal is not None:
                lines.append(f"  {row.operation:32} {row.ratio:5.2f} of its ceiling     target >= {goal:.1f}      "
                             f"{_verdict(row.ratio >= goal)}")
        create100 = next((r for r in self.rows if r.per_call > 1), None)
        if create100:
            licenses = create100.load.rps * create100.per_call
            lines.append(f"  CreateLicenses(100)        {licenses:10,.0f} licenses/s      target >= 20,000   "
                         f"{_verdict(licenses >= 20_000)}")
        for cost in self.page_costs:
            # Either way round: a page of the small app costing more is as wrong as the big app's.
            same = 1 / 1.5 <= cost.cost_ratio <= 1.5
            lines.append(
                f"  ListLicenses {cost.page:5} page      {cost.cost_ratio:10.2f}x cost big/small   target <= 1.5x     "
                f"{_verdict(same)}  (p50 {cost.big.load.p50_ms:.1f} vs {cost.small.load.p50_ms:.1f} ms)"
            )
        lines += [f"    plan, {plan}" for plan in self.plans]
        if self.relay:
            lines.append(f"  relay                      {self.relay.events_per_second:10,.0f} events/s        "
                         f"target >= 5,000    {_verdict(self.relay.events_per_second >= 5_000)}  "
                         f"({self.relay.events:,} events drained in {self.relay.drain_seconds:.1f}s incl. start-up)")
        for lag in self.lags:
            lines.append(f"  call-to-event lag          p50 {lag.p50_ms:,.1f} ms, p99 {lag.p99_ms:,.1f} ms   "
                         f"target < 20 / < 100 ms   {_verdict(lag.ok)}")
            lines.append(f"    at {lag.rate_achieved:,.0f} of {lag.rate_asked:,.0f} changes/s asked (UpdateLicense); "
                         f"the call itself p50 {lag.call_p50_ms:,.1f} / p99 {lag.call_p99_ms:,.1f} ms, answer to event "
                         f"p50 {lag.after_p50_ms:,.1f} / p99 {lag.after_p99_ms:,.1f} ms; {lag.matched:,} matched, "
                         f"{lag.missing} missing, {lag.skipped:,} skipped (queue full), {lag.errors} errors, "
                         f"connections {lag.spread}"
                         f"{': ' + lag.first_error if lag.errors else ''}")
        return lines


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    return {"cores": os.cpu_count(), "cpu_model": model or "unknown", "platform": platform.platform(),
            "python": platform.python_version(),
            # Anything else busy on the machine skews every figure: this tells whether it was quiet.
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}


def _machine_line(m: dict[str, Any]) -> str:
    return (f"machine: {m['cores']} cores, {m['cpu_model']}; {m['platform']}; Python {m['python']}; "
            f"load average at start {' '.join(str(x) for x in m['load_average_at_start'])}, at end "
            f"{' '.join(str(x) for x in m.get('load_average_at_end', []))} (other work on the machine skews every figure)\n"
            f"load generator: {m['load_generator']}\n"
            f"server: {m['server']}")


def _rate(value: float, per_call: int = 1) -> str:
    if math.isnan(value) or math.isinf(value):
        return "-"
    text = f"{value:,.0f}"
    return f"{text} ({value * per_call:,.0f})" if per_call > 1 else text


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.0f}%"


def _ratio_target(operation: str) -> float | None:
    """The issue's ratio targets: reads >= 0.6 of the RPC ceiling, single changes >= 0.5 of min(RPC, SQL)."""
    if operation.startswith(("GetLicense", "ValidateLicense")):
        return 0.6
    if operation.startswith("UpdateLicense") or operation == "CreateLicenses(1)":
        return 0.5
    return None


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"
