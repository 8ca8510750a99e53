"""Per-source state beside the records: API quotas per key, and enrichment backlog.

Kept out of :mod:`storage.store` because only some sources have it (Scopus). Quota rows
are written after each committed page and at the end of a run, so a restarted or
replica process knows a key is exhausted until its reset without asking the API.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, and_, exists, false, select

from harvester.sources.base import QuotaState
from storage.models import ApiQuota, SourceRecord
from storage.store import Store, utcnow

__all__ = ["all_quotas", "load_quotas", "save_quotas", "unenriched_keys"]

QUOTA = cast(Table, ApiQuota.__table__)
SR = cast(Table, SourceRecord.__table__)


def load_quotas(store: Store, source: str) -> list[QuotaState]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(QUOTA).where(QUOTA.c.source == source).order_by(QUOTA.c.api, QUOTA.c.key_id)
        )
        return [_state(r) for r in rows]


def all_quotas(store: Store) -> dict[str, list[dict[str, Any]]]:
    """For ``status``: source -> [{api, key, limit, remaining, reset_at, exhausted}]."""
    out: dict[str, list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(select(QUOTA).order_by(QUOTA.c.source, QUOTA.c.api, QUOTA.c.key_id)):
            out.setdefault(row.source, []).append(
                {
                    "api": row.api,
                    "key": row.key_id,
                    "limit": row.quota_limit,
                    "remaining": row.remaining,
                    "reset_at": row.reset_at.strftime("%Y-%m-%dT%H:%M:%SZ") if row.reset_at else None,
                    "exhausted": row.exhausted,
                }
            )
    return out


def save_quotas(store: Store, source: str, states: Iterable[QuotaState]) -> None:
    rows = [
        {
            "source": source,
            "api": s.api,
            "key_id": s.key_id,
            "quota_limit": s.limit,
            "remaining": s.remaining,
            "reset_at": s.reset_at,
            "exhausted": s.exhausted,
            "updated_at": utcnow(),
        }
        for s in states
    ]
    if not rows:
        return
    stmt: Any = store.insert(QUOTA)  # the dialect's Insert, with on_conflict_do_update
    stmt = stmt.on_conflict_do_update(
        index_elements=[QUOTA.c.source, QUOTA.c.api, QUOTA.c.key_id],
        set_={
            c: stmt.excluded[c] for c in ("quota_limit", "remaining", "reset_at", "exhausted", "updated_at")
        },
    )
    with store.engine.begin() as conn:
        conn.execute(stmt, rows)


def unenriched_keys(store: Store, source: str, suffix: str, limit: int) -> list[str]:
    """Keys of live records of ``source`` that have no ``<key><suffix>`` record yet, in key order."""
    extra = SR.alias("extra")
    stmt = (
        select(SR.c.key)
        .where(
            SR.c.source == source,
            SR.c.deleted == false(),
            ~SR.c.key.endswith(suffix),
            ~exists().where(and_(extra.c.source == source, extra.c.key == SR.c.key + suffix)),
        )
        .order_by(SR.c.key)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return list(conn.execute(stmt).scalars())


def _state(row: Any) -> QuotaState:
    return QuotaState(row.api, row.key_id, row.quota_limit, row.remaining, row.reset_at, row.exhausted)
