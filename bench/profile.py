"""Optional: py-spy profiles of the server's workers under load (BENCH_PROFILE=<dir>).

py-spy comes from BENCH_PYSPY or PATH (install it outside the project's venv, e.g.
`python3 -m venv /tmp/pyspy && /tmp/pyspy/bin/pip install py-spy`). It samples with native frames
(`--native`), so time inside gRPC's Cython/C core, libpq and system calls is seen as such instead of
being charged to whatever Python frame called it; native sampling pauses the process, which is why
it runs in an extra, unmeasured load pass. The raw (collapsed) stacks are written to the directory,
one file per worker (any flame-graph tool reads them); a summary by component is printed.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
_PATH = re.compile(r"\(([^)]*)\)$")
_WAITS = ("epoll_wait", "poll", "__poll", "select", "pthread_cond_timedwait", "pthread_cond_wait")


def pyspy_binary() -> str | None:
    return os.environ.get("BENCH_PYSPY") or shutil.which("py-spy")


@contextlib.contextmanager
def profiling(pids: list[int], seconds: float, out_dir: Path, label: str) -> Iterator[list[Path]]:
    """Samples each pid for `seconds` while the block runs load."""
    binary = pyspy_binary()
    if not binary:
        raise RuntimeError("BENCH_PROFILE is set but py-spy is not found (set BENCH_PYSPY)")
    out_dir.mkdir(parents=True, exist_ok=True)
    raws = [out_dir / f"{label}.{pid}.txt" for pid in pids]
    samplers = [
        subprocess.Popen(
            [binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "100",
             "--native", "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for pid, raw in zip(pids, raws)
    ]
    try:
        yield raws
    finally:
        for sampler in samplers:
            sampler.wait(timeout=seconds + 60)


def component(frames: list[str]) -> str:
    """What a sample was spent in: the innermost frame of a known component (native frames count
    towards the Python frame that called them), or waiting."""
    leaf = frames[-1].split(" ")[0]
    if leaf in _WAITS or "futex" in leaf:
        return "idle (waiting)"
    for frame in reversed(frames):
        match = _PATH.search(frame)
        path = match.group(1) if match else ""
        for marker, name in _COMPONENTS:
            if marker in path:
                return name
        if path.startswith("server/"):
            return f"server code ({path.split(':')[0]})"
    return "other"


_COMPONENTS = (
    ("psycopg", "psycopg + libpq"), ("libpq", "psycopg + libpq"), ("sqlalchemy", "SQLAlchemy"),
    ("protobuf", "protobuf"), ("logging/", "logging"), ("prometheus_client", "prometheus_client"),
    ("json/", "json"), ("nats/", "nats-py (relay)"), ("server/outbox", "relay"),
    ("cryptography", "Ed25519 signing"), ("cygrpc", "gRPC (Cython + C core)"), ("grpc/", "gRPC (Cython + C core)"),
    ("asyncio/", "asyncio event loop"), ("_asynciomodule", "asyncio event loop"), ("selectors.py", "asyncio event loop"),
    ("uuid.py", "uuid"), ("datetime", "datetime"),
)


def summarize(raws: list[Path], top: int = 12) -> str:
    """Busy samples by component, the server frames that the database time comes from, and the
    system calls the busy samples end in."""
    components: Counter[str] = Counter()
    database_callers: Counter[str] = Counter()
    syscalls: Counter[str] = Counter()
    total = 0
    for raw in raws:
        if not raw.exists():
            continue
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n, frames = int(count), [_LINE.sub(")", f) for f in stack.split(";")]
            total += n
            where = component(frames)
            components[where] += n
            if where == "idle (waiting)":
                continue
            if where == "psycopg + libpq":
                callers = [f for f in frames if "(server/" in f]
                database_callers[callers[-1] if callers else "?"] += n
            leaf = frames[-1].split(" ")[0]
            if "(libc" in frames[-1] and not leaf.startswith("0x"):
                syscalls[leaf] += n
    busy = total - components["idle (waiting)"]
    if not busy:
        return "    (no samples)"
    lines = [f"    {total} samples, {busy} busy ({100 * busy / total:.0f}%); busy samples by component:"]
    lines += [f"      {100 * n / busy:5.1f}%  {name}" for name, n in components.most_common(top) if name != "idle (waiting)"]
    lines.append("    psycopg + libpq samples by the server function that made the query:")
    db = sum(database_callers.values()) or 1
    lines += [f"      {100 * n / db:5.1f}%  {name}" for name, n in database_callers.most_common(6)]
    lines.append("    busy samples ending in libc (system calls), share of busy:")
    lines += [f"      {100 * n / busy:5.1f}%  {name}" for name, n in syscalls.most_common(6)]
    return "\n".join(lines)
