"""Secrets (issue 8, item 6): known dummy secrets never leave the places they belong in.

fault → test → what it proves

* secret leakage (catalogue #17) → ``test_no_secret_in_logs_store_or_output``, on SQLite and
  PostgreSQL (with a database password in the URL): one real ``harvester harvest`` process
  at DEBUG logging over four sources — Scopus with two API keys and an institution token
  (a throttling 429 retried, a weekly-quota 429 that rotates to the second key), Scopus with
  an unknown key (401: the run fails naming the entitlement), Crossref with a Metadata Plus
  token given through ``${PLUS_TOKEN}`` (a 429 retried) and Crossref with a wrong Plus token
  (401) — then ``status``, ``status --json`` and ``check-config``. Every stderr and stdout
  line, every value of every table (raw payloads, stored URLs, ``harvest_runs.error``,
  quarantine, checkpoints, quota rows) is searched for every secret: zero hits. The keys
  went in headers only (the fake Scopus records any key sent in a URL: none), and they were
  really used (the servers saw them), so the search is not vacuous.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from storage.store import Store
from tests.conftest import ROOT
from tests.crossref_server import CrossrefWork, FakeCrossref, work_item
from tests.faults_helpers import block, everything_stored, write_config
from tests.scopus_server import FakeScopus, KeyPlan, ScopusWork, scopus_affiliation

TODAY = dt.datetime.now(dt.UTC).date()
SINCE = (TODAY - dt.timedelta(days=5)).isoformat()
SCOPUS_KEY = "dummy-scopus-key-3f9a1c77e2"
SCOPUS_KEY2 = "dummy-scopus-key-second-b41d09"
INST_TOKEN = "dummy-insttoken-5e6f7a8b9c"
BAD_KEY = "dummy-unknown-scopus-key-77aa01"
PLUS_TOKEN = "dummy-plus-token-c0ffee1234"
BAD_PLUS = "dummy-wrong-plus-token-deadbeef"
DB_PASSWORD = "dummy-db-password-8d7c6b"


def scopus_works() -> list[ScopusWork]:
    affiliation = scopus_affiliation("60000001", "Example University", "Tartu", "Estonia")
    return [
        ScopusWork(
            f"2-s2.0-850{i:08d}",
            f"Secret-free work {i}",
            load_date=TODAY - dt.timedelta(days=i % 4),
            doi=f"10.5555/sec.{i}",
            affiliations=[affiliation],
        )
        for i in range(30)
    ]


def crossref_works() -> list[CrossrefWork]:
    midnight = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
    return [
        CrossrefWork(
            work_item(f"10.5555/cs.{i}", f"Crossref work {i}"), indexed=midnight - dt.timedelta(hours=5 * i)
        )
        for i in range(20)
    ]


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harvester", "--config", str(config), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PLUS_TOKEN": PLUS_TOKEN},
        cwd=ROOT,
        timeout=120,
        check=False,
    )


def test_no_secret_in_logs_store_or_output(tmp_path: Path, db_url: str) -> None:
    secrets = [SCOPUS_KEY, SCOPUS_KEY2, INST_TOKEN, BAD_KEY, PLUS_TOKEN, BAD_PLUS]
    if db_url.startswith("postgresql"):  # trust auth ignores it, but it is in the config
        db_url = db_url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
        secrets.append(DB_PASSWORD)
    plans = {SCOPUS_KEY: KeyPlan(), SCOPUS_KEY2: KeyPlan()}
    with (
        FakeScopus(scopus_works(), api_keys=plans, inst_tokens=[INST_TOKEN]) as scopus,
        FakeCrossref(crossref_works(), plus_token=PLUS_TOKEN, pool="plus", rate_limit=1000) as crossref,
    ):
        scopus.faults.throttle_next(1)  # a throttling 429 (retried)...
        scopus.faults.quota_exceeded_next(1)  # ...then the first key's weekly quota is gone
        crossref.faults.too_many_requests_next(1)
        query = "'AFFILORG(\"Example University\")'"
        sources = "\n".join(
            [
                block(
                    "scopus",
                    "scopus",
                    scopus.url,
                    api_key=SCOPUS_KEY,
                    api_keys=f"[{SCOPUS_KEY2}]",
                    inst_token=INST_TOKEN,
                    query=query,
                    since=SINCE,
                ),
                block("scopus_denied", "scopus", scopus.url, api_key=BAD_KEY, query=query, since=SINCE),
                block(
                    "crossref",
                    "crossref",
                    crossref.url,
                    mailto="tests@example.org",
                    plus_token="'${PLUS_TOKEN}'",
                    since=SINCE,
                ),
                block("crossref_denied", "crossref", crossref.url, plus_token=BAD_PLUS, since=SINCE),
            ]
        )
        config = write_config(tmp_path / "secrets.yaml", db_url, sources, level="DEBUG")
        harvest = cli(config, "harvest")

        # the secrets were really used, and only in headers
        assert {r.headers.get("x-els-apikey") for r in scopus.requests} == {SCOPUS_KEY, SCOPUS_KEY2, BAD_KEY}
        assert any(r.headers.get("x-els-insttoken") == INST_TOKEN for r in scopus.requests)
        assert scopus.key_in_url == []
        plus = {r.headers.get("crossref-plus-api-token") for r in crossref.requests}
        assert plus == {f"Bearer {PLUS_TOKEN}", f"Bearer {BAD_PLUS}"}
        assert not any(s in str(r.params) or s in r.path for r in crossref.requests for s in secrets)

    assert harvest.returncode == 1, harvest.stderr[-3000:]  # the two denied sources failed
    status, status_json, check = (
        cli(config, "status"),
        cli(config, "status", "--json"),
        cli(config, "check-config"),
    )
    assert status.returncode == status_json.returncode == check.returncode == 0, status.stderr

    # what happened is in the log, at DEBUG
    log = harvest.stderr
    assert '"event": "http.response"' in log and '"level": "debug"' in log
    assert log.count('"event": "http.retry"') >= 2 and '"status": 429' in log
    assert '"event": "scopus.key_exhausted"' in log
    assert "not entitled" in log and "HTTP 401" in log

    store = Store.open(db_url)
    try:
        stored = everything_stored(store)
        runs = store.status()["sources"]
    finally:
        store.close()
    assert "not entitled" in runs["scopus_denied"]["last_run"]["error"]
    assert "401" in runs["crossref_denied"]["last_run"]["error"]
    assert runs["scopus"]["records"]["live"] == 30 and runs["crossref"]["records"]["live"] == 20

    searched = {
        "harvest stderr": harvest.stderr,
        "harvest stdout": harvest.stdout,
        "status": status.stdout + status.stderr,
        "status --json": status_json.stdout + status_json.stderr,
        "check-config": check.stdout + check.stderr,
        "the store": stored,
    }
    leaks = [(where, secret) for where, text in searched.items() for secret in secrets if secret in text]
    assert leaks == []
    assert sum(len(text.splitlines()) for text in searched.values()) > 100  # the search saw something
