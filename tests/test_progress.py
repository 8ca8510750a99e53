"""Progress bars: on a terminal only, never in the JSON log stream."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.helpers import T0, article, oai_source_block, write_config
from tests.oai_server import FakeOaiServer

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


def test_progress_bars_on_a_terminal_and_clean_json_logs(tmp_path: Path) -> None:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(120)]
    with FakeOaiServer(records, page_size=20, now=lambda: NOW, earliest_datestamp=T0) as server:
        config = write_config(
            tmp_path / "p.yaml", f"sqlite:///{tmp_path / 'p.db'}", oai_source_block("repo", server.url)
        )
        primary, secondary = os.openpty()  # stdout is a terminal, stderr a pipe
        proc = subprocess.Popen(
            [sys.executable, "-m", "harvester", "--config", str(config), "harvest"],
            stdout=secondary,
            stderr=subprocess.PIPE,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
        )
        os.close(secondary)
        chunks = []
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        _, err = proc.communicate(timeout=120)
        os.close(primary)
    assert proc.returncode == 0
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert "repo" in terminal and "120 records" in terminal and "pages" in terminal
    lines = [line for line in err.decode().splitlines() if line.strip()]
    events = [json.loads(line)["event"] for line in lines]  # every stderr line is still a JSON object
    assert "harvest.finished" in events
