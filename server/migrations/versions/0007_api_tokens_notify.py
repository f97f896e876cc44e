"""api_tokens notify trigger: every statement that changes or removes tokens tells the servers' token caches

Revision ID: 0007
Revises: 0006

Each server process caches the tokens it has authenticated (server/adapters/token_cache.py) and
empties its cache on a notification on channel `api_tokens`, so a revocation takes effect within
milliseconds of its commit. A statement-level trigger, like the outbox's (0003): no writer of
api_tokens can forget it, PostgreSQL delivers the notification only at commit (a rolled-back
revocation wakes nobody) and folds duplicates within a transaction into one. The payload is empty:
a cache drops everything, which is cheap because tokens are few and rarely change.

UPDATE and DELETE (also the cascade from a deleted account), and TRUNCATE for completeness.
INSERT needs no notification: an unknown token is never cached, so a new one cannot be stale.
"""
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION api_tokens_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('api_tokens', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER api_tokens_notify AFTER UPDATE OR DELETE OR TRUNCATE ON api_tokens"
        " FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_tokens_notify ON api_tokens")
    op.execute("DROP FUNCTION api_tokens_notify()")
