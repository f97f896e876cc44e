"""outbox pending queue: what is still to publish lives in a narrow table of its own

Revision ID: 0006
Revises: 0005

Marking an event published used to be `UPDATE outbox SET published_at = now()`. With published_at
in two partial indexes that update could never be HOT: PostgreSQL copied the whole row (payload
included) and added an entry to every index, about what the event's INSERT had cost, and the
relay's marks halved the insert rate of bulk creates. Now an event is unpublished while its id is
in `outbox_pending`; publishing deletes that narrow row. The outbox row itself is written once and
never updated.

The statement trigger that woke the relay now also enqueues the statement's new rows (a transition
table: one INSERT per statement, not per row), so no writer of the outbox can forget either.
"""
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE outbox_pending (id bigint PRIMARY KEY)")
    # A queue: rows live for milliseconds, so vacuum it by dead-row count, not by table size.
    op.execute(
        "ALTER TABLE outbox_pending SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)"
    )
    # Writers wait from here to the commit: a row committed between the copy below and the new
    # trigger would be in neither the queue nor (once published_at is gone) anywhere else.
    op.execute("LOCK TABLE outbox IN SHARE ROW EXCLUSIVE MODE")
    op.execute("INSERT INTO outbox_pending (id) SELECT id FROM outbox WHERE published_at IS NULL")
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
    op.execute(
        """
        CREATE FUNCTION outbox_enqueue() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO outbox_pending (id) SELECT id FROM added;
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_enqueue AFTER INSERT ON outbox REFERENCING NEW TABLE AS added"
        " FOR EACH STATEMENT EXECUTE FUNCTION outbox_enqueue()"
    )
    op.drop_index("outbox_unpublished", table_name="outbox")
    op.drop_index("outbox_published_at", table_name="outbox")
    op.drop_column("outbox", "published_at")


def downgrade() -> None:
    op.execute("ALTER TABLE outbox ADD COLUMN published_at timestamptz")
    op.execute(
        "UPDATE outbox SET published_at = created_at"
        " WHERE NOT EXISTS (SELECT 1 FROM outbox_pending p WHERE p.id = outbox.id)"
    )
    op.execute("CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL")
    op.execute("CREATE INDEX outbox_published_at ON outbox (published_at) WHERE published_at IS NOT NULL")
    op.execute("DROP TRIGGER outbox_enqueue ON outbox")
    op.execute("DROP FUNCTION outbox_enqueue()")
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
    op.execute("DROP TABLE outbox_pending")
