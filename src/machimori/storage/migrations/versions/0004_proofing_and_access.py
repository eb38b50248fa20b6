"""Identity-proofing records of residents; an index of personal-data accesses into the audit log.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_proofs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("ial", sa.SmallInteger, nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("evidence", sa.String(255), nullable=False),
        sa.Column("verified_by", sa.String(36), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_identity_proofs_account_id", "identity_proofs", ["account_id"])
    op.create_table(
        "data_accesses",
        sa.Column("audit_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("resident", sa.String(255), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(255)),
        sa.Column("permitted", sa.Boolean, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_data_accesses_resident", "data_accesses", ["resident"])


def downgrade() -> None:
    op.drop_table("data_accesses")
    op.drop_table("identity_proofs")
