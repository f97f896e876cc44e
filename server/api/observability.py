"""One JSON log line and two metrics per call of the API; no secrets or keys are ever logged."""
from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from prometheus_client import Counter, Histogram

from server.domain.caller import Caller

from .access_log import access_log

RPCS = Counter("licensing_rpc_total", "Calls of the API by method and status code", ["method", "code"])
RPC_SECONDS = Histogram(
    "licensing_rpc_duration_seconds", "Time to answer a call of the API", ["method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


# Request ids need to be unique, not secret: a random per-process prefix and a counter (uuid4 per
# call cost a getrandom() system call each).
_PROCESS_PREFIX = secrets.token_hex(8)
_COUNTER = itertools.count()


def new_request_id() -> str:
    return f"{_PROCESS_PREFIX}{next(_COUNTER):016x}"


@dataclass
class CallRecord:
    method: str
    request_id: str
    started: float = field(default_factory=time.perf_counter)
    caller: Caller | None = None
    code: grpc.StatusCode = grpc.StatusCode.OK

    @classmethod
    def begin(cls, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> CallRecord:
        # The caller's own request id when it sends one (to follow a call across services), else a new one.
        for key, value in metadata:
            if key == "x-request-id" and value:
                return cls(method, str(value)[:64])
        return cls(method, new_request_id())

    def finish(self) -> None:
        seconds = time.perf_counter() - self.started
        code = self.code.name
        calls, durations = _metrics_of(self.method, code)
        calls.inc()
        durations.observe(seconds)
        caller = self.caller
        access_log.write_call(self.method, code, round(seconds * 1000, 2), caller.account_id if caller else None,
                              caller.token_id if caller else None, self.request_id)


# The labelled series of each (method, code), looked up once: `labels()` validates and locks on
# every call otherwise. Methods and codes are few, so the dict stays small.
_SERIES: dict[tuple[str, str], tuple[Counter, Histogram]] = {}


def _metrics_of(method: str, code: str) -> tuple[Counter, Histogram]:
    series = _SERIES.get((method, code))
    if series is None:
        series = _SERIES[(method, code)] = (RPCS.labels(method, code), RPC_SECONDS.labels(method))
    return series
