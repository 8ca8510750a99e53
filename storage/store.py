"""The store: one transaction per page of records, checkpoint included.

:meth:`Store.commit_page` is the heart of the daemon's guarantee. In ONE transaction it

1. checks that this process still holds the source's lease (fencing: a process that
   lost its lease, e.g. after a long pause, can no longer write for that source), and
   on PostgreSQL takes the identity lock (pages are linked one at a time, as on SQLite);
2. upserts the page's source records (new, changed; unchanged ones are not written,
   older versions than the stored one are ignored);
3. links each record to its work (:mod:`harvester.identity`): the work of its DOI
   (created on first sight, revived if it was a tombstone); for a DOI-less record the
   DOI work it shares an identifier (or, with ``merge.match_without_doi``, a title) with,
   else a DOI-less work of its own or with its matches. Linking also re-decides the
   stored records the page's records can pull or push (a DOI-less copy that arrived
   before its DOI record moves into the DOI work now), with one indexed lookup per kind
   of key per round, and stores why each record is where it is (``link_reason``);
4. recomputes every work the page touched from ALL its live records
   (:func:`harvester.merge.merge`), writing only works whose result changed; a work
   left without live records becomes a tombstone (``merged_into`` the work its records
   moved to, if they moved);
5. keeps the secondary identifiers and identity conflicts of the page's records;
6. quarantines the records that failed normalization;
7. advances the source's checkpoint and the run's counters.

A crash before the commit loses the page and its checkpoint together, so the page is
fetched again; a crash after it loses nothing. Re-fetched pages are no-ops (raw hashes
match). Statements are bulk (executemany / IN lists) and run on SQLAlchemy Core rows,
not ORM objects: the per-record cost must stay flat for large harvests.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import socket
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

import structlog
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from harvester import identity
from harvester.identity import SOURCE_SCOPED, IdKey, Profile, Ref
from harvester.merge import EXPORT_KEYS, merge
from harvester.record import Record
from storage.db import json_text, make_engine, upgrade
from storage.models import (
    Checkpoint,
    HarvestRun,
    IdentityConflict,
    QuarantineItem,
    RecordIdentifier,
    RecordUpdate,
    SourceLease,
    SourceRecord,
    Work,
)

__all__ = [
    "Incoming",
    "LeaseLost",
    "PageStats",
    "Quarantined",
    "Store",
    "default_owner",
    "raw_hash",
    "utcnow",
]

W = cast(Table, Work.__table__)
SR = cast(Table, SourceRecord.__table__)
CP = cast(Table, Checkpoint.__table__)
RUN = cast(Table, HarvestRun.__table__)
Q = cast(Table, QuarantineItem.__table__)
RU = cast(Table, RecordUpdate.__table__)
LEASE = cast(Table, SourceLease.__table__)
RI = cast(Table, RecordIdentifier.__table__)
IC = cast(Table, IdentityConflict.__table__)

log = structlog.get_logger()

#: What identity reads of a stored record (and of its work), without the payloads.
_LIGHT = (
    SR.c.id,
    SR.c.source,
    SR.c.key,
    SR.c.work_id,
    SR.c.doi,
    SR.c.deleted,
    SR.c.title_key,
    SR.c.link_reason,
    SR.c.home_work_id,
    # A correlated scalar subquery, not an outer join: the planner must not choose to scan
    # (or hash) all of ``works`` for the few records a page looks up — PostgreSQL did, on
    # freshly filled tables without statistics, and the page cost grew with the store.
    select(W.c.doi).where(W.c.id == SR.c.work_id).correlate(SR).scalar_subquery().label("work_doi"),
)
#: Values per identity lookup statement: one statement for a whole page (SQLite >= 3.32
#: takes 32766 parameters, PostgreSQL 65535); the older paths keep 900.
_LOOKUP_CHUNK = 4000
#: Columns an upsert of a source record overwrites.
_UPSERTED = (
    "work_id",
    "doi",
    "datestamp",
    "deleted",
    "raw",
    "raw_hash",
    "normalized",
    "updated_at",
    "title_key",
    "link_reason",
    "home_work_id",
)

RUN_COUNTERS = ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "pages")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def raw_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="surrogatepass")).hexdigest()


def default_owner() -> str:
    """This process, as lease owner and run owner: host, pid and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def owner_is_dead(owner: str) -> bool:
    """True when ``owner`` names a process of THIS host that no longer exists."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class LeaseLost(Exception):
    """This process no longer holds the source's lease; its page was rolled back."""


@dataclass(frozen=True)
class Incoming:
    """A normalized record with the raw payload it came from (and its stored JSON form)."""

    record: Record
    raw: str
    raw_hash: str
    normalized: dict[str, Any]

    @classmethod
    def of(cls, record: Record, raw: str) -> Incoming:
        return cls(record, raw, raw_hash(raw), record.to_json())


@dataclass(frozen=True)
class Quarantined:
    """A raw record that failed normalization, and why."""

    raw: str
    reason: str
    key: str | None = None


@dataclass
class PageStats:
    """Outcome counters of one page (and, summed, of one run)."""

    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    pages: int = 0
    works_created: int = 0
    works_updated: int = 0
    works_deleted: int = 0

    def __iadd__(self, other: PageStats) -> PageStats:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Change:
    incoming: Incoming
    existing: Any  # Row or None
    work_id: int | None = None
    kind: str = "inserted"
    reason: str | None = None
    home: int | None = None
    title_key: str | None = None


@dataclass
class _Node:
    """A record whose work is decided in this page: the page's own, or one of the region."""

    ref: Ref
    row: Any  # the stored row (_LIGHT columns), None for a record not stored yet
    profile: Profile | None  # None: not live after this page
    change: _Change | None = None  # the page's record (changed, or kept when reprocessing)
    upsert: bool = False  # written by the page's upsert (else by an UPDATE when its link changes)


@dataclass
class _Plan:
    """What linking decided for a page, to be written."""

    created: set[int] = field(default_factory=set)  # works created already merged
    affected: set[int] = field(default_factory=set)  # works to merge again
    moved: dict[str, int] = field(default_factory=dict)  # page-source key -> new work (stored records)
    updates: list[dict[str, Any]] = field(default_factory=list)  # stored records whose link changes
    identifiers: dict[str, tuple[bool, set[tuple[str, str]]]] = field(default_factory=dict)
    departures: dict[int, Counter[int]] = field(default_factory=dict)  # old work -> new works of movers
    merged_into: dict[int, int] = field(default_factory=dict)
    conflicts: list[tuple[str, str, str, str, str | None, str, str, str | None]] = field(default_factory=list)
    touched_ids: set[IdKey] = field(default_factory=set)  # identifiers whose conflicts are recomputed
    changed_refs: set[Ref] = field(default_factory=set)  # the page's changed records


