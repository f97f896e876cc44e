"""Signed answers: every ValidationResult carries an Ed25519 signature over exactly its receipt bytes,
verifiable with a public key from GetSigningKeys, and the receipt states the answer.
"""
from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import grpc
import psycopg
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from licensing.v1 import licenses_pb2 as lpb
from licensing.v1 import validation_pb2 as vpb
from licensing.v1 import validation_pb2_grpc
from tests.support import (
    NEVER_ISSUED,
    Account,
    MakeAccount,
    Metadata,
    Stub,
    Validation,
    expire_now,
    fails,
    from_now,
    get,
    issue,
    new_hwid,
    second_app,
    update,
    validate,
    when,
)


def public_key(validation: Validation, account: Account, key_id: str) -> Ed25519PublicKey:
    keys = validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=account.auth).keys
    (match,) = [k for k in keys if k.key_id == key_id]
    return Ed25519PublicKey.from_public_bytes(match.public_key)


def verify(validation: Validation, account: Account, result: vpb.ValidationResult) -> vpb.ValidationReceipt:
    """Verifies the signature over the receipt bytes as received (raises InvalidSignature), then parses them."""
    public_key(validation, account, result.signing_key_id).verify(result.signature, result.receipt)
    return vpb.ValidationReceipt.FromString(result.receipt)


def flipped(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1:]


# The published keys


def test_signing_keys_are_32_byte_ed25519_public_keys(validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()

    keys = validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=account.auth).keys

    assert len(keys) >= 1
    assert len({k.key_id for k in keys}) == len(keys)
    for k in keys:
        assert k.key_id
        assert len(k.public_key) == 32
        Ed25519PublicKey.from_public_bytes(k.public_key)


@pytest.mark.parametrize("metadata", [[], [("authorization", "Bearer not-a-token")]], ids=["no-token", "bad-token"])
def test_signing_keys_need_a_token(validation: Validation, metadata: Metadata) -> None:
    error = fails(lambda: validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=metadata))

    assert error.code is grpc.StatusCode.UNAUTHENTICATED


def test_answers_are_signed_by_the_first_published_key(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()

    result = validate(validation, account, issue(stub, account).key, new_hwid())

    keys = validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=account.auth).keys
    assert result.signing_key_id == keys[0].key_id


def test_every_connection_publishes_the_same_signing_keys(
    server_address: str, validation: Validation, make_account: MakeAccount
) -> None:
    """A client may fetch the keys over one connection and validate over another (the server may be
    several processes sharing the port): the keys must not depend on which process answers."""
    account = make_account()
    expected = validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=account.auth).keys

    published: list[list[tuple[str, str]]] = []
    for _ in range(8):  # each its own TCP connection: the kernel spreads connections over the processes
        with grpc.insecure_channel(server_address, options=[("grpc.use_local_subchannel_pool", 1)]) as own:
            keys = validation_pb2_grpc.ValidationServiceStub(own).GetSigningKeys(
                vpb.GetSigningKeysRequest(), metadata=account.auth
            ).keys
            published.append([(k.key_id, k.public_key.hex()) for k in keys])

    assert published == [[(k.key_id, k.public_key.hex()) for k in expected]] * len(published)


# Signatures


