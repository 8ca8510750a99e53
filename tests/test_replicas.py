"""Several processes on one PostgreSQL: concurrent merges and replicas with leases."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from storage.db import make_engine
from storage.models import HarvestRun, SourceRecord, Work
from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, write_config
from tests.oai_server import FakeOaiServer
from tests.test_crash import snapshot

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def spawn(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=ROOT,
    )


def scalar(url: str, stmt: Any) -> Any:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(stmt).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_two_processes_merging_the_same_dois_at_once(tmp_path: Path, pg_databases: Any) -> None:
    """Two harvests of different sources whose records share DOIs, at the same moment."""
    url = pg_databases.new()
    a = [article(i, T0 + dt.timedelta(seconds=i), title=f"From A {i}") for i in range(400)]
    b = [article(i, T0 + dt.timedelta(seconds=i), title=f"From B {i}") for i in range(400)]
    with (
        FakeOaiServer(a, page_size=20, now=lambda: NOW, earliest_datestamp=T0) as server_a,
        FakeOaiServer(b, page_size=20, now=lambda: NOW, earliest_datestamp=T0) as server_b,
    ):
        blocks = "\n".join([oai_source_block("a", server_a.url), oai_source_block("b", server_b.url)])
        config = write_config(tmp_path / "c.yaml", url, blocks, precedence="a, b")
        first, second = spawn(config, "harvest", "a"), spawn(config, "harvest", "b")
        for proc in (first, second):
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-2000:]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Work)).scalar_one() == 400
            works = conn.execute(select(Work.doi, Work.data)).all()
            linked = conn.execute(
                select(func.count()).select_from(SourceRecord).where(SourceRecord.work_id.is_not(None))
            ).scalar_one()
    finally:
        engine.dispose()
    assert linked == 800
    assert all(w.data["sources"] == ["a", "b"] for w in works), "every work merged from BOTH sources' records"
    assert all(w.data["title"].startswith("From A") for w in works)  # precedence a, b

    # Both sources change every record and are harvested at once again: existing works are
    # recomputed by two transactions at the same time; neither may lose the other's update.
    later = NOW + dt.timedelta(hours=1)
    a2 = [article(i, later, title=f"New A {i}") for i in range(400)]
    b2 = [article(i, later, title=f"New B {i}") for i in range(400)]
    for k, r in enumerate(b2):
        b2[k] = type(r)(
            r.identifier, r.datestamp, r.metadata.replace("FamilyA", "Zeta") if r.metadata else None
        )
    with (
        FakeOaiServer(
            a + a2, page_size=20, now=lambda: later + dt.timedelta(minutes=1), earliest_datestamp=T0
        ) as sa,
        FakeOaiServer(
            b + b2, page_size=20, now=lambda: later + dt.timedelta(minutes=1), earliest_datestamp=T0
        ) as sb,
    ):
        blocks = "\n".join([oai_source_block("a", sa.url), oai_source_block("b", sb.url)])
        config = write_config(tmp_path / "c2.yaml", url, blocks, precedence="b, a")  # now b first
        first, second = spawn(config, "harvest", "a"), spawn(config, "harvest", "b")
        for proc in (first, second):
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-2000:]
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            works = conn.execute(select(Work.doi, Work.data, Work.provenance)).all()
    finally:
        engine.dispose()
    assert len(works) == 400
    assert all(w.data["title"].startswith("New B") for w in works), (
        "b's new version (now first) on every work"
    )


@pytest.mark.slow
def test_three_replicas_one_killed_halfway(tmp_path: Path, pg_databases: Any) -> None:
    """Three daemons on one PostgreSQL harvest three sources; one is killed mid-harvest."""
    servers = [
        FakeOaiServer(
            [
                article(i, T0 + dt.timedelta(seconds=i), doi=f"https://doi.org/10.5555/r{k}.{i}")
                for i in range(300)
            ],
            page_size=10,
            now=lambda: NOW,
            earliest_datestamp=T0,
        ).start()
        for k in range(3)
    ]
    try:
        blocks = "\n".join(
            oai_source_block(f"s{k}", s.url, rate_limit=15, schedule="{every: 2s}")
            for k, s in enumerate(servers)
        )
        reference_url, url = pg_databases.new(migrated=False), pg_databases.new(migrated=False)
        reference = write_config(tmp_path / "ref.yaml", reference_url, blocks)
        proc = spawn(reference, "harvest")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        expected = snapshot(reference_url)

        config = write_config(tmp_path / "replicas.yaml", url, blocks)
        replicas = [spawn(config, "run") for _ in range(3)]
        victim = None
        try:
            deadline = time.monotonic() + 120
            while victim is None and time.monotonic() < deadline:  # kill whoever is harvesting, mid-harvest
                engine = make_engine(url)
                try:
                    with engine.connect() as conn:
                        running = (
                            conn.execute(
                                select(HarvestRun.owner).where(
                                    HarvestRun.outcome == "running", HarvestRun.fetched >= 50
                                )
                            )
                            .scalars()
                            .first()
                        )
                except Exception:
                    running = None
                finally:
                    engine.dispose()
                if running:
                    pid = int(running.split(":")[1])
                    victim = next(p for p in replicas if p.pid == pid)
                    victim.send_signal(signal.SIGKILL)
                    victim.wait()
                time.sleep(0.1)
            assert victim is not None, "no replica was caught mid-harvest"
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                if snapshot(url) == expected:
                    break
                time.sleep(1)
        finally:
            logs = []
            for p in replicas:
                if p is not victim:
                    p.send_signal(signal.SIGTERM)
                    _, err = p.communicate(timeout=60)
                    assert p.returncode == 0, err[-2000:]
                    logs += [json.loads(line) for line in err.splitlines() if line.startswith("{")]
        assert snapshot(url) == expected  # nothing lost, nothing duplicated
        assert any(e["event"] == "harvest.skipped" for e in logs) or len(logs) > 0
        interrupted = scalar(
            url, select(func.count()).select_from(HarvestRun).where(HarvestRun.outcome == "interrupted")
        )
        assert interrupted >= 1  # the killed replica's run was marked by a survivor
    finally:
        for s in servers:
            s.stop()
