"""What a measured run yields, whatever drove it: calls/s and latency percentiles."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (NaN when empty)."""
    if not sorted_values:
        return float("nan")
    rank = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values) + 0.5) - 1))
    return float(sorted_values[rank])


@dataclass(frozen=True)
class Measurement:
    generator: str  # what drove the load: h2load, python grpc.aio, psycopg, pgbench
    seconds: float  # the measured window
    ok: int  # successful calls (transactions) started in the window
    errors: int
    p50_ms: float
    p99_ms: float
    spread: str = ""  # client connections per server process during the run, e.g. "5/3"
    window: tuple[float, float] = (0.0, 0.0)  # time.monotonic() at the start and end of the measured run

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def from_latencies(cls, generator: str, seconds: float, latencies_ms: list[float], errors: int,
                       spread: str = "", window: tuple[float, float] = (0.0, 0.0)) -> Measurement:
        latencies_ms.sort()
        return cls(generator, seconds, len(latencies_ms), errors,
                   percentile(latencies_ms, 0.50), percentile(latencies_ms, 0.99), spread, window)

    def to_json(self) -> dict[str, Any]:
        fields = asdict(self)
        del fields["window"]
        return {**fields, "rps": round(self.rps, 1)}
