"""fill_licenses copies the message before for licenses alike but for their key, and converts any
other license on its own: the answer equals converting each license."""
from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from licensing.v1 import licenses_pb2 as pb
from server.api.convert import fill_licenses, license_message
from server.domain.licenses import HwidBinding, License

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
FIRST = License(key="AAAA-AAAA-AAAA-AAAA", app_id="00000000-0000-0000-0000-000000000001", revoked=False,
                expires_at=NOW + timedelta(days=30), max_hwid_slots=2, unlimited_hwid_slots=False, label="batch",
                created_at=NOW, updated_at=NOW, version=1)


@pytest.mark.parametrize("other", [
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB"),
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB", label="another"),
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB", expires_at=None),
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB", revoked=True),
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB", hwids=(HwidBinding("device", NOW, NOW),)),
    replace(FIRST, key="BBBB-BBBB-BBBB-BBBB", version=2, updated_at=NOW + timedelta(seconds=1)),
], ids=["alike", "label", "no expiry", "revoked", "bound", "version"])
def test_each_message_equals_its_own_conversion(other: License) -> None:
    licenses = [FIRST, other, replace(FIRST, key="CCCC-CCCC-CCCC-CCCC"), replace(other, key="DDDD-DDDD-DDDD-DDDD")]
    assert _filled(licenses) == [license_message(lic, NOW) for lic in licenses]


def test_no_licenses_no_messages() -> None:
    assert _filled([]) == []


def _filled(licenses: list[License]) -> list[pb.License]:
    response = pb.CreateLicensesResponse()
    fill_licenses(response.licenses, licenses, NOW)
    return list(response.licenses)
