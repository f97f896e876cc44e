"""A request that is not a valid message (text that is not UTF-8, truncated bytes) is bad input like
any other: INVALID_ARGUMENT with a BadRequest naming the field, never gRPC's UNKNOWN."""
from __future__ import annotations

import grpc
import pytest

from licensing.v1 import licenses_pb2 as pb
from licensing.v1 import validation_pb2 as vpb
from tests.support import Account, assert_bad_request, assert_error, fails

NOT_UTF8 = b"\xff\xfe"


def _raw(channel: grpc.Channel, method: str):  # type: ignore[no-untyped-def]
    return channel.unary_unary(method, request_serializer=None, response_deserializer=None)


def _string_field(number: int, value: bytes) -> bytes:
    return bytes([number << 3 | 2, len(value)]) + value


def test_a_key_that_is_not_utf8_is_a_bad_key(channel: grpc.Channel, account: Account) -> None:
    call = _raw(channel, "/licensing.v1.LicenseService/GetLicense")
    error = fails(lambda: call(_string_field(1, NOT_UTF8), metadata=account.auth))
    assert_bad_request(error, "key")


def test_a_hwid_that_is_not_utf8_is_a_bad_hwid(channel: grpc.Channel, account: Account) -> None:
    valid = vpb.ValidateLicenseRequest(app_id=account.app_id, key="AAAA-BBBB-CCCC-DDDD").SerializeToString()
    call = _raw(channel, "/licensing.v1.ValidationService/ValidateLicense")
    hwid = vpb.ValidateLicenseRequest.DESCRIPTOR.fields_by_name["hwid"].number
    error = fails(lambda: call(valid + _string_field(hwid, NOT_UTF8), metadata=account.auth))
    assert_bad_request(error, "hwid")


@pytest.mark.parametrize("request_bytes", [b"\x0a\x10AB", b"\x0a", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"],
                         ids=["truncated string", "missing length", "overlong varint"])
def test_bytes_that_are_no_message_are_a_bad_request(channel: grpc.Channel, account: Account,
                                                     request_bytes: bytes) -> None:
    call = _raw(channel, "/licensing.v1.LicenseService/GetLicense")
    assert_bad_request(fails(lambda: call(request_bytes, metadata=account.auth)), "request")


def test_an_undecodable_request_without_a_token_is_unauthenticated_first(channel: grpc.Channel) -> None:
    call = _raw(channel, "/licensing.v1.LicenseService/GetLicense")
    assert_error(fails(lambda: call(_string_field(1, NOT_UTF8))), grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")


def test_a_valid_request_still_decodes(channel: grpc.Channel, stub, account: Account) -> None:  # type: ignore[no-untyped-def]
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    call = _raw(channel, "/licensing.v1.LicenseService/GetLicense")
    answer = pb.GetLicenseResponse.FromString(call(pb.GetLicenseRequest(key=key).SerializeToString(),
                                                   metadata=account.auth))
    assert answer.license.key == key
