"""One run of one source: the whole record path, and nothing else.

::

    lease → run row → checkpoint → for each page: normalize (pure) → commit page + checkpoint → finish

* **Lease.** A source is harvested by one process at a time. Another process finding
  the lease held skips the source (``harvest.skipped``), which is not a failure. The
  lease is renewed by a small thread while the run lasts and checked again inside every
  page transaction, so a process that lost it can no longer write.
* **Quarantine.** A record whose normalization raises is stored in quarantine with the
  reason and counted; it never fails the run.
* **Stop.** When ``stop`` is set (SIGTERM), the page in flight is committed or rolled
  back, no further page is fetched, and the run is recorded ``interrupted``.
* **Failure.** Anything else that escapes ends this source's run as ``failed`` with the
  error recorded; its checkpoint stays at the last committed page, so the next run
  resumes there. Other sources are not affected.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from queue import Empty, Full, Queue
from typing import Any

import structlog
from structlog.contextvars import bound_contextvars

from harvester import metrics
from harvester.errors import Interrupted, QuotaExhausted
from harvester.logs import redact
from harvester.sources.base import Enriching, Page, QuotaAware, Source
from storage.source_state import load_quotas, save_quotas, unenriched_keys
from storage.store import Incoming, LeaseLost, PageStats, Quarantined, Store

__all__ = ["LEASE_TTL", "RunResult", "harvest_source", "normalize_page"]

log = structlog.get_logger()

#: Seconds a lease lives without renewal; a dead process's sources are free again after this.
LEASE_TTL = 120.0


@dataclass
class RunResult:
    source: str
    outcome: str  # succeeded | failed | interrupted | skipped
    run_id: str | None = None
    stats: PageStats = field(default_factory=PageStats)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome in ("succeeded", "skipped", "interrupted")


#: A record larger than this is quarantined (with its first bytes), never normalized or merged.
MAX_RECORD_BYTES = 10_000_000
QUARANTINE_KEEP = 65_536


def normalize_page(source: Source, page: Page) -> tuple[list[Incoming], list[Quarantined]]:
    """Normalize every raw record of a page; failures go to quarantine, with the reason."""
    incoming: list[Incoming] = []
    quarantined: list[Quarantined] = []
    for item in page.items:
        if len(item.raw) > MAX_RECORD_BYTES:
            reason = f"RecordTooLarge: {len(item.raw)} characters (the limit is {MAX_RECORD_BYTES})"
            kept = (
                item.raw[:QUARANTINE_KEEP]
                + f"\n[... {len(item.raw) - QUARANTINE_KEEP} more characters not kept]"
            )
            quarantined.append(Quarantined(kept, reason, item.key))
            log.warning("record.quarantined", key=item.key, reason=reason)
            continue
        try:
            record = source.normalize(item)
        except Exception as exc:  # noqa: BLE001 - one bad record must never end a run
            reason = f"{type(exc).__name__}: {exc}"
            quarantined.append(Quarantined(item.raw, reason, item.key))
            log.warning("record.quarantined", key=item.key, reason=reason)
            continue
        incoming.append(Incoming.of(record, item.raw))
    return incoming, quarantined


_DONE = object()


def _prefetched(
    source: Source, state: Mapping[str, Any] | None, stop: threading.Event, depth: int = 2
) -> Iterator[tuple[Page, list[Incoming], list[Quarantined]]]:
    """Fetch and parse the next pages in a thread while this one is normalized and committed.

    The next page's network wait (and lxml's parsing) release the GIL, so they overlap
    with the store's commit (SQLite's fsync, PostgreSQL's round trips). Normalization
    stays in this thread: two threads running Python only contend for the GIL (measured:
    normalizing in the fetch thread made the whole harvest slower than no thread at all). At most ``depth``
    pages wait in memory. The page-by-page guarantee is unchanged: checkpoints are only
    written by the consumer, in order, with their own page; a prefetched page that is
    never committed (failure, stop) is simply fetched again by the next run. Errors in
    the thread are re-raised here, in order, after the pages before them.
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    halt = threading.Event()

    def put(item: Any) -> bool:
        while not halt.is_set():
            try:
                queue.put(item, timeout=0.1)
            except Full:
                continue
            else:
                return True
        return False

    def produce() -> None:
        pages = source.pages(state)
        try:
            for page in pages:
                if not put(page) or stop.is_set():
                    return
            put(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which decides
            put(exc)
        finally:
            pages.close()  # type: ignore[attr-defined]

    context = contextvars.copy_context()  # run_id and source for the thread's log lines
    thread = threading.Thread(target=context.run, args=(produce,), name=f"fetch-{source.name}", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = queue.get(timeout=0.5)
            except Empty:
                if thread.is_alive():
                    continue
                if stop.is_set():
                    raise Interrupted("stop requested") from None
                raise RuntimeError("the page fetcher ended without a result") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield (item, *normalize_page(source, item))
            if stop.is_set():
                raise Interrupted("stop requested")
    finally:
        halt.set()
        thread.join(timeout=60)


class _Committer:
    """Commits one page (records, quarantine, checkpoint) and logs ``page.committed``."""

    def __init__(
        self,
        store: Store,
        name: str,
        run_id: str,
        owner: str,
        lease_ttl: float,
        result: RunResult,
        quota_source: Any = None,
        progress: Callable[[PageStats], None] | None = None,
    ) -> None:
        self.store, self.name, self.run_id, self.owner, self.lease_ttl = store, name, run_id, owner, lease_ttl
        self.result = result
        self.quota_source = quota_source
        self.progress = progress

    def __call__(self, page: Page, incoming: list[Incoming], quarantined: list[Quarantined]) -> None:
        started = time.monotonic()
        stats = self.store.commit_page(
            self.name,
            incoming,
            run_id=self.run_id,
            owner=self.owner,
            quarantined=quarantined,
            checkpoint=page.checkpoint,
            lease_ttl=self.lease_ttl,
        )
        self.result.stats += stats
        metrics.METRICS.page_committed(self.name, stats)
        if self.progress is not None:
            self.progress(self.result.stats)
        if self.quota_source is not None:
            states = self.quota_source.quota_states()
            save_quotas(self.store, self.name, states)
            for q in states:
                metrics.METRICS.quota_state(self.name, q.api, q.key_id, q.remaining)
        log.info(
            "page.committed",
            records=stats.fetched,
            inserted=stats.inserted,
            updated=stats.updated,
            unchanged=stats.unchanged,
            deleted=stats.deleted,
            quarantined=stats.quarantined,
            works_created=stats.works_created,
            works_updated=stats.works_updated,
            total=self.result.stats.fetched,
            checkpoint_advanced=page.checkpoint is not None,
            commit_seconds=round(time.monotonic() - started, 4),
        )


#: How many records one enrichment pass looks at (the rest waits for the next run).
ENRICH_BATCH = 1000


def _enrich(source: Enriching, store: Store, commit: _Committer, stop: threading.Event) -> None:
    """Fetch the extra records of stored records that lack them; a quota end stops it quietly.

    Enrichment pages carry no checkpoint: what is missing is found again from the store.
    """
    keys = unenriched_keys(store, commit.name, source.enrichment_suffix, ENRICH_BATCH)
    if not keys:
        return
    log.info("enrichment.started", pending=len(keys))
    done = 0
    try:
        for page in source.enrich(keys):
            incoming, quarantined = normalize_page(source, page)  # type: ignore[arg-type]
            commit(page, incoming, quarantined)
            done += len(page.items)
            if stop.is_set():
                raise Interrupted("stop requested")
    except QuotaExhausted as exc:
        log.warning("enrichment.paused", reason="quota exhausted", resume_at=_iso(exc.resume_at), done=done)
        return
    log.info("enrichment.finished", records=done)


def _iso(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


#: Run outcomes that could not be written (the database was away); written at the next chance.
_PENDING: list[tuple[str, str, str | None]] = []
_PENDING_LOCK = threading.Lock()


def _finish(store: Store, name: str, owner: str, run_id: str, result: RunResult, source: Source) -> None:
    """Record the outcome, save quotas and free the lease, each on its own.

    When the database is the reason the run failed, these writes fail too; nothing here
    may raise (the daemon must go on scheduling). The outcome is kept in memory and
    written by the next run of any source; the lease expires by itself.
    """
    try:
        if isinstance(source, QuotaAware):
            save_quotas(store, name, source.quota_states())
    except Exception as exc:  # noqa: BLE001 - best effort; the next run reads the API's headers again
        log.warning("quota.unsaved", error=f"{type(exc).__name__}: {exc}")
    try:
        store.finish_run(run_id, result.outcome, result.error)
    except Exception as exc:  # noqa: BLE001 - kept and written later
        with _PENDING_LOCK:
            _PENDING.append((run_id, result.outcome, result.error))
        log.warning("run.unrecorded", error=f"{type(exc).__name__}: {exc}", outcome=result.outcome)
    try:
        store.release_lease(name, owner)
    except Exception as exc:  # noqa: BLE001 - the lease expires by itself
        log.warning("lease.unreleased", error=f"{type(exc).__name__}: {exc}")


def _record_pending(store: Store) -> None:
    with _PENDING_LOCK:
        pending = list(_PENDING)
        _PENDING.clear()
    for i, (run_id, outcome, error) in enumerate(pending):
        try:
            store.finish_run(run_id, outcome, error)
        except Exception:  # noqa: BLE001 - still away: keep them for the next time
            with _PENDING_LOCK:
                _PENDING.extend(pending[i:])
            return


class _LeaseKeeper:
    """Renews a lease every ttl/4 seconds in the background until stopped."""

    def __init__(self, store: Store, source: str, owner: str, ttl: float) -> None:
        self._store, self._source, self._owner, self._ttl = store, source, owner, ttl
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"lease-{source}", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._done.wait(self._ttl / 4):
            try:
                if not self._store.renew_lease(self._source, self._owner, self._ttl):
                    log.error("lease.lost", source=self._source)
                    return
            except Exception as exc:  # noqa: BLE001 - the page transaction re-checks the lease anyway
                log.warning("lease.renew_failed", source=self._source, error=str(exc))


def harvest_source(
    source: Source,
    store: Store,
    *,
    owner: str,
    stop: threading.Event | None = None,
    next_attempt: Callable[[], str | None] | None = None,
    lease_ttl: float = LEASE_TTL,
    progress: Callable[[PageStats], None] | None = None,
) -> RunResult:
    """Harvest ``source`` once, from its checkpoint up to now.

    ``progress`` is called with the run's running totals after every committed page.
    """
    stop = stop or threading.Event()
    name = source.name
    _record_pending(store)
    if not store.acquire_lease(name, owner, lease_ttl):
        log.info("harvest.skipped", source=name, reason="another process is harvesting this source")
        source.close()
        return RunResult(name, "skipped")
    store.mark_stale_runs_interrupted()  # e.g. the run of a replica that died holding this lease
    run_id = store.start_run(name, owner)
    result = RunResult(name, "running", run_id)
    started = time.monotonic()
    with bound_contextvars(run_id=run_id, source=name), _LeaseKeeper(store, name, owner, lease_ttl):
        log.info("harvest.started")
        quota_aware = isinstance(source, QuotaAware)
        try:
            if isinstance(source, QuotaAware):
                source.restore_quotas(load_quotas(store, name))
            state = store.load_checkpoint(name)
            commit = _Committer(
                store, name, run_id, owner, lease_ttl, result, source if quota_aware else None, progress
            )
            for page, incoming, quarantined in _prefetched(source, state, stop):
                commit(page, incoming, quarantined)
            if isinstance(source, Enriching) and source.wants_enrichment():
                _enrich(source, store, commit, stop)
            result.outcome = "succeeded"
        except (Interrupted, LeaseLost) as exc:
            result.outcome = "interrupted"
            result.error = redact(str(exc))
        except QuotaExhausted as exc:
            result.outcome = "failed"
            result.error = redact(f"QuotaExhausted: {exc}")
            log.warning("harvest.paused", reason="quota exhausted", resume_at=_iso(exc.resume_at))
        except Exception as exc:  # noqa: BLE001 - a failing source must never stop the others
            result.outcome = "failed"
            result.error = redact(f"{type(exc).__name__}: {exc}")
        finally:
            result.seconds = round(time.monotonic() - started, 3)
            source.close()
            _finish(store, name, owner, run_id, result, source)
        counters = result.stats.as_dict()
        metrics.METRICS.run_finished(name, result.outcome, result.seconds, time.time())
        if result.outcome == "succeeded":
            log.info("harvest.finished", outcome="succeeded", seconds=result.seconds, **counters)
        elif result.outcome == "interrupted":
            log.warning("harvest.interrupted", error=result.error, seconds=result.seconds, **counters)
        else:
            log.error(
                "harvest.failed",
                error=result.error,
                next_attempt=next_attempt() if next_attempt else None,
                seconds=result.seconds,
                **counters,
            )
    return result
