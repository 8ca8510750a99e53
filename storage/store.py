"""The store: one transaction per page of records, checkpoint included.

:meth:`Store.commit_page` is the heart of the daemon's guarantee. In ONE transaction it

1. checks that this process still holds the source's lease (fencing: a process that
   lost its lease, e.g. after a long pause, can no longer write for that source);
2. upserts the page's source records (new, changed; unchanged ones are not written,
   older versions than the stored one are ignored);
3. links each record to its work: the work with the record's DOI (created on first
   sight, revived if it was a tombstone), or a work of its own for a DOI-less record;
4. recomputes every work the page touched from ALL its live records
   (:func:`harvester.merge.merge`), writing only works whose result changed;
5. quarantines the records that failed normalization;
6. advances the source's checkpoint and the run's counters.

A crash before the commit loses the page and its checkpoint together, so the page is
fetched again; a crash after it loses nothing. Re-fetched pages are no-ops (raw hashes
match). Statements are bulk (executemany / IN lists) and run on SQLAlchemy Core rows,
not ORM objects: the per-record cost must stay flat for large harvests.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, and_, bindparam, false, func, not_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from harvester.merge import EXPORT_KEYS, merge
from harvester.record import Record
from storage.db import make_engine, upgrade
from storage.models import (
    Checkpoint,
    HarvestRun,
    QuarantineItem,
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


@dataclass
class Store:
    """All database access of the daemon. Thread-safe (one engine, a connection per call)."""

    engine: Engine
    precedence: Sequence[str] = ()
    _dialect: str = field(init=False)

    def __post_init__(self) -> None:
        self._dialect = self.engine.dialect.name

    @classmethod
    def open(cls, url: str, precedence: Sequence[str] = ()) -> Store:
        return cls(make_engine(url), tuple(precedence))

    def upgrade(self) -> str | None:
        return upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def _insert(self, table: Any) -> Insert:
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
            stmt = self._insert(LEASE).values(source=source, owner=owner, acquired_at=now, expires_at=expires)
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
        stmt = self._insert(CP).values(source=source, state=dict(state), updated_at=now)
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
    ) -> PageStats:
        """Store one page and advance the checkpoint, atomically (see the module docstring)."""
        now = utcnow()
        stats = PageStats(fetched=len(records) + len(quarantined), quarantined=len(quarantined), pages=1)
        with self.engine.begin() as conn:
            if not self._renew(conn, source, owner, lease_ttl):
                raise LeaseLost(f"lease on source {source!r} lost; page rolled back")
            latest: dict[str, Incoming] = {}
            for inc in records:
                prev = latest.get(inc.record.key)
                if prev is None or _stamp(inc.record) >= _stamp(prev.record):
                    latest[inc.record.key] = inc
            stats.unchanged += len(records) - len(latest)
            existing = self._existing(conn, source, list(latest))

            changes: list[_Change] = []
            unchanged: dict[str, tuple[int | None, Record]] = {}  # live records that stay as they are
            for key, inc in latest.items():
                ex = existing.get(key)
                if ex is not None and (
                    ex.raw_hash == inc.raw_hash
                    or (ex.datestamp and inc.record.datestamp and inc.record.datestamp < ex.datestamp)
                ):
                    stats.unchanged += 1
                    if ex.raw_hash == inc.raw_hash and not ex.deleted:
                        unchanged[key] = (ex.work_id, inc.record)
                    continue
                changes.append(_Change(inc, ex))

            noticed = self._write_notices(conn, source, changes)
            created = self._assign_works(conn, source, changes, now, stats)
            affected: set[int] = set()
            settled = dict(unchanged)  # key -> (work, record) for live records as stored after this page
            rows = []
            for ch in changes:
                rec = ch.incoming.record
                old_work = ch.existing.work_id if ch.existing is not None else None
                if old_work is not None:
                    affected.add(old_work)
                if ch.work_id is not None:
                    affected.add(ch.work_id)
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
                    }
                )
                setattr(stats, ch.kind, getattr(stats, ch.kind) + 1)
            if rows:
                stmt = self._insert(SR)
                excluded = stmt.excluded  # type: ignore[attr-defined]
                conn.execute(
                    stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                        index_elements=[SR.c.source, SR.c.key],
                        set_={
                            c: excluded[c]
                            for c in (
                                "work_id",
                                "doi",
                                "datestamp",
                                "deleted",
                                "raw",
                                "raw_hash",
                                "normalized",
                                "updated_at",
                            )
                        },
                    ),
                    rows,
                )
            affected -= created  # merged from this page's records when they were inserted
            if noticed:  # works whose editorial notices came, changed or went in this page
                for chunk in _chunks(sorted(noticed), 900):
                    affected.update(conn.execute(select(W.c.id).where(W.c.doi.in_(chunk))).scalars())
            if affected:
                in_memory = {k: v for k, v in settled.items() if v[0] in affected}
                self._recompute(conn, affected, source, in_memory, now, stats)
            if quarantined:
                self._quarantine(conn, source, run_id, quarantined, now)
            if checkpoint is not None:
                self._write_checkpoint(conn, source, checkpoint, now)
            conn.execute(
                update(RUN)
                .where(RUN.c.run_id == run_id)
                .values({c: RUN.c[c] + getattr(stats, c) for c in RUN_COUNTERS})
            )
        return stats

    def _existing(self, conn: Connection, source: str, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for chunk in _chunks(keys, 900):
            for row in conn.execute(
                select(SR.c.key, SR.c.raw_hash, SR.c.work_id, SR.c.doi, SR.c.deleted, SR.c.datestamp).where(
                    SR.c.source == source, SR.c.key.in_(chunk)
                )
            ):
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

    def _assign_works(
        self, conn: Connection, source: str, changes: list[_Change], now: dt.datetime, stats: PageStats
    ) -> set[int]:
        """Decide each changed record's work; create the works that do not exist yet.

        A work created here has no records but this page's, so it is inserted already
        merged (one write, no re-read). Returns the ids of the works created.
        """
        new_by_doi: dict[str, list[tuple[str, Record]]] = {}
        for ch in changes:
            rec = ch.incoming.record
            if rec.doi and not rec.deleted:
                new_by_doi.setdefault(rec.doi, []).append((source, rec))
        by_doi: dict[str, int] = {}
        for chunk in _chunks(sorted(new_by_doi), 900):
            by_doi.update((d, i) for d, i in conn.execute(select(W.c.doi, W.c.id).where(W.c.doi.in_(chunk))))
        created: set[int] = set()
        missing = [d for d in sorted(new_by_doi) if d not in by_doi]
        if missing:
            rows = []
            for doi in missing:
                merged = merge(doi, new_by_doi[doi], self.precedence)
                rows.append(_work_row(doi, merged.data, merged.provenance, now))
            stmt = self._insert(W).on_conflict_do_nothing(index_elements=[W.c.doi])  # type: ignore[attr-defined]
            noticed = self._notices(conn, missing)  # notices that arrived before their target
            for work_id, doi in conn.execute(stmt.returning(W.c.id, W.c.doi), rows):
                by_doi[doi] = work_id
                stats.works_created += 1
                if doi not in noticed:
                    created.add(work_id)
            raced = [d for d in missing if d not in by_doi]  # another process created them meanwhile
            for chunk in _chunks(raced, 900):
                by_doi.update(
                    (d, i) for d, i in conn.execute(select(W.c.doi, W.c.id).where(W.c.doi.in_(chunk)))
                )
        need_own: list[_Change] = []
        for ch in changes:
            rec, ex = ch.incoming.record, ch.existing
            if ex is None:
                ch.kind = "deleted" if rec.deleted else "inserted"
            elif rec.deleted:
                ch.kind = "unchanged" if ex.deleted else "deleted"
            else:
                ch.kind = "updated"
            if rec.deleted:
                ch.work_id = ex.work_id if ex is not None else None
            elif rec.doi:
                ch.work_id = by_doi[rec.doi]
            elif ex is not None and ex.work_id is not None and ex.doi is None:
                ch.work_id = ex.work_id  # a DOI-less record keeps its own work
            else:
                need_own.append(ch)
        if need_own:
            rows = []
            for ch in need_own:
                merged = merge(None, [(source, ch.incoming.record)], self.precedence)
                rows.append(_work_row(None, merged.data, merged.provenance, now))
            result = conn.execute(W.insert().returning(W.c.id, sort_by_parameter_order=True), rows)
            for ch, work_id in zip(need_own, result.scalars().all(), strict=True):
                ch.work_id = work_id
                created.add(work_id)
            stats.works_created += len(need_own)
        return created

    def _recompute(
        self,
        conn: Connection,
        work_ids: set[int],
        source: str,
        in_memory: dict[str, tuple[int | None, Record]],
        now: dt.datetime,
        stats: PageStats,
    ) -> None:
        """Merge each work again from all its live records; write the ones that changed."""
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
                select(W.c.id, W.c.doi, W.c.data, W.c.provenance, W.c.deleted).where(W.c.id.in_(chunk))
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
                            "updated_at": now,
                        }
                    )
                    stats.works_deleted += 1
                continue
            merged = merge(row.doi, live, self.precedence, notices.get(row.doi, ()))
            if row.deleted or merged.data != row.data or merged.provenance != row.provenance:
                updates.append(
                    {
                        "b_id": work_id,
                        "data": merged.data,
                        "provenance": merged.provenance,
                        "deleted": False,
                        "updated_at": now,
                    }
                )
                stats.works_updated += 1
        if updates:
            conn.execute(
                update(W)
                .where(W.c.id == bindparam("b_id"))
                .values(
                    data=bindparam("data"),
                    provenance=bindparam("provenance"),
                    deleted=bindparam("deleted"),
                    updated_at=bindparam("updated_at"),
                ),
                updates,
            )

    def _quarantine(
        self, conn: Connection, source: str, run_id: str, items: Sequence[Quarantined], now: dt.datetime
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
        stmt = self._insert(Q)
        excluded = stmt.excluded  # type: ignore[attr-defined]
        conn.execute(
            stmt.on_conflict_do_update(  # type: ignore[attr-defined]
                index_elements=[Q.c.source, Q.c.raw_hash],
                set_={
                    "seen": Q.c.seen + 1,
                    "last_seen": excluded.last_seen,
                    "run_id": excluded.run_id,
                    "reason": excluded.reason,
                },
            ),
            list(rows.values()),
        )

    # -- reads -----------------------------------------------------------------------

    def work_by_doi(self, doi: str) -> dict[str, Any] | None:
        """The work with this (normalized) DOI, with provenance and its source records."""
        with self._read() as conn:
            row = conn.execute(select(W).where(W.c.doi == doi)).one_or_none()
            if row is None:
                return None
            records = conn.execute(
                select(SR.c.source, SR.c.key, SR.c.deleted, SR.c.datestamp)
                .where(SR.c.work_id == row.id)
                .order_by(SR.c.source, SR.c.key)
            ).all()
        work = _export_shape(row.id, row.data, row.deleted)
        work["provenance"] = dict(sorted(row.provenance.items()))
        work["records"] = [
            {"source": r.source, "key": r.key, "deleted": r.deleted, "datestamp": _iso(r.datestamp)}
            for r in records
        ]
        return work

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


def _stamp(record: Record) -> float:
    return record.datestamp.timestamp() if record.datestamp else float("-inf")


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
