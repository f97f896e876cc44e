"""The Alembic migrations build exactly the schema the code declares."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from server.adapters.db import sqlalchemy_url
from server.adapters.migrate import migrate
from server.adapters.tables import metadata


def test_migrated_schema_matches_the_declared_tables(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    engine.dispose()


def test_migrating_twice_is_harmless(database_url: str) -> None:
    migrate(database_url)
    migrate(database_url)
