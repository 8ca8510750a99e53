"""Every performance goal of the project, measured side by side, one table at the end.

Runs each benchmark in its own process (so one does not warm the other's caches) and
prints its output, then ``stages.py`` (each stage's cost per record against the budget a
goal gives, which says where a missing ratio is), then the summary: the ratio each
measured, and its goal. These machines are noisy: only ratios within one run mean anything.

    python benchmarks/run.py            # the issue's sizes (several minutes)
    python benchmarks/run.py --quick    # smaller sizes, for a first look
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    q = args.quick
    runs = [
        (
            "OAI-PMH end to end vs bare sickle",
            ">= 1.0x",
            ["oai.py", "--records", "20000" if q else "100000", "--repeat", "1" if q else "2"],
        ),
        (
            "Crossref end to end vs bare httpx + json",
            ">= 0.6x",
            ["crossref.py", "--records", "10000" if q else "50000", "--repeat", "1" if q else "2"],
        ),
        (
            "PostgreSQL vs SQLite, same harvest",
            ">= 0.8x",
            ["postgres.py", "--records", "10000" if q else "50000", "--repeat", "1" if q else "2"],
        ),
        (
            "per-record cost 1M vs 10k works stored; peak RSS 100k vs 10k records",
            "<= 1.3x; <= 1.2x, < 250 MB",
            ["scale.py", *(["--large", "200000", "--rss-large", "50000"] if q else [])],
        ),
    ]
    summary = []
    for title, goal, command in runs:
        result = _run(title, command)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        ratios = [
            m.group(0)
            for line in lines
            for m in [re.search(r"= ?[\d.]+x|\b[\d.]+x\b", line)]
            if m and ("ratio" in line or "per-record" in line or "peak RSS" in line)
        ]
        summary.append(
            (
                title,
                ", ".join(r.lstrip("= ") for r in ratios) or "failed",
                goal,
                "BELOW GOAL" not in result.stdout
                and "ABOVE GOAL" not in result.stdout
                and not result.returncode,
            )
        )
    _run(
        "where the time goes: OAI-PMH and Crossref one stage at a time",
        ["stages.py", "--records", "5000" if q else "20000", "--repeat", "1" if q else "2"],
    )
    print("\n=== summary ===")
    width = max(len(t) for t, *_ in summary)
    for title, measured, goal, ok in summary:
        print(f"{title:<{width}}  {measured:>14}  goal {goal:<24} {'OK' if ok else 'NOT MET'}")


def _run(title: str, command: list[str]) -> subprocess.CompletedProcess[str]:
    """Run one benchmark script in its own process and print its output under ``title``."""
    print(f"\n=== {title} ===", flush=True)
    result = subprocess.run(
        [sys.executable, str(HERE / command[0]), *command[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    print("\n".join(line for line in result.stdout.splitlines() if line.strip()), flush=True)
    if result.returncode:
        print(result.stderr[-2000:])
    return result


if __name__ == "__main__":
    main()
