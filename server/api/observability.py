"""One JSON log line and two metrics per call of the API; no secrets or keys are ever logged."""
from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Sequence

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


class CallRecord:
    """What one call leaves behind: its metrics and its access line (`finish`). A plain class with
    slots: one is made on every call."""

    __slots__ = ("method", "request_id", "started", "caller", "code")

    def __init__(self, method: str, request_id: str) -> None:
        self.method = method
        self.request_id = request_id
        self.started = time.perf_counter()
        self.caller: Caller | None = None
        self.code = grpc.StatusCode.OK

    @classmethod
    def begin(cls, method: str, metadata: Sequence[tuple[str, str | bytes]]) -> CallRecord:
        # The caller's own request id when it sends one (to follow a call across services), else a new one.
        for key, value in metadata:
            if key == "x-request-id" and value:
                return cls(method, str(value)[:64])
        return cls(method, new_request_id())

    def finish(self) -> None:
        seconds = time.perf_counter() - self.started
        code = _CODE_NAMES[self.code]
        calls, durations = _metrics_of(self.method, code)
        calls.inc()
        durations.observe(seconds)
        caller = self.caller
        ms = int(seconds * 100_000 + 0.5) / 100  # to 0.01 ms: what round(ms, 2) gives, at a fourth of its cost
        access_log.write_call(self.method, code, ms, caller.account_id if caller else None,
                              caller.token_id if caller else None, self.request_id)


_CODE_NAMES = {code: code.name for code in grpc.StatusCode}  # an enum's .name is a descriptor call each time


# The labelled series of each (method, code), looked up once: `labels()` validates and locks on
# every call otherwise. Methods and codes are few, so the dict stays small.
_SERIES: dict[tuple[str, str], tuple[Counter, Histogram]] = {}


def _metrics_of(method: str, code: str) -> tuple[Counter, Histogram]:
    series = _SERIES.get((method, code))
    if series is None:
        series = _SERIES[(method, code)] = (RPCS.labels(method, code), RPC_SECONDS.labels(method))
    return series
