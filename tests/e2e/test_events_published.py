"""Each operation reaches JetStream as exactly one event per license affected."""
from licensing.v1 import licenses_pb2 as pb
from tests.events import app_events
from tests.support import from_now


def test_created_licenses_are_published_once_each_with_cloudevents_headers(stub, account, event_stream) -> None:
    created = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id, quantity=3), metadata=account.auth)
    received = app_events(event_stream, account.app_id, 3)
    assert sorted(r.event.license_key for r in received) == sorted(lic.key for lic in created.licenses)
    for r in received:
        assert r.event.type == "license.created" and r.event.version == 1
        assert r.subject == f"{event_stream.prefix}.{account.app_id}.license.created"
        assert r.headers["ce-specversion"] == "1.0"
        assert r.headers["ce-type"] == "licensing.license.created.v1"
        assert r.headers["ce-id"] == r.headers["Nats-Msg-Id"] == r.event.event_id
        assert r.headers["ce-subject"] == r.event.license_key
        assert r.headers["ce-sequence"] == "1"
        assert r.headers["content-type"] == "application/protobuf"
        assert r.event.account_id == account.account_id and r.event.app_id == account.app_id
    by_key = {lic.key: lic for lic in created.licenses}
    assert all(r.event.license == by_key[r.event.license_key] for r in received)


def test_every_update_and_delete_is_published_in_version_order(stub, account, event_stream) -> None:
    key = stub.CreateLicenses(pb.CreateLicensesRequest(app_id=account.app_id), metadata=account.auth).licenses[0].key
    later = from_now(days=30)
    for action, expires in [
        (pb.LICENSE_ACTION_REVOKE, None),
        (pb.LICENSE_ACTION_REVOKE, None),  # already revoked: no event
        (pb.LICENSE_ACTION_ACTIVATE, None),
        (pb.LICENSE_ACTION_EXTEND, later),
        (pb.LICENSE_ACTION_RESET_HWID, None),  # nothing bound: no event
    ]:
        stub.UpdateLicense(pb.UpdateLicenseRequest(key=key, action=action, expires_at=expires), metadata=account.auth)
    stub.DeleteLicense(pb.DeleteLicenseRequest(key=key), metadata=account.auth)

    received = app_events(event_stream, account.app_id, 5)
    assert [(r.event.type, r.event.version) for r in received] == [
        ("license.created", 1), ("license.revoked", 2), ("license.activated", 3),
        ("license.extended", 4), ("license.deleted", 5),
    ]
    assert received[1].event.license.status == pb.LICENSE_STATUS_REVOKED
    assert received[3].event.license.expires_at == later
