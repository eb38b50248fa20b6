"""NGSI-LD entities of the hub.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_entities",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(1024), primary_key=True),
        sa.Column("type", sa.String(1024), nullable=False),
        sa.Column("body", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min_lon", sa.Float),
        sa.Column("min_lat", sa.Float),
        sa.Column("max_lon", sa.Float),
        sa.Column("max_lat", sa.Float),
    )
    op.create_index("ix_hub_entities_tenant_type", "hub_entities", ["tenant", "type"])


def downgrade() -> None:
    op.drop_table("hub_entities")
