"""SIGKILL at any moment, then a rerun: nothing lost, nothing duplicated.

The harvester runs as a real subprocess (``python -m harvester harvest``) against the
local OAI-PMH server; the test kills it with SIGKILL at random moments, restarts it,
and finally compares the whole store with one made by an uninterrupted harvest.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from storage.db import make_engine
from storage.models import SourceRecord, Work
from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, write_config
from tests.oai_server import FakeOaiServer

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def snapshot(url: str) -> dict[str, Any]:
    """Everything the store holds, without ids and timestamps (which legitimately differ)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            records = conn.execute(
                select(
                    SourceRecord.source,
                    SourceRecord.key,
                    SourceRecord.raw_hash,
                    SourceRecord.deleted,
                    SourceRecord.doi,
                    Work.doi,
                )
                .join(Work, Work.id == SourceRecord.work_id, isouter=True)
                .order_by(SourceRecord.source, SourceRecord.key)
            ).all()
            works = conn.execute(select(Work.doi, Work.data, Work.deleted)).all()
    finally:
        engine.dispose()
    return {
        "records": [tuple(r) for r in records],
        "works": sorted(json.dumps([w.doi, w.data, w.deleted], sort_keys=True) for w in works),
    }


def run_harvester(config: Path, *, kill_after: float | None = None) -> int | None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), "harvest"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    if kill_after is None:
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            raise AssertionError(f"harvester exited {proc.returncode}: {err.decode()[-3000:]}")
        return proc.returncode
    try:
        proc.wait(timeout=kill_after)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()  # type: ignore[union-attr]
        return None
    proc.stderr.close()  # type: ignore[union-attr]
    return proc.returncode


@pytest.mark.slow
def test_sigkill_mid_harvest_then_rerun_loses_and_duplicates_nothing(
    tmp_path: Path, db_url: str, pg_databases: Any
) -> None:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(1500)]
    for i in range(0, 1500, 7):  # shared DOIs, so works are merged across pages
        records[i] = article(i, T0 + dt.timedelta(seconds=i), doi=f"https://doi.org/10.5555/TEST.{i + 1}")
    with FakeOaiServer(records, page_size=25, now=lambda: NOW, earliest_datestamp=T0) as server:
        source = oai_source_block("repo", server.url, rate_limit=20)
        if db_url.startswith("sqlite"):
            reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
        else:
            reference_url = pg_databases.new(migrated=False)
        reference = write_config(tmp_path / "reference.yaml", reference_url, source)
        run_harvester(reference)
        expected = snapshot(reference_url)
        assert len(expected["records"]) == 1500

        config = write_config(tmp_path / "crashy.yaml", db_url, source)
        rng = random.Random(20261128)
        kills = 0
        for _ in range(40):
            code = run_harvester(config, kill_after=rng.uniform(0.3, 1.2))
            if code is None:
                kills += 1
                continue
            assert code == 0
            break
        assert kills >= 3, "the harvest finished before it could be killed; slow it down"
        run_harvester(config)  # and once more: a complete store stays as it is
        assert snapshot(db_url) == expected
