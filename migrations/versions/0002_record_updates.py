"""Editorial notices: which source record updates (retracts, corrects...) which DOI.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

A Crossref retraction notice is its own work; ``update-to`` names the work it retracts.
This table lets the store mark the target retracted (and list its notices) without ever
merging the notice into it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "record_updates",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target_doi", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_updates"),
        sa.UniqueConstraint(
            "source", "key", "kind", "target_doi", name="uq_record_updates_source_key_kind_target"
        ),
    )
    op.create_index("ix_record_updates_target_doi", "record_updates", ["target_doi"])


def downgrade() -> None:
    op.drop_index("ix_record_updates_target_doi", table_name="record_updates")
    op.drop_table("record_updates")
