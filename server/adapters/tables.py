"""The schema, as SQLAlchemy Core tables. Migrations (server/migrations) create it."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

metadata = MetaData()
_now = text("now()")


def _ts(name: str, nullable: bool = False) -> Column:  # type: ignore[type-arg]
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=None if nullable else _now)


accounts = Table(
    "accounts", metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("name", Text, nullable=False),
    Column("credits", BigInteger, nullable=False, server_default="0"),
    _ts("created_at"),
    CheckConstraint("credits >= 0", name="credits_never_negative"),
)

api_tokens = Table(
    "api_tokens", metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("account_id", Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("token_hash", LargeBinary, nullable=False, unique=True),
    Column("name", Text, nullable=False, server_default=""),
    Column("scopes", ARRAY(Text), nullable=False, server_default=text("'{read,write,validate}'")),
    _ts("created_at"),
    _ts("expires_at", nullable=True),
    _ts("revoked_at", nullable=True),
)

apps = Table(
    "apps", metadata,
    Column("id", Uuid, primary_key=True, server_default=text("gen_random_uuid()")),
    Column("account_id", Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", Text, nullable=False),
    _ts("created_at"),
)

licenses = Table(
    "licenses", metadata,
    # A monotonic id gives the keyset order of ListLicenses.
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("key", Text, nullable=False, unique=True),
    Column("app_id", Uuid, ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
    Column("revoked", Boolean, nullable=False, server_default="false"),
    _ts("expires_at", nullable=True),
    Column("max_hwid_slots", Integer, nullable=False),
    Column("unlimited_hwid_slots", Boolean, nullable=False),
    Column("label", Text, nullable=False, server_default=""),
    Column("version", BigInteger, nullable=False, server_default="1"),
    _ts("created_at"),
    _ts("updated_at"),
    Index("licenses_app_id_id", "app_id", "id"),
)

license_hwids = Table(
    "license_hwids", metadata,
    Column("license_id", BigInteger, ForeignKey("licenses.id", ondelete="CASCADE"), primary_key=True),
    Column("hwid", Text, primary_key=True),
    _ts("bound_at"),
    _ts("last_seen_at"),
)

outbox = Table(
    "outbox", metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Uuid, nullable=False),  # gen_random_uuid(); no index (migration 0008)
    Column("event_type", Text, nullable=False),
    Column("account_id", Uuid, nullable=False),
    Column("actor_token_id", Uuid, nullable=True),  # who made the change: the event stream is an audit log
    Column("app_id", Uuid, nullable=False),
    Column("license_key", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("payload", JSONB, nullable=False),
    _ts("created_at"),
    # Only the primary key: one event per license version is enforced by the version-checked
    # write of the license's row, in the same statement or transaction (migration 0008).
)

# The ids of outbox rows not yet published (migration 0006: a trigger enqueues every new outbox
# row; the relay deletes an id once JetStream has acked its event). The outbox row is written once
# and never updated; its publish state lives here, in a row that is cheap to delete.
outbox_pending = Table(
    "outbox_pending", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
)

idempotency = Table(
    "idempotency", metadata,
    Column("account_id", Uuid, ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("request_id", Uuid, primary_key=True),
    Column("fingerprint", LargeBinary, nullable=False),
    Column("license_keys", ARRAY(Text), nullable=False),
    _ts("created_at"),
    Index("idempotency_created_at", "created_at"),  # the expiry sweep, oldest first
)
