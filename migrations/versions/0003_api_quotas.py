"""API quotas per source and key (Scopus weekly quotas), kept across runs and processes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

The key itself is never stored: ``key_id`` is a short SHA-256 fingerprint of it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_quotas",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("api", sa.String(length=32), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("quota_limit", sa.Integer(), nullable=True),
        sa.Column("remaining", sa.Integer(), nullable=True),
        sa.Column("reset_at", TS, nullable=True),
        sa.Column("exhausted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source", "api", "key_id", name="pk_api_quotas"),
    )


def downgrade() -> None:
    op.drop_table("api_quotas")
