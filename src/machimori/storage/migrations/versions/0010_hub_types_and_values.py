"""Every type of an entity, and an index of its attribute values, for typed and q queries.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_entity_types",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("type", sa.String(1024), primary_key=True),
        sa.Column("id", sa.String(1024), primary_key=True),
    )
    op.create_index("ix_hub_entity_types_entity", "hub_entity_types", ["tenant", "id"])
    op.create_table(
        "hub_attribute_values",
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("id", sa.String(1024), nullable=False),
        sa.Column("attribute", sa.String(1024), nullable=False),
        sa.Column("number", sa.Float),
        sa.Column("text", sa.String(256)),
    )
    op.create_index("ix_hub_values_number", "hub_attribute_values", ["tenant", "attribute", "number"])
    op.create_index("ix_hub_values_text", "hub_attribute_values", ["tenant", "attribute", "text"])
    op.create_index("ix_hub_values_entity", "hub_attribute_values", ["tenant", "id"])
    op.execute("INSERT INTO hub_entity_types (tenant, type, id) SELECT tenant, type, id FROM hub_entities")
    op.drop_index("ix_hub_entities_tenant_type", table_name="hub_entities")
    with op.batch_alter_table("hub_entities") as table:
        table.drop_column("type")
    op.create_index("ix_hub_entities_box", "hub_entities", ["tenant", "min_lon", "min_lat"])


def downgrade() -> None:
    op.drop_index("ix_hub_entities_box", table_name="hub_entities")
    with op.batch_alter_table("hub_entities") as table:
        table.add_column(sa.Column("type", sa.String(1024), nullable=False, server_default=""))
    op.create_index("ix_hub_entities_tenant_type", "hub_entities", ["tenant", "type"])
    op.drop_table("hub_attribute_values")
    op.drop_table("hub_entity_types")
