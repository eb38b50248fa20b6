"""Authorization code grants with PKCE, rotating refresh tokens, consent-change subscriptions.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "oauth_grants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("account_id", sa.String(36), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("purposes", sa.Text, nullable=False),
        sa.Column("aal", sa.SmallInteger, nullable=False),
        sa.Column("amr", sa.Text, nullable=False),
        sa.Column("auth_time", _TIME, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("revoked_at", _TIME),
        sa.Column("revoked_reason", sa.String(64)),
    )
    op.create_index("ix_oauth_grants_account_client", "oauth_grants", ["account_id", "client_id"])
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("grant_id", sa.String(36), sa.ForeignKey("oauth_grants.id"), nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("code_challenge", sa.String(128), nullable=False),
        sa.Column("nonce", sa.String(255)),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME),
    )
    op.create_table(
        "refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("grant_id", sa.String(36), sa.ForeignKey("oauth_grants.id"), nullable=False),
        sa.Column("issued_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("used_at", _TIME),
    )
    op.create_index("ix_refresh_tokens_grant_id", "refresh_tokens", ["grant_id"])
    op.create_table(
        "consent_subscriptions",
        sa.Column("client_id", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
    )
    op.create_table(
        "consent_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("token", sa.Text, nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("delivered_at", _TIME),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_consent_deliveries_next_attempt_at", "consent_deliveries", ["next_attempt_at"])


def downgrade() -> None:
    for table in ("consent_deliveries", "consent_subscriptions", "refresh_tokens", "authorization_codes"):
        op.drop_table(table)
    op.drop_table("oauth_grants")
