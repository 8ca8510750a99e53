"""``harvester reprocess``: stored raw payloads normalized again, no network, idempotent."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from harvester import http
from harvester.cli import main
from harvester.reprocess import reprocess_source
from harvester.settings import Settings
from harvester.sources import build_source, oai_pmh
from storage.models import QuarantineItem, SourceRecord, Work
from storage.store import Store
from tests.helpers import T0, article, harvest, oai_source_block, settings_for, write_config
from tests.oai_server import FakeOaiServer, OaiRecord, dc_metadata

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def server() -> Iterator[FakeOaiServer]:
    records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(12)]
    records.append(article(20, T0, doi=None, title="A repository copy without its DOI"))
    with FakeOaiServer(records, page_size=5, now=lambda: NOW, earliest_datestamp=T0) as s:
        yield s


def patch_normalizer(
    monkeypatch: pytest.MonkeyPatch, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    """The OAI normalizer, changed: ``change`` gets and returns the fields of each record."""
    original = oai_pmh.normalize_metadata

    def normalize(payload: Any) -> dict[str, Any]:
        return change(original(payload))

    monkeypatch.setattr(oai_pmh, "normalize_metadata", normalize)


def refuse_http(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every request the harvester's HTTP client is asked to make is recorded, and fails."""
    calls: list[str] = []

    def refuse(self: Any, method: str, url: str, **_: Any) -> Any:
        calls.append(f"{method} {url}")
        raise AssertionError(f"an HTTP request during reprocess: {method} {url}")

    monkeypatch.setattr(http.HttpClient, "request", refuse)
    return calls


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def events(stderr: str, name: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [e for e in lines if e["event"] == name]


def state(db_url: str) -> tuple[dict[Any, Any], dict[int, Any]]:
    """Works (id, title, updated_at, deleted) by DOI or id; records (work, updated_at, reason) by id."""
    store = Store.open(db_url)
    try:
        with store.engine.connect() as conn:
            works = {
                w.doi or w.id: (w.id, w.data.get("title"), w.updated_at, w.deleted)
                for w in conn.execute(select(Work.id, Work.doi, Work.data, Work.updated_at, Work.deleted))
            }
            records = {
                r.id: (r.work_id, r.updated_at, r.link_reason)
                for r in conn.execute(
                    select(
                        SourceRecord.id,
                        SourceRecord.work_id,
                        SourceRecord.updated_at,
                        SourceRecord.link_reason,
                    )
                )
            }
    finally:
        store.close()
    return works, records


def upper_title(fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "title": fields["title"].upper()}


def shape(store: Store) -> set[str]:
    """Live works without their ids, each with the keys of its live records."""
    out = set()
    for work in store.iter_works():
        with store.engine.connect() as conn:
            keys = sorted(
                conn.execute(
                    select(SourceRecord.key).where(
                        SourceRecord.work_id == work["id"], SourceRecord.deleted.is_(False)
                    )
                ).scalars()
            )
        out.add(json.dumps({**work, "id": keys}, sort_keys=True))
    return out


def test_reprocess_after_a_normalizer_change_updates_works_without_any_request(
    tmp_path: Path, server: FakeOaiServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(write_config(tmp_path / "h.yaml", db_url, oai_source_block("repo", server.url)))
    assert cli("--config", config, "harvest")[0] == 0
    before, _ = state(db_url)
    served = len(server.requests)

    calls = refuse_http(monkeypatch)
    patch_normalizer(monkeypatch, upper_title)
    code, out, err = cli("--config", config, "reprocess")
    assert code == 0, err
    assert out == ""
    [done] = events(err, "reprocess.finished")
    assert (done["source"], done["outcome"], done["records"], done["changed"]) == (
        "repo",
        "succeeded",
        13,
        13,
    )
    assert (done["works_updated"], done["works_created"]) == (13, 0)
    after, records = state(db_url)
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}  # ids unchanged
    assert after["10.5555/test.3"][1] == "ARTICLE NUMBER 3"

    code, _, err = cli("--config", config, "reprocess", "--source", "repo")  # again: nothing to do
    assert code == 0
    [done] = events(err, "reprocess.finished")
    assert (done["changed"], done["unchanged"], done["works_updated"]) == (0, 13, 0)
    assert state(db_url) == (after, records)  # not one row written
    assert calls == [] and len(server.requests) == served


def test_reprocess_gives_what_a_fresh_harvest_gives(
    tmp_path: Path, server: FakeOaiServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A normalizer change that moves records between works; the same result both ways."""
    settings = settings_for(tmp_path, db_url, server.url)
    store = Store.open(db_url)
    assert harvest(settings, store).outcome == "succeeded"
    ids = {w["doi"]: w["id"] for w in store.iter_works()}

    def moved(fields: dict[str, Any]) -> dict[str, Any]:
        title = fields["title"]
        if title == "Article number 3":  # loses its DOI: a work of its own
            return {**fields, "doi": None}
        if title == "A repository copy without its DOI":  # gains the DOI of article 4
            return {**fields, "doi": "10.5555/test.4"}
        if title == "Article number 5":  # its DOI changes
            return {**fields, "doi": "10.5555/renamed.5"}
        return fields

    patch_normalizer(monkeypatch, moved)
    request = http.HttpClient.request
    calls = refuse_http(monkeypatch)
    result = reprocess_source(build_source(settings.source("repo"), settings.http), store, owner="t")
    assert result.outcome == "succeeded" and result.stats.updated == 3
    test4 = store.work_by_doi("10.5555/test.4")
    assert test4 is not None and len(test4["records"]) == 2
    assert store.work_by_doi("10.5555/test.3")["deleted"] is True  # type: ignore[index]
    renamed = store.work_by_doi("10.5555/renamed.5")
    assert renamed is not None
    assert store.work_by_doi("10.5555/test.5")["merged_into"] == renamed["id"]  # type: ignore[index]
    kept = {w["doi"]: w["id"] for w in store.iter_works() if w["doi"] in ids and w["doi"]}
    assert kept == {d: i for d, i in ids.items() if d not in ("10.5555/test.3", "10.5555/test.5", None)}

    fresh = Store.open(f"sqlite:///{tmp_path / 'fresh.db'}")
    fresh.upgrade()
    monkeypatch.setattr(http.HttpClient, "request", request)  # a real harvest, with the new normalizer
    assert harvest(settings, fresh).outcome == "succeeded"
    assert shape(store) == shape(fresh)
    again = reprocess_source(build_source(settings.source("repo"), settings.http), store, owner="t")
    assert (again.stats.updated, again.stats.works_updated, again.stats.works_created) == (0, 0, 0)
    assert shape(store) == shape(fresh)
    assert calls == []
    store.close()
    fresh.close()


def test_a_record_that_no_longer_normalizes_is_quarantined_and_kept(
    tmp_path: Path, server: FakeOaiServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_for(tmp_path, db_url, server.url)
    store = Store.open(db_url)
    harvest(settings, store)
    before = store.work_by_doi("10.5555/test.7")

    def broken(fields: dict[str, Any]) -> dict[str, Any]:
        if fields["title"] == "Article number 7":
            raise ValueError("the new normalizer rejects it")
        return upper_title(fields)

    patch_normalizer(monkeypatch, broken)
    for _ in range(2):
        result = reprocess_source(build_source(settings.source("repo"), settings.http), store, owner="t")
        assert result.outcome == "succeeded" and result.stats.quarantined == 1
    assert store.work_by_doi("10.5555/test.7") == before  # its last good version stays, and its work
    assert store.work_by_doi("10.5555/test.8")["title"] == "ARTICLE NUMBER 8"  # type: ignore[index]
    [item] = store.quarantine_items()
    assert item["key"] == "oai:repo.example.org:7" and item["seen"] == 1  # not counted twice
    assert "the new normalizer rejects it" in item["reason"]
    with store.engine.connect() as conn:
        assert conn.execute(select(QuarantineItem.raw)).scalar_one().startswith("<record")
    store.close()


def test_turning_on_title_matching_then_reprocess_matches_the_stored_records(
    tmp_path: Path, db_url: str
) -> None:
    title = "Deep learning for medical image analysis"
    records = [
        OaiRecord(
            identifier=f"oai:repo.example.org:{i}",
            datestamp=T0,
            metadata=dc_metadata(title, creators=["Knox, Colin"], identifiers=ids, date="2019-05"),
        )
        for i, ids in ((1, ["https://doi.org/10.5555/TEST.1"]), (2, ["http://hdl.handle.net/1721.1/2"]))
    ]
    with FakeOaiServer(records, page_size=5, now=lambda: NOW, earliest_datestamp=T0) as server:
        settings: Settings = settings_for(tmp_path, db_url, server.url)
        store = Store.open(db_url)
        harvest(settings, store)
    doi_work = store.work_by_doi("10.5555/test.1")
    assert doi_work is not None and len(doi_work["records"]) == 1
    store.close()

    matching = Store.open(db_url, match_without_doi=True)
    result = reprocess_source(build_source(settings.source("repo"), settings.http), matching, owner="t")
    assert result.stats.updated == 0  # nothing normalizes differently ...
    work = matching.work_by_doi("10.5555/test.1")
    assert work is not None and work["id"] == doi_work["id"]  # ... but the DOI-less copy joined
    assert [r["reason"] for r in work["records"]] == [
        "doi",
        "title:deeplearningformedicalimageanalysis year= authors 1/1",
    ]
    matching.close()


def test_reprocess_exit_codes(tmp_path: Path, server: FakeOaiServer, db_url: str) -> None:
    config = str(write_config(tmp_path / "h.yaml", db_url, oai_source_block("repo", server.url)))
    assert cli("--config", config, "harvest")[0] == 0
    code, _, err = cli("--config", config, "reprocess", "--source", "nope")
    assert code == 2 and "no source named 'nope'" in err
    store = Store.open(db_url)
    assert store.acquire_lease("repo", "someone-else", 60)  # a harvest of the source is running
    code, _, err = cli("--config", config, "reprocess")
    assert code == 1 and events(err, "reprocess.skipped")
    store.release_lease("repo", "someone-else")
    store.close()
    assert cli("--config", config, "reprocess")[0] == 0
