"""``harvester reprocess``: normalize the stored raw payloads again, without the network.

For a source, the stored records are read back in key order, in batches; each raw
payload becomes a :class:`~harvester.sources.base.RawItem` again through the source's
``load_raw`` and goes through the current normalizer; each batch is committed through
the ordinary record path (:meth:`storage.store.Store.commit_page` with
``reprocess=True``), under the source's lease, so a harvest of the same source cannot run
at the same time. Nothing is fetched: the source object is built for its normalizer
only, and its ``pages`` is never called.

* A record whose normalized form is unchanged writes nothing; a changed one is updated,
  moves to the work it now belongs to, and the works concerned are merged again. Every
  record is linked again too, so a change of the matching rules or of
  ``merge.match_without_doi``/``merge.precedence`` takes effect.
* The result is that of a fresh harvest of the same payloads with the current code;
  running it twice changes nothing the second time.
* A stored record that no longer normalizes (or whose key would change) goes to
  quarantine with the reason, and is otherwise left as it was: it keeps its last
  normalized form, stays in its work and still contributes to it, so a normalizer bug
  cannot delete works. Fix the normalizer and run ``reprocess`` again.
* Quarantined payloads are not retried here (a harvest fetches them again), and the
  checkpoint is untouched. No harvest run is recorded (``status`` and the scheduler only
  count real harvests); the counters go to the ``reprocess.finished`` log line.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import structlog

from harvester.sources.base import Source
from storage.store import Incoming, LeaseLost, PageStats, Quarantined, Store

__all__ = ["ReprocessResult", "reprocess_source"]

log = structlog.get_logger()

#: Seconds the lease lives between two batches.
LEASE_TTL = 120.0


@dataclass
class ReprocessResult:
    source: str
    outcome: str  # succeeded | failed | interrupted | skipped
    stats: PageStats = field(default_factory=PageStats)
    error: str | None = None
    seconds: float = 0.0


def reprocess_source(
    source: Source,
    store: Store,
    *,
    owner: str,
    batch: int = 500,
    stop: threading.Event | None = None,
    lease_ttl: float = LEASE_TTL,
) -> ReprocessResult:
    """Re-normalize every stored record of ``source`` and recompute the works (no network)."""
    name = source.name
    stop = stop or threading.Event()
    if not store.acquire_lease(name, owner, lease_ttl):
        log.warning("reprocess.skipped", source=name, reason="another process is harvesting this source")
        source.close()
        return ReprocessResult(name, "skipped")
    result = ReprocessResult(name, "running")
    run_id = uuid.uuid4().hex  # names the quarantine rows; no harvest run row is written
    started = time.monotonic()
    log.info("reprocess.started", source=name)
    try:
        for rows in store.iter_raw(name, batch):
            incoming: list[Incoming] = []
            quarantined: list[Quarantined] = []
            for key, raw in rows:
                try:
                    record = source.normalize(source.load_raw(raw))
                    if record.key != key:
                        raise ValueError(f"the record's key would change from {key!r} to {record.key!r}")
                except Exception as exc:  # noqa: BLE001 - one bad record must never end the pass
                    reason = f"{type(exc).__name__}: {exc}"
                    quarantined.append(Quarantined(raw, reason, key))
                    log.warning("record.quarantined", source=name, key=key, reason=reason)
                    continue
                incoming.append(Incoming.of(record, raw))
            result.stats += store.commit_page(
                name,
                incoming,
                run_id=run_id,
                owner=owner,
                quarantined=quarantined,
                lease_ttl=lease_ttl,
                reprocess=True,
            )
            if stop.is_set():
                result.outcome = "interrupted"
                break
        else:
            result.outcome = "succeeded"
    except LeaseLost as exc:
        result.outcome, result.error = "interrupted", str(exc)
    except Exception as exc:  # noqa: BLE001 - reported per source; the others still run
        result.outcome, result.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        result.seconds = round(time.monotonic() - started, 3)
        store.release_lease(name, owner)
        source.close()
    stats = result.stats
    emit = log.info if result.outcome == "succeeded" else log.error
    emit(
        "reprocess.finished",
        source=name,
        outcome=result.outcome,
        error=result.error,
        seconds=result.seconds,
        records=stats.fetched,
        changed=stats.updated + stats.deleted,
        unchanged=stats.unchanged,
        quarantined=stats.quarantined,
        works_created=stats.works_created,
        works_updated=stats.works_updated,
        works_deleted=stats.works_deleted,
    )
    return result
