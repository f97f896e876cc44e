"""The access log's lines, written without the logging module's per-record work.

One `logging` call per RPC cost about a tenth of GetLicense's throughput (measured with `make bench`
style load: LogRecord construction, a getpid() and locks per record, the formatter), against about
nothing for one json.dumps. So the access line is built here: the same JSON object the
`JsonFormatter` makes for a record with `fields` (time, level, logger, pid, msg, then the fields),
one line per call, buffered and written in whole-line blocks of at most PIPE_BUF bytes, so that the
lines of worker processes sharing one stdout pipe never interleave mid-line. A line waits at most
`interval` seconds; the rest is written at exit. With LOG_FORMAT=text, or when a handler other than
the process's default one is wanted, lines go through `logging` as before.

A call only records its fields; the lines are formatted at the flush, hundreds in one loop, rather
than one between each call's own work: ValidateLicense did 2.6% more calls/s (`bench.compare`, 6
rounds, each round 1.00-1.07), a good half of what the whole access log costs it (4.7%).
"""
from __future__ import annotations

import asyncio
import atexit
import json
import logging
import os
import sys
import time
import uuid
from json.encoder import encode_basestring_ascii  # what json.dumps(str) runs, without its per-call checks
from typing import Any

LOGGER_NAME = "licensing.access"
_logger = logging.getLogger(LOGGER_NAME)


class AccessLog:
    def __init__(self, interval: float = 0.2, block_bytes: int = 4096) -> None:
        self.json_lines = True
        self._interval = interval
        self._block_bytes = block_bytes
        self._lines: list[str] = []
        self._size = 0
        self._calls: list[tuple[str, str, str, float, uuid.UUID | None, uuid.UUID | None, str]] = []
        self._scheduled = False
        self._second = -1
        self._head: dict[str, Any] = {}
        self._head_json = ""
        self._pid = os.getpid()
        atexit.register(self.flush)

    def configure(self, json_lines: bool) -> None:
        """Called where logging is configured, in each process (a spawned worker has its own pid)."""
        self.flush()
        self.json_lines = json_lines
        self._pid = os.getpid()
        self._second = -1  # the head names the pid: made again

    def write(self, fields: dict[str, Any]) -> None:
        if not _logger.isEnabledFor(logging.INFO):
            return
        if not self.json_lines:
            _logger.info("rpc", extra={"fields": fields})
            return
        self._refresh_head()
        self._format_calls()  # the lines stay in call order
        self._append(json.dumps(self._head | fields) + "\n")

    def write_call(self, method: str, code: str, ms: float, account: uuid.UUID | None, token_id: uuid.UUID | None,
                   request_id: str) -> None:
        """The line `write` makes of these fields, formatted directly: every call writes one, and
        json.dumps of the whole object cost twice as much. The method and code are identifiers and
        the ids UUIDs; only the request id, which a client may send, needs escaping."""
        if not _logger.isEnabledFor(logging.INFO):
            return
        if not self.json_lines:
            self.write({"method": method, "code": code, "ms": ms, "account": _text(account),
                        "token_id": _text(token_id), "request_id": request_id})
            return
        self._refresh_head()
        self._calls.append((self._head_json, method, code, ms, account, token_id, request_id))
        if len(self._calls) >= _CALLS_KEPT:
            self.flush()
        else:
            self._flush_soon()

    def _format_calls(self) -> None:
        """The lines of the calls written since the last flush: formatted together, in one tight
        loop, rather than one at a time between the calls' own work."""
        calls, self._calls = self._calls, []
        for head, method, code, ms, account, token_id, request_id in calls:
            self._add(f'{head}, "method": "{method}", "code": "{code}", "ms": {ms!r}, '
                      f'"account": {_json_id(account)}, "token_id": {_json_id(token_id)}, '
                      f'"request_id": {encode_basestring_ascii(request_id)}}}\n')

    def _refresh_head(self) -> None:
        """The fields JsonFormatter puts first, as an object and as JSON text without its closing
        brace (the call's fields follow): made once a second."""
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._head = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)), "level": "INFO",
                          "logger": LOGGER_NAME, "pid": self._pid, "msg": "rpc"}
            self._head_json = json.dumps(self._head)[:-1]

    def _append(self, line: str) -> None:
        self._add(line)
        self._flush_soon()

    def _add(self, line: str) -> None:
        if self._size + len(line) > self._block_bytes:
            self._write_block()
        self._lines.append(line)
        self._size += len(line)

    def flush(self) -> None:
        self._format_calls()
        self._write_block()

    def _write_block(self) -> None:
        if self._lines:
            block, self._lines, self._size = "".join(self._lines), [], 0
            sys.stderr.write(block)
            sys.stderr.flush()

    def _flush_soon(self) -> None:
        if self._scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a tool, a test): no one to write later
            self.flush()
            return
        self._scheduled = True
        loop.call_later(self._interval, self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._scheduled = False
        self.flush()


_CALLS_KEPT = 1024  # calls whose lines wait for the next flush, at most


def _text(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


# The JSON text of the ids lines name, by the id object: a worker's calls come from a few cached
# tokens, whose Caller (and so whose id objects) are reused, and str(UUID) is Python-level
# formatting. Each entry holds its object, so no other object can take its id() while it is kept.
_ID_TEXTS: dict[int, tuple[uuid.UUID, str]] = {}
_ID_TEXTS_KEPT = 10_000


def _json_id(value: uuid.UUID | None) -> str:
    if value is None:
        return "null"
    known = _ID_TEXTS.get(id(value))
    if known is None:
        if len(_ID_TEXTS) >= _ID_TEXTS_KEPT:
            _ID_TEXTS.clear()
        known = _ID_TEXTS[id(value)] = (value, f'"{value}"')
    return known[1]


access_log = AccessLog()
