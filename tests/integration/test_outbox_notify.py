"""Every committed outbox insert is queued for the relay (outbox_pending) and wakes it; a rolled-back one neither."""
import psycopg
import pytest

from server.adapters.serialization import license_to_json
from server.domain.clock import utcnow
from server.domain.licenses import License


@pytest.fixture(scope="module")
def database_url(fresh_database) -> str:  # type: ignore[no-untyped-def]
    """A database of this module's own: the session's one is also the e2e server's, whose relay
    publishes (and so unqueues) committed rows at once, racing the assertions on outbox_pending."""
    url: str = fresh_database()
    return url


def _insert_event(connection: psycopg.Connection, key: str) -> None:
    now = utcnow()
    lic = License(key, "00000000-0000-0000-0000-000000000001", False, None, 1, False, "", now, now, 1)
    connection.execute(
        "INSERT INTO outbox (event_id, event_type, account_id, app_id, license_key, version, payload)"
        " VALUES (gen_random_uuid(), 'license.created', gen_random_uuid(), %s, %s, 1, %s)",
        (lic.app_id, key, psycopg.types.json.Jsonb(license_to_json(lic))),
    )


def test_committed_outbox_insert_notifies_the_relay_channel(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener, psycopg.connect(database_url) as writer:
        listener.execute("LISTEN outbox")
        with writer.transaction():
            _insert_event(writer, "TEST-NOTI-FY00-0001")
        assert [n.channel for n in listener.notifies(timeout=2, stop_after=1)] == ["outbox"]


def test_rolled_back_outbox_insert_notifies_nobody(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as listener, psycopg.connect(database_url) as writer:
        listener.execute("LISTEN outbox")
        with writer.transaction(force_rollback=True):
            _insert_event(writer, "TEST-NOTI-FY00-0002")
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []


def _pending(connection: psycopg.Connection) -> set[str]:
    rows = connection.execute("SELECT o.license_key FROM outbox_pending p JOIN outbox o ON o.id = p.id").fetchall()
    return {key for (key,) in rows}


def test_committed_outbox_rows_are_queued_for_the_relay_and_rolled_back_ones_are_not(database_url: str) -> None:
    with psycopg.connect(database_url) as writer:
        with writer.transaction():
            _insert_event(writer, "TEST-QUEU-ED00-0001")
            _insert_event(writer, "TEST-QUEU-ED00-0002")
        with writer.transaction(force_rollback=True):
            _insert_event(writer, "TEST-QUEU-ED00-0003")
        assert {"TEST-QUEU-ED00-0001", "TEST-QUEU-ED00-0002"} <= _pending(writer)
        assert "TEST-QUEU-ED00-0003" not in _pending(writer)
