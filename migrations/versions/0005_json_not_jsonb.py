"""PostgreSQL: plain JSON instead of JSONB for the record path's JSON columns.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29

The store never queries inside these documents; it writes them on every page and reads
them whole. JSONB parsed and re-encoded every value on insert (a measurable share of a
PostgreSQL page commit) and lost the key order of the exported work. SQLite is
unaffected (JSON is text there either way).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("works", "data"),
    ("works", "provenance"),
    ("source_records", "normalized"),
    ("checkpoints", "state"),
)


def _retype(new: sa.types.TypeEngine[object], old: sa.types.TypeEngine[object], cast: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=new, existing_type=old, postgresql_using=f"{column}::{cast}")


def upgrade() -> None:
    _retype(sa.JSON(), postgresql.JSONB(), "json")


def downgrade() -> None:
    _retype(postgresql.JSONB(), sa.JSON(), "jsonb")
