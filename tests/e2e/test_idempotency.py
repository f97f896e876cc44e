"""CreateLicenses with a request_id (AIP-155): a retry returns the same licenses and charges once."""
from __future__ import annotations

import uuid

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from tests.support import (
    Account,
    MakeAccount,
    Stub,
    admin,
    credits_of,
    fails,
    second_app,
)


def _request(account: Account, request_id: str, quantity: int = 3, label: str = "") -> pb.CreateLicensesRequest:
    return pb.CreateLicensesRequest(app_id=account.app_id, quantity=quantity, label=label, request_id=request_id)


def _create(stub: Stub, account: Account, request_id: str, quantity: int = 3, label: str = "") -> list[str]:
    response = stub.CreateLicenses(_request(account, request_id, quantity, label), metadata=account.auth)
    return [lic.key for lic in response.licenses]


def _listed_keys(stub: Stub, account: Account) -> list[str]:
    page = stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id, limit=200), metadata=account.auth)
    assert page.cursor == ""
    return [lic.key for lic in page.licenses]


def test_retry_with_the_same_request_id_returns_the_same_licenses(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())

    first = _create(stub, account, request_id)
    retry = _create(stub, account, request_id)

    assert len(first) == 3
    assert retry == first
    assert _listed_keys(stub, account) == first


def test_retry_with_the_same_request_id_charges_credits_once(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())

    for _ in range(3):
        _create(stub, account, request_id)

    assert credits_of(account.account_id) == 7


def test_retry_with_the_same_request_id_returns_the_full_licenses(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request = _request(account, str(uuid.uuid4()), quantity=2, label="batch")

    first = stub.CreateLicenses(request, metadata=account.auth)
    retry = stub.CreateLicenses(request, metadata=account.auth)

    assert list(retry.licenses) == list(first.licenses)


def test_reusing_a_request_id_with_another_quantity_is_invalid_argument(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())
    _create(stub, account, request_id, quantity=2)

    error = fails(lambda: _create(stub, account, request_id, quantity=3))

    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.fields == ["request_id"]
    assert "request_id" in error.message
    assert credits_of(account.account_id) == 8


def test_reusing_a_request_id_with_another_label_is_invalid_argument(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())
    _create(stub, account, request_id, label="first")

    error = fails(lambda: _create(stub, account, request_id, label="second"))

    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.fields == ["request_id"]
    assert credits_of(account.account_id) == 7


def test_reusing_a_request_id_for_another_app_is_invalid_argument(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    other_app = second_app(account)
    request_id = str(uuid.uuid4())
    _create(stub, account, request_id)
    elsewhere = pb.CreateLicensesRequest(app_id=other_app, quantity=3, request_id=request_id)

    error = fails(lambda: stub.CreateLicenses(elsewhere, metadata=account.auth))

    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.fields == ["request_id"]
    assert credits_of(account.account_id) == 7


def test_a_rejected_reuse_leaves_the_original_request_retryable(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())
    first = _create(stub, account, request_id, quantity=2)
    fails(lambda: _create(stub, account, request_id, quantity=4))

    assert _create(stub, account, request_id, quantity=2) == first
    assert credits_of(account.account_id) == 8


def test_concurrent_retries_create_one_set_and_charge_once(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request = _request(account, str(uuid.uuid4()), quantity=3)

    futures = [stub.CreateLicenses.future(request, metadata=account.auth, timeout=30) for _ in range(10)]
    answers = [[lic.key for lic in f.result().licenses] for f in futures]

    assert all(answer == answers[0] for answer in answers)
    assert len(answers[0]) == 3
    assert _listed_keys(stub, account) == answers[0]
    assert credits_of(account.account_id) == 7


def test_different_request_ids_create_different_licenses(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)

    first = _create(stub, account, str(uuid.uuid4()))
    second = _create(stub, account, str(uuid.uuid4()))

    assert not set(first) & set(second)
    assert _listed_keys(stub, account) == first + second
    assert credits_of(account.account_id) == 4


@pytest.mark.parametrize("request_id", ["not-a-uuid", "1234", str(uuid.uuid4())[:-1], str(uuid.uuid4()) + "0"])
def test_malformed_request_id_is_invalid_argument(stub: Stub, make_account: MakeAccount, request_id: str) -> None:
    account = make_account(credits=10)

    error = fails(lambda: _create(stub, account, request_id))

    assert error.code is grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "BAD_REQUEST"
    assert error.fields == ["request_id"]
    assert credits_of(account.account_id) == 10


def test_the_same_request_id_in_two_accounts_is_independent(stub: Stub, make_account: MakeAccount) -> None:
    alice, bob = make_account(credits=10), make_account(credits=10)
    request_id = str(uuid.uuid4())

    alices = _create(stub, alice, request_id, quantity=2)
    bobs = _create(stub, bob, request_id, quantity=3)  # other content: would be a conflict within one account

    assert len(alices) == 2 and len(bobs) == 3
    assert not set(alices) & set(bobs)
    assert _create(stub, alice, request_id, quantity=2) == alices
    assert _create(stub, bob, request_id, quantity=3) == bobs
    assert (credits_of(alice.account_id), credits_of(bob.account_id)) == (8, 7)


def test_a_request_refused_for_lack_of_credits_does_not_burn_its_request_id(
    stub: Stub, make_account: MakeAccount
) -> None:
    account = make_account(credits=2)
    request_id = str(uuid.uuid4())
    error = fails(lambda: _create(stub, account, request_id, quantity=3))
    assert error.code is grpc.StatusCode.FAILED_PRECONDITION
    assert error.reason == "NO_CREDITS"

    admin("add-credits", "--account", account.account_id, "--amount", "5")
    keys = _create(stub, account, request_id, quantity=3)

    assert len(keys) == 3
    assert _listed_keys(stub, account) == keys
    assert credits_of(account.account_id) == 4
