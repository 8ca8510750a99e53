"""The daemon: every enabled source on its schedule until SIGTERM/SIGINT.

APScheduler 3.11 runs one job per source (``max_instances=1``: never two runs of one
source at once; ``coalesce``: runs missed while the daemon was down or busy collapse
into one). Jobs run in a thread pool with one worker per source, so a slow or failing
source never delays or stops the others; anything a run raises is logged and the
schedule goes on (the database being down fails that run only).

A source is harvested at once on start when it never succeeded or when a scheduled
run was missed since its last success; after that, on schedule.

Stopping: a signal sets the shared stop event. Running harvests commit or roll back
their page in flight and record ``interrupted``; HTTP waits end early; then the
scheduler shuts down, ``daemon.stopped`` is logged and the process exits 0.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
from types import FrameType
from typing import Any

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text

from harvester import metrics
from harvester.metrics import MetricsServer
from harvester.runner import harvest_source
from harvester.settings import Settings
from harvester.sources import build_source
from storage.store import Store, utcnow

__all__ = ["Daemon", "is_due"]

log = structlog.get_logger()


def _trigger(source: Any) -> Any:
    schedule = source.schedule
    if schedule.cron:
        return schedule.cron_trigger()
    return IntervalTrigger(seconds=schedule.every.total_seconds(), timezone=dt.UTC)


def is_due(source: Any, last_success: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether to harvest at once on start: never succeeded, or a run was missed since."""
    if last_success is None:
        return True
    schedule = source.schedule
    if schedule.every is not None:
        return bool(last_success + schedule.every <= now)
    following = schedule.cron_trigger().get_next_fire_time(None, last_success)
    return following is not None and following <= now


class Daemon:
    def __init__(self, settings: Settings, store: Store, owner: str) -> None:
        self.settings = settings
        self.store = store
        self.owner = owner
        self.stop = threading.Event()
        sources = settings.enabled_sources()
        self.scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(max(1, len(sources)))},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stop.is_set():
            log.info("daemon.stopping", signal=signal.Signals(signum).name)
        self.stop.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _job(self, name: str) -> None:
        if self.stop.is_set():
            return
        try:
            source_settings = self.settings.source(name)
            source = build_source(source_settings, self.settings.http, self.stop)
            harvest_source(
                source, self.store, owner=self.owner, stop=self.stop, next_attempt=lambda: self._next(name)
            )
        except Exception as exc:  # noqa: BLE001 - the schedule must survive anything
            log.error(
                "harvest.failed",
                source=name,
                error=f"{type(exc).__name__}: {exc}",
                next_attempt=self._next(name),
            )

    def _next(self, name: str) -> str | None:
        job = self.scheduler.get_job(name)
        when = getattr(job, "next_run_time", None) if job else None
        return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None

    def schedule(self) -> None:
        now = utcnow()
        for source in self.settings.enabled_sources():
            trigger = _trigger(source)
            try:
                last = self.store.last_success(source.name)
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the daemon starting
                log.warning("daemon.last_success_unknown", source=source.name, error=str(exc))
                last = None
            kwargs: dict[str, Any] = {}
            if is_due(source, last, now):
                kwargs["next_run_time"] = now
            job = self.scheduler.add_job(
                self._job, trigger, args=[source.name], id=source.name, name=source.name, **kwargs
            )
            log.info(
                "source.scheduled",
                source=source.name,
                type=source.type,
                trigger=str(trigger),
                due_now="next_run_time" in kwargs,
                next_run=str(getattr(job, "next_run_time", None)),
            )

    def healthy(self) -> str | None:
        """None when the scheduler runs and the database answers; else what is wrong."""
        if not self.scheduler.running or self.stop.is_set():
            return "scheduler not running"
        with self.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return None

    def run(self) -> int:
        """Run until stopped; returns the exit code (0)."""
        self.install_signal_handlers()
        server = None
        if self.settings.metrics is not None:
            server = MetricsServer(
                metrics.enable(), self.healthy, self.settings.metrics.host, self.settings.metrics.port
            ).start()
            log.info("metrics.serving", host=self.settings.metrics.host, port=server.port)
        self.scheduler.start(paused=True)
        self.schedule()
        self.scheduler.resume()
        log.info(
            "daemon.started", sources=[s.name for s in self.settings.enabled_sources()], owner=self.owner
        )
        while not self.stop.wait(1.0):
            pass
        self.scheduler.shutdown(wait=True)
        if server is not None:
            server.stop()
        log.info("daemon.stopped")
        return 0
