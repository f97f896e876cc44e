"""Reads in flight together are answered by shared queries (tokens, licenses): each call still gets
exactly its own caller's answer."""
from __future__ import annotations

import random

import grpc

from licensing.v1 import licenses_pb2 as pb
from tests.support import Account, MakeAccount

CALLS = 300


def _issue(stub, account: Account, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    request = pb.CreateLicensesRequest(app_id=account.app_id, quantity=n)
    return [lic.key for lic in stub.CreateLicenses(request, metadata=account.auth).licenses]


def test_concurrent_reads_of_many_callers_each_get_their_own_answer(stub, make_account: MakeAccount) -> None:
    alice, bob = make_account(), make_account()
    keys = {alice.account_id: _issue(stub, alice, 20), bob.account_id: _issue(stub, bob, 20)}
    unknown = "AAAA-BBBB-CCCC-DDDD"  # well-formed, never issued
    stranger = [("authorization", "Bearer not-a-token")]
    rng = random.Random(7)
    expected, futures = [], []
    for _ in range(CALLS):
        caller, other = rng.sample([alice, bob], 2)
        choice = rng.choice(["own", "foreign", "unknown", "bad token"])
        key = {"own": rng.choice(keys[caller.account_id]), "foreign": rng.choice(keys[other.account_id]),
               "unknown": unknown, "bad token": rng.choice(keys[caller.account_id])}[choice]
        metadata = stranger if choice == "bad token" else caller.auth
        expected.append((choice, key))
        futures.append(stub.GetLicense.future(pb.GetLicenseRequest(key=key), metadata=metadata))

    codes = {"own": grpc.StatusCode.OK, "foreign": grpc.StatusCode.PERMISSION_DENIED,
             "unknown": grpc.StatusCode.NOT_FOUND, "bad token": grpc.StatusCode.UNAUTHENTICATED}
    for (choice, key), future in zip(expected, futures):
        error = future.exception()
        code = grpc.StatusCode.OK if error is None else error.code()
        assert code == codes[choice], f"{choice} {key}: {code}"
        if error is None:
            assert future.result().license.key == key
