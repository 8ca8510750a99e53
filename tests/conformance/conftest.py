"""Collects one summary row per replayed corpus file; prints the table and writes it as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROWS_KEY = pytest.StashKey[list[dict[str, Any]]]()
JSON_KEY = pytest.StashKey[Path]()


@pytest.fixture(scope="session")
def conformance_rows(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[dict[str, Any]]]:
    """The rows of the summary table; written to a session JSON file at the end."""
    rows = request.config.stash.setdefault(ROWS_KEY, [])
    yield rows
    if rows:
        path = tmp_path_factory.mktemp("conformance") / "summary.json"
        ordered = sorted(rows, key=lambda r: r["file"])
        path.write_text(json.dumps(ordered, indent=2, ensure_ascii=False), encoding="utf-8")
        request.config.stash[JSON_KEY] = path


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    collected = config.stash.setdefault(ROWS_KEY, [])
    rows = sorted(collected, key=lambda r: r["file"])
    if not rows:
        return
    tr = terminalreporter
    tr.write_sep("=", "real-world OAI-PMH conformance")
    header = ("file", "kind", "records", "stored", "deleted", "quarantined", "DOIs", "result")
    table = [header] + [
        (
            r["file"],
            r["kind"],
            _cell(r.get("expected")),
            _cell(r.get("stored_live")),
            _cell(r.get("stored_deleted")),
            _cell(r.get("quarantined")),
            _cell(r.get("dois_found")),
            r["result"],
        )
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in table) for i in range(len(header) - 1)]
    for n, line in enumerate(table):
        cells = [
            str(c).ljust(w) if i < 2 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=False))
        ]
        tr.write_line("  ".join([*cells, str(line[-1])]))
        if n == 0:
            tr.write_line("  ".join("-" * w for w in widths) + "  ------")
    reasons = [(r["file"], reason, n) for r in rows for reason, n in r.get("quarantine_reasons", {}).items()]
    if reasons:
        tr.write_line("")
        tr.write_line("quarantine reasons (file: count x reason):")
        for file, reason, n in reasons:
            tr.write_line(f"  {file}: {n} x {reason}")
    totals = {
        k: sum(r.get(k) or 0 for r in rows)
        for k in ("expected", "stored_live", "stored_deleted", "quarantined", "dois_found")
    }
    tr.write_line("")
    tr.write_line(
        "totals: {expected} records -> {stored_live} stored live + {stored_deleted} stored deleted"
        " + {quarantined} quarantined; {dois_found} DOIs".format(**totals)
    )
    path = config.stash.get(JSON_KEY, None)
    if path is not None:
        tr.write_line(f"JSON summary: {path}")
