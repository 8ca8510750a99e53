"""The database going away mid-run (issue 8, item 3): the run fails cleanly, the daemon keeps
scheduling, the next run resumes from the checkpoint.

How the database "goes away", touching nothing but the test's own database:

* PostgreSQL (never the shared server itself): the scratch database is closed to new
  connections (``ALTER DATABASE .. ALLOW_CONNECTIONS false``, which binds superusers too) and
  every backend connected to it is terminated (``pg_terminate_backend``); later it is opened
  again.
* SQLite: another connection holds ``BEGIN EXCLUSIVE`` on the file for longer than the busy
  timeout, which the daemon test sets to half a second (``database.busy_timeout: 0.5``) and the
  in-process tests lower through the default (``storage.db.SQLITE_BUSY_TIMEOUT_MS``, 60 s),
  instead of waiting a minute.

fault → test → what it proves

* database lost between pages, in process → ``test_lost_database_fails_the_run_and_the_next_
  run_resumes`` (SQLite and PostgreSQL): the run fails without raising (``harvest.failed``
  names the database error), the checkpoint never claims more than is stored, the next run
  resumes from the checkpoint (fetches less than the whole) and the store ends exactly as a
  fault-free harvest leaves it.
* the daemon → ``test_daemon_survives_a_lost_database`` (SQLite and PostgreSQL): a real
  ``harvester run`` with a 2 s schedule; the database breaks during the first run;
  ``harvest.failed`` names the database error, the daemon keeps running and scheduling, a later
  run succeeds and resumes from the checkpoint; SIGTERM still stops it cleanly.
* bookkeeping → ``test_a_run_cut_off_by_the_database_is_not_left_running``: the outcome that
  could not be written while the database was away is written by the next run of the same
  process (it was left ``running`` for the process's life before commit 4847583).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.engine import make_url

import storage.db
from storage.db import make_engine
from storage.models import HarvestRun, SourceRecord
from storage.store import Store
from tests.conftest import PG_ADMIN_URL, ROOT
from tests.faults_helpers import (
    CheckpointGuard,
    assert_same,
    block,
    captured,
    events,
    expected_hashes,
    reference_snapshot,
    run,
    settings_of,
    snapshot,
    write_config,
)
from tests.helpers import T0, article, run_rows, wait_for
from tests.oai_server import FakeOaiServer

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SOURCE = "repo"
RECORDS = [article(i, T0 + dt.timedelta(minutes=i)) for i in range(200)]


def claimed(state: Any) -> set[tuple[str, str]]:
    text = state.get("through") if state else None
    if not text:
        return set()
    through = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return {(SOURCE, r.identifier) for r in RECORDS if r.datestamp <= through}


def new_server() -> FakeOaiServer:
    return FakeOaiServer(RECORDS, page_size=10, now=lambda: NOW, earliest_datestamp=T0)


# -- breaking and mending a database ---------------------------------------------------------


class Outage:
    """Takes the test's database away and brings it back."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.kind = "sqlite" if db_url.startswith("sqlite") else "postgresql"
        self._lock: sqlite3.Connection | None = None
        self.down = False

    def begin(self) -> None:
        if self.kind == "sqlite":
            path = make_url(self.db_url).database
            self._lock = sqlite3.connect(str(path), isolation_level=None, timeout=5, check_same_thread=False)
            self._lock.execute("BEGIN EXCLUSIVE")
        else:
            name = make_url(self.db_url).database
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
                )
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
        self.down = True

    def end(self) -> None:
        if not self.down:
            return
        if self.kind == "sqlite":
            assert self._lock is not None
            self._lock.execute("ROLLBACK")
            self._lock.close()
            self._lock = None
        else:
            name = make_url(self.db_url).database
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(name))
                )
        self.down = False


@pytest.fixture
def outage(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Outage]:
    monkeypatch.setattr(storage.db, "SQLITE_BUSY_TIMEOUT_MS", 300)  # no config knob exists (reported)
    o = Outage(db_url)
    yield o
    o.end()


