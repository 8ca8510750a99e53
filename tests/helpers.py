"""Small builders shared by the end-to-end tests (configs, records, one harvest call)."""

from __future__ import annotations

import datetime as dt
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from harvester.runner import RunResult, harvest_source
from harvester.settings import Settings, load_settings
from harvester.sources import build_source
from storage.db import make_engine
from storage.models import HarvestRun
from storage.store import Store
from tests.oai_server import OaiRecord, dc_metadata

T0 = dt.datetime(2024, 5, 1, 8, 0, tzinfo=dt.UTC)


def write_config(path: Path, db_url: str, sources: str, *, extra: str = "", precedence: str = "") -> Path:
    """A config file with fast HTTP retries (tests must not sleep for real backoff)."""
    text = f"""
database:
  url: {db_url}
logging:
  level: DEBUG
http:
  user_agent: "harvester-tests/1.0 (mailto:tests@example.org)"
  timeout: 5
  total_timeout: 20
  retries: 3
  backoff: 0.01
  backoff_max: 0.05
  max_retry_after: 5
{textwrap.indent(textwrap.dedent(extra).strip(), "") if extra else ""}
{f"merge:{chr(10)}  precedence: [{precedence}]" if precedence else ""}
sources:
{textwrap.indent(textwrap.dedent(sources).strip(), "  ")}
"""
    path.write_text(text, encoding="utf-8")
    return path


def oai_source_block(name: str, url: str, **options: Any) -> str:
    lines = [f"- name: {name}", "  type: oai-pmh", f"  url: {url}"]
    lines += [f"  {k}: {v}" for k, v in options.items()]
    return "\n".join(lines)


def settings_for(tmp_path: Path, db_url: str, server_url: str, **options: Any) -> Settings:
    path = write_config(tmp_path / "harvester.yaml", db_url, oai_source_block("repo", server_url, **options))
    return load_settings(path)


def harvest(
    settings: Settings, store: Store, name: str = "repo", owner: str = "tests", **kw: Any
) -> RunResult:
    source = build_source(settings.source(name), settings.http, kw.pop("stop", None))
    return harvest_source(source, store, owner=owner, **kw)


def article(
    i: int,
    stamp: dt.datetime = T0,
    *,
    doi: str | None = "auto",
    title: str | None = None,
    sets: tuple[str, ...] = (),
) -> OaiRecord:
    """A DSpace-like oai_dc record; ``doi="auto"`` gives 10.5555/test.{i} in the https form."""
    identifiers = [f"http://hdl.handle.net/1721.1/{i}"]
    if doi == "auto":
        identifiers.append(f"https://doi.org/10.5555/TEST.{i}")
    elif doi:
        identifiers.append(doi)
    return OaiRecord(
        identifier=f"oai:repo.example.org:{i}",
        datestamp=stamp,
        metadata=dc_metadata(
            title or f"Article number {i}",
            creators=[f"Family{chr(65 + i % 26)}, Given"],
            identifiers=identifiers,
            date="2019-05",
            types=["info:eu-repo/semantics/article"],
            languages=["eng"],
        ),
        sets=sets,
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    """Poll ``predicate`` until it holds; errors count as "not yet" (the database may be down
    or its tables not created yet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def run_rows(db_url: str) -> list[Any]:
    """Every ``harvest_runs`` row of the database, oldest first."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(HarvestRun).order_by(HarvestRun.id)).all())
    finally:
        engine.dispose()
