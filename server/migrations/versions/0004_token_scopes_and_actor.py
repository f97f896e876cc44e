"""token scopes and expiry; the token that made each change, recorded with its event

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("scopes", postgresql.ARRAY(sa.Text()), server_default=sa.text("'{read,write,validate}'"),
                  nullable=False),
    )
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("outbox", sa.Column("actor_token_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "actor_token_id")
    op.drop_column("api_tokens", "expires_at")
    op.drop_column("api_tokens", "scopes")
