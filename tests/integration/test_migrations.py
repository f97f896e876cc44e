"""The Alembic migrations build exactly the schema the code declares, and carry data across."""
from collections.abc import Callable

import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from server.adapters.db import sqlalchemy_url
from server.adapters.migrate import alembic_config, migrate
from server.adapters.tables import metadata


def test_migrated_schema_matches_the_declared_tables(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


def test_migrating_twice_is_harmless(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)


def test_upgrading_across_0006_queues_exactly_the_unpublished_events(fresh_database: Callable[[], str]) -> None:
    url: str = fresh_database()
    config = alembic_config(url)
    command.downgrade(config, "0005")
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "INSERT INTO outbox (event_id, event_type, account_id, app_id, license_key, version, payload,"
            " published_at) SELECT gen_random_uuid(), 'license.created', gen_random_uuid(), gen_random_uuid(),"
            " 'MIGR-' || n, 1, '{}', CASE WHEN n % 2 = 0 THEN now() END FROM generate_series(1, 6) AS n"
        )
        command.upgrade(config, "head")
        queued = connection.execute(
            "SELECT o.license_key FROM outbox_pending p JOIN outbox o ON o.id = p.id ORDER BY 1"
        ).fetchall()
    assert [key for (key,) in queued] == ["MIGR-1", "MIGR-3", "MIGR-5"]
