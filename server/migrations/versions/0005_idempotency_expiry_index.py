"""idempotency expiry index: the relay's housekeeping deletes request ids past their 24 hours, oldest first

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("idempotency_created_at", "idempotency", ["created_at"])


def downgrade() -> None:
    op.drop_index("idempotency_created_at", table_name="idempotency")
