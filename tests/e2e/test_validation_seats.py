"""Seats under concurrent validations: racing devices serialize on the license, so a license never
holds more devices than it has seats, and a device racing itself binds once.

All calls of a race are fired before any answer is awaited, spread over several connections,
through gRPC to the real server; the database is only read to look behind the API, except to
backdate a device's last_seen_at.
"""
from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest

from licensing.v1 import validation_pb2 as vpb
from licensing.v1 import validation_pb2_grpc
from tests.support import Account, MakeAccount, Stub, Validation, get, issue

CALL_TIMEOUT = 60.0
SEATS, DEVICES = 3, 20


@pytest.fixture(scope="module")
def racers(server_address: str) -> Iterator[list[Validation]]:
    """Stubs over separate TCP connections, so that a race also spans server processes sharing the port."""
    channels = [
        grpc.insecure_channel(server_address, options=[("grpc.use_local_subchannel_pool", 1)]) for _ in range(4)
    ]
    yield [validation_pb2_grpc.ValidationServiceStub(ch) for ch in channels]
    for ch in channels:
        ch.close()


def validate_all_at_once(racers: list[Validation], account: Account, key: str,
                         hwids: list[str]) -> list[vpb.ValidationResult]:
    """Fires one ValidateLicense per hwid, spread over the connections, without waiting in between;
    then collects the results in order."""
    futures = [
        racers[i % len(racers)].ValidateLicense.future(
            vpb.ValidateLicenseRequest(app_id=account.app_id, key=key, hwid=hwid),
            metadata=account.auth, timeout=CALL_TIMEOUT,
        )
        for i, hwid in enumerate(hwids)
    ]
    return [future.result().result for future in futures]


def bound_rows(db: psycopg.Connection, key: str) -> list[tuple[int, list[str]]]:
    """(version, hwids in the payload) of each `license.hwid_bound` outbox row of the key, in commit order."""
    rows = db.execute(
        "SELECT version, payload FROM outbox WHERE license_key = %s AND event_type = 'license.hwid_bound' ORDER BY id",
        (key,),
    ).fetchall()
    return [(int(version), [b["hwid"] for b in payload["hwids"]]) for version, payload in rows]


def devices(count: int) -> list[str]:
    return [f"device-{i:02d}-{uuid.uuid4().hex}" for i in range(count)]


@pytest.mark.parametrize("round_", range(3), ids=lambda n: f"round-{n + 1}")
def test_racing_devices_take_exactly_the_free_seats(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, round_: int
) -> None:
    account = make_account()
    key, hwids = issue(stub, account, max_hwid_slots=SEATS).key, devices(DEVICES)

    results = validate_all_at_once(racers, account, key, hwids)

    assert Counter(r.code for r in results) == {
        vpb.VALIDATION_CODE_VALID: SEATS, vpb.VALIDATION_CODE_HWID_MISMATCH: DEVICES - SEATS,
    }
    assert all(r.valid == (r.code == vpb.VALIDATION_CODE_VALID) for r in results)


@pytest.mark.parametrize("round_", range(3), ids=lambda n: f"round-{n + 1}")
def test_racing_devices_leave_exactly_the_winners_bound(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, round_: int
) -> None:
    account = make_account()
    key, hwids = issue(stub, account, max_hwid_slots=SEATS).key, devices(DEVICES)

    results = validate_all_at_once(racers, account, key, hwids)

    winners = {hwid for hwid, r in zip(hwids, results) if r.code == vpb.VALIDATION_CODE_VALID}
    lic = get(stub, account.auth, key)
    assert len(lic.hwids) == SEATS
    assert {b.hwid for b in lic.hwids} == winners
    assert lic.version == 1 + SEATS


@pytest.mark.parametrize("round_", range(3), ids=lambda n: f"round-{n + 1}")
def test_racing_devices_write_one_hwid_bound_row_per_seat_in_version_order(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, db: psycopg.Connection, round_: int
) -> None:
    account = make_account()
    key, hwids = issue(stub, account, max_hwid_slots=SEATS).key, devices(DEVICES)

    validate_all_at_once(racers, account, key, hwids)

    rows = bound_rows(db, key)
    assert [version for version, _ in rows] == [2, 3, 4]
    assert [len(bound) for _, bound in rows] == [1, 2, 3]