def break_at_commit(store: Store, n: int, outage: Outage) -> None:
    """The database goes away just before the n-th page commit of ``store``."""
    commit = store.commit_page
    calls = [0]

    def commit_page(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == n:
            outage.begin()
        return commit(*args, **kwargs)

    store.commit_page = commit_page  # type: ignore[method-assign]


def harvest_through_outage(
    tmp_path: Path, db_url: str, outage: Outage
) -> tuple[Any, Any, Store, Any, list[Any]]:
    """Reference, then a run that loses the database before its 4th commit, then recovery."""
    server = new_server().start()
    reference = reference_snapshot(tmp_path, lambda url: block(SOURCE, "oai-pmh", url), server.url, (SOURCE,))
    store = Store.open(db_url)
    guard = CheckpointGuard(store, SOURCE, expected_hashes(reference), claimed)
    break_at_commit(store, 4, outage)
    settings = settings_of(tmp_path, db_url, block(SOURCE, "oai-pmh", server.url))
    with captured() as logs:
        outcome = run(settings, store, SOURCE)  # never raises: the daemon must go on
    outage.end()
    return server, reference, store, outcome, [guard, logs, settings]


def test_lost_database_fails_the_run_and_the_next_run_resumes(
    tmp_path: Path, db_url: str, outage: Outage
) -> None:
    server, reference, store, outcome, (guard, logs, settings) = harvest_through_outage(
        tmp_path, db_url, outage
    )
    try:
        assert outcome.outcome == "failed"
        assert "locked" in (outcome.error or "") or "accepting connections" in (outcome.error or "")
        [failure] = events(logs, "harvest.failed")
        assert failure["error"] == outcome.error
        assert events(logs, "run.unrecorded")  # the outcome could not be written yet
        guard.assert_clean()
        state = store.load_checkpoint(SOURCE)
        assert state is not None and state["token"]  # three pages committed, the fourth rolled back
        with store.engine.connect() as conn:
            assert len(conn.execute(select(SourceRecord.id)).all()) == 30

        resumed = run(settings, store, SOURCE)
        assert resumed.outcome == "succeeded", resumed.error
        assert resumed.stats.fetched == 200 - 30  # from the checkpoint, not from the start
        assert_same(snapshot(store.engine), reference)
        guard.assert_clean()
    finally:
        store.close()
        server.stop()


def test_a_run_cut_off_by_the_database_is_not_left_running(
    tmp_path: Path, db_url: str, outage: Outage
) -> None:
    server, _, store, _, (_, _, settings) = harvest_through_outage(tmp_path, db_url, outage)
    try:
        assert run(settings, store, SOURCE).outcome == "succeeded"  # the same process goes on
        with store.engine.connect() as conn:
            outcomes = list(conn.execute(select(HarvestRun.outcome).order_by(HarvestRun.id)).scalars())
        assert outcomes == ["failed", "succeeded"]
    finally:
        store.close()
        server.stop()


# -- the daemon ------------------------------------------------------------------------------


def start_daemon(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


@pytest.mark.slow
def test_daemon_survives_a_lost_database(tmp_path: Path, db_url: str, outage: Outage) -> None:
    with new_server() as server:
        reference = reference_snapshot(
            tmp_path, lambda url: block(SOURCE, "oai-pmh", url), server.url, (SOURCE,)
        )
        base = len(server.requests)
        source = block(SOURCE, "oai-pmh", server.url, rate_limit=10, schedule="{every: 2s}")
        config = write_config(tmp_path / "daemon.yaml", db_url, source, level="INFO", busy_timeout=0.5)
        proc = start_daemon(config)
        try:
            wait_for(lambda: len(server.requests) - base >= 8)  # the first run is on page 7
            outage.begin()
            time.sleep(2.5)  # longer than a schedule interval: the run fails, the next one may too
            assert proc.poll() is None, "the daemon died with its database"
            outage.end()
            wait_for(lambda: any(r.outcome == "succeeded" for r in run_rows(db_url)), timeout=30)
            assert proc.poll() is None
        finally:
            outage.end()
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert proc.returncode == 0, err[-2000:]
        assert logs[-1]["event"] == "daemon.stopped"
        failures = [e for e in logs if e["event"] == "harvest.failed"]
        assert failures, "no harvest.failed was logged"
        assert any(
            "locked" in e["error"] or "accepting connections" in e["error"] or "terminat" in e["error"]
            for e in failures
        ), [e["error"][:200] for e in failures]
        assert all(e["source"] == SOURCE and e.get("next_attempt") for e in failures)
        rows = run_rows(db_url)
        succeeded = [r for r in rows if r.outcome == "succeeded"]
        assert succeeded and succeeded[0].fetched < 200  # resumed from the checkpoint
        engine = make_engine(db_url)
        try:
            assert_same(snapshot(engine), reference)
        finally:
            engine.dispose()
