"""PostgreSQL: LZ4 compression for the large text and JSON columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

Every record's raw payload and normalized form, and every work's document, are written
once per page and are usually above the 2 KB at which PostgreSQL compresses a value.
The default compression (pglz) was the largest server-side share of a page commit:
measured on pages of 100 real OAI-PMH records, LZ4 made the records' INSERT 1.6x faster
(650 → 390 ms for 5,000 records; ``benchmarks/postgres.py``). Only values written
afterwards are compressed with LZ4; stored ones stay readable as they are. A server
built without LZ4 (or older than PostgreSQL 14) keeps pglz: the statement is skipped,
not failed. SQLite is unaffected.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("source_records", "raw"),
    ("source_records", "normalized"),
    ("works", "data"),
    ("works", "provenance"),
    ("quarantine", "raw"),
)


def _set_compression(method: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    statements = "; ".join(
        f"EXECUTE 'ALTER TABLE {table} ALTER COLUMN {column} SET COMPRESSION {method}'"
        for table, column in COLUMNS
    )
    # Dynamic SQL in a block that catches the errors of a server without LZ4 support
    # (feature_not_supported) or without SET COMPRESSION at all (syntax_error, < 14).
    op.execute(
        f"DO $$ BEGIN {statements}; "
        "EXCEPTION WHEN feature_not_supported OR syntax_error OR invalid_parameter_value "
        "OR undefined_object THEN RAISE NOTICE 'column compression left as it was'; END $$"
    )


def upgrade() -> None:
    _set_compression("lz4")


def downgrade() -> None:
    _set_compression("pglz")
