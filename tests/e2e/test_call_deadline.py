"""A call's deadline reaches the database: when it passes, the statement it waits on is cancelled."""
from __future__ import annotations

import time

import grpc
import psycopg
import pytest

from licensing.v1 import licenses_pb2 as pb


def _waiting_on_locks(db: psycopg.Connection) -> int:
    row = db.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    ).fetchone()
    return int(row[0]) if row else 0


def test_an_expired_deadline_cancels_the_statement_and_changes_nothing(stub, account, db, database_url) -> None:
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT 1 FROM licenses WHERE key = %s FOR UPDATE", (key,))  # holds the row lock
        request = pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE)
        with pytest.raises(grpc.RpcError) as expired:
            stub.UpdateLicense(request, metadata=account.auth, timeout=0.5)
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED  # type: ignore[attr-defined]
        deadline = time.monotonic() + 2  # well before DB_STATEMENT_TIMEOUT_MS (5 s) would end it
        while _waiting_on_locks(db):
            assert time.monotonic() < deadline, "the server's statement still waits after the call's deadline"
            time.sleep(0.1)
        blocker.rollback()
    assert stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=account.auth).license.version == 1
