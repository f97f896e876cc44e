"""What the server exposes besides the license API (health, reflection, no token needed) and the shape of keys."""
from __future__ import annotations

import re

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from licensing.v1 import licenses_pb2 as pb

KEY_FORMAT = re.compile(r"^[A-HJ-NP-Z2-9]{4}(-[A-HJ-NP-Z2-9]{4}){3}$")
LICENSE_SERVICE = "licensing.v1.LicenseService"


@pytest.mark.parametrize("service", ["", LICENSE_SERVICE], ids=["server", "license_service"])
def test_health_check_is_serving_without_a_token(channel: grpc.Channel, service: str) -> None:
    response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service_is_not_found(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "service", [LICENSE_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"]
)
def test_reflection_lists_service_without_a_token(channel: grpc.Channel, service: str) -> None:
    assert service in ProtoReflectionDescriptorDatabase(channel).get_services()


def test_reflection_describes_the_license_service(channel: grpc.Channel) -> None:
    database = ProtoReflectionDescriptorDatabase(channel)
    file = database.FindFileContainingSymbol(LICENSE_SERVICE)
    service = next(s for s in file.service if s.name == "LicenseService")
    assert {m.name for m in service.method} == {
        "CreateLicenses", "ListLicenses", "GetLicense", "UpdateLicense", "DeleteLicense",
    }


def test_created_keys_have_the_key_format(stub, make_account) -> None:
    acct = make_account()
    created = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=acct.app_id, quantity=100), metadata=acct.auth)
    bad = [lic.key for lic in created.licenses if not KEY_FORMAT.match(lic.key)]
    assert bad == []


def test_100_created_keys_are_unique(stub, make_account) -> None:
    acct = make_account()
    created = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=acct.app_id, quantity=100), metadata=acct.auth)
    keys = [lic.key for lic in created.licenses]
    assert len(keys) == 100 and len(set(keys)) == 100