def test_valid_answer_verifies_with_the_published_key(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    result = validate(validation, account, issue(stub, account).key, new_hwid())

    receipt = verify(validation, account, result)

    assert receipt.code == vpb.VALIDATION_CODE_VALID


def test_flipping_any_receipt_byte_breaks_the_signature(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    result = validate(validation, account, issue(stub, account).key, new_hwid(), nonce="n-1")
    key = public_key(validation, account, result.signing_key_id)
    size = len(result.receipt)

    for position in sorted({0, 1, 2, size // 4, size // 2, 3 * size // 4, size - 2, size - 1}):
        with pytest.raises(InvalidSignature):
            key.verify(result.signature, flipped(result.receipt, position))


def test_flipping_a_signature_byte_breaks_the_signature(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    result = validate(validation, account, issue(stub, account).key, new_hwid())
    key = public_key(validation, account, result.signing_key_id)

    with pytest.raises(InvalidSignature):
        key.verify(flipped(result.signature, 10), result.receipt)


def test_a_signature_does_not_verify_another_answers_receipt(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, max_hwid_slots=1).key
    valid = validate(validation, account, key, new_hwid())
    rejected = validate(validation, account, key, new_hwid())

    with pytest.raises(InvalidSignature):
        public_key(validation, account, valid.signing_key_id).verify(valid.signature, rejected.receipt)


CODES: dict[str, int] = {
    "valid": vpb.VALIDATION_CODE_VALID,
    "not-found": vpb.VALIDATION_CODE_NOT_FOUND,
    "revoked": vpb.VALIDATION_CODE_REVOKED,
    "expired": vpb.VALIDATION_CODE_EXPIRED,
    "hwid-mismatch": vpb.VALIDATION_CODE_HWID_MISMATCH,
    "app-mismatch": vpb.VALIDATION_CODE_APP_MISMATCH,
}


def answer_with(code: int, stub: Stub, validation: Validation, account: Account,
                db: psycopg.Connection) -> vpb.ValidationResult:
    """A ValidateLicense answer with `code`."""
    if code == vpb.VALIDATION_CODE_NOT_FOUND:
        return validate(validation, account, NEVER_ISSUED, new_hwid())
    key = issue(stub, account, expires_at=from_now(days=1)).key
    if code == vpb.VALIDATION_CODE_REVOKED:
        update(stub, account.auth, key, lpb.LICENSE_ACTION_REVOKE)
    elif code == vpb.VALIDATION_CODE_EXPIRED:
        expire_now(db, key)
    elif code == vpb.VALIDATION_CODE_HWID_MISMATCH:
        validate(validation, account, key, new_hwid())
    elif code == vpb.VALIDATION_CODE_APP_MISMATCH:
        return validate(validation, account, key, new_hwid(), app_id=second_app(account))
    return validate(validation, account, key, new_hwid())


@pytest.mark.parametrize("code", CODES.values(), ids=CODES.keys())
def test_every_answer_is_signed_and_its_receipt_states_the_code(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection, code: int
) -> None:
    account = make_account()
    result = answer_with(code, stub, validation, account, db)
    assert result.code == code

    receipt = verify(validation, account, result)

    assert (receipt.code, receipt.valid) == (code, code == vpb.VALIDATION_CODE_VALID)


def test_heartbeat_answer_is_signed(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key, hwid = issue(stub, account).key, new_hwid()
    validate(validation, account, key, hwid)
    request = vpb.HeartbeatRequest(app_id=account.app_id, key=key, hwid=hwid, nonce="beat")

    result = validation.Heartbeat(request, metadata=account.auth).result

    receipt = verify(validation, account, result)
    assert (receipt.code, receipt.hwid, receipt.nonce) == (vpb.VALIDATION_CODE_VALID, hwid, "beat")


# What a receipt states


def test_receipt_echoes_the_request(stub: Stub, validation: Validation, make_account: MakeAccount) -> None:
    account = make_account()
    key, hwid, nonce = issue(stub, account).key, new_hwid(), uuid.uuid4().hex

    receipt = verify(validation, account, validate(validation, account, key, hwid, nonce=nonce))

    assert (receipt.key, receipt.app_id, receipt.hwid, receipt.nonce) == (key, account.app_id, hwid, nonce)
    assert (receipt.valid, receipt.code) == (True, vpb.VALIDATION_CODE_VALID)


def test_receipt_names_the_canonical_key_for_a_key_typed_in_lower_case(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account).key

    receipt = verify(validation, account, validate(validation, account, key.lower(), new_hwid()))

    assert receipt.key == key


def test_receipt_is_issued_now_and_valid_until_later(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    before = datetime.now(UTC)

    receipt = verify(validation, account, validate(validation, account, issue(stub, account).key, new_hwid()))

    issued = when(receipt.issued_at)
    assert before - timedelta(seconds=5) <= issued <= datetime.now(UTC) + timedelta(seconds=5)
    assert issued < when(receipt.valid_until)


def test_receipt_of_a_lifetime_license_has_no_license_expiry(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()

    receipt = verify(validation, account, validate(validation, account, issue(stub, account).key, new_hwid()))

    assert not receipt.HasField("license_expires_at")


def test_receipt_of_an_expiring_license_carries_its_expiry(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, expires_at=from_now(days=30)).key
    expiry = get(stub, account.auth, key).expires_at

    receipt = verify(validation, account, validate(validation, account, key, new_hwid()))

    assert receipt.license_expires_at == expiry
    assert when(receipt.issued_at) <= when(receipt.valid_until) <= when(expiry)


def test_receipt_is_never_valid_after_the_license_expires(
    stub: Stub, validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()
    key = issue(stub, account, expires_at=from_now(seconds=30)).key  # sooner than any sensible receipt lifetime
    expiry = get(stub, account.auth, key).expires_at

    receipt = verify(validation, account, validate(validation, account, key, new_hwid()))

    assert when(receipt.issued_at) <= when(receipt.valid_until) <= when(expiry)


def test_receipt_of_a_not_found_answer_has_no_license_expiry(
    validation: Validation, make_account: MakeAccount
) -> None:
    account = make_account()

    receipt = verify(validation, account, validate(validation, account, NEVER_ISSUED, new_hwid(), nonce="nf"))

    assert (receipt.code, receipt.valid, receipt.key, receipt.nonce) == (
        vpb.VALIDATION_CODE_NOT_FOUND, False, NEVER_ISSUED, "nf",
    )
    assert not receipt.HasField("license_expires_at")


def test_receipt_of_an_expired_license_is_not_valid_until_before_it_was_issued(
    stub: Stub, validation: Validation, make_account: MakeAccount, db: psycopg.Connection
) -> None:
    account = make_account()
    result = answer_with(vpb.VALIDATION_CODE_EXPIRED, stub, validation, account, db)

    receipt = verify(validation, account, result)

    assert receipt.code == vpb.VALIDATION_CODE_EXPIRED
    assert when(receipt.issued_at) <= when(receipt.valid_until), (
        f"issued_at {receipt.issued_at.ToJsonString()} > valid_until {receipt.valid_until.ToJsonString()}"
    )


def test_configured_keys_are_published_and_the_first_one_signs(validation, account) -> None:
    from licensing.v1 import validation_pb2 as vpb

    keys = validation.GetSigningKeys(vpb.GetSigningKeysRequest(), metadata=account.auth).keys
    assert [k.key_id for k in keys] == ["test-active", "test-previous"]
    answer = validation.ValidateLicense(
        vpb.ValidateLicenseRequest(app_id=account.app_id, key="AAAA-AAAA-AAAA-AAAA", hwid="h"), metadata=account.auth
    ).result
    assert answer.signing_key_id == "test-active"
