"""The store's tables (SQLAlchemy 2 typed models). Alembic migrations must match them.

* ``works``: one row per deduplicated work. ``doi`` is unique (NULL for DOI-less works,
  which are works of their own). ``data`` is the merged work in the export shape (without
  ``id``), ``provenance`` maps each field to the source it came from. A work with no live
  source record left is ``deleted`` (a tombstone: its id never comes back for another
  work), ``merged_into`` points at the work that absorbed it.
* ``source_records``: every record as each source gave it, unique per (source, key):
  the raw payload (the OAI ``<record>`` XML or the JSON object, so ``reprocess`` needs no
  network), its normalized form, the source's datestamp, the deleted flag and the link
  to its work. ``raw_hash`` makes "re-harvesting an unchanged record writes nothing"
  one comparison.
* ``checkpoints``: per source, the harvest position, written in the same transaction as
  the page of records it covers.
* ``harvest_runs``: one row per run with outcome and counters (updated per page).
* ``quarantine``: raw records that failed normalization, with the reason; unique per
  (source, raw_hash) so a bad record seen on every run is one row with a count.
* ``source_leases``: which process is harvesting a source right now (with expiry, so a
  dead process loses it).
* ``record_identifiers``: the secondary identifiers of each live record that make two
  records one publication (``scopus_eid``, ``pmid``, ``arxiv``, ``oai``), indexed by
  (scheme, value) so that a page finds the records sharing them with one index probe.
  ``source_records.title_key`` is the indexed title blocking key, ``link_reason`` why
  the record is in its work, ``home_work_id`` the last DOI-less work it formed (revived
  when it is DOI-less again). See :mod:`harvester.identity`.
* ``identity_conflicts``: records that share a secondary identifier with a record of
  another DOI (the DOI wins; listed by ``harvester status --conflicts``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

__all__ = [
    "ApiQuota",
    "Base",
    "Checkpoint",
    "HarvestRun",
    "IdentityConflict",
    "QuarantineItem",
    "RecordIdentifier",
    "RecordUpdate",
    "SourceLease",
    "SourceRecord",
    "UTCDateTime",
    "Work",
]


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


#: Plain JSON on both databases (migration 0005): never queried inside, written on every page.
JSONType = JSON()
IdType = BigInteger().with_variant(Integer(), "sqlite")


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime(), dict[str, Any]: JSONType}


class Work(Base):
    __tablename__ = "works"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    doi: Mapped[str | None] = mapped_column(String(512), unique=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    merged_into: Mapped[int | None] = mapped_column(IdType, ForeignKey("works.id"))
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime] = mapped_column(index=True)


class SourceRecord(Base):
    __tablename__ = "source_records"
    __table_args__ = (UniqueConstraint("source", "key", name="uq_source_records_source_key"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(2048))
    work_id: Mapped[int | None] = mapped_column(IdType, ForeignKey("works.id"), index=True)
    doi: Mapped[str | None] = mapped_column(String(512), index=True)
    datestamp: Mapped[dt.datetime | None]
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    raw: Mapped[str] = mapped_column(Text)
    raw_hash: Mapped[str] = mapped_column(String(64))
    normalized: Mapped[dict[str, Any]] = mapped_column(JSONType)
    first_seen: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    title_key: Mapped[str | None] = mapped_column(String(255), index=True)
    link_reason: Mapped[str | None] = mapped_column(Text)
    home_work_id: Mapped[int | None] = mapped_column(IdType)


class RecordIdentifier(Base):
    """A secondary identifier of a live source record (for matching; see harvester.identity)."""

    __tablename__ = "record_identifiers"
    __table_args__ = (
        Index("ix_record_identifiers_scheme_value_source", "scheme", "value", "source"),
        Index("ix_record_identifiers_source_key", "source", "key"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(2048))
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(512))


class IdentityConflict(Base):
    """A record sharing an identifier with a record of another DOI: one row per record and
    identifier; ``other_*`` name the identifier's owner (its smallest DOI) and its first record."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (Index("ix_identity_conflicts_scheme_value", "scheme", "value"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(2048))
    scheme: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(512))
    record_doi: Mapped[str | None] = mapped_column(String(512))
    other_source: Mapped[str] = mapped_column(String(64))
    other_key: Mapped[str] = mapped_column(String(2048))
    other_doi: Mapped[str | None] = mapped_column(String(512))
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]


class Checkpoint(Base):
    __tablename__ = "checkpoints"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime]


class HarvestRun(Base):
    __tablename__ = "harvest_runs"
    __table_args__ = (Index("ix_harvest_runs_source_started", "source", "started_at"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), unique=True)
    source: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    pages: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str | None] = mapped_column(String(128))


class QuarantineItem(Base):
    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("source", "raw_hash", name="uq_quarantine_source_hash"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64), index=True)
    key: Mapped[str | None] = mapped_column(String(2048))
    run_id: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    raw: Mapped[str] = mapped_column(Text)
    raw_hash: Mapped[str] = mapped_column(String(64))
    seen: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]


class RecordUpdate(Base):
    """A source record that is an editorial notice about another work (by DOI)."""

    __tablename__ = "record_updates"
    __table_args__ = (
        UniqueConstraint(
            "source", "key", "kind", "target_doi", name="uq_record_updates_source_key_kind_target"
        ),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(2048))
    kind: Mapped[str] = mapped_column(String(32))
    target_doi: Mapped[str] = mapped_column(String(512), index=True)


class ApiQuota(Base):
    """The last quota state an API reported for one key of one source (never the key itself)."""

    __tablename__ = "api_quotas"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    api: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16), primary_key=True)
    quota_limit: Mapped[int | None] = mapped_column(Integer)
    remaining: Mapped[int | None] = mapped_column(Integer)
    reset_at: Mapped[dt.datetime | None]
    exhausted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime]


class SourceLease(Base):
    __tablename__ = "source_leases"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128))
    acquired_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
