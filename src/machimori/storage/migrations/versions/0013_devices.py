"""The asset plane: the device registry and the signed readings the gateway accepted.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

Index64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("vendor", sa.String(128), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("component", sa.String(128)),
        sa.Column("name", sa.String(255)),
        sa.Column("location", sa.JSON),
        sa.Column("address", sa.String(255)),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("mqtt_client_id", sa.String(128)),
        sa.Column("firmware", sa.String(64)),
        sa.Column("key_kind", sa.String(16), nullable=False),
        sa.Column("public_key", sa.LargeBinary),
        sa.Column("sealed_secret", sa.LargeBinary),
        sa.Column("key_fingerprint", sa.String(64), nullable=False),
        sa.Column("key_created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key_expires_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counter_top", sa.BigInteger, nullable=False),
        sa.Column("counter_window", sa.BigInteger, nullable=False),
        sa.Column("management", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_devices_key_fingerprint", "devices", ["key_fingerprint"])
    op.create_table(
        "device_readings",
        sa.Column("id", Index64, primary_key=True, autoincrement=True),
        sa.Column("device_id", sa.String(128), nullable=False),
        sa.Column("counter", sa.BigInteger, nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("transport", sa.String(8), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("reading", sa.JSON, nullable=False),
        sa.UniqueConstraint("device_id", "counter", name="uq_device_readings_counter"),
    )


def downgrade() -> None:
    op.drop_table("device_readings")
    op.drop_table("devices")
