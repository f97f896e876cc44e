"""The access log: one JSON object per call, written in whole-line blocks that fit a pipe's atomic write."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator

import pytest

from server.api.access_log import LOGGER_NAME, AccessLog

FIELDS = {"method": "GetLicense", "code": "OK", "ms": 1.5, "account": None, "token_id": None, "request_id": "r1"}


@pytest.fixture(autouse=True)
def info_level() -> Iterator[None]:
    logger = logging.getLogger(LOGGER_NAME)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def test_a_line_is_the_json_formatters_object_with_the_calls_fields(capsys: pytest.CaptureFixture[str]) -> None:
    AccessLog().write(FIELDS)  # no event loop: written at once
    line = json.loads(capsys.readouterr().err)
    assert list(line)[:5] == ["time", "level", "logger", "pid", "msg"]
    assert (line["level"], line["logger"], line["msg"]) == ("INFO", LOGGER_NAME, "rpc")
    assert {k: line[k] for k in FIELDS} == FIELDS


def test_lines_wait_for_the_interval_then_go_out_together(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> tuple[str, str]:
        log = AccessLog(interval=0.05)
        for _ in range(3):
            log.write(FIELDS)
        before = capsys.readouterr().err
        await asyncio.sleep(0.1)
        return before, capsys.readouterr().err

    before, after = asyncio.run(scenario())
    assert before == ""
    assert len(after.splitlines()) == 3


def test_blocks_are_whole_lines_within_the_block_size() -> None:
    writes: list[str] = []

    class Recording:
        def write(self, text: str) -> None:
            writes.append(text)

        def flush(self) -> None:
            pass

    async def scenario() -> None:
        log = AccessLog(interval=10, block_bytes=1000)
        for _ in range(40):
            log.write(FIELDS)
        log.flush()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stderr", Recording())
        asyncio.run(scenario())
    assert len(writes) > 1
    assert all(len(w) <= 1000 and w.endswith("\n") for w in writes)
    assert sum(len(w.splitlines()) for w in writes) == 40


def test_nothing_is_written_above_info(capsys: pytest.CaptureFixture[str]) -> None:
    logging.getLogger(LOGGER_NAME).setLevel(logging.WARNING)
    AccessLog().write(FIELDS)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("ids", [(None, None), (uuid.UUID(int=1), uuid.UUID(int=2))], ids=["no-caller", "caller"])
@pytest.mark.parametrize("request_id", ["r1", 'quote " backslash \\ newline \n ü'], ids=["plain", "needs-escaping"])
def test_write_call_writes_the_object_write_makes(capsys: pytest.CaptureFixture[str], ids: tuple[uuid.UUID | None, uuid.UUID | None],
                                                  request_id: str) -> None:
    account, token_id = ids
    log = AccessLog()
    log.write_call("GetLicense", "OK", 1.25, account, token_id, request_id)
    log.write({"method": "GetLicense", "code": "OK", "ms": 1.25, "account": str(account) if account else None,
               "token_id": str(token_id) if token_id else None, "request_id": request_id})
    direct, via_dumps = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert list(direct) == list(via_dumps)  # the same fields in the same order
    assert {**direct, "time": ""} == {**via_dumps, "time": ""}  # the second may turn between the two


def test_each_line_names_its_own_ids_however_many_callers_come_and_go(capsys: pytest.CaptureFixture[str]) -> None:
    log = AccessLog()
    sent = []
    for _ in range(3):  # ids made and dropped at once: their id() is reused by the next ones
        for _ in range(5_000):
            account, token = uuid.uuid4(), uuid.uuid4()
            sent.append((str(account), str(token)))
            log.write_call("GetLicense", "OK", 1.0, account, token, "r")
        log.flush()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["account"], line["token_id"]) for line in lines] == sent


def test_calls_lines_are_formatted_at_the_flush_in_the_order_of_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> tuple[str, list[str]]:
        log = AccessLog(interval=10)
        log.write_call("GetLicense", "OK", 1.0, None, None, "first")
        log.write({**FIELDS, "request_id": "second"})
        log.write_call("GetLicense", "OK", 1.0, None, None, "third")
        before = capsys.readouterr().err
        log.flush()
        return before, [json.loads(line)["request_id"] for line in capsys.readouterr().err.splitlines()]

    assert asyncio.run(scenario()) == ("", ["first", "second", "third"])


def test_a_busy_log_writes_its_calls_without_waiting_for_the_interval(capsys: pytest.CaptureFixture[str]) -> None:
    async def scenario() -> int:
        log = AccessLog(interval=10)
        for n in range(1024):  # the most calls that wait for a flush
            log.write_call("GetLicense", "OK", 1.0, None, None, str(n))
        return len(capsys.readouterr().err.splitlines())

    assert asyncio.run(scenario()) == 1024
