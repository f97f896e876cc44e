"""Alembic environment: online migrations only, serialized across concurrent migrators."""
from alembic import context
from sqlalchemy import create_engine, pool, text

from server.adapters.tables import metadata

# Two replicas starting at once must not both run a migration: the first holds this lock.
MIGRATION_LOCK = 7_202_611_290

engine = create_engine(context.config.attributes["sqlalchemy_url"], poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=False)
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK})
        context.run_migrations()
engine.dispose()
