"""outbox notify trigger: every statement that writes outbox rows wakes the relay at commit

Revision ID: 0003
Revises: 0002

A statement-level trigger instead of a NOTIFY sent by the application: one round trip less per
change, and no writer of the outbox can forget it. PostgreSQL delivers the notification at commit
and folds duplicates within a transaction into one.
"""
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
