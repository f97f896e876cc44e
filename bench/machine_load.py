"""How much CPU other work took while the benchmark ran (a shared machine skews every figure).

A background thread samples every process once a second. "Ours" is the benchmark's process tree
(servers, load generators, pgbench, py-spy) and the PostgreSQL backends of its database; "shared" is
what both sides use (PostgreSQL's and NATS's own processes, kernel threads); everything else, e.g.
another checkout's test suite and its database backends, is "other". A window's other share is that
CPU over the window's length times the cores.
"""
from __future__ import annotations

import bisect
import os
import threading
import time

import psutil

_SHARED = ("nats-server", "postgres: ", "postgres -D", "/postgres ", "process_api")


class MachineLoad:
    def __init__(self, database_name: str, interval: float = 1.0) -> None:
        self._database = database_name
        self._interval = interval
        self._me = os.getpid()
        self._cpu: dict[int, float] = {}  # pid -> CPU seconds at its last sample
        self._times: list[float] = []  # monotonic time of each sample
        self._other: list[float] = []  # cumulative CPU seconds of other work at each sample
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="machine-load", daemon=True)

    def __enter__(self) -> MachineLoad:
        self._sample(0.0)  # baseline: CPU used before the benchmark started is not counted
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def other_share(self, start: float, end: float) -> float:
        """Share of the machine's CPU (0-1) other work used between two time.monotonic() readings."""
        if end <= start or len(self._times) < 2:
            return float("nan")
        return (self._at(end) - self._at(start)) / ((end - start) * (os.cpu_count() or 1))

    def _at(self, moment: float) -> float:
        i = bisect.bisect_left(self._times, moment)
        return self._other[min(i, len(self._other) - 1)]

    def _run(self) -> None:
        total = 0.0
        while not self._stop.wait(self._interval):
            total = self._sample(total)

    def _sample(self, total: float) -> float:
        ours = {self._me}
        try:
            ours.update(p.pid for p in psutil.Process(self._me).children(recursive=True))
        except psutil.Error:
            pass
        seen: dict[int, float] = {}
        for process in psutil.process_iter(["pid", "cmdline", "cpu_times"]):
            info = process.info
            times = info.get("cpu_times")
            if times is None:
                continue
            cpu = times.user + times.system
            pid = int(info["pid"])
            seen[pid] = cpu
            command = " ".join(info.get("cmdline") or [])
            if pid in ours or not command or self._database in command:
                continue
            if command.startswith(_SHARED) and "licensing_" not in command:
                continue  # PostgreSQL's and NATS's own processes: everyone's
            total += cpu - self._cpu.get(pid, 0.0 if self._times else cpu)
        self._cpu = seen
        self._times.append(time.monotonic())
        self._other.append(total)
        return total
