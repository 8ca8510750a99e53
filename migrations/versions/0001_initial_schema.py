"""Initial schema: works, source records, checkpoints, runs, quarantine, leases.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written out by hand (not importing storage.models): a migration must keep meaning the
same thing after the models move on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "works",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("doi", sa.String(length=512), nullable=True),
        sa.Column("data", JSON_T, nullable=False),
        sa.Column("provenance", JSON_T, nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("merged_into", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["merged_into"], ["works.id"], name="fk_works_merged_into_works"),
        sa.PrimaryKeyConstraint("id", name="pk_works"),
        sa.UniqueConstraint("doi", name="uq_works_doi"),
    )
    op.create_index("ix_works_updated_at", "works", ["updated_at"])

    op.create_table(
        "source_records",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("work_id", ID, nullable=True),
        sa.Column("doi", sa.String(length=512), nullable=True),
        sa.Column("datestamp", TS, nullable=True),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("raw_hash", sa.String(length=64), nullable=False),
        sa.Column("normalized", JSON_T, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["work_id"], ["works.id"], name="fk_source_records_work_id_works"),
        sa.PrimaryKeyConstraint("id", name="pk_source_records"),
        sa.UniqueConstraint("source", "key", name="uq_source_records_source_key"),
    )
    op.create_index("ix_source_records_doi", "source_records", ["doi"])
    op.create_index("ix_source_records_work_id", "source_records", ["work_id"])

    op.create_table(
        "checkpoints",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("state", JSON_T, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_checkpoints"),
    )

    op.create_table(
        "harvest_runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("inserted", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("owner", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_harvest_runs"),
        sa.UniqueConstraint("run_id", name="uq_harvest_runs_run_id"),
    )
    op.create_index("ix_harvest_runs_outcome", "harvest_runs", ["outcome"])
    op.create_index("ix_harvest_runs_source_started", "harvest_runs", ["source", "started_at"])

    op.create_table(
        "quarantine",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=True),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("raw_hash", sa.String(length=64), nullable=False),
        sa.Column("seen", sa.Integer(), nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.UniqueConstraint("source", "raw_hash", name="uq_quarantine_source_hash"),
    )
    op.create_index("ix_quarantine_source", "quarantine", ["source"])

    op.create_table(
        "source_leases",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("acquired_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_source_leases"),
    )


def downgrade() -> None:
    op.drop_table("source_leases")
    op.drop_index("ix_quarantine_source", table_name="quarantine")
    op.drop_table("quarantine")
    op.drop_index("ix_harvest_runs_source_started", table_name="harvest_runs")
    op.drop_index("ix_harvest_runs_outcome", table_name="harvest_runs")
    op.drop_table("harvest_runs")
    op.drop_table("checkpoints")
    op.drop_index("ix_source_records_work_id", table_name="source_records")
    op.drop_index("ix_source_records_doi", table_name="source_records")
    op.drop_table("source_records")
    op.drop_index("ix_works_updated_at", table_name="works")
    op.drop_table("works")
