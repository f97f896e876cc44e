"""The outbox: one row per committed change of a license, none for a call that changed nothing."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import psycopg

from licensing.v1 import licenses_pb2 as pb
from tests.support import Account, MakeAccount, Stub, fails, timestamp


@dataclass(frozen=True)
class Row:
    event_id: uuid.UUID
    event_type: str
    account_id: uuid.UUID
    app_id: uuid.UUID
    license_key: str
    version: int
    payload: dict[str, Any]


_COLUMNS = "event_id, event_type, account_id, app_id, license_key, version, payload"


def _rows_of_key(db: psycopg.Connection, key: str) -> list[Row]:
    found = db.execute(f"SELECT {_COLUMNS} FROM outbox WHERE license_key = %s ORDER BY id", (key,)).fetchall()
    return [Row(*r) for r in found]


def _rows_of_account(db: psycopg.Connection, account: Account) -> list[Row]:
    found = db.execute(
        f"SELECT {_COLUMNS} FROM outbox WHERE account_id = %s ORDER BY id", (account.account_id,)
    ).fetchall()
    return [Row(*r) for r in found]


def _later(days: int) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0)


def _create(stub: Stub, account: Account, quantity: int = 1, label: str = "") -> list[pb.License]:
    response = stub.CreateLicenses(
        pb.CreateLicensesRequest(app_id=account.app_id, quantity=quantity, label=label), metadata=account.auth
    )
    return list(response.licenses)


def _update(stub: Stub, account: Account, key: str, action: int, expires_at: datetime | None = None) -> pb.License:
    request = pb.UpdateLicenseRequest(key=key, action=action)  # type: ignore[arg-type]
    if expires_at is not None:
        request.expires_at.CopyFrom(timestamp(expires_at))
    return stub.UpdateLicense(request, metadata=account.auth).license


def _delete(stub: Stub, account: Account, key: str) -> pb.License:
    return stub.DeleteLicense(pb.DeleteLicenseRequest(key=key), metadata=account.auth).license


# Creating


def test_create_writes_one_created_row_per_license(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    created = _create(stub, account, quantity=4)

    rows = _rows_of_account(db, account)

    assert sorted(r.license_key for r in rows) == sorted(lic.key for lic in created)
    for row in rows:
        assert row.event_type == "license.created"
        assert row.version == 1
        assert str(row.account_id) == account.account_id
        assert str(row.app_id) == account.app_id


def test_created_row_payload_matches_the_license(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    expiry = _later(days=10)
    response = stub.CreateLicenses(
        pb.CreateLicensesRequest(
            app_id=account.app_id, label="for ACME", max_hwid_slots=3, expires_at=timestamp(expiry)
        ),
        metadata=account.auth,
    )
    lic = response.licenses[0]

    (row,) = _rows_of_key(db, lic.key)

    assert row.payload["key"] == lic.key
    assert row.payload["version"] == lic.version == 1
    assert row.payload["label"] == "for ACME"
    assert row.payload["app_id"] == account.app_id
    assert row.payload["revoked"] is False
    assert row.payload["max_hwid_slots"] == 3
    assert row.payload["unlimited_hwid_slots"] is False
    assert row.payload["hwids"] == []
    assert datetime.fromisoformat(row.payload["expires_at"]) == expiry
    assert datetime.fromisoformat(row.payload["created_at"]) == lic.created_at.ToDatetime(tzinfo=UTC)


# Changing


def test_revoke_writes_one_revoked_row_with_the_next_version(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key

    revoked = _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)

    rows = _rows_of_key(db, key)
    assert [(r.event_type, r.version) for r in rows] == [("license.created", 1), ("license.revoked", 2)]
    assert revoked.version == 2
    assert rows[-1].payload["revoked"] is True
    assert rows[-1].payload["version"] == 2


def test_activate_writes_one_activated_row_with_the_next_version(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)

    activated = _update(stub, account, key, pb.LICENSE_ACTION_ACTIVATE)

    rows = _rows_of_key(db, key)
    assert [(r.event_type, r.version) for r in rows][1:] == [("license.revoked", 2), ("license.activated", 3)]
    assert activated.version == 3
    assert rows[-1].payload["revoked"] is False


def test_extend_writes_one_extended_row_with_the_next_version(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    expiry = _later(days=40)

    extended = _update(stub, account, key, pb.LICENSE_ACTION_EXTEND, expiry)

    rows = _rows_of_key(db, key)
    assert [(r.event_type, r.version) for r in rows] == [("license.created", 1), ("license.extended", 2)]
    assert extended.version == 2
    assert datetime.fromisoformat(rows[-1].payload["expires_at"]) == expiry


def test_reset_hwid_with_nothing_bound_writes_no_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key

    unchanged = _update(stub, account, key, pb.LICENSE_ACTION_RESET_HWID)

    assert unchanged.version == 1
    assert [r.event_type for r in _rows_of_key(db, key)] == ["license.created"]


def test_repeating_a_transition_already_in_effect_writes_no_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    expiry = _later(days=5)
    _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)
    _update(stub, account, key, pb.LICENSE_ACTION_EXTEND, expiry)

    _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)
    _update(stub, account, key, pb.LICENSE_ACTION_EXTEND, expiry)

    assert [(r.event_type, r.version) for r in _rows_of_key(db, key)] == [
        ("license.created", 1), ("license.revoked", 2), ("license.extended", 3),
    ]


def test_delete_writes_one_deleted_row_with_the_next_version(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account, label="gone")[0].key
    _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)

    before_deletion = _delete(stub, account, key)

    rows = _rows_of_key(db, key)
    assert [(r.event_type, r.version) for r in rows][-1] == ("license.deleted", 3)
    assert len(rows) == 3
    assert before_deletion.version == 2
    assert rows[-1].payload["key"] == key
    assert rows[-1].payload["version"] == 3
    assert rows[-1].payload["label"] == "gone"
    assert str(rows[-1].app_id) == account.app_id
    assert str(rows[-1].account_id) == account.account_id


def test_a_license_lifecycle_writes_consecutive_versions(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key

    _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)
    _update(stub, account, key, pb.LICENSE_ACTION_ACTIVATE)
    _update(stub, account, key, pb.LICENSE_ACTION_EXTEND, _later(days=90))
    _update(stub, account, key, pb.LICENSE_ACTION_RESET_HWID)
    _delete(stub, account, key)

    assert [(r.event_type, r.version, r.payload["version"]) for r in _rows_of_key(db, key)] == [
        ("license.created", 1, 1),
        ("license.revoked", 2, 2),
        ("license.activated", 3, 3),
        ("license.extended", 4, 4),
        ("license.deleted", 5, 5),
    ]


def test_concurrent_updates_of_one_license_write_each_version_once(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    requests = [
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_EXTEND, expires_at=timestamp(_later(days=d)))
        for d in range(1, 11)
    ]

    futures = [stub.UpdateLicense.future(r, metadata=account.auth, timeout=30) for r in requests]
    versions = sorted(f.result().license.version for f in futures)

    assert versions == list(range(2, 12))
    assert [r.version for r in _rows_of_key(db, key)] == list(range(1, 12))


def test_concurrent_updates_of_many_licenses_write_each_version_once_in_order(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    """Changes of different licenses share statements; changes of one license still serialize."""
    account = make_account()
    keys = [lic.key for lic in _create(stub, account, quantity=6)]
    requests = [
        pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_EXTEND, expires_at=timestamp(_later(days=d)))
        for d in range(1, 9) for key in keys
    ]

    futures = [stub.UpdateLicense.future(r, metadata=account.auth, timeout=30) for r in requests]
    answered: dict[str, list[int]] = {}
    for future in futures:
        lic = future.result().license
        answered.setdefault(lic.key, []).append(lic.version)

    for key in keys:
        assert sorted(answered[key]) == list(range(2, 10))
        rows = _rows_of_key(db, key)
        assert [r.version for r in rows] == list(range(1, 10))  # outbox order is version order
        assert stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=account.auth).license.version == 9


def test_concurrent_revokes_of_one_license_write_one_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    request = pb.UpdateLicenseRequest(key=key, action=pb.LICENSE_ACTION_REVOKE)

    futures = [stub.UpdateLicense.future(request, metadata=account.auth, timeout=30) for _ in range(8)]
    versions = {f.result().license.version for f in futures}

    assert versions == {2}
    assert [(r.event_type, r.version) for r in _rows_of_key(db, key)] == [
        ("license.created", 1), ("license.revoked", 2),
    ]


def test_concurrent_deletes_of_one_license_write_one_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    request = pb.DeleteLicenseRequest(key=key)

    futures = [stub.DeleteLicense.future(request, metadata=account.auth, timeout=30) for _ in range(8)]
    codes = sorted(f.code().name for f in futures)

    assert codes == ["NOT_FOUND"] * 7 + ["OK"]
    assert [(r.event_type, r.version) for r in _rows_of_key(db, key)] == [
        ("license.created", 1), ("license.deleted", 2),
    ]


def test_reset_hwid_with_a_device_bound_writes_one_hwid_reset_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    # No RPC of this service binds devices (validation does), so the binding is put in its table directly.
    db.execute(
        "INSERT INTO license_hwids (license_id, hwid) SELECT id, 'device-1' FROM licenses WHERE key = %s", (key,)
    )

    reset = _update(stub, account, key, pb.LICENSE_ACTION_RESET_HWID)

    rows = _rows_of_key(db, key)
    assert [(r.event_type, r.version) for r in rows] == [("license.created", 1), ("license.hwid_reset", 2)]
    assert reset.version == 2
    assert list(reset.hwids) == []
    assert rows[-1].payload["hwids"] == []


# Failing


def test_create_refused_for_lack_of_credits_writes_no_row(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account(credits=2)

    code = fails(lambda: _create(stub, account, quantity=3)).code

    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert _rows_of_account(db, account) == []


def test_forbidden_calls_write_no_row(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    owner, intruder = make_account(), make_account()
    key = _create(stub, owner)[0].key

    codes = {
        fails(lambda: stub.CreateLicenses(pb.CreateLicensesRequest(app_id=owner.app_id), metadata=intruder.auth)).code,
        fails(lambda: _update(stub, intruder, key, pb.LICENSE_ACTION_REVOKE)).code,
        fails(lambda: _update(stub, intruder, key, pb.LICENSE_ACTION_EXTEND, _later(days=3))).code,
        fails(lambda: _delete(stub, intruder, key)).code,
    }

    assert codes == {grpc.StatusCode.PERMISSION_DENIED}
    assert _rows_of_account(db, intruder) == []
    assert [r.event_type for r in _rows_of_account(db, owner)] == ["license.created"]


def test_invalid_requests_write_no_row(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    past = datetime.now(UTC) - timedelta(days=1)

    codes = {
        fails(lambda: _create(stub, account, quantity=0)).code,
        fails(lambda: _create(stub, account, quantity=101)).code,
        fails(lambda: _create(stub, account, label="x" * 129)).code,
        fails(lambda: _update(stub, account, key, pb.LICENSE_ACTION_EXTEND, past)).code,
        fails(lambda: _update(stub, account, key, pb.LICENSE_ACTION_EXTEND)).code,
        fails(lambda: _update(stub, account, key, pb.LICENSE_ACTION_UNSPECIFIED)).code,
        fails(lambda: _update(stub, account, "not-a-key", pb.LICENSE_ACTION_REVOKE)).code,
        fails(lambda: _delete(stub, account, "")).code,
    }

    assert codes == {grpc.StatusCode.INVALID_ARGUMENT}
    assert [r.event_type for r in _rows_of_account(db, account)] == ["license.created"]


def test_calls_on_a_missing_license_write_no_row(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    key = _create(stub, account)[0].key
    _delete(stub, account, key)

    codes = {
        fails(lambda: _update(stub, account, key, pb.LICENSE_ACTION_REVOKE)).code,
        fails(lambda: _delete(stub, account, key)).code,
    }

    assert codes == {grpc.StatusCode.NOT_FOUND}
    assert [r.event_type for r in _rows_of_account(db, account)] == ["license.created", "license.deleted"]


def test_idempotent_retry_writes_no_more_rows(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    request = pb.CreateLicensesRequest(app_id=account.app_id, quantity=2, request_id=str(uuid.uuid4()))
    stub.CreateLicenses(request, metadata=account.auth)

    stub.CreateLicenses(request, metadata=account.auth)

    assert len(_rows_of_account(db, account)) == 2


# Keys of the outbox


def test_license_key_and_version_identify_one_row(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    for lic in _create(stub, account, quantity=5):
        _update(stub, account, lic.key, pb.LICENSE_ACTION_REVOKE)
        _update(stub, account, lic.key, pb.LICENSE_ACTION_ACTIVATE)

    duplicates = db.execute(
        "SELECT license_key, version FROM outbox GROUP BY license_key, version HAVING count(*) > 1"
    ).fetchall()

    assert duplicates == []
    assert len(_rows_of_account(db, account)) == 15


def test_every_row_has_its_own_event_id(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account()
    for lic in _create(stub, account, quantity=5):
        _update(stub, account, lic.key, pb.LICENSE_ACTION_REVOKE)
        _delete(stub, account, lic.key)

    ids = [r.event_id for r in _rows_of_account(db, account)]
    total, distinct = db.execute("SELECT count(*), count(DISTINCT event_id) FROM outbox").fetchone() or (0, 0)

    assert len(ids) == len(set(ids)) == 15
    assert total == distinct
