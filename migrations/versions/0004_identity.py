"""Work identity beyond the DOI: title keys, secondary identifiers, link reasons, conflicts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29

* ``source_records.title_key`` (indexed): the title blocking key of the record;
  ``link_reason``: why the record is in its work; ``home_work_id``: the last DOI-less
  work the record formed, revived when it is DOI-less again.
* ``record_identifiers``: the secondary identifiers (scopus_eid, pmid, arxiv, oai) of
  live records, indexed by (scheme, value).
* ``identity_conflicts``: records sharing an identifier with a record of another DOI.

Existing rows keep NULL keys and reasons until they change or ``harvester reprocess``
runs (which fills them from the stored normalized records).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("source_records", sa.Column("title_key", sa.String(length=255), nullable=True))
    op.add_column("source_records", sa.Column("link_reason", sa.Text(), nullable=True))
    op.add_column("source_records", sa.Column("home_work_id", ID, nullable=True))
    op.create_index("ix_source_records_title_key", "source_records", ["title_key"])

    op.create_table(
        "record_identifiers",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_record_identifiers"),
    )
    op.create_index(
        "ix_record_identifiers_scheme_value_source", "record_identifiers", ["scheme", "value", "source"]
    )
    op.create_index("ix_record_identifiers_source_key", "record_identifiers", ["source", "key"])

    op.create_table(
        "identity_conflicts",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=2048), nullable=False),
        sa.Column("scheme", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=512), nullable=False),
        sa.Column("record_doi", sa.String(length=512), nullable=True),
        sa.Column("other_source", sa.String(length=64), nullable=False),
        sa.Column("other_key", sa.String(length=2048), nullable=False),
        sa.Column("other_doi", sa.String(length=512), nullable=True),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_conflicts"),
    )
    op.create_index("ix_identity_conflicts_scheme_value", "identity_conflicts", ["scheme", "value"])


def downgrade() -> None:
    op.drop_index("ix_identity_conflicts_scheme_value", table_name="identity_conflicts")
    op.drop_table("identity_conflicts")
    op.drop_index("ix_record_identifiers_source_key", table_name="record_identifiers")
    op.drop_index("ix_record_identifiers_scheme_value_source", table_name="record_identifiers")
    op.drop_table("record_identifiers")
    op.drop_index("ix_source_records_title_key", table_name="source_records")
    with op.batch_alter_table("source_records") as batch:
        batch.drop_column("home_work_id")
        batch.drop_column("link_reason")
        batch.drop_column("title_key")
