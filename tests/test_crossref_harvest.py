"""Crossref end to end: the local Crossref-shaped server, the real source, both databases."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from structlog.testing import capture_logs

from harvester.logs import register_secrets
from harvester.runner import harvest_source
from harvester.settings import Settings, load_settings
from harvester.sources import build_source
from storage.models import SourceRecord, Work
from storage.store import Store
from tests.crossref_server import CrossrefWork, FakeCrossref, Fault, work_item
from tests.helpers import T0, article, harvest, oai_source_block, write_config
from tests.oai_server import FakeOaiServer

TODAY = dt.datetime.now(dt.UTC).date()
MIDNIGHT = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)


def crossref_block(name: str, url: str, **options: Any) -> str:
    lines = [f"- name: {name}", "  type: crossref", f"  url: {url}", "  mailto: tests@example.org"]
    lines += [f"  {k}: {v}" for k, v in options.items()]
    return "\n".join(lines)


def settings_for(tmp_path: Path, db_url: str, url: str, **options: Any) -> Settings:
    options.setdefault("since", (TODAY - dt.timedelta(days=60)).isoformat())
    return load_settings(
        write_config(tmp_path / "c.yaml", db_url, crossref_block("crossref", url, **options))
    )


def works_over(days: int, count: int, prefix: str = "10.5555") -> list[CrossrefWork]:
    """``count`` works indexed evenly over the last ``days`` days, some of them today."""
    step = dt.timedelta(days=days) / count
    start = MIDNIGHT - dt.timedelta(days=days - 1)
    return [
        CrossrefWork(
            work_item(f"{prefix}/cr.{i}", f"Crossref work {i}", is_referenced_by_count=i % 7),
            indexed=start + step * i,
        )
        for i in range(count)
    ]


def stored(store: Store, source: str = "crossref") -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(SourceRecord)
                .where(SourceRecord.source == source, SourceRecord.deleted.is_(False))
            ).scalar_one()
        )


def list_requests(server: FakeCrossref) -> list[dict[str, list[str]]]:
    return [r.params for r in server.requests if r.path.endswith("/works")]


@pytest.fixture
def server() -> Iterator[FakeCrossref]:
    with FakeCrossref(works_over(40, 2345)) as s:
        yield s


def test_first_harvest_then_only_today_again(
    server: FakeCrossref, store: Store, tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path, db_url, server.url)
    first = harvest(settings, store, "crossref")
    assert first.outcome == "succeeded", first.error
    assert stored(store) == 2345
    assert first.stats.inserted == 2345
    requests = list_requests(server)
    assert len(requests) < 25  # adaptive windows: not one request per day of the 60
    assert not server.violations  # stayed under the advertised rate and concurrency
    cursor_pages = [r for r in requests if r.get("cursor")]
    assert all(
        r["rows"] == ["1000"] and "select" in r and r["mailto"] == ["tests@example.org"] for r in cursor_pages
    )
    assert store.load_checkpoint("crossref")["through"] == (TODAY - dt.timedelta(days=1)).isoformat()  # type: ignore[index]

    before = len(requests)
    second = harvest(settings, store, "crossref")
    assert second.outcome == "succeeded"
    assert (second.stats.inserted, second.stats.updated, second.stats.works_updated) == (0, 0, 0)
    again = list_requests(server)[before:]
    assert len(again) == 1  # today only: one day window, one page
    assert f"from-index-date:{TODAY.isoformat()}" in again[0]["filter"][0]
    assert second.stats.unchanged > 0  # today's works fetched again, written never


def test_filters_are_passed_and_a_list_means_or(store: Store, tmp_path: Path, db_url: str) -> None:
    works = works_over(5, 30) + works_over(5, 20, prefix="10.1108")
    with FakeCrossref(works) as server:
        settings = settings_for(
            tmp_path,
            db_url,
            server.url,
            filter='{prefix: "10.1108", type: [journal-article, proceedings-article]}',
        )
        result = harvest(settings, store, "crossref")
        assert result.outcome == "succeeded", result.error
        assert stored(store) == 20
        flt = list_requests(server)[0]["filter"][0]
        assert "prefix:10.1108" in flt and "type:journal-article" in flt and "type:proceedings-article" in flt


def test_a_filter_the_server_rejects_is_named_in_the_error(store: Store, tmp_path: Path, db_url: str) -> None:
    with FakeCrossref(works_over(3, 5)) as server:
        settings = settings_for(tmp_path, db_url, server.url, filter="{has-funder: true}")
        result = harvest(settings, store, "crossref")
    assert result.outcome == "failed"
    assert "has-funder" in (result.error or "")
    assert store.load_checkpoint("crossref") is None


def test_big_windows_are_split(server: FakeCrossref, store: Store, tmp_path: Path, db_url: str) -> None:
    with capture_logs() as logs:
        result = harvest(
            settings_for(tmp_path, db_url, server.url, max_window_results=300, rows=100), store, "crossref"
        )
    assert result.outcome == "succeeded", result.error
    assert stored(store) == 2345
    assert any(e["event"] == "crossref.window_split" for e in logs)


def test_failure_mid_window_keeps_the_checkpoint_and_the_rerun_completes(
    server: FakeCrossref, store: Store, tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path, db_url, server.url, rows=200)
    first_page = len(server.requests) + 2  # probe, first cursor page, then the failing one
    for k in range(first_page, first_page + 4):
        server.faults.on_request(k, Fault.exception_500())
    failed = harvest(settings, store, "crossref")
    assert failed.outcome == "failed" and "500" in (failed.error or "")
    assert 0 < stored(store) < 2345
    assert store.load_checkpoint("crossref") is None  # no window completed
    resumed = harvest(settings, store, "crossref")
    assert resumed.outcome == "succeeded", resumed.error
    assert stored(store) == 2345


def test_a_retry_that_skipped_a_page_is_caught_and_the_window_redone(
    server: FakeCrossref, store: Store, tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path, db_url, server.url, rows=200)
    # a truncated page advances the server-side scroll; the retry then gets the NEXT page
    server.faults.on_request(len(server.requests) + 3, Fault.truncate(0.5))
    with capture_logs() as logs:
        result = harvest(settings, store, "crossref")
    assert result.outcome == "succeeded", result.error
    assert stored(store) == 2345
    assert any(e["event"] == "crossref.window_incomplete" for e in logs)


def test_an_expired_cursor_restarts_the_window(
    server: FakeCrossref, store: Store, tmp_path: Path, db_url: str
) -> None:
    settings = settings_for(tmp_path, db_url, server.url, rows=200)
    source = build_source(settings.source("crossref"), settings.http)
    real_get = source._get  # type: ignore[attr-defined]
    expired = []

    def get(params: dict[str, Any]) -> dict[str, Any]:
        if not expired and params.get("cursor", "*") != "*":  # the second page of the first window
            server.expire_cursors()  # as if five idle minutes had passed
            expired.append(True)
        return real_get(params)  # type: ignore[no-any-return]

    source._get = get  # type: ignore[attr-defined]
    with capture_logs() as logs:
        result = harvest_source(source, store, owner="tests")
    assert result.outcome == "succeeded", result.error
    assert stored(store) == 2345
    assert any(e["event"] == "crossref.cursor_expired" for e in logs)


def test_bare_429_backs_off_and_polite_pool_is_used(store: Store, tmp_path: Path, db_url: str) -> None:
    with FakeCrossref(works_over(3, 50)) as server:
        server.faults.bare_429 = True
        server.faults.too_many_requests_next(2)
        with capture_logs() as logs:
            result = harvest(settings_for(tmp_path, db_url, server.url), store, "crossref")
        assert result.outcome == "succeeded", result.error
        assert [e["status"] for e in logs if e["event"] == "http.retry"] == [429, 429]
        agents = {r.headers.get("user-agent") for r in server.requests}
        assert all(a and "mailto:tests@example.org" in a for a in agents)
        assert not server.violations


def test_plus_token_is_sent_in_a_header_and_never_logged(store: Store, tmp_path: Path, db_url: str) -> None:
    token = "plus-token-1c2d3e4f5a6b"
    with FakeCrossref(works_over(3, 10), plus_token=token) as server:
        config = write_config(
            tmp_path / "c.yaml",
            db_url,
            crossref_block(
                "crossref", server.url, since=(TODAY - dt.timedelta(days=5)).isoformat(), plus_token=token
            ),
        )
        settings = load_settings(config)
        register_secrets(settings.secrets())
        with capture_logs() as logs:
            result = harvest(settings, store, "crossref")
        assert result.outcome == "succeeded", result.error
        assert all(r.headers.get("crossref-plus-api-token") == f"Bearer {token}" for r in server.requests)
        assert all(token not in str(r.params) for r in server.requests)
    assert token not in repr(logs)


def test_one_work_from_an_oai_repository_and_crossref(store: Store, tmp_path: Path, db_url: str) -> None:
    """The issue's "done when": both sources into one store, ONE work, trusted fields first."""
    doi = "10.1108/IJPSM-08-2018-0173"
    crossref_item = work_item(
        doi,
        "The e-government paradox in post-Soviet countries",
        container_title=["International Journal of Public Sector Management"],
        publisher="Emerald",
        ISSN=["0951-3558"],
        is_referenced_by_count=41,
    )
    repo_record = article(
        1, T0, doi=f"https://doi.org/{doi}", title="The e-government paradox (accepted manuscript)"
    )
    now = dt.datetime.now(dt.UTC)
    with (
        FakeCrossref([CrossrefWork(crossref_item, indexed=MIDNIGHT)]) as crossref,
        FakeOaiServer([repo_record], now=lambda: now, earliest_datestamp=T0) as repo,
    ):
        sources = "\n".join(
            [
                crossref_block("crossref", crossref.url, since=(TODAY - dt.timedelta(days=2)).isoformat()),
                oai_source_block("pure", repo.url),
            ]
        )
        settings = load_settings(
            write_config(tmp_path / "both.yaml", db_url, sources, precedence="crossref, pure")
        )
        assert harvest(settings, store, "crossref").outcome == "succeeded"
        assert harvest(settings, store, "pure").outcome == "succeeded"
        work = store.work_by_doi(doi.lower())
        assert work is not None
        assert work["title"] == "The e-government paradox in post-Soviet countries"
        assert work["provenance"]["title"] == "crossref"
        assert work["language"] == "en" and work["provenance"]["language"] == "pure"
        assert work["citation_count"]["value"] == 41 and work["citation_count"]["source"] == "crossref"
        assert work["sources"] == ["crossref", "pure"]
        assert work["issn"] == ["0951-3558"]
        with store.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(Work)).scalar_one() == 1
            before = conn.execute(select(func.max(Work.updated_at))).scalar_one()
        for name in ("crossref", "pure"):
            again = harvest(settings, store, name)
            assert (again.stats.inserted, again.stats.updated, again.stats.works_updated) == (0, 0, 0)
        with store.engine.connect() as conn:
            assert conn.execute(select(func.max(Work.updated_at))).scalar_one() == before
