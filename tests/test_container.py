"""The container, without a Docker engine: lint the Dockerfile, then build the SAME install
in a fresh venv and run the entrypoint's commands as the image would."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, write_config
from tests.oai_server import FakeOaiServer

DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_dockerfile_lints_clean_and_has_what_operators_need() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^FROM python:3\.11-slim", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^USER 10001", DOCKERFILE, re.MULTILINE)  # non-root
    assert "-c requirements.lock" in DOCKERFILE  # pinned dependencies
    assert "HARVESTER_CONFIG=/etc/harvester/harvester.yaml" in DOCKERFILE
    assert re.search(r"^HEALTHCHECK .*harvester\", \"health\"", DOCKERFILE, re.MULTILINE)
    assert "harvester db upgrade && exec harvester" in DOCKERFILE and 'CMD ["run"]' in DOCKERFILE


def test_compose_file_runs_postgres_with_a_volume_and_the_harvester() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert set(compose["services"]) == {"postgres", "harvester"}
    assert "pgdata" in compose["volumes"]
    harvester = compose["services"]["harvester"]
    assert harvester["environment"]["HARVESTER_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert "/etc/harvester/harvester.yaml" in harvester["volumes"][0]


@pytest.mark.slow
def test_the_image_install_and_entrypoint_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            "-c",
            "requirements.lock",
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    workdir = tmp_path / "var-lib-harvester"
    workdir.mkdir()
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(30)]
    with FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0) as server:
        config = write_config(
            tmp_path / "harvester.yaml",
            f"sqlite:///{workdir / 'harvester.db'}",
            oai_source_block("repo", server.url),
        )
        env = {
            "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
            "HARVESTER_CONFIG": str(config),
            "PYTHONUNBUFFERED": "1",
            "HOME": str(workdir),
        }
        entrypoint = ["/bin/sh", "-c", 'harvester db upgrade && exec harvester "$@"', "--", "run"]
        proc = subprocess.Popen(
            entrypoint, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                health = subprocess.run(
                    ["harvester", "health"], env=env, cwd=workdir, capture_output=True, text=True, check=False
                )
                status = subprocess.run(
                    ["harvester", "status", "--json"],
                    env=env,
                    cwd=workdir,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if status.returncode == 0 and json.loads(status.stdout)["works"]["live"] == 30:
                    break
                time.sleep(0.5)
            assert health.returncode == 0, health.stderr
            assert json.loads(status.stdout)["works"]["live"] == 30
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert events[0] == "db.upgraded" and events[-1] == "daemon.stopped"
    assert not os.path.exists(ROOT / "harvester.db.tmp")