@dataclass
class Store:
    """All database access of the daemon. Thread-safe (one engine, a connection per call)."""

    engine: Engine
    precedence: Sequence[str] = ()
    #: ``merge.match_without_doi``: title matching of DOI-less records (harvester.identity).
    match_without_doi: bool = False
    _dialect: str = field(init=False)
    _statements: dict[Any, Any] = field(init=False, default_factory=dict, repr=False)
    #: PostgreSQL: rows this store added since it last refreshed the planner statistics,
    #: and the size of ``source_records`` then (see :meth:`_keep_statistics_fresh`).
    _grown: int = field(init=False, default=0, repr=False)
    _analyzed_size: int = field(init=False, default=0, repr=False)
    _analyze_lock: threading.Lock = field(init=False, default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._dialect = self.engine.dialect.name

    @classmethod
    def open(
        cls,
        url: str,
        precedence: Sequence[str] = (),
        *,
        match_without_doi: bool = False,
        busy_timeout: float | None = None,
    ) -> Store:
        return cls(make_engine(url, busy_timeout=busy_timeout), tuple(precedence), match_without_doi)

    def upgrade(self) -> str | None:
        return upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def insert(self, table: Any) -> Insert:
        """The dialect's INSERT (with ``on_conflict_do_*``) for one of the store's tables."""
        if self._dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _read(self) -> Any:
        return self.engine.connect().execution_options(sqlite_readonly=True)

    # -- leases -------------------------------------------------------------------------

    def acquire_lease(self, source: str, owner: str, ttl: float) -> bool:
        """Take the source's lease if it is free, expired, ours, or held by a dead process of this host.

        Across hosts a lease is only taken over once it expires (``ttl`` after its last
        renewal); on the same host a process killed with SIGKILL is recognised at once by
        its pid, so a restarted harvester does not wait for the expiry.
        """
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl)
        with self.engine.begin() as conn:
            stmt = self.insert(LEASE).values(source=source, owner=owner, acquired_at=now, expires_at=expires)
            stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=[LEASE.c.source],
                set_={"owner": owner, "acquired_at": now, "expires_at": expires},
                where=or_(LEASE.c.expires_at < now, LEASE.c.owner == owner),
            )
            conn.execute(stmt)
            holder = conn.execute(select(LEASE.c.owner).where(LEASE.c.source == source)).scalar_one()
            if holder != owner and owner_is_dead(holder):
                conn.execute(
                    update(LEASE)
                    .where(LEASE.c.source == source, LEASE.c.owner == holder)
                    .values(owner=owner, acquired_at=now, expires_at=expires)
                )
                holder = conn.execute(select(LEASE.c.owner).where(LEASE.c.source == source)).scalar_one()
        return bool(holder == owner)

    def renew_lease(self, source: str, owner: str, ttl: float) -> bool:
        with self.engine.begin() as conn:
            return self._renew(conn, source, owner, ttl)

    def _renew(self, conn: Connection, source: str, owner: str, ttl: float) -> bool:
        now = utcnow()
        result = conn.execute(
            update(LEASE)
            .where(LEASE.c.source == source, LEASE.c.owner == owner)
            .values(expires_at=now + dt.timedelta(seconds=ttl))
        )
        return bool(result.rowcount)

    def release_lease(self, source: str, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(LEASE.delete().where(LEASE.c.source == source, LEASE.c.owner == owner))

    # -- runs and checkpoints --------------------------------------------------------

    def start_run(self, source: str, owner: str) -> str:
        run_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(
                RUN.insert().values(
                    run_id=run_id,
                    source=source,
                    started_at=utcnow(),
                    outcome="running",
                    owner=owner,
                    **dict.fromkeys(RUN_COUNTERS, 0),
                )
            )
        return run_id

    def finish_run(self, run_id: str, outcome: str, error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(RUN)
                .where(RUN.c.run_id == run_id)
                .values(outcome=outcome, finished_at=utcnow(), error=error)
            )

    def mark_stale_runs_interrupted(self) -> int:
        """Runs left ``running`` by a dead process (its lease expired or is gone)."""
        now = utcnow()
        with self.engine.begin() as conn:
            live = [
                o
                for o in conn.execute(select(LEASE.c.owner).where(LEASE.c.expires_at >= now)).scalars()
                if not owner_is_dead(o)
            ]
            result = conn.execute(
                update(RUN)
                .where(RUN.c.outcome == "running", or_(RUN.c.owner.is_(None), RUN.c.owner.not_in(live)))
                .values(outcome="interrupted", finished_at=now, error="the process running it stopped")
            )
            return int(result.rowcount or 0)

    def load_checkpoint(self, source: str) -> dict[str, Any] | None:
        with self._read() as conn:
            state = conn.execute(select(CP.c.state).where(CP.c.source == source)).scalar_one_or_none()
        return dict(state) if state is not None else None

    def save_checkpoint(self, source: str, state: Mapping[str, Any]) -> None:
        with self.engine.begin() as conn:
            self._write_checkpoint(conn, source, state, utcnow())

    def _write_checkpoint(
        self, conn: Connection, source: str, state: Mapping[str, Any], now: dt.datetime
    ) -> None:
        stmt = self.insert(CP).values(source=source, state=dict(state), updated_at=now)
        conn.execute(
            stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=[CP.c.source], set_={"state": dict(state), "updated_at": now}
            )
        )

    # -- the record path -------------------------------------------------------------

    def commit_page(
        self,
        source: str,
        records: Sequence[Incoming],
        *,
        run_id: str,
        owner: str,
        quarantined: Sequence[Quarantined] = (),
        checkpoint: Mapping[str, Any] | None = None,
        lease_ttl: float = 300.0,
        reprocess: bool = False,
    ) -> PageStats:
        """Store one page and advance the checkpoint, atomically (see the module docstring).

        ``reprocess=True`` is for stored raw payloads normalized again (``harvester
        reprocess``): a record is unchanged when its normalized form is (the raw is the
        same anyway), the stored datestamp does not protect it, every live record of the
        page has its work decided again and its work recomputed (only what changed is
        written), and a quarantined record already in quarantine is not counted again.
        """
        now = utcnow()
        stats = PageStats(fetched=len(records) + len(quarantined), quarantined=len(quarantined), pages=1)
        with self.engine.begin() as conn:
            if not self._renew(conn, source, owner, lease_ttl):
                raise LeaseLost(f"lease on source {source!r} lost; page rolled back")
            self._identity_lock(conn)
            latest: dict[str, Incoming] = {}
            for inc in records:
                prev = latest.get(inc.record.key)
                if prev is None or _stamp(inc.record) >= _stamp(prev.record):
                    latest[inc.record.key] = inc
            stats.unchanged += len(records) - len(latest)
            existing = self._existing(conn, source, list(latest), with_normalized=reprocess)

            changes: list[_Change] = []
            kept: list[_Change] = []  # live records stored as they are (their work may still change)
            for key, inc in latest.items():
                ex = existing.get(key)
                if ex is not None:
                    if reprocess:
                        same, stale = ex.normalized == inc.normalized, False
                    else:
                        same = ex.raw_hash == inc.raw_hash
                        stale = bool(
                            ex.datestamp and inc.record.datestamp and inc.record.datestamp < ex.datestamp
                        )
                    if same or stale:
                        stats.unchanged += 1
                        if same and not ex.deleted:
                            kept.append(_Change(inc, ex, ex.work_id, "unchanged"))
                        continue
                changes.append(_Change(inc, ex))

            noticed = self._write_notices(conn, source, changes)
            plan = self._link(conn, source, changes, kept if reprocess else [], now, stats)
            settled: dict[str, tuple[int | None, Record]] = {}  # key -> (work, record): live after this page
            for ch in kept:
                key = ch.incoming.record.key
                settled[key] = (plan.moved.get(key, ch.existing.work_id), ch.incoming.record)
            rows = []
            for ch in changes:
                rec = ch.incoming.record
                if not rec.deleted:
                    settled[rec.key] = (ch.work_id, rec)
                doi = rec.doi if not rec.deleted else (ch.existing.doi if ch.existing is not None else None)
                rows.append(
                    {
                        "source": source,
                        "key": rec.key,
                        "work_id": ch.work_id,
                        "doi": doi,
                        "datestamp": rec.datestamp,
                        "deleted": rec.deleted,
                        "raw": ch.incoming.raw,
                        "raw_hash": ch.incoming.raw_hash,
                        "normalized": ch.incoming.normalized,
                        "first_seen": now,
                        "updated_at": now,
                        "title_key": ch.title_key,
                        "link_reason": ch.reason,
                        "home_work_id": ch.home,
                    }
                )
                setattr(stats, ch.kind, getattr(stats, ch.kind) + 1)
            if rows:
                self._bulk_insert(conn, SR, rows, conflict=("source", "key"), update=_UPSERTED)
            self._write_links(conn, source, plan, now)
            affected = plan.affected - plan.created  # created works were merged from this page already
            if noticed:  # works whose editorial notices came, changed or went in this page
                for chunk in _chunks(sorted(noticed), 900):
                    affected.update(conn.execute(select(W.c.id).where(W.c.doi.in_(chunk))).scalars())
            if affected:
                in_memory = {k: v for k, v in settled.items() if v[0] in affected}
                self._recompute(conn, affected, source, in_memory, now, stats, plan.merged_into)
            if quarantined:
                self._quarantine(conn, source, run_id, quarantined, now, count_again=not reprocess)
            if checkpoint is not None:
                self._write_checkpoint(conn, source, checkpoint, now)
            conn.execute(
                update(RUN)
                .where(RUN.c.run_id == run_id)
                .values({c: RUN.c[c] + getattr(stats, c) for c in RUN_COUNTERS})
            )
        self._keep_statistics_fresh(stats.inserted)
        return stats

    #: PostgreSQL: refresh the statistics once this many rows were added (at the least).
    ANALYZE_AFTER = 2000

    def _keep_statistics_fresh(self, added: int) -> None:
        """PostgreSQL: ANALYZE the record path's tables each time a harvest has doubled them.

        The identity lookups' plans depend on the statistics. Autovacuum refreshes them at
        most once a minute and only after 10% growth; during a first harvest the tables
        grow far faster, and the planner, still believing them nearly empty, scanned every
        identifier of a scheme for each lookup: 3.6 ms at the start of a 30,000-record
        harvest, 16.6 ms at its end, the per-page cost growing with the store. ANALYZE
        samples a bounded number of rows (tenths of a second) and runs after the page's
        transaction, outside it; a failure is logged and never undoes the page.
        """
        if self._dialect != "postgresql" or added <= 0:
            return
        with self._analyze_lock:
            self._grown += added
            if self._grown < max(self.ANALYZE_AFTER, self._analyzed_size):
                return
            self._grown = 0
        started = time.monotonic()
        try:
            with self.engine.begin() as conn:
                conn.execute(text("ANALYZE source_records, record_identifiers, works"))
                size = conn.execute(
                    text("SELECT reltuples FROM pg_class WHERE oid = CAST('source_records' AS regclass)")
                ).scalar()
        except Exception as exc:  # noqa: BLE001 - statistics are an optimization; the page is stored
            log.warning("store.analyze_failed", error=f"{type(exc).__name__}: {exc}")
            return
        self._analyzed_size = max(int(size or 0), 0)
        log.info("store.analyzed", rows=self._analyzed_size, seconds=round(time.monotonic() - started, 3))

    def _bulk_insert(
        self,
        conn: Connection,
        table: Table,
        rows: Sequence[Mapping[str, Any]],
        *,
        conflict: Sequence[str] = (),
        update: Sequence[str] = (),
        returning: Sequence[str] = (),
    ) -> list[Any]:
        """INSERT ``rows`` (all with the same keys) into ``table`` in one go; the RETURNING rows.

        With ``conflict`` columns, a row that meets a stored one updates its ``update``
        columns, or (no ``update``) is skipped. The rows must not conflict among themselves.

        SQLite: one executemany, which runs in-process. PostgreSQL: ONE statement with one
        array parameter per column (``INSERT ... SELECT * FROM unnest(...)``): psycopg's
        executemany sends an INSERT per row, each parsed and planned by the server, and a
        multi-row VALUES list makes thousands of parameters that psycopg and SQLAlchemy
        handle one by one in Python (text-format escaping of the payloads alone took 20 ms
        a page). Measured on pages of 100 real records, the records' upsert went from 25 to
        13 ms a page and the whole PostgreSQL commit from about 700 to 410 us a record.
        """
        if not rows:
            return []
        columns = list(rows[0])
        if self._dialect != "postgresql":
            stmt: Any = self.insert(table)
            if conflict and update:
                excluded = stmt.excluded
                stmt = stmt.on_conflict_do_update(
                    index_elements=list(conflict), set_={c: excluded[c] for c in update}
                )
            elif conflict:
                stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict))
            if returning:
                return list(conn.execute(stmt.returning(*(table.c[c] for c in returning)), list(rows)))
            conn.execute(stmt, list(rows))
            return []
        sql = self._cached(
            ("unnest", table.name, tuple(columns), tuple(conflict), tuple(update), tuple(returning)),
            functools.partial(_unnest_sql, conn.dialect, table, columns, conflict, update, returning),
        )
        result = conn.exec_driver_sql(sql, _arrays(table, columns, rows))
        return list(result) if returning else []

    def _update_by_id(
        self, conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """``UPDATE table SET columns WHERE id = b_id`` for all ``rows``, in one go.

        SQLite: one executemany. PostgreSQL: ONE ``UPDATE ... FROM unnest(...)`` with binary
        array parameters, for the reasons :meth:`_bulk_insert` gives (a re-harvest updates
        every changed record's work). Rows with the same ``b_id``: the last one wins, as
        it does in an executemany.
        """
        if not rows:
            return
        if self._dialect != "postgresql":
            values: dict[str, Any] = {c: bindparam(c) for c in columns}
            conn.execute(update(table).where(table.c.id == bindparam("b_id")).values(values), list(rows))
            return
        last = list({row["b_id"]: row for row in rows}.values())
        sql = self._cached(
            ("unnest-update", table.name, tuple(columns)),
            functools.partial(_unnest_update_sql, conn.dialect, table, columns),
        )
        conn.exec_driver_sql(sql, _arrays(table, ["b_id", *columns], last))

    def _identity_lock(self, conn: Connection) -> None:
        """Serialize the record path on PostgreSQL (SQLite's BEGIN IMMEDIATE already does).

        Linking reads the records a page's records match and decides from them; two
        pages of different sources deciding at once from the same snapshot could both
        miss each other's new records. Taken right after the lease check, before any
        other row is locked, so it cannot take part in a deadlock.
        """
        if self._dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(7283002)"))

    def _existing(
        self, conn: Connection, source: str, keys: list[str], *, with_normalized: bool = False
    ) -> dict[str, Any]:
        columns = [*_LIGHT, SR.c.raw_hash, SR.c.datestamp]
        if with_normalized:
            columns.append(SR.c.normalized)
        out: dict[str, Any] = {}
        for chunk in _chunks(keys, 900):
            stmt = select(*columns).select_from(SR).where(SR.c.source == source, SR.c.key.in_(chunk))
            for row in conn.execute(stmt):
                out[row.key] = row
        return out

    def _write_notices(self, conn: Connection, source: str, changes: list[_Change]) -> set[str]:
        """Keep ``record_updates`` in step with the changed records; return the DOIs concerned."""
        keys = [ch.incoming.record.key for ch in changes]
        targets: set[str] = set()
        for chunk in _chunks(keys, 900):
            where = and_(RU.c.source == source, RU.c.key.in_(chunk))
            targets.update(conn.execute(select(RU.c.target_doi).where(where)).scalars())
            if targets:
                conn.execute(RU.delete().where(where))
        rows = [
            {"source": source, "key": ch.incoming.record.key, "kind": kind, "target_doi": target}
            for ch in changes
            if not ch.incoming.record.deleted
            for kind, target in ch.incoming.record.updates
        ]
        if rows:
            conn.execute(RU.insert(), rows)
            targets.update(r["target_doi"] for r in rows)
        return targets

    def _notices(self, conn: Connection, dois: Sequence[str]) -> dict[str, list[tuple[str, str, str]]]:
        """Live editorial notices pointing at these DOIs: doi -> [(kind, notice doi or key, source)]."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        for chunk in _chunks(list(dois), 900):
            stmt = (
                select(RU.c.target_doi, RU.c.kind, SR.c.doi, SR.c.key, SR.c.source)
                .join(SR, and_(SR.c.source == RU.c.source, SR.c.key == RU.c.key))
                .where(RU.c.target_doi.in_(chunk), SR.c.deleted == false())
            )
            for target, kind, doi, key, src in conn.execute(stmt):
                out.setdefault(target, []).append((kind, doi or key, src))
        return out

    # -- identity: which work each record belongs to (harvester.identity) ---------------

    def _link(
        self,
        conn: Connection,
        source: str,
        changes: list[_Change],
        kept: list[_Change],
        now: dt.datetime,
        stats: PageStats,
    ) -> _Plan:
        """Decide the work of every record whose decision this page can change.

        ``changes`` are the page's new, changed and deleted records, ``kept`` (reprocess
        only) its unchanged live records, decided again too. The region decided is closed
        as :mod:`harvester.identity` requires: the DOI-less records linked (by identifier,
        or by title when enabled) to the old or new version of a decided record, again
        for those, and every live member of a DOI-less work one of them is in or came
        from. Each round is one indexed lookup per kind of key plus one read of the new
        records' normalized forms, whatever the page size. The works created are merged
        right away when this page's records are all they hold.
        """
        plan = _Plan()
        use_titles = self.match_without_doi
        decided: list[_Node] = []
        for ch in changes:
            rec, ex = ch.incoming.record, ch.existing
            if ex is None:
                ch.kind = "deleted" if rec.deleted else "inserted"
            elif rec.deleted:
                ch.kind = "unchanged" if ex.deleted else "deleted"
            else:
                ch.kind = "updated"
            live = None if rec.deleted else identity.profile(source, rec, titles=use_titles)
            decided.append(_Node((source, rec.key), ex, live, ch, upsert=True))
        for ch in kept:
            rec = ch.incoming.record
            decided.append(
                _Node((source, rec.key), ch.existing, identity.profile(source, rec, titles=use_titles), ch)
            )

        old_ids = self._identifiers_of(conn, source, [n.ref[1] for n in decided if n.row is not None])
        titles: set[str] = set()
        idents: set[IdKey] = set()
        members: dict[Ref, _Node] = {}
        anchors: dict[Ref, Profile] = {}
        anchor_work: dict[str, int] = {}
        pending: set[int] = set()  # DOI-less works whose live members all join the region
        for n in decided:
            row, p = n.row, n.profile
            if use_titles:
                titles.update(k for k in (row.title_key if row is not None else None, p and p.title_key) if k)
            idents.update(_scoped(s, v, source) for s, v in old_ids.get(n.ref[1], ()))
            if row is not None and row.work_id is not None and row.work_doi is None:
                pending.add(row.work_id)
            if p is None:
                continue
            idents.update(p.id_keys())
            if p.doi:
                anchors[n.ref] = p
            else:
                members[n.ref] = n
                if row is not None and row.home_work_id is not None:
                    pending.add(row.home_work_id)
        decided_refs = {n.ref for n in decided}
        # the decided records' stored rows are found too and left out: fetch that many more
        stale_ids: Counter[IdKey] = Counter(_scoped(s, v, source) for ids in old_ids.values() for s, v in ids)
        stale_titles: Counter[str] = Counter(
            n.row.title_key for n in decided if n.row is not None and n.row.title_key
        )
        spare_ids = max(stale_ids.values(), default=0)
        spare_titles = max(stale_titles.values(), default=0)
        now_ids: Counter[IdKey] = Counter(i for n in decided if n.profile for i in n.profile.id_keys())
        now_titles: Counter[str] = Counter(
            n.profile.title_key for n in decided if n.profile and n.profile.title_key
        )
        id_holders: dict[IdKey, list[Any]] = {}  # stored live holders, the decided records left out
        junk_ids: set[IdKey] = set()
        junk_titles: set[str] = set()
        long_ago: set[IdKey] = set()  # junk already before this page (so no conflict rows either)
        anchor_rows: dict[Ref, Any] = {}
        anchor_ids: dict[Ref, set[tuple[str, str]]] = defaultdict(set)
        by_title: set[Ref] = set()  # DOI records found by title: their whole profile is read
        looked_titles: set[str] = set()
        looked_ids: set[IdKey] = set()
        loaded: set[int] = set()
        while True:
            titles -= looked_titles
            idents -= looked_ids
            works = pending - loaded
            looked_titles |= titles
            looked_ids |= idents
            loaded |= works
            fresh: dict[int, Any] = {}
            # values the page alone holds too often are junk too (no stored holder is found for them)
            junk_titles.update(t for t in titles if now_titles[t] > identity.MAX_TITLE_HOLDERS)
            junk_ids.update(i for i in idents if now_ids[i] > identity.MAX_ID_HOLDERS)
            for title, found in self._records_by_title(conn, titles, spare_titles).items():
                if found[0].holders > len(found):  # generic before this page and after it: no edges
                    junk_titles.add(title)
                    continue
                rows = [r for r in found if (r.source, r.key) not in decided_refs]
                generic = len(rows) + now_titles[title] > identity.MAX_TITLE_HOLDERS
                if generic:  # maybe only now: the records it linked are decided again
                    junk_titles.add(title)
                for row in rows:
                    if not row.doi:
                        fresh.setdefault(row.id, row)
                    elif not generic:
                        anchor_rows[(row.source, row.key)] = row
                        by_title.add((row.source, row.key))
            for ident, found in self._records_by_identifier(conn, idents, spare_ids).items():
                if found[0].holders > len(found):  # junk before this page and after it: no edges, no rows
                    junk_ids.add(ident)
                    long_ago.add(ident)
                    continue
                rows = [r for r in found if (r.source, r.key) not in decided_refs]
                id_holders[ident] = rows
                junk = len(rows) + now_ids[ident] > identity.MAX_ID_HOLDERS
                if junk:  # maybe only now: the records it linked are decided again
                    junk_ids.add(ident)
                for row in rows:
                    if not row.doi:
                        fresh.setdefault(row.id, row)
                    elif not junk:
                        anchor_rows[(row.source, row.key)] = row
                        anchor_ids[(row.source, row.key)].add(ident[:2])
            for row in self._records_in_works(conn, works):
                fresh.setdefault(row.id, row)
            fresh = {i: r for i, r in fresh.items() if (r.source, r.key) not in members.keys() | decided_refs}
            if not fresh:
                break
            profiles = self._profiles(conn, sorted(fresh), use_titles)
            titles, idents = set(), set()
            for sr_id, row in fresh.items():
                ref = (row.source, row.key)
                p = profiles[sr_id]
                if p.doi:  # a DOI record in a DOI-less work: not expected, but then it is an anchor
                    anchor_rows[ref] = row
                    by_title.add(ref)
                    continue
                members[ref] = _Node(ref, row, p)
                if use_titles and p.title_key:
                    titles.add(p.title_key)
                idents.update(p.id_keys())
                if row.work_id is not None and row.work_doi is None:
                    pending.add(row.work_id)
                if row.home_work_id is not None:
                    pending.add(row.home_work_id)
        # a DOI record met by identifier only needs no payload: the identifiers it shares will do
        whole = self._profiles(
            conn, sorted(anchor_rows[r].id for r in by_title if r not in decided_refs), use_titles
        )
        for ref, row in anchor_rows.items():
            if ref in decided_refs:
                continue
            if row.work_id is not None:
                anchor_work.setdefault(row.doi, row.work_id)
            anchors[ref] = whole.get(row.id) or Profile(
                row.source, row.key, row.doi, None, (), None, frozenset(), frozenset(anchor_ids[ref])
            )

        links = identity.link(
            [n.profile for n in members.values() if n.profile is not None],
            anchors.values(),
            match_without_doi=use_titles,
            junk_ids=junk_ids,
            junk_titles=junk_titles,
        )
        by_doi = self._doi_works(conn, source, decided, links, anchor_work, plan, now, stats)
        by_group = self._group_works(conn, source, members, links, plan, now, stats)

        for n in [*decided, *(m for m in members.values() if m.change is None)]:
            row, p = n.row, n.profile
            old_work = row.work_id if row is not None else None
            home = row.home_work_id if row is not None else None
            if p is None:  # deleted: the record stays linked to its last work
                work, reason = old_work, (row.link_reason if row is not None else None)
            elif p.doi:
                work, reason = by_doi[p.doi], "doi"
            else:
                found_link = links[n.ref]
                if found_link.doi:
                    work = by_doi[found_link.doi]
                else:
                    work = by_group[found_link.group]
                    if home is None or len(found_link.group) == 1:
                        home = work  # the DOI-less work it forms alone (or its first): revived later
                reason = found_link.reason
            if p is not None and not p.doi and links[n.ref].doi and work is not None:
                plan.created.discard(work)  # a new DOI work that DOI-less records join: merge it again
            was_live = row is not None and not row.deleted
            if was_live and p is not None and old_work is not None and work is not None and work != old_work:
                plan.departures.setdefault(old_work, Counter())[work] += 1
            title_key = p.title_key if p is not None else None
            if n.change is None:  # a stored record of the region (any source)
                title_key = row.title_key
            if n.upsert:
                assert n.change is not None
                n.change.work_id, n.change.reason, n.change.home, n.change.title_key = (
                    work,
                    reason,
                    home,
                    title_key,
                )
                plan.affected.update(w for w in (old_work, work) if w is not None)
            else:
                if (work, reason, home, title_key) != (
                    row.work_id,
                    row.link_reason,
                    row.home_work_id,
                    row.title_key,
                ):
                    plan.updates.append(
                        {
                            "b_id": row.id,
                            "work_id": work,
                            "link_reason": reason,
                            "home_work_id": home,
                            "title_key": title_key,
                        }
                    )
                if work != old_work:
                    plan.affected.update(w for w in (old_work, work) if w is not None)
                    if n.ref[0] == source and work is not None:
                        plan.moved[n.ref[1]] = work
                elif n.change is not None and work is not None:  # reprocess: recompute every work
                    plan.affected.add(work)
            if n.change is not None:  # identifiers of the page's records, rewritten when they differ
                held = set(p.identifiers) if p is not None else set()
                if held != old_ids.get(n.ref[1], set()):
                    plan.identifiers[n.ref[1]] = (n.ref[1] in old_ids, held)
        for work, destinations in plan.departures.items():
            plan.merged_into[work] = min(destinations, key=lambda w: (-destinations[w], w))
        plan.conflicts = _conflicts(looked_ids, id_holders, junk_ids, decided)
        plan.touched_ids = _contested(looked_ids - long_ago, id_holders, decided, old_ids, source)
        plan.changed_refs = {n.ref for n in decided if n.upsert}
        return plan

    def _doi_works(
        self,
        conn: Connection,
        source: str,
        decided: list[_Node],
        links: Mapping[Ref, identity.Link],
        anchor_work: Mapping[str, int],
        plan: _Plan,
        now: dt.datetime,
        stats: PageStats,
    ) -> dict[str, int]:
        """The work of each DOI the region's records go to; creates those of new DOIs."""
        new_by_doi: dict[str, list[tuple[str, Record]]] = {}
        for n in decided:
            if n.profile is not None and n.profile.doi and n.change is not None:
                new_by_doi.setdefault(n.profile.doi, []).append((source, n.change.incoming.record))
        wanted = set(new_by_doi) | {found.doi for found in links.values() if found.doi}
        by_doi = {d: anchor_work[d] for d in wanted if d in anchor_work}
        for chunk in _chunks(sorted(wanted - set(by_doi)), 900):
            by_doi.update((d, i) for d, i in conn.execute(select(W.c.doi, W.c.id).where(W.c.doi.in_(chunk))))
        missing = [d for d in sorted(wanted) if d not in by_doi]
        if missing:
            rows = []
            for doi in missing:
                merged = merge(doi, new_by_doi[doi], self.precedence)
                rows.append(_work_row(doi, merged.data, merged.provenance, now))
            noticed = self._notices(conn, missing)  # notices that arrived before their target
            created = self._bulk_insert(conn, W, rows, conflict=("doi",), returning=("id", "doi"))
            for work_id, doi in created:
                by_doi[doi] = work_id
                stats.works_created += 1
                if doi not in noticed:
                    plan.created.add(work_id)
            raced = [d for d in missing if d not in by_doi]  # another process created them meanwhile
            for chunk in _chunks(raced, 900):
                by_doi.update(
                    (d, i) for d, i in conn.execute(select(W.c.doi, W.c.id).where(W.c.doi.in_(chunk)))
                )
        return by_doi

    def _group_works(
        self,
        conn: Connection,
        source: str,
        members: Mapping[Ref, _Node],
        links: Mapping[Ref, identity.Link],
        plan: _Plan,
        now: dt.datetime,
        stats: PageStats,
    ) -> dict[tuple[Ref, ...], int]:
        """A work id for each DOI-less group: an existing DOI-less work of its members, else new.

        Candidates are the DOI-less works the members are in (first) and the members'
        home works (the DOI-less works they last formed, revived), lowest id first; the
        groups choose in the order of their best candidate, so a work that splits keeps
        its id for one part. Groups without a free candidate get a new work.
        """
        groups: dict[tuple[Ref, ...], list[_Node]] = {}
        for ref, found in sorted(links.items()):
            if found.doi is None:
                groups.setdefault(found.group, []).append(members[ref])
        choices = {group: _candidates(nodes) for group, nodes in groups.items()}
        by_group: dict[tuple[Ref, ...], int] = {}
        taken: set[int] = set()
        need_new: list[tuple[Ref, ...]] = []
        for group in sorted(groups, key=lambda g: (choices[g][:1] or [(2, 0)], g)):
            for _, work_id in choices[group]:
                if work_id not in taken:
                    taken.add(work_id)
                    by_group[group] = work_id
                    break
            else:
                need_new.append(group)
        if need_new:
            rows = []
            inline = []
            for group in need_new:
                nodes = groups[group]
                if all(n.row is None and n.change is not None for n in nodes):
                    merged = merge(
                        None, [(source, n.change.incoming.record) for n in nodes if n.change], self.precedence
                    )
                    rows.append(_work_row(None, merged.data, merged.provenance, now))
                    inline.append(True)
                else:  # holds stored records: merged from the store by the recompute
                    rows.append(_work_row(None, {}, {}, now))
                    inline.append(False)
            result = conn.execute(W.insert().returning(W.c.id, sort_by_parameter_order=True), rows)
            for group, merged_now, work_id in zip(need_new, inline, result.scalars().all(), strict=True):
                by_group[group] = work_id
                if merged_now:
                    plan.created.add(work_id)
                else:
                    plan.affected.add(work_id)
            stats.works_created += len(need_new)
        return by_group

    def _identifiers_of(
        self, conn: Connection, source: str, keys: list[str]
    ) -> dict[str, set[tuple[str, str]]]:
        out: dict[str, set[tuple[str, str]]] = {}
        for chunk in _chunks(keys, _LOOKUP_CHUNK):
            stmt = select(RI.c.key, RI.c.scheme, RI.c.value).where(RI.c.source == source, RI.c.key.in_(chunk))
            for key, scheme, value in conn.execute(stmt):
                out.setdefault(key, set()).add((scheme, value))
        return out

    def _records_by_title(self, conn: Connection, keys: set[str], spare: int) -> dict[str, list[Any]]:
        """Live records by title key: all of them when there are at most MAX_TITLE_HOLDERS + 1 +
        ``spare``, else one (its ``holders`` tells how many: the key is generic).

        Counted inside the title index (only live records have a key), so a key held by
        thousands of records costs an index range, not thousands of rows.
        """
        stmt = self._cached("title", self._title_lookup)
        cap = identity.MAX_TITLE_HOLDERS + 1 + spare
        out: dict[str, list[Any]] = {}
        for chunk in _chunks(sorted(keys), _LOOKUP_CHUNK):
            for row in conn.execute(stmt, {"keys": list(chunk), "cap": cap}):
                out.setdefault(row.title_key, []).append(row)
        return out

    @staticmethod
    def _title_lookup() -> Any:
        ranked = (
            select(
                SR.c.id.label("ranked_id"),
                func.row_number().over(partition_by=SR.c.title_key).label("rank"),
                func.count().over(partition_by=SR.c.title_key).label("holders"),
            )
            .where(SR.c.title_key.in_(bindparam("keys", expanding=True)))
            .subquery()
        )
        cap: Any = bindparam("cap")
        return (
            select(*_LIGHT, ranked.c.holders)
            .select_from(ranked.join(SR, SR.c.id == ranked.c.ranked_id))
            .where(or_(ranked.c.holders <= cap, ranked.c.rank == 1), SR.c.deleted == false())
        )

    def _records_by_identifier(
        self, conn: Connection, idents: set[IdKey], spare: int
    ) -> dict[IdKey, list[Any]]:
        """Live records holding each identifier (an OAI one only within its source), like
        :meth:`_records_by_title`: all of them, or one when there are too many."""
        cap = identity.MAX_ID_HOLDERS + 1 + spare
        out: dict[IdKey, list[Any]] = {}
        for chunk in _chunks(sorted(idents), _LOOKUP_CHUNK):
            by_scheme: dict[str, set[str]] = {}
            for scheme, value, _ in chunk:
                by_scheme.setdefault(scheme, set()).add(value)
            schemes = tuple(sorted(by_scheme))
            stmt = self._cached(("ids", schemes), functools.partial(self._identifier_lookup, schemes))
            params: dict[str, Any] = {f"v_{i}": sorted(by_scheme[s]) for i, s in enumerate(schemes)}
            wanted = set(chunk)
            for row in conn.execute(stmt, {**params, "cap": cap}):
                ident = _scoped(row.scheme, row.value, row.source)
                if ident in wanted:
                    out.setdefault(ident, []).append(row)
        return out

    @staticmethod
    def _identifier_lookup(schemes: tuple[str, ...]) -> Any:
        scope = case((RI.c.scheme.in_(sorted(SOURCE_SCOPED)), RI.c.source), else_=literal(""))
        part = (RI.c.scheme, RI.c.value, scope)  # counted inside the (scheme, value, source) index
        ranked = (
            select(
                RI.c.id.label("ranked_id"),
                func.row_number().over(partition_by=part).label("rank"),
                func.count().over(partition_by=part).label("holders"),
            )
            .where(
                or_(
                    *(
                        and_(RI.c.scheme == s, RI.c.value.in_(bindparam(f"v_{i}", expanding=True)))
                        for i, s in enumerate(schemes)
                    )
                )
            )
            .subquery()
        )
        cap: Any = bindparam("cap")
        return (
            select(*_LIGHT, RI.c.scheme, RI.c.value, ranked.c.holders)
            .select_from(
                ranked.join(RI, RI.c.id == ranked.c.ranked_id).join(
                    SR, and_(SR.c.source == RI.c.source, SR.c.key == RI.c.key)
                )
            )
            .where(or_(ranked.c.holders <= cap, ranked.c.rank == 1), SR.c.deleted == false())
        )

    def _cached(self, key: Any, build: Callable[[], Any]) -> Any:
        """A statement built once per store (the lookups run on every page)."""
        stmt = self._statements.get(key)
        if stmt is None:
            stmt = self._statements[key] = build()
        return stmt

    def _records_in_works(self, conn: Connection, work_ids: set[int]) -> list[Any]:
        out: list[Any] = []
        for chunk in _chunks(sorted(work_ids), _LOOKUP_CHUNK):
            stmt = select(*_LIGHT).select_from(SR).where(SR.c.work_id.in_(chunk), SR.c.deleted == false())
            out.extend(conn.execute(stmt))
        return out

    def _profiles(self, conn: Connection, ids: list[int], titles: bool) -> dict[int, Profile]:
        out: dict[int, Profile] = {}
        for chunk in _chunks(ids, _LOOKUP_CHUNK):
            stmt = select(SR.c.id, SR.c.source, SR.c.normalized).where(SR.c.id.in_(chunk))
            for sr_id, src, normalized in conn.execute(stmt):
                out[sr_id] = identity.profile(src, Record.from_json(normalized), titles=titles)
        return out

    def _write_links(self, conn: Connection, source: str, plan: _Plan, now: dt.datetime) -> None:
        """Moves of stored records, the page's identifier rows and identity conflicts."""
        self._update_by_id(
            conn,
            SR,
            ("work_id", "link_reason", "home_work_id", "title_key"),
            sorted(plan.updates, key=lambda u: u["b_id"]),
        )
        stale = sorted(k for k, (had, _) in plan.identifiers.items() if had)
        for chunk in _chunks(stale, 900):
            conn.execute(RI.delete().where(RI.c.source == source, RI.c.key.in_(chunk)))
        rows = [
            {"source": source, "key": key, "scheme": scheme, "value": value}
            for key, (_, idents) in sorted(plan.identifiers.items())
            for scheme, value in sorted(idents)
        ]
        self._bulk_insert(conn, RI, rows)
        self._write_conflicts(conn, plan, now)

    def _write_conflicts(self, conn: Connection, plan: _Plan, now: dt.datetime) -> None:
        """Keep ``identity_conflicts`` right for every identifier this page looked up.

        The rows of an identifier depend on its holders only, and the page knows all of
        them (a value with more holders than the cap is junk and has no rows). A row
        unchanged by the page is not written.
        """
        if not plan.touched_ids:
            return
        stored: dict[tuple[str, str, str, str], Any] = {}
        by_scheme: dict[str, set[str]] = {}
        for scheme, value, _ in plan.touched_ids:
            by_scheme.setdefault(scheme, set()).add(value)
        for scheme, wanted in sorted(by_scheme.items()):
            for chunk in _chunks(sorted(wanted), _LOOKUP_CHUNK):
                stmt = select(IC).where(IC.c.scheme == scheme, IC.c.value.in_(chunk))
                for row in conn.execute(stmt):
                    if _scoped(row.scheme, row.value, row.source) in plan.touched_ids:
                        stored[(row.source, row.key, row.scheme, row.value)] = row
        current = {c[:4]: c for c in plan.conflicts}
        gone = sorted(row.id for k, row in stored.items() if k not in current)
        for chunk in _chunks(gone, 900):
            conn.execute(IC.delete().where(IC.c.id.in_(chunk)))
        changed = []
        rows = []
        for key, c in sorted(current.items()):
            src, k, scheme, value, record_doi, other_source, other_key, other_doi = c
            values = {
                "record_doi": record_doi,
                "other_source": other_source,
                "other_key": other_key,
                "other_doi": other_doi,
            }
            old = stored.get(key)
            if old is not None:
                moved = any(getattr(old, name) != v for name, v in values.items())
                if moved or {(src, k), (other_source, other_key)} & plan.changed_refs:
                    changed.append({"b_id": old.id, **values, "last_seen": now})
                continue
            rows.append({"source": src, "key": k, "scheme": scheme, "value": value, **values})
            log.warning(
                "identity.conflict",
                scheme=scheme,
                value=value,
                record=f"{src}:{k}",
                record_doi=record_doi,
                other=f"{other_source}:{other_key}",
                other_doi=other_doi,
                action="the record stays with its DOI",
            )
        self._update_by_id(
            conn, IC, ("record_doi", "other_source", "other_key", "other_doi", "last_seen"), changed
        )
        if rows:
            conn.execute(IC.insert(), [{**r, "first_seen": now, "last_seen": now} for r in rows])

    def _recompute(
        self,
        conn: Connection,
        work_ids: set[int],
        source: str,
        in_memory: dict[str, tuple[int | None, Record]],
        now: dt.datetime,
        stats: PageStats,
        merged_into: Mapping[int, int] | None = None,
    ) -> None:
        """Merge each work again from all its live records; write the ones that changed.

        A work left without live records becomes a tombstone; ``merged_into`` names the
        work its records moved to, if they did. A tombstone with live records again is
        revived (same id, ``merged_into`` cleared).
        """
        merged_into = merged_into or {}
        contributions: dict[int, list[tuple[str, Record]]] = {w: [] for w in work_ids}
        for work_id, record in in_memory.values():
            if work_id is not None:
                contributions[work_id].append((source, record))
        ids = sorted(work_ids)
        page_keys = list(in_memory)
        current: dict[int, Any] = {}
        for chunk in _chunks(ids, 900):
            others = select(SR.c.work_id, SR.c.source, SR.c.normalized).where(
                SR.c.work_id.in_(chunk), SR.c.deleted == false()
            )
            if page_keys:
                others = others.where(not_(and_(SR.c.source == source, SR.c.key.in_(page_keys))))
            for row in conn.execute(others):
                contributions[row.work_id].append((row.source, Record.from_json(row.normalized)))
            for work in conn.execute(
                select(W.c.id, W.c.doi, W.c.data, W.c.provenance, W.c.deleted, W.c.merged_into).where(
                    W.c.id.in_(chunk)
                )
            ):
                current[work.id] = work
        notices = self._notices(conn, [row.doi for row in current.values() if row.doi])
        updates = []
        for work_id in ids:
            row = current[work_id]
            live = contributions[work_id]
            if not live:
                if not row.deleted:
                    data = dict(row.data) if row.data else {}
                    updates.append(
                        {
                            "b_id": work_id,
                            "data": data,
                            "provenance": row.provenance or {},
                            "deleted": True,
                            "merged_into": merged_into.get(work_id),
                            "updated_at": now,
                        }
                    )
                    stats.works_deleted += 1
                continue
            merged = merge(row.doi, live, self.precedence, notices.get(row.doi, ()))
            if (
                row.deleted
                or row.merged_into is not None
                or merged.data != row.data
                or merged.provenance != row.provenance
            ):
                updates.append(
                    {
                        "b_id": work_id,
                        "data": merged.data,
                        "provenance": merged.provenance,
                        "deleted": False,
                        "merged_into": None,
                        "updated_at": now,
                    }
                )
                stats.works_updated += 1
        self._update_by_id(conn, W, ("data", "provenance", "deleted", "merged_into", "updated_at"), updates)

    def _quarantine(
        self,
        conn: Connection,
        source: str,
        run_id: str,
        items: Sequence[Quarantined],
        now: dt.datetime,
        *,
        count_again: bool = True,
    ) -> None:
        rows = {}
        for item in items:
            h = raw_hash(item.raw)
            rows[h] = {
                "source": source,
                "key": item.key[:2048] if item.key else None,
                "run_id": run_id,
                "reason": item.reason,
                "raw": item.raw,
                "raw_hash": h,
                "seen": 1,
                "first_seen": now,
                "last_seen": now,
            }
        stmt = self.insert(Q)
        excluded = stmt.excluded  # type: ignore[attr-defined]
        if count_again:
            stmt = stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=[Q.c.source, Q.c.raw_hash],
                set_={
                    "seen": Q.c.seen + 1,
                    "last_seen": excluded.last_seen,
                    "run_id": excluded.run_id,
                    "reason": excluded.reason,
                },
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[Q.c.source, Q.c.raw_hash])  # type: ignore[attr-defined]
        conn.execute(stmt, list(rows.values()))

    # -- reads -----------------------------------------------------------------------

    def work_by_doi(self, doi: str) -> dict[str, Any] | None:
        """The work with this (normalized) DOI, with provenance and its source records."""
        return self._work_where(W.c.doi == doi)

    def work_by_id(self, work_id: int) -> dict[str, Any] | None:
        """The work with this id (a tombstone too: ``"deleted": true`` and ``merged_into``)."""
        return self._work_where(W.c.id == work_id)

    def work_of_record(self, source: str, key: str) -> dict[str, Any] | None:
        """The work a source record is linked to (its last one, for a deleted record)."""
        with self._read() as conn:
            work_id = conn.execute(
                select(SR.c.work_id).where(SR.c.source == source, SR.c.key == key)
            ).scalar_one_or_none()
        return None if work_id is None else self.work_by_id(work_id)

    def _work_where(self, condition: Any) -> dict[str, Any] | None:
        """A work as ``show`` prints it: export shape, provenance, records with their reasons."""
        with self._read() as conn:
            row = conn.execute(select(W).where(condition)).one_or_none()
            if row is None:
                return None
            records = conn.execute(
                select(SR.c.source, SR.c.key, SR.c.deleted, SR.c.datestamp, SR.c.link_reason)
                .where(SR.c.work_id == row.id)
                .order_by(SR.c.source, SR.c.key)
            ).all()
        work = _export_shape(row.id, row.data or {"doi": row.doi}, row.deleted)
        if row.deleted and row.merged_into is not None:
            work["merged_into"] = row.merged_into
        work["provenance"] = dict(sorted((row.provenance or {}).items()))
        work["records"] = [
            {
                "source": r.source,
                "key": r.key,
                "deleted": r.deleted,
                "datestamp": _iso(r.datestamp),
                "reason": r.link_reason,
            }
            for r in records
        ]
        return work

    def identity_conflicts(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Record pairs with different DOIs sharing an identifier, most recently seen first."""
        stmt = select(IC).order_by(IC.c.last_seen.desc(), IC.c.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as conn:
            return [
                {
                    "scheme": r.scheme,
                    "value": r.value,
                    "record": {"source": r.source, "key": r.key, "doi": r.record_doi},
                    "other": {"source": r.other_source, "key": r.other_key, "doi": r.other_doi},
                    "first_seen": _iso(r.first_seen),
                    "last_seen": _iso(r.last_seen),
                }
                for r in conn.execute(stmt)
            ]

    def iter_raw(self, source: str, batch: int = 500) -> Iterator[list[tuple[str, str]]]:
        """The stored (key, raw payload) of a source, in key order, in batches (keyset paging)."""
        last: str | None = None
        while True:
            stmt = select(SR.c.key, SR.c.raw).where(SR.c.source == source).order_by(SR.c.key).limit(batch)
            if last is not None:
                stmt = stmt.where(SR.c.key > last)
            with self._read() as conn:
                rows = [(r.key, r.raw) for r in conn.execute(stmt)]
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def record_sources(self) -> list[str]:
        """The sources that have records in the store."""
        with self._read() as conn:
            return list(conn.execute(select(SR.c.source).distinct().order_by(SR.c.source)).scalars())

    def iter_works(
        self,
        *,
        dois: Sequence[str] | None = None,
        source: str | None = None,
        since: dt.datetime | None = None,
        include_deleted: bool = False,
        batch: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Works in id order, streamed in batches (keyset pagination, constant memory)."""
        last_id = 0
        while True:
            stmt = select(W.c.id, W.c.data, W.c.deleted).where(W.c.id > last_id).order_by(W.c.id).limit(batch)
            if not include_deleted:
                stmt = stmt.where(W.c.deleted == false())
            if dois is not None:
                stmt = stmt.where(W.c.doi.in_(list(dois)))
            if since is not None:
                stmt = stmt.where(W.c.updated_at >= since)
            if source is not None:
                stmt = stmt.where(
                    W.c.id.in_(select(SR.c.work_id).where(SR.c.source == source, SR.c.deleted == false()))
                )
            with self._read() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return
            for row in rows:
                if not row.data:
                    continue
                yield _export_shape(row.id, row.data, row.deleted)
            last_id = rows[-1].id

    def status(self) -> dict[str, Any]:
        """Per source: last run, checkpoint, record counts, quarantine; plus work totals."""
        with self._read() as conn:
            last_runs: dict[str, Any] = {}
            latest = select(RUN.c.source, func.max(RUN.c.id).label("id")).group_by(RUN.c.source).subquery()
            for row in conn.execute(select(RUN).join(latest, RUN.c.id == latest.c.id)):
                last_runs[row.source] = _run_dict(row)
            last_ok: dict[str, Any] = dict(
                conn.execute(
                    select(RUN.c.source, func.max(RUN.c.finished_at))
                    .where(RUN.c.outcome == "succeeded")
                    .group_by(RUN.c.source)
                ).all()
            )
            counts: dict[str, dict[str, int]] = {}
            for src, deleted, n in conn.execute(
                select(SR.c.source, SR.c.deleted, func.count()).group_by(SR.c.source, SR.c.deleted)
            ):
                counts.setdefault(src, {"live": 0, "deleted": 0})["deleted" if deleted else "live"] = n
            quarantine = dict(conn.execute(select(Q.c.source, func.count()).group_by(Q.c.source)).all())
            checkpoints = {r.source: r.state for r in conn.execute(select(CP.c.source, CP.c.state))}
            leases = {r.source: r for r in conn.execute(select(LEASE)) if r.expires_at >= utcnow()}
            works_live = conn.execute(
                select(func.count()).select_from(W).where(W.c.deleted == false())
            ).scalar_one()
            works_deleted = conn.execute(
                select(func.count()).select_from(W).where(W.c.deleted.is_(True))
            ).scalar_one()
            with_doi = conn.execute(
                select(func.count()).select_from(W).where(W.c.deleted == false(), W.c.doi.is_not(None))
            ).scalar_one()
        names = sorted(set(last_runs) | set(counts) | set(checkpoints) | set(quarantine))
        return {
            "sources": {
                name: {
                    "last_run": last_runs.get(name),
                    "last_success": _iso(_aware(last_ok.get(name))),
                    "checkpoint": checkpoints.get(name),
                    "records": counts.get(name, {"live": 0, "deleted": 0}),
                    "quarantined": quarantine.get(name, 0),
                    "busy": name in leases,
                }
                for name in names
            },
            "works": {"live": works_live, "with_doi": with_doi, "deleted": works_deleted},
        }

    def last_success(self, source: str) -> dt.datetime | None:
        with self._read() as conn:
            value = conn.execute(
                select(func.max(RUN.c.finished_at)).where(
                    RUN.c.source == source, RUN.c.outcome == "succeeded"
                )
            ).scalar_one_or_none()
        return _aware(value)

    def quarantine_items(self, source: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        stmt = (
            select(Q.c.source, Q.c.key, Q.c.reason, Q.c.seen, Q.c.last_seen)
            .order_by(Q.c.last_seen.desc())
            .limit(limit)
        )
        if source:
            stmt = stmt.where(Q.c.source == source)
        with self._read() as conn:
            return [
                {
                    "source": r.source,
                    "key": r.key,
                    "reason": r.reason,
                    "seen": r.seen,
                    "last_seen": _iso(r.last_seen),
                }
                for r in conn.execute(stmt)
            ]


_LIST_KEYS = frozenset(
    {"authors", "issn", "isbn", "keywords", "subjects", "sources", "updates", "updated_by"}
)


def _export_shape(work_id: int, data: Mapping[str, Any], deleted: bool) -> dict[str, Any]:
    """The contract's work object, keys in contract order (JSONB does not keep order)."""
    work: dict[str, Any] = {"id": work_id}
    for key in EXPORT_KEYS[1:]:
        value = data.get(key)
        if value is None:
            value = [] if key in _LIST_KEYS else ({} if key == "identifiers" else None)
            if key == "retracted":
                value = False
        work[key] = value
    # nested objects too: the same bytes from SQLite and PostgreSQL
    work["authors"] = [{k: a.get(k) for k in _AUTHOR_KEYS} for a in work["authors"]]
    work["subjects"] = [{k: s.get(k) for k in ("scheme", "code", "label")} for s in work["subjects"]]
    if work["citation_count"]:
        work["citation_count"] = {k: work["citation_count"].get(k) for k in ("value", "source", "as_of")}
    work["identifiers"] = dict(sorted(work["identifiers"].items()))
    if deleted:
        work["deleted"] = True
    return work


_AUTHOR_KEYS = ("family", "given", "name", "orcid", "affiliations")


def _work_row(
    doi: str | None, data: dict[str, Any], provenance: dict[str, str], now: dt.datetime
) -> dict[str, Any]:
    return {
        "doi": doi,
        "data": data,
        "provenance": provenance,
        "deleted": False,
        "created_at": now,
        "updated_at": now,
    }


def _scoped(scheme: str, value: str, source: str) -> IdKey:
    return (scheme, value, source if scheme in SOURCE_SCOPED else "")


def _candidates(nodes: Iterable[_Node]) -> list[tuple[int, int]]:
    """Existing work ids a DOI-less group can keep: (0, current DOI-less work), (1, home work)."""
    found: set[tuple[int, int]] = set()
    for n in nodes:
        row = n.row
        if row is None:
            continue
        if row.work_id is not None and row.work_doi is None:
            found.add((0, row.work_id))
        if row.home_work_id is not None:
            found.add((1, row.home_work_id))
    return sorted(found)


def _conflicts(
    touched: set[IdKey], holders: Mapping[IdKey, list[Any]], junk: set[IdKey], decided: Iterable[_Node]
) -> list[tuple[str, str, str, str, str | None, str, str, str | None]]:
    """For each identifier held by records of several DOIs: one row per record whose DOI is
    not the identifier's owner (the smallest DOI), naming the owner's first record."""
    mine: dict[IdKey, list[tuple[Ref, str]]] = defaultdict(list)
    for n in decided:
        if n.profile is not None and n.profile.doi:
            for ident in n.profile.id_keys():
                mine[ident].append((n.ref, n.profile.doi))
    out = []
    for ident in sorted(touched - junk):
        held = [((r.source, r.key), r.doi) for r in holders.get(ident, ()) if r.doi] + mine.get(ident, [])
        dois = {doi for _, doi in held}
        if len(dois) < 2:
            continue
        owner = min(dois)
        first = min(ref for ref, doi in held if doi == owner)
        for ref, doi in sorted(held):
            if doi != owner:
                out.append((ref[0], ref[1], ident[0], ident[1], doi, first[0], first[1], owner))
    return out


def _contested(
    looked: set[IdKey],
    holders: Mapping[IdKey, list[Any]],
    decided: Iterable[_Node],
    old_ids: Mapping[str, set[tuple[str, str]]],
    source: str,
) -> set[IdKey]:
    """The identifiers that may have conflict rows before or after the page: held by records
    of two DOIs then or now (no other identifier has rows, so no other needs reading)."""
    before: dict[IdKey, set[str]] = defaultdict(set)
    after: dict[IdKey, set[str]] = defaultdict(set)
    for ident in looked:
        for row in holders.get(ident, ()):
            if row.doi:
                before[ident].add(row.doi)
                after[ident].add(row.doi)
    for n in decided:
        if n.row is not None and n.row.doi:
            for scheme, value in old_ids.get(n.ref[1], ()):
                before[_scoped(scheme, value, source)].add(n.row.doi)
        if n.profile is not None and n.profile.doi:
            for ident in n.profile.id_keys():
                after[ident].add(n.profile.doi)
    return {i for i in looked if len(before.get(i, ())) > 1 or len(after.get(i, ())) > 1}


def _stamp(record: Record) -> float:
    return record.datestamp.timestamp() if record.datestamp else float("-inf")


def _unnest_sql(
    dialect: Any,
    table: Table,
    columns: Sequence[str],
    conflict: Sequence[str],
    update: Sequence[str],
    returning: Sequence[str],
) -> str:
    """``INSERT INTO table (columns) SELECT * FROM unnest(%(c0)b::type[], ...) ...`` (PostgreSQL)."""
    quote = dialect.identifier_preparer.quote
    # Only the table's own (quoted) names and compiled types go into the text; values are parameters.
    names = ", ".join(map(quote, columns))
    sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT * FROM {_unnest(dialect, table, columns)}"  # noqa: S608
    if conflict:
        sql += f" ON CONFLICT ({', '.join(map(quote, conflict))}) DO "
        if update:
            sql += "UPDATE SET " + ", ".join(f"{quote(c)} = EXCLUDED.{quote(c)}" for c in update)
        else:
            sql += "NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(map(quote, returning))
    return sql


def _unnest_update_sql(dialect: Any, table: Table, columns: Sequence[str]) -> str:
    """``UPDATE table SET c = v.c ... FROM unnest(%(c0)b::bigint[], ...) AS v WHERE id = v.b_id``."""
    quote = dialect.identifier_preparer.quote
    names = ", ".join(["b_id", *(f"v_{i}" for i in range(1, len(columns) + 1))])
    sets = ", ".join(f"{quote(name)} = v.v_{i}" for i, name in enumerate(columns, 1))
    t = quote(table.name)
    arrays = _unnest(dialect, table, ["b_id", *columns])
    return f"UPDATE {t} SET {sets} FROM {arrays} AS v({names}) WHERE {t}.id = v.b_id"  # noqa: S608


def _column(table: Table, name: str) -> Any:
    """The column behind an unnest array; ``b_id`` is the row id of an UPDATE."""
    return table.c.id if name == "b_id" else table.c[name]


def _unnest(dialect: Any, table: Table, columns: Sequence[str]) -> str:
    """``unnest(%(c0)b::type[], %(c1)b::type[], ...)``: one typed array parameter per column.

    The arrays go in psycopg's binary format (``%b``): in text format every element is
    quoted and escaped, which took 20 ms for the raw payloads of one page.
    """
    arrays = (
        f"%(c{i})b::{_column(table, name).type.compile(dialect=dialect)}[]" for i, name in enumerate(columns)
    )
    return f"unnest({', '.join(arrays)})"


def _arrays(table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The parameters of :func:`_unnest`: one list per column, in order.

    JSON documents become JSON text here (orjson), as the engine's serializer makes them.
    """
    params = {}
    for i, name in enumerate(columns):
        values = [row[name] for row in rows]
        if isinstance(_column(table, name).type, JSON):
            values = [None if v is None else json_text(v) for v in values]
        params[f"c{i}"] = values
    return params


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _aware(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite aggregate over a TypeDecorator column returns text
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # type: ignore[no-any-return]
    return value.astimezone(dt.UTC)  # type: ignore[no-any-return]


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def _run_dict(row: Any) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "outcome": row.outcome,
        "error": row.error,
        **{c: getattr(row, c) for c in RUN_COUNTERS},
    }