def test_racing_bindings_are_stamped_in_version_order(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, db: psycopg.Connection
) -> None:
    """The license's updated_at (the event's time) never goes back as its version goes up, and its
    devices, oldest first, are in the order they were bound: each row's list extends the one before."""
    account = make_account()
    out_of_order: list[list[tuple[int, str]]] = []
    for _ in range(20):  # many licenses: a lost race shows in a few of them
        key = issue(stub, account, max_hwid_slots=SEATS).key
        validate_all_at_once(racers, account, key, devices(DEVICES))

        rows = db.execute(
            "SELECT version, payload FROM outbox WHERE license_key = %s AND event_type = 'license.hwid_bound'"
            " ORDER BY version", (key,),
        ).fetchall()
        stamps = [(int(version), str(payload["updated_at"])) for version, payload in rows]
        bound = [[b["hwid"] for b in payload["hwids"]] for _, payload in rows]
        times = [datetime.fromisoformat(t) for _, t in stamps]
        in_order = times == sorted(times)
        extends = all(bound[i] == bound[i + 1][: i + 1] for i in range(len(bound) - 1))
        if not (in_order and extends):
            out_of_order.append(stamps)
    assert out_of_order == [], f"(version, updated_at) of hwid_bound rows out of order: {out_of_order}"


def test_racing_winners_report_the_seats_in_binding_order(
    stub: Stub, racers: list[Validation], make_account: MakeAccount
) -> None:
    account = make_account()
    key, hwids = issue(stub, account, max_hwid_slots=SEATS).key, devices(DEVICES)

    results = validate_all_at_once(racers, account, key, hwids)

    valid = [r for r in results if r.code == vpb.VALIDATION_CODE_VALID]
    rejected = [r for r in results if r.code == vpb.VALIDATION_CODE_HWID_MISMATCH]
    assert sorted(r.seats_used for r in valid) == [1, 2, 3]
    assert {(r.seats_used, r.seats_allowed) for r in rejected} == {(SEATS, SEATS)}


def test_a_device_racing_itself_binds_once(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, devices(1)[0]

    results = validate_all_at_once(racers, account, key, [hwid] * 10)

    assert [r.code for r in results] == [vpb.VALIDATION_CODE_VALID] * 10
    assert bound_rows(db, key) == [(2, [hwid])]
    lic = get(stub, account.auth, key)
    assert [b.hwid for b in lic.hwids] == [hwid]
    assert lic.version == 2


def test_racing_devices_on_an_unlimited_license_are_all_recorded_once(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    key, hwids = issue(stub, account, unlimited_hwid_slots=True).key, devices(DEVICES)

    results = validate_all_at_once(racers, account, key, hwids)

    assert [r.code for r in results] == [vpb.VALIDATION_CODE_VALID] * DEVICES
    assert sorted(r.seats_used for r in results) == list(range(1, DEVICES + 1))
    lic = get(stub, account.auth, key)
    assert sorted(b.hwid for b in lic.hwids) == sorted(hwids)
    assert [version for version, _ in bound_rows(db, key)] == list(range(2, DEVICES + 2))


def test_a_device_racing_itself_after_a_minute_is_answered_with_the_stored_last_seen_at(
    stub: Stub, racers: list[Validation], make_account: MakeAccount, db: psycopg.Connection
) -> None:
    """Every racing call may decide to refresh last_seen_at, only one refresh is stored (at most one per
    minute); every answer must still carry the license as GetLicense shows it, not a time never stored."""
    account = make_account()
    differing: list[str] = []
    for _ in range(3):  # a few licenses, to make a lost race likely to show
        key, hwid = issue(stub, account).key, devices(1)[0]
        validate_all_at_once(racers, account, key, [hwid])
        db.execute(
            "UPDATE license_hwids SET last_seen_at = last_seen_at - interval '2 minutes'"
            " WHERE license_id = (SELECT id FROM licenses WHERE key = %s)", (key,),
        )

        results = validate_all_at_once(racers, account, key, [hwid] * 10)

        stored = get(stub, account.auth, key)
        assert abs(datetime.now(UTC) - stored.hwids[0].last_seen_at.ToDatetime(tzinfo=UTC)) < timedelta(seconds=10)
        differing += [
            str(r.license.hwids[0].last_seen_at.ToJsonString()) for r in results if r.license != stored
        ]
    assert differing == [], f"answers carried last_seen_at values that were never stored: {differing}"
