"""Keyset cursors: round-trip, empty start, and rejection of anything not this app's cursor."""
from __future__ import annotations

import base64
import uuid

import pytest

from server.domain.errors import BadRequest
from server.domain.pagination import decode_cursor, encode_cursor

APP = uuid.UUID("0b6f3a52-2f4c-4d5e-9a31-5c0f6f1f7b10")
OTHER_APP = uuid.UUID("7d1f0c2a-8e3b-4f6a-b5c4-2a9e1d0f3c88")


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _rejected_field(cursor: str, app: uuid.UUID = APP) -> list[str]:
    with pytest.raises(BadRequest) as caught:
        decode_cursor(cursor, app)
    return [v.field for v in caught.value.violations]


@pytest.mark.parametrize("position", [1, 42, 2**31, 2**63 - 1])
def test_cursor_round_trips_its_position(position: int) -> None:
    assert decode_cursor(encode_cursor(APP, position), APP) == position


def test_empty_cursor_starts_before_the_first_row() -> None:
    assert decode_cursor("", APP) == 0


def test_cursor_is_url_safe_without_padding() -> None:
    cursor = encode_cursor(APP, 12345)
    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_cursor_of_another_app_is_rejected() -> None:
    assert _rejected_field(encode_cursor(OTHER_APP, 5), APP) == ["cursor"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "!!!!",
        "%%%",
        "é",  # not ASCII
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8 once decoded
        _b64(f"1:{APP}"),  # missing position
        _b64(f"1:{APP}:5:6"),  # extra part
        _b64(f"2:{APP}:5"),  # unknown version
        _b64("1:not-a-uuid:5"),
        _b64(f"1:{APP}:five"),
        _b64(f"1:{APP}:"),
    ],
)
def test_malformed_cursor_is_rejected_naming_cursor(cursor: str) -> None:
    assert _rejected_field(cursor) == ["cursor"]


@pytest.mark.parametrize("position", [0, -1, -(2**40)])
def test_cursor_with_non_positive_position_is_rejected(position: int) -> None:
    assert _rejected_field(_b64(f"1:{APP}:{position}")) == ["cursor"]


@pytest.mark.parametrize("position", [2**63, 10**30])
def test_cursor_with_position_beyond_bigint_is_rejected(position: int) -> None:
    assert _rejected_field(encode_cursor(APP, position)) == ["cursor"]


def test_truncated_cursor_is_rejected() -> None:
    cursor = encode_cursor(APP, 123456)
    assert _rejected_field(cursor[: len(cursor) // 2]) == ["cursor"]
