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

import json
import logging
import os
import sys
import time
import uuid
from json.encoder import encode_basestring_ascii  # what json.dumps(str) runs, without its per-call checks
from typing import Any

from .later import Batch

LOGGER_NAME = "licensing.access"
_logger = logging.getLogger(LOGGER_NAME)


Call = tuple[str, str, str, float, uuid.UUID | None, uuid.UUID | None, str]  # head, then write_call's arguments


class AccessLog:
    def __init__(self, interval: float = 0.2, block_bytes: int = 4096) -> None:
        self.json_lines = True
        self._block_bytes = block_bytes
        # Lines (a `write`) and calls (a `write_call`, formatted when written), in order.
        self._pending: Batch[str | Call] = Batch(self._write, interval)
        self._second = -1
        self._head: dict[str, Any] = {}
        self._head_json = ""
        self._pid = os.getpid()

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
        self._pending.add(json.dumps(self._head | fields) + "\n")

    def write_call(self, method: str, code: str, ms: float, account: uuid.UUID | None, token_id: uuid.UUID | None,
                   request_id: str) -> None:
        """The line `write` makes of these fields, formatted directly (json.dumps of the whole object
        cost twice as much), and only when written. The method and code are identifiers and the ids
        UUIDs; only the request id, which a client may send, needs escaping."""
        if not _logger.isEnabledFor(logging.INFO):
            return
        if not self.json_lines:
            self.write({"method": method, "code": code, "ms": ms, "account": _text(account),
                        "token_id": _text(token_id), "request_id": request_id})
            return
        self._refresh_head()
        self._pending.add((self._head_json, method, code, ms, account, token_id, request_id))

    def flush(self) -> None:
        self._pending.flush()

    def _refresh_head(self) -> None:
        """The fields JsonFormatter puts first, as an object and as JSON text without its closing
        brace (the call's fields follow): made once a second."""
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            self._head = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now)), "level": "INFO",
                          "logger": LOGGER_NAME, "pid": self._pid, "msg": "rpc"}
            self._head_json = json.dumps(self._head)[:-1]

    def _write(self, pending: list[str | Call]) -> None:
        """Writes the lines in blocks of whole lines, each at most `block_bytes`."""
        block: list[str] = []
        size = 0
        for item in pending:
            line = item if isinstance(item, str) else _call_line(*item)
            if size + len(line) > self._block_bytes and block:
                _write_out("".join(block))
                block, size = [], 0
            block.append(line)
            size += len(line)
        _write_out("".join(block))


def _call_line(head: str, method: str, code: str, ms: float, account: uuid.UUID | None,
               token_id: uuid.UUID | None, request_id: str) -> str:
    return (f'{head}, "method": "{method}", "code": "{code}", "ms": {ms!r}, "account": {_json_id(account)}, '
            f'"token_id": {_json_id(token_id)}, "request_id": {encode_basestring_ascii(request_id)}}}\n')


def _write_out(block: str) -> None:
    sys.stderr.write(block)
    sys.stderr.flush()


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
