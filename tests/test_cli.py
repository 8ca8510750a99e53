"""The operator interface: commands, exit codes, stdout/stderr, against real servers and stores."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from harvester.cli import main
from harvester.merge import EXPORT_KEYS
from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, write_config
from tests.oai_server import FakeOaiServer

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def server() -> Iterator[FakeOaiServer]:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(30)]
    with FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as s:
        yield s


def cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_check_config_ok_and_invalid(tmp_path: Path, server: FakeOaiServer) -> None:
    good = write_config(tmp_path / "good.yaml", "sqlite:///x.db", oai_source_block("repo", server.url))
    code, out, err = cli("--config", str(good), "check-config")
    assert code == 0
    assert "source repo: oai-pmh" in out and "every 1d" in out

    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("type: oai-pmh", "type: oai-pmh\n    schedule: {every: often}"))
    code, out, err = cli("--config", str(bad), "check-config")
    assert code == 2
    assert out == ""
    assert err == f"{bad}: sources[0].schedule.every: 'often' is not a duration\n"


def test_config_from_environment_and_database_override(tmp_path: Path, server: FakeOaiServer) -> None:
    config = write_config(tmp_path / "h.yaml", "sqlite:///ignored.db", oai_source_block("repo", server.url))
    db = tmp_path / "from-env.db"
    env = {"HARVESTER_CONFIG": str(config), "HARVESTER_DATABASE_URL": f"sqlite:///{db}"}
    code, out, _ = cli("check-config", env=env)
    assert code == 0 and str(db) in out


def test_harvest_status_show_export(tmp_path: Path, server: FakeOaiServer, db_url: str) -> None:
    config = str(write_config(tmp_path / "h.yaml", db_url, oai_source_block("repo", server.url)))
    code, out, err = cli("--config", config, "harvest")
    assert code == 0, err
    assert out == ""  # logs go to stderr, as JSON lines
    events = [e["event"] for e in json_lines(err)]
    assert "harvest.started" in events and "harvest.finished" in events

    code, out, _ = cli("--config", config, "status", "--json")
    assert code == 0
    status = json.loads(out)
    repo = status["sources"]["repo"]
    assert repo["last_run"]["outcome"] == "succeeded"
    assert repo["records"] == {"live": 30, "deleted": 0}
    assert status["works"]["live"] == 30
    code, out, _ = cli("--config", config, "status")
    assert "last run     succeeded" in out and "30 live" in out

    code, out, _ = cli("--config", config, "show", "https://doi.org/10.5555/TEST.3")  # any spelling
    assert code == 0
    work = json.loads(out)
    assert work["doi"] == "10.5555/test.3"
    assert work["provenance"]["title"] == "repo"
    assert work["records"] == [
        {
            "source": "repo",
            "key": "oai:repo.example.org:3",
            "deleted": False,
            "datestamp": "2024-05-01T08:00:03Z",
            "reason": "doi",
        }
    ]
    assert cli("--config", config, "show", "10.9999/unknown")[0] == 1

    code, out, _ = cli("--config", config, "export", "--format", "jsonl")
    works = json_lines(out)
    assert len(works) == 30
    assert all(list(w) == list(EXPORT_KEYS) for w in works)
    assert works[3]["authors"] == [
        {"family": "FamilyD", "given": "Given", "name": "FamilyD, Given", "orcid": None, "affiliations": []}
    ]
    code, out, _ = cli("--config", config, "export", "--format", "jsonl", "--doi", "doi:10.5555/test.7")
    assert [w["doi"] for w in json_lines(out)] == ["10.5555/test.7"]

    target = tmp_path / "works.csv"
    code, _, _ = cli("--config", config, "export", "--format", "csv", "-o", str(target))
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert len(rows) == 30 and rows[0]["doi"] == "10.5555/test.0"
    assert rows[0]["authors"] == "FamilyA, Given" and rows[0]["date"] == "2019-05"


def test_one_failing_source_does_not_stop_the_others(tmp_path: Path, server: FakeOaiServer) -> None:
    sources = "\n".join(
        [
            oai_source_block("broken", "http://127.0.0.1:9/oai"),  # nothing listens on port 9
            oai_source_block("repo", server.url),
        ]
    )
    config = str(write_config(tmp_path / "h.yaml", f"sqlite:///{tmp_path / 'h.db'}", sources))
    code, _, err = cli("--config", config, "harvest")
    assert code == 1
    failed = [e for e in json_lines(err) if e["event"] == "harvest.failed"]
    assert [e["source"] for e in failed] == ["broken"]
    code, out, _ = cli("--config", config, "status", "--json")
    status = json.loads(out)["sources"]
    assert status["repo"]["last_run"]["outcome"] == "succeeded"
    assert status["broken"]["last_run"]["outcome"] == "failed"
    assert "ConnectError" in status["broken"]["last_run"]["error"]
    # naming sources harvests only those; an unknown name is a usage error
    assert cli("--config", config, "harvest", "repo")[0] == 0
    code, _, err = cli("--config", config, "harvest", "nope")
    assert code == 2 and "no source named 'nope'" in err


def test_db_upgrade_and_python_dash_m(tmp_path: Path, server: FakeOaiServer) -> None:
    config = write_config(
        tmp_path / "h.yaml", f"sqlite:///{tmp_path / 'h.db'}", oai_source_block("repo", server.url)
    )
    proc = subprocess.run(
        [sys.executable, "-m", "harvester", "--config", str(config), "db", "upgrade"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    [line] = [json.loads(x) for x in proc.stderr.splitlines() if '"db.upgraded"' in x]
    assert line["revision"] and line["level"] == "info" and line["timestamp"].endswith("Z")
    harvester_script = Path(sys.executable).parent / "harvester"
    assert harvester_script.exists(), "the console script is installed with the package"
