"""SIGKILL at 20 chosen points of a harvest (issue 8, item 2), restarting each time.

A real ``python -m harvester harvest`` process harvests 800 OAI records (80 pages of 10, five
7-day windows) from a local server, paced at 20 requests a second by ``rate_limit`` so a
kill lands where it is aimed. Each process is killed with SIGKILL at one point, counted from
its own start, then the next process starts (resuming from whatever was committed):

* ``arrive n``: the server has received this process's n-th request (the request is in
  flight: during Identify for n = 1, mid-page otherwise);
* ``answered n +d ms``: the server has sent the headers of the n-th answer, then d ms pass
  (the page is being read, parsed, or waits to be committed, or the fetcher waits on the
  rate limiter);
* ``committed n``: the store shows this run's n-th committed page (right after a commit,
  while the next page is fetched).

After every kill the checkpoint must claim nothing that is not stored (as the fault-free
harvest stores it), and the killed run is marked ``interrupted`` by the next process. After
a final uninterrupted run the store is IDENTICAL (records and their raw payloads, deletions,
works with their merged data) to the store of one uninterrupted harvest. SQLite gets the 20
points; PostgreSQL a shorter variant of 5.

fault → test → what it proves

* SIGKILL at 20 points → ``test_sigkill_at_20_points_then_restart[sqlite]``: nothing lost,
  nothing duplicated, the checkpoint never ahead of the store, every killed run accounted.
* SIGKILL at 5 points → ``test_sigkill_at_20_points_then_restart[postgresql]``: the same on
  PostgreSQL. (``test_crash.py`` kills at random moments; this one at deterministic points.)
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.db import make_engine
from storage.models import HarvestRun
from storage.store import Store
from tests.conftest import ROOT, ScratchDatabases
from tests.faults_helpers import (
    CheckpointGuard,
    assert_same,
    block,
    expected_hashes,
    reference_snapshot,
    snapshot,
    write_config,
)
from tests.helpers import T0, article
from tests.oai_server import FakeOaiServer, OaiRecord

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SOURCE = "repo"

Point = tuple[str, int, int]  # (kind, n, delay in ms)
POINTS: list[Point] = [
    ("arrive", 1, 0),  # during Identify
    ("answered", 1, 0),  # Identify answered, nothing listed yet
    ("arrive", 2, 0),  # the first page in flight
    ("answered", 2, 0),  # the first page fetched, not yet committed
    ("committed", 1, 0),  # right after the first commit
    ("arrive", 4, 0),
    ("answered", 3, 10),
    ("committed", 2, 0),
    ("arrive", 6, 0),
    ("answered", 5, 25),
    ("committed", 4, 0),
    ("arrive", 3, 0),
    ("answered", 4, 40),  # the fetcher waits on the rate limiter
    ("committed", 3, 0),
    ("arrive", 8, 0),
    ("answered", 6, 5),
    ("committed", 6, 0),
    ("arrive", 5, 0),
    ("answered", 7, 15),
    ("committed", 5, 0),
]
PG_POINTS: list[Point] = [POINTS[0], POINTS[3], POINTS[4], POINTS[9], POINTS[16]]


def _records() -> list[OaiRecord]:
    records = [article(i, T0 + dt.timedelta(minutes=50 * i)) for i in range(800)]
    for i in range(0, 800, 7):  # shared DOIs across pages and windows: works are merged
        records[i] = article(
            i, T0 + dt.timedelta(minutes=50 * i), doi=f"https://doi.org/10.5555/TEST.{i + 3}"
        )
    records[400] = OaiRecord(records[400].identifier, records[400].datestamp, deleted=True)
    return records


RECORDS = _records()


def claimed(state: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    text = state.get("through") if state else None
    if not text:
        return set()
    through = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return {(SOURCE, r.identifier) for r in RECORDS if r.datestamp <= through}


def sources(url: str) -> str:
    return block(SOURCE, "oai-pmh", url, window="7d", rate_limit=20)


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), "harvest"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )


def wait_until(proc: subprocess.Popen[bytes], reached: Callable[[], bool], timeout: float = 30) -> bool:
    """Poll every millisecond; True when ``reached`` (the process still runs), False when it
    exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reached():
            return proc.poll() is None
        if proc.poll() is not None:
            return False
        time.sleep(0.001)
    raise AssertionError("the kill point was never reached")


def last_run(engine: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(
            select(HarvestRun.id, HarvestRun.pages).order_by(HarvestRun.id.desc()).limit(1)
        ).first()


def outcomes(engine: Any) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(HarvestRun.outcome).order_by(HarvestRun.id)).scalars())


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigkill_at_20_points_then_restart(kind: str, tmp_path: Path, pg_databases: ScratchDatabases) -> None:
    points = POINTS if kind == "sqlite" else PG_POINTS
    db_url = f"sqlite:///{tmp_path / 'killed.db'}" if kind == "sqlite" else pg_databases.new(migrated=False)
    with FakeOaiServer(RECORDS, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as server:
        reference = reference_snapshot(
            tmp_path, lambda url: block(SOURCE, "oai-pmh", url, window="7d"), server.url, (SOURCE,)
        )
        expected = expected_hashes(reference)
        config = write_config(tmp_path / "killed.yaml", db_url, sources(server.url), level="INFO")
        engine = make_engine(db_url)
        killed: list[Point] = []
        try:
            for i, point in enumerate(points):
                what, n, delay = point
                base_requests, base_answers = len(server.requests), len(server.request_log)
                before = last_run(engine) if i else None
                proc = start(config, tmp_path / f"run{i}.log")

                def reached(
                    what: str = what,
                    n: int = n,
                    base_r: int = base_requests,
                    base_a: int = base_answers,
                    before: Any = before,
                ) -> bool:
                    if what == "arrive":
                        return len(server.requests) - base_r >= n
                    if what == "answered":
                        return len(server.request_log) - base_a >= n
                    try:
                        run = last_run(engine)
                    except Exception:  # the first process has not created the tables yet
                        return False
                    return run is not None and (before is None or run.id > before.id) and run.pages >= n

                if wait_until(proc, reached):
                    if delay:
                        time.sleep(delay / 1000)
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(timeout=30)
                    killed.append(point)
                else:
                    assert proc.wait(timeout=30) == 0, (tmp_path / f"run{i}.log").read_text()[-2000:]
                # after every kill: the checkpoint claims only what is stored as it should be
                store = Store.open(db_url)
                try:
                    CheckpointGuard(store, SOURCE, expected, claimed).assert_clean()
                finally:
                    store.close()

            final = start(config, tmp_path / "final.log")
            assert final.wait(timeout=120) == 0, (tmp_path / "final.log").read_text()[-3000:]
            assert_same(snapshot(engine), reference)
            runs = outcomes(engine)
        finally:
            engine.dispose()
    assert len(killed) >= len(points) - 1, (
        f"only {len(killed)} of {len(points)} points were reached: {killed}"
    )
    assert runs[-1] == "succeeded"
    assert "running" not in runs  # every killed run was marked by the next process
    assert runs.count("interrupted") == len(killed)
