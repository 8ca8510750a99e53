"""Scopus end to end: the local Scopus-shaped server, the real source, both databases."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import func, select
from structlog.testing import capture_logs

from harvester.cli import main
from harvester.logs import register_secrets
from harvester.settings import Settings, load_settings
from storage.models import SourceRecord, Work
from storage.source_state import load_quotas
from storage.store import Store
from tests.crossref_server import CrossrefWork, FakeCrossref, work_item
from tests.helpers import T0, article, harvest, oai_source_block, write_config
from tests.oai_server import FakeOaiServer
from tests.scopus_server import FakeScopus, KeyPlan, ScopusWork, scopus_affiliation, scopus_author

TODAY = dt.datetime.now(dt.UTC).date()
KEY = "scopus-key-7f3e2d1c0b"
KEY2 = "scopus-key-second-9a8b"


def scopus_block(name: str, url: str, **options: Any) -> str:
    options.setdefault("api_key", KEY)
    options.setdefault("query", 'AFFILORG("Example University")')
    lines = [f"- name: {name}", "  type: scopus", f"  url: {url}"]
    lines += [f"  {k}: {v!r}" if k == "query" else f"  {k}: {v}" for k, v in options.items()]
    return "\n".join(lines)


def settings_for(tmp_path: Path, db_url: str, url: str, **options: Any) -> Settings:
    options.setdefault("since", (TODAY - dt.timedelta(days=60)).isoformat())
    settings = load_settings(
        write_config(tmp_path / "s.yaml", db_url, scopus_block("scopus", url, **options))
    )
    register_secrets(settings.secrets())
    return settings


def works(n: int, days: int = 40) -> list[ScopusWork]:
    affiliation = scopus_affiliation("60000001", "Example University", "Astana", "Kazakhstan")
    return [
        ScopusWork(
            f"2-s2.0-850{i:08d}",
            f"Scopus work number {i}",
            load_date=TODAY - dt.timedelta(days=i % days),
            doi=f"10.5555/sc.{i}",
            authors=[scopus_author(f"5700{i:04d}", "Knox", "Colin", "60000001")],
            affiliations=[affiliation],
            cover_date="2019-05-13",
            cited_by=str(i % 9),
            authkeywords="E-government | Kazakhstan",
            subject_areas=[("3321", "SOCI", "Public Administration")],
        )
        for i in range(n)
    ]


def stored(store: Store, source: str = "scopus") -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(SourceRecord)
                .where(
                    SourceRecord.source == source,
                    SourceRecord.deleted.is_(False),
                    ~SourceRecord.key.endswith("#abstract"),
                )
            ).scalar_one()
        )


def assert_no_key_leak(server: FakeScopus, logs: list[dict[str, Any]], store: Store) -> None:
    assert not server.key_in_url
    text = json.dumps(logs, default=str)
    assert KEY not in text and KEY2 not in text
    with store.engine.connect() as conn:
        rows = conn.execute(select(SourceRecord.raw)).scalars().all()
    assert not any(KEY in raw or KEY2 in raw for raw in rows)


def test_complete_view_cursor_windows_quota_state(store: Store, tmp_path: Path, db_url: str) -> None:
    with FakeScopus(works(120), api_keys=[KEY]) as server:
        settings = settings_for(tmp_path, db_url, server.url)
        with capture_logs() as logs:
            first = harvest(settings, store, "scopus")
        assert first.outcome == "succeeded", first.error
        assert stored(store) == 120
        searches = [r for r in server.requests if r.path.endswith("/search/scopus")]
        assert all(r.params["view"] == ["COMPLETE"] and r.params["count"] == ["25"] for r in searches)
        assert all(
            "LOAD-DATE AFT" in r.params["query"][0] and "AFFILORG" in r.params["query"][0] for r in searches
        )
        assert store.load_checkpoint("scopus")["through"] == (TODAY - dt.timedelta(days=1)).isoformat()  # type: ignore[index]
        [quota] = load_quotas(store, "scopus")
        assert quota.api == "search" and quota.limit == 20000 and quota.remaining == 20000 - len(searches)
        assert not server.violations  # never above 9 requests a second
        assert_no_key_leak(server, logs, store)

        work = store.work_by_doi("10.5555/sc.7")
        assert work is not None
        assert work["identifiers"]["scopus_eid"] == ["2-s2.0-85000000007"]
        assert work["keywords"] == ["E-government", "Kazakhstan"]
        assert work["citation_count"]["value"] == 7 and work["citation_count"]["source"] == "scopus"
        assert work["authors"][0]["given"] == "Colin" and work["authors"][0]["affiliations"]

        before = len(server.requests)
        second = harvest(settings, store, "scopus")
        assert second.outcome == "succeeded"
        again = [r for r in server.requests[before:] if r.path.endswith("/search/scopus")]
        assert len(again) == 1  # today only
        assert second.stats.inserted == 0 and second.stats.works_updated == 0

    code = CliRunner().invoke(main, ["--config", str(tmp_path / "s.yaml"), "status", "--json"])
    assert code.exit_code == 0
    assert json.loads(code.stdout)["sources"]["scopus"]["quota"][0]["remaining"] == quota.remaining - 1


def test_offset_paging_when_cursor_is_refused_and_standard_when_complete_is(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    with FakeScopus(
        works(260, days=3), api_keys=[KEY], cursor_entitled=False, complete_entitled=False
    ) as server:
        with capture_logs() as logs:
            result = harvest(settings_for(tmp_path, db_url, server.url), store, "scopus")
        assert result.outcome == "succeeded", result.error
        assert stored(store) == 260
        events = [e["event"] for e in logs]
        assert "scopus.cursor_refused" in events and "scopus.view_fallback" in events
        searches = [
            r.params for r in server.requests if r.path.endswith("/search/scopus") and r.status == 200
        ]
        assert all("start" in p and p["view"] == ["STANDARD"] and p["count"] == ["200"] for p in searches)
        work = store.work_by_doi("10.5555/sc.3")
        assert (
            work is not None
            and work["authors"][0]["name"] == "Knox C."
            and work["authors"][0]["given"] is None
        )


def test_an_exhausted_key_rotates_and_all_exhausted_pauses_without_requests(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    reset = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    plans = {
        KEY: KeyPlan(limit=100, remaining=2, reset_at=reset),
        KEY2: KeyPlan(limit=100, remaining=100, reset_at=reset),
    }
    with FakeScopus(works(120), api_keys=plans, reset_style="epoch_ms") as server:
        settings = settings_for(tmp_path, db_url, server.url, api_key=KEY, api_keys=f"[{KEY2}]")
        with capture_logs() as logs:
            result = harvest(settings, store, "scopus")
        assert result.outcome == "succeeded", result.error
        assert stored(store) == 120
        assert any(e["event"] == "scopus.key_exhausted" for e in logs)
        states = {q.key_id: q for q in load_quotas(store, "scopus")}
        assert sum(q.exhausted for q in states.values()) == 1
        assert_no_key_leak(server, logs, store)

        server.set_quota(KEY2, remaining=0)
        with capture_logs() as logs:
            paused = harvest(settings, store, "scopus")
        assert paused.outcome == "failed" and "quota" in (paused.error or "")
        assert any(e["event"] == "harvest.paused" and e["resume_at"] for e in logs)
        before = len(server.requests)
        again = harvest(settings, store, "scopus")
        assert again.outcome == "failed"
        assert len(server.requests) == before  # paused until the reset: not a single request


def test_throttling_backs_off_and_a_bad_key_ends_the_run_naming_the_source(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    with FakeScopus(works(30), api_keys=[KEY]) as server:
        server.faults.throttle_next(2)
        with capture_logs() as logs:
            result = harvest(settings_for(tmp_path, db_url, server.url), store, "scopus")
        assert result.outcome == "succeeded", result.error
        assert [e["status"] for e in logs if e["event"] == "http.retry"] == [429, 429]

        bad = settings_for(tmp_path, db_url, server.url, api_key="not-a-valid-key-123")
        failed = harvest(bad, store, "scopus")
        assert failed.outcome == "failed"
        assert "Scopus source 'scopus'" in (failed.error or "") and "entitled" in (failed.error or "")
        assert "not-a-valid-key-123" not in (failed.error or "")


def test_all_three_sources_make_one_work(store: Store, tmp_path: Path, db_url: str) -> None:
    """Issue 4's "done when": OAI-PMH, Crossref and Scopus into one store, one work."""
    doi = "10.1108/IJPSM-08-2018-0173"
    now = dt.datetime.now(dt.UTC)
    scopus_work = ScopusWork(
        "2-s2.0-85061234567",
        "The e-government paradox in post-Soviet countries",
        load_date=TODAY,
        doi=doi,
        authors=[
            scopus_author("57000001", "Knox", "Colin", "60000001"),
            scopus_author("57000002", "Janenova", "Saltanat", "60000001"),
        ],
        affiliations=[scopus_affiliation("60000001", "Example University", "Astana", "Kazakhstan")],
        issn="09513558",
        cited_by="41",
        authkeywords="E-government | Kazakhstan | Post-Soviet countries",
        cover_date="2019-05-13",
        subject_areas=[
            ("3321", "SOCI", "Public Administration"),
            ("3312", "SOCI", "Sociology and Political Science"),
        ],
    )
    crossref_item = work_item(
        doi,
        "The e-government paradox in post-Soviet countries",
        publisher="Emerald",
        container_title=["International Journal of Public Sector Management"],
        author=[
            {"given": "Colin", "family": "Knox", "sequence": "first", "affiliation": []},
            {"given": "Saltanat", "family": "Janenova", "sequence": "additional", "affiliation": []},
        ],
    )
    midnight = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
    with (
        FakeScopus([scopus_work], api_keys=[KEY]) as scopus,
        FakeCrossref([CrossrefWork(crossref_item, indexed=midnight)]) as crossref,
        FakeOaiServer(
            [article(1, T0, doi=f"https://doi.org/{doi}")], now=lambda: now, earliest_datestamp=T0
        ) as oai,
    ):
        since = (TODAY - dt.timedelta(days=2)).isoformat()
        sources = "\n".join(
            [
                f"- name: crossref\n  type: crossref\n  url: {crossref.url}\n"
                f"  mailto: t@example.org\n  since: {since}",
                scopus_block("scopus", scopus.url, since=since, enrich="[subject_areas]"),
                oai_source_block("pure", oai.url),
            ]
        )
        settings = load_settings(
            write_config(tmp_path / "all.yaml", db_url, sources, precedence="crossref, scopus, pure")
        )
        register_secrets(settings.secrets())
        for name in ("pure", "scopus", "crossref"):
            result = harvest(settings, store, name)
            assert result.outcome == "succeeded", (name, result.error)
        with store.engine.connect() as conn:
            assert (
                conn.execute(
                    select(func.count()).select_from(Work).where(Work.deleted.is_(False))
                ).scalar_one()
                == 1
            )
        work = store.work_by_doi(doi.lower())
        assert work is not None
        assert work["identifiers"]["scopus_eid"] == ["2-s2.0-85061234567"]
        assert work["citation_count"]["value"] in (0, 41)
        assert work["keywords"][:3] == ["E-government", "Kazakhstan", "Post-Soviet countries"]
        assert {"scheme": "ASJC", "code": "3321", "label": "Public Administration"} in work["subjects"]
        assert work["sources"] == ["crossref", "pure", "scopus"]
        assert {r["key"] for r in work["records"] if r["source"] == "scopus"} == {
            "2-s2.0-85061234567",
            "2-s2.0-85061234567#abstract",
        }
        assert [a["given"] for a in work["authors"]] == ["Colin", "Saltanat"]
        abstract_calls = [r for r in scopus.requests if "/content/abstract/" in r.path]
        assert len(abstract_calls) == 1
        again = harvest(settings, store, "scopus")  # already enriched: no second Abstract Retrieval
        assert again.outcome == "succeeded"
        assert len([r for r in scopus.requests if "/content/abstract/" in r.path]) == 1
