"""The benchmark scripts still run and print what ``benchmarks/run.py`` reads from them.

They import the test servers and helpers and drive the whole record path, so a change
elsewhere can break them without any other test noticing; the first sign would be a
failed ``run.py`` when someone next measures. Tiny sizes, nothing timed: speed goals live
in the benchmarks themselves, never in tests.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT

RATIO = re.compile(r"^ratio: \d+\.\d\dx +\(goal >= [\d.]+x\)", re.MULTILINE)


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "script",
    [
        "oai.py",
        "crossref.py",
        "postgres.py",
    ],
)
def test_end_to_end_benchmark_prints_its_ratio(script: str) -> None:
    args = ["--records", "300", "--repeat", "1"]
    if script == "postgres.py":
        args += ["--admin-url", PG_ADMIN_URL]
    out = run(script, *args)
    assert RATIO.search(out), out
    assert "records/s" in out


def test_scale_benchmark_prints_both_ratios() -> None:
    out = run(
        "scale.py",
        *("--harvest", "200", "--small", "200", "--large", "600", "--rss-small", "200", "--rss-large", "600"),
    )
    assert re.search(r"per-record.*\d+\.\d+x", out), out
    assert re.search(r"peak RSS.*\d+\.\d+x", out), out


def test_stages_benchmark_accounts_for_every_stage() -> None:
    out = run("stages.py", "--records", "300", "--repeat", "1")
    for title in ("OAI-PMH", "Crossref"):
        section = out[out.index(title) :]
        for stage in ("fetch + strict parse", "normalize", "commit", "harvester, all stages"):
            assert re.search(rf"{re.escape(stage)}.* \d+ us/record +\d+\.\d\d of the budget", section), out
