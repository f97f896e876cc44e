"""outbox keeps its primary key only: drop the unique indexes on event_id and (license_key, version)

Revision ID: 0008
Revises: 0007

Every change writes an outbox row, and each of these two indexes took an insert at a random place
in a large B-tree (a random UUID; a random license key), with a full-page image in the WAL for
each page first touched after a checkpoint. Together they were a third of PostgreSQL's time in a
bulk create: a 100-license create statement ran at 287 statements/s with them, 440 without
(pgbench, 8 clients, on the benchmark's 2-core machine).

What they guarded is guarded where it is decided: a license's version is bumped by the
version-checked write of its row (or under its row lock), and its event is written in the same
statement or transaction, so two events of one version cannot both commit; event ids come from
gen_random_uuid() (122 random bits). Nothing reads the outbox by either column; the relay reads it
by primary key.
"""
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("outbox_event_id_key", "outbox", type_="unique")
    op.drop_constraint("outbox_license_version", "outbox", type_="unique")


def downgrade() -> None:
    op.create_unique_constraint("outbox_license_version", "outbox", ["license_key", "version"])
    op.create_unique_constraint("outbox_event_id_key", "outbox", ["event_id"])
