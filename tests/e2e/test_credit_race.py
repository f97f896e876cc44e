"""Credits under concurrent CreateLicenses: all or nothing, never overdrawn, never lost.

Every call goes through gRPC to the real server; the database is only read, to look behind the API.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import grpc
import psycopg

from licensing.v1 import licenses_pb2 as pb
from tests.support import Account, MakeAccount, Stub, unpack

CALL_TIMEOUT = 30.0


@dataclass(frozen=True)
class Outcome:
    quantity: int
    licenses: list[pb.License] | None  # None when the call failed
    error: grpc.RpcError | None


def _create_all_at_once(stub: Stub, account: Account, quantities: Sequence[int]) -> list[Outcome]:
    """Fires one CreateLicenses per quantity without waiting in between, then collects every outcome."""
    futures = [
        stub.CreateLicenses.future(
            pb.CreateLicensesRequest(app_id=account.app_id, quantity=q), metadata=account.auth, timeout=CALL_TIMEOUT
        )
        for q in quantities
    ]
    outcomes = []
    for quantity, future in zip(quantities, futures, strict=True):
        try:
            outcomes.append(Outcome(quantity, list(future.result().licenses), None))
        except grpc.RpcError as error:
            outcomes.append(Outcome(quantity, None, error))
    return outcomes


def _list_all(stub: Stub, account: Account) -> list[pb.License]:
    found: list[pb.License] = []
    cursor = ""
    while True:
        page = stub.ListLicenses(
            pb.ListLicensesRequest(app_id=account.app_id, limit=200, cursor=cursor), metadata=account.auth
        )
        found.extend(page.licenses)
        cursor = page.cursor
        if not cursor:
            return found


def _credits(db: psycopg.Connection, account: Account) -> int:
    row = db.execute("SELECT credits FROM accounts WHERE id = %s", (account.account_id,)).fetchone()
    assert row is not None
    return int(row[0])


def _succeeded(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.licenses is not None]


def _failed(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if o.error is not None]


def _mixed_quantities(count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randint(1, 3) for _ in range(count)]


def test_concurrent_creates_never_overdraw_credits(stub: Stub, make_account: MakeAccount, db: psycopg.Connection) -> None:
    account = make_account(credits=10)
    outcomes = _create_all_at_once(stub, account, _mixed_quantities(40, seed=1))

    spent = sum(o.quantity for o in _succeeded(outcomes))
    assert 0 < spent <= 10
    assert _credits(db, account) == 10 - spent


def test_concurrent_creates_issue_exactly_as_many_licenses_as_credits_spent(
    stub: Stub, make_account: MakeAccount
) -> None:
    account = make_account(credits=10)
    outcomes = _create_all_at_once(stub, account, _mixed_quantities(40, seed=2))

    succeeded = _succeeded(outcomes)
    for outcome in succeeded:
        assert outcome.licenses is not None
        assert len(outcome.licenses) == outcome.quantity  # all or nothing, never part of a request
    issued = {lic.key for o in succeeded for lic in o.licenses or []}
    listed = [lic.key for lic in _list_all(stub, account)]
    assert len(listed) == len(set(listed)) == sum(o.quantity for o in succeeded)
    assert set(listed) == issued


def test_concurrent_creates_fail_only_with_no_credits(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    outcomes = _create_all_at_once(stub, account, _mixed_quantities(40, seed=3))

    failed = _failed(outcomes)
    assert failed, "40 requests of 1-3 licenses cannot all fit in 10 credits"
    for outcome in failed:
        assert outcome.error is not None
        assert outcome.error.code() == grpc.StatusCode.FAILED_PRECONDITION, outcome.error.details()
        assert unpack(outcome.error).reason == "NO_CREDITS"


def test_concurrent_creates_are_refused_only_when_credits_really_run_short(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    # Credits only ever go down here, so a request refused for lack of credits must still not fit at the end.
    account = make_account(credits=10)
    outcomes = _create_all_at_once(stub, account, _mixed_quantities(40, seed=4))

    left = _credits(db, account)
    for outcome in _failed(outcomes):
        assert outcome.quantity > left, f"a request for {outcome.quantity} was refused though {left} credits remain"


def test_concurrent_creates_write_one_created_event_per_license(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account(credits=10)
    _create_all_at_once(stub, account, _mixed_quantities(40, seed=5))

    listed = sorted(lic.key for lic in _list_all(stub, account))
    rows = db.execute(
        "SELECT license_key, event_type, version FROM outbox WHERE account_id = %s", (account.account_id,)
    ).fetchall()
    assert all(event_type == "license.created" and version == 1 for _, event_type, version in rows)
    assert sorted(key for key, _, _ in rows) == listed


def test_concurrent_large_creates_let_exactly_one_through(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account(credits=150)
    outcomes = _create_all_at_once(stub, account, [100] * 5)

    assert len(_succeeded(outcomes)) == 1
    assert all(o.error is not None and unpack(o.error).reason == "NO_CREDITS" for o in _failed(outcomes))
    assert _credits(db, account) == 50
    assert len(_list_all(stub, account)) == 100


def test_concurrent_single_creates_spend_every_credit_and_stop_at_zero(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account(credits=5)
    outcomes = _create_all_at_once(stub, account, [1] * 30)

    assert len(_succeeded(outcomes)) == 5
    assert _credits(db, account) == 0


def test_credits_are_never_negative_in_the_accounts_table(
    stub: Stub, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    accounts = [make_account(credits=c) for c in (0, 1, 3)]
    for account in accounts:
        _create_all_at_once(stub, account, _mixed_quantities(15, seed=6))

    for account in accounts:
        assert _credits(db, account) >= 0
    negative = db.execute("SELECT count(*) FROM accounts WHERE credits < 0").fetchone()
    assert negative == (0,)
