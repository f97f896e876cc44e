from licensing.v1 import licenses_pb2 as pb


def test_created_license_can_be_read_back(stub, account) -> None:
    created = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth)
    key = created.licenses[0].key
    got = stub.GetLicense(pb.GetLicenseRequest(key=key), metadata=account.auth)
    assert got.license == created.licenses[0]
