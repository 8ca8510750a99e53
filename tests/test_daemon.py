"""The daemon as operators run it: a real ``harvester run`` process, schedules, signals."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from harvester.daemon import is_due
from harvester.settings import ScheduleSettings
from storage.db import make_engine
from storage.models import SourceRecord
from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, run_rows, wait_for, write_config
from tests.oai_server import FakeOaiServer

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


class _Source:
    def __init__(self, **schedule: Any) -> None:
        self.schedule = ScheduleSettings(**schedule)


def test_is_due() -> None:
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    every_6h = _Source(every="6h")
    assert is_due(every_6h, None, now)
    assert is_due(every_6h, now - dt.timedelta(hours=7), now)
    assert not is_due(every_6h, now - dt.timedelta(hours=5), now)
    nightly = _Source(cron="0 3 * * *")
    assert is_due(nightly, now - dt.timedelta(days=1), now)  # missed today's 03:00
    assert not is_due(nightly, now.replace(hour=4), now)


def start_daemon(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def stop_daemon(
    proc: subprocess.Popen[str], sig: int = signal.SIGTERM
) -> tuple[int, list[dict[str, Any]], float]:
    started = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    took = time.monotonic() - started
    return proc.returncode, [json.loads(line) for line in err.splitlines() if line.startswith("{")], took


def record_count(db_url: str) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(SourceRecord.id)).all())
    finally:
        engine.dispose()


@pytest.mark.slow
def test_daemon_schedules_survives_a_failing_source_and_stops_cleanly(tmp_path: Path) -> None:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(40)]
    with FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as server:
        db_url = f"sqlite:///{tmp_path / 'd.db'}"
        sources = "\n".join(
            [
                oai_source_block("repo", server.url, schedule="{every: 2s}"),
                oai_source_block("broken", "http://127.0.0.1:9/oai", schedule="{every: 1h}"),
            ]
        )
        config = write_config(tmp_path / "d.yaml", db_url, sources)
        proc = start_daemon(config)
        try:
            wait_for(
                lambda: sum(r.source == "repo" and r.outcome == "succeeded" for r in run_rows(db_url)) >= 2
            )
            wait_for(lambda: any(r.source == "broken" and r.outcome == "failed" for r in run_rows(db_url)))
        finally:
            code, logs, took = stop_daemon(proc)
    assert code == 0
    assert took < 10
    assert logs[-1]["event"] == "daemon.stopped"
    failed = [e for e in logs if e["event"] == "harvest.failed"]
    assert failed and failed[0]["source"] == "broken" and failed[0]["next_attempt"]
    repo_runs = [r for r in run_rows(db_url) if r.source == "repo"]
    for before, after in itertools.pairwise(repo_runs):  # never two runs of one source at once
        assert before.finished_at is not None and before.finished_at <= after.started_at
    assert record_count(db_url) == 40


@pytest.mark.slow
def test_sigterm_mid_harvest_commits_or_rolls_back_and_the_next_run_resumes(tmp_path: Path) -> None:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(600)]
    with FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as server:
        db_url = f"sqlite:///{tmp_path / 'd.db'}"
        config = write_config(
            tmp_path / "d.yaml", db_url, oai_source_block("repo", server.url, rate_limit=10)
        )
        proc = start_daemon(config)
        try:
            wait_for(lambda: record_count(db_url) >= 30)
        finally:
            code, logs, took = stop_daemon(proc, signal.SIGINT)
        assert code == 0 and took < 10
        assert logs[-1]["event"] == "daemon.stopped"
        [run] = run_rows(db_url)
        assert run.outcome == "interrupted"
        stored = record_count(db_url)
        assert 30 <= stored < 600 and stored % 10 == 0  # whole pages only
        assert run.fetched == stored

        proc = subprocess.run(
            [sys.executable, "-m", "harvester", "--config", str(config), "harvest"],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            timeout=300,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert record_count(db_url) == 600
        assert run_rows(db_url)[-1].fetched == 600 - stored  # resumed, did not start over


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_metrics_and_health_endpoints(tmp_path: Path) -> None:
    import httpx

    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(40)]
    port = free_port()
    with FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as server:
        db_url = f"sqlite:///{tmp_path / 'd.db'}"
        config = write_config(
            tmp_path / "d.yaml",
            db_url,
            oai_source_block("repo", server.url),
            extra=f"metrics:\n  host: 127.0.0.1\n  port: {port}",
        )
        proc = start_daemon(config)
        try:
            wait_for(lambda: any(r.outcome == "succeeded" for r in run_rows(db_url)))
            wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200)
            text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        finally:
            code, logs, _ = stop_daemon(proc)
    assert code == 0
    assert 'harvester_records_total{outcome="inserted",source="repo"} 40.0' in text
    assert 'harvester_runs_total{outcome="succeeded",source="repo"} 1.0' in text
    assert 'harvester_http_responses_total{source="repo",status="200"}' in text
    assert 'harvester_last_success_timestamp_seconds{source="repo"}' in text
    assert "harvester_run_duration_seconds_bucket" in text
    assert any(e["event"] == "metrics.serving" for e in logs)


def test_health_reports_a_database_that_does_not_answer(tmp_path: Path) -> None:
    from harvester.daemon import Daemon
    from harvester.settings import load_settings
    from storage.store import Store

    config = write_config(
        tmp_path / "d.yaml",
        f"sqlite:///{tmp_path / 'd.db'}",
        oai_source_block("repo", "http://127.0.0.1:9/oai"),
    )
    settings = load_settings(config)
    broken = Store.open(f"sqlite:///{tmp_path}/missing-dir/x.db")
    daemon = Daemon(settings, broken, "tests")
    assert daemon.healthy() == "scheduler not running"
    daemon.scheduler.start(paused=True)
    try:
        assert daemon.healthy() is None
        broken.engine.dispose()
        (tmp_path / "missing-dir" / "x.db").unlink()
        (tmp_path / "missing-dir").rmdir()
        problem = None
        try:
            problem = daemon.healthy()
        except Exception as exc:
            problem = str(exc)
        assert problem  # the database is gone: unhealthy, with the reason
    finally:
        daemon.scheduler.shutdown(wait=False)
