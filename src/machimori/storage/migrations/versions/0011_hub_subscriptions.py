"""NGSI-LD subscriptions of the hub and the outbox of their notifications.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_subscriptions",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(1024), primary_key=True),
        sa.Column("org", sa.String(255)),
        sa.Column("purpose", sa.Text),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("resident", sa.String(64)),
        sa.Column("grant_id", sa.String(36)),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_sent", sa.Integer, nullable=False),
        sa.Column("times_failed", sa.Integer, nullable=False),
        sa.Column("last_notification", sa.DateTime(timezone=True)),
        sa.Column("last_success", sa.DateTime(timezone=True)),
        sa.Column("last_failure", sa.DateTime(timezone=True)),
        sa.Column("busy_until", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "hub_notifications",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("subscription", sa.String(1024), nullable=False),
        sa.Column("entity_id", sa.String(1024), nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_hub_notifications_next_attempt_at", "hub_notifications", ["next_attempt_at"])
    op.create_index("ix_hub_notifications_subscription", "hub_notifications", ["tenant", "owner", "subscription"])


def downgrade() -> None:
    op.drop_table("hub_notifications")
    op.drop_table("hub_subscriptions")
