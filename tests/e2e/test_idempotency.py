"""CreateLicenses with a request_id (AIP-155): a retry returns the same licenses and charges once."""
from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import licenses_pb2_grpc
from server.cli import main as licensing

Stub = licenses_pb2_grpc.LicenseServiceStub


class Account(Protocol):
    account_id: str
    app_id: str

    @property
    def auth(self) -> list[tuple[str, str]]: ...


MakeAccount = Callable[..., Account]


def _admin(*args: str) -> dict[str, Any]:
    """`licensing admin ... --json`, in-process, against the test database."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = licensing(["admin", *args, "--json"])
    assert code == 0, f"licensing admin {' '.join(args)} failed"
    return json.loads(out.getvalue())


def _credits(account: Account) -> int:
    return int(_admin("show-account", "--account", account.account_id)["credits"])


def _request(account: Account, request_id: str, quantity: int = 3, label: str = "") -> pb.CreateLicensesRequest:
    return pb.CreateLicensesRequest(app_id=account.app_id, quantity=quantity, label=label, request_id=request_id)


def _create(stub: Stub, account: Account, request_id: str, quantity: int = 3, label: str = "") -> list[str]:
    response = stub.CreateLicenses(_request(account, request_id, quantity, label), metadata=account.auth)
    return [lic.key for lic in response.licenses]


def _listed_keys(stub: Stub, account: Account) -> list[str]:
    page = stub.ListLicenses(pb.ListLicensesRequest(app_id=account.app_id, limit=200), metadata=account.auth)
    assert page.cursor == ""
    return [lic.key for lic in page.licenses]


def _rejected(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def _reason(error: grpc.RpcError) -> str | None:
    for info in _details(error, error_details_pb2.ErrorInfo):
        return info.reason
    return None


def _bad_fields(error: grpc.RpcError) -> list[str]:
    return [v.field for bad in _details(error, error_details_pb2.BadRequest) for v in bad.field_violations]


def _details(error: grpc.RpcError, kind: type[Any]) -> list[Any]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    found = []
    for detail in status.details if status else []:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            found.append(message)
    return found


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

    assert _credits(account) == 7


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

    error = _rejected(lambda: _create(stub, account, request_id, quantity=3))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_fields(error) == ["request_id"]
    assert "request_id" in (error.details() or "")
    assert _credits(account) == 8


def test_reusing_a_request_id_with_another_label_is_invalid_argument(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())
    _create(stub, account, request_id, label="first")

    error = _rejected(lambda: _create(stub, account, request_id, label="second"))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_fields(error) == ["request_id"]
    assert _credits(account) == 7


def test_reusing_a_request_id_for_another_app_is_invalid_argument(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    other_app = _admin("create-app", "--account", account.account_id, "--name", "other")["app_id"]
    request_id = str(uuid.uuid4())
    _create(stub, account, request_id)
    elsewhere = pb.CreateLicensesRequest(app_id=other_app, quantity=3, request_id=request_id)

    error = _rejected(lambda: stub.CreateLicenses(elsewhere, metadata=account.auth))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_fields(error) == ["request_id"]
    assert _credits(account) == 7


def test_a_rejected_reuse_leaves_the_original_request_retryable(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request_id = str(uuid.uuid4())
    first = _create(stub, account, request_id, quantity=2)
    _rejected(lambda: _create(stub, account, request_id, quantity=4))

    assert _create(stub, account, request_id, quantity=2) == first
    assert _credits(account) == 8


def test_concurrent_retries_create_one_set_and_charge_once(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)
    request = _request(account, str(uuid.uuid4()), quantity=3)

    futures = [stub.CreateLicenses.future(request, metadata=account.auth, timeout=30) for _ in range(10)]
    answers = [[lic.key for lic in f.result().licenses] for f in futures]

    assert all(answer == answers[0] for answer in answers)
    assert len(answers[0]) == 3
    assert _listed_keys(stub, account) == answers[0]
    assert _credits(account) == 7


def test_different_request_ids_create_different_licenses(stub: Stub, make_account: MakeAccount) -> None:
    account = make_account(credits=10)

    first = _create(stub, account, str(uuid.uuid4()))
    second = _create(stub, account, str(uuid.uuid4()))

    assert not set(first) & set(second)
    assert _listed_keys(stub, account) == first + second
    assert _credits(account) == 4


@pytest.mark.parametrize("request_id", ["not-a-uuid", "1234", str(uuid.uuid4())[:-1], str(uuid.uuid4()) + "0"])
def test_malformed_request_id_is_invalid_argument(stub: Stub, make_account: MakeAccount, request_id: str) -> None:
    account = make_account(credits=10)

    error = _rejected(lambda: _create(stub, account, request_id))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _reason(error) == "BAD_REQUEST"
    assert _bad_fields(error) == ["request_id"]
    assert _credits(account) == 10


def test_the_same_request_id_in_two_accounts_is_independent(stub: Stub, make_account: MakeAccount) -> None:
    alice, bob = make_account(credits=10), make_account(credits=10)
    request_id = str(uuid.uuid4())

    alices = _create(stub, alice, request_id, quantity=2)
    bobs = _create(stub, bob, request_id, quantity=3)  # other content: would be a conflict within one account

    assert len(alices) == 2 and len(bobs) == 3
    assert not set(alices) & set(bobs)
    assert _create(stub, alice, request_id, quantity=2) == alices
    assert _create(stub, bob, request_id, quantity=3) == bobs
    assert (_credits(alice), _credits(bob)) == (8, 7)


def test_a_request_refused_for_lack_of_credits_does_not_burn_its_request_id(
    stub: Stub, make_account: MakeAccount
) -> None:
    account = make_account(credits=2)
    request_id = str(uuid.uuid4())
    error = _rejected(lambda: _create(stub, account, request_id, quantity=3))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _reason(error) == "NO_CREDITS"

    _admin("add-credits", "--account", account.account_id, "--amount", "5")
    keys = _create(stub, account, request_id, quantity=3)

    assert len(keys) == 3
    assert _listed_keys(stub, account) == keys
    assert _credits(account) == 4
