"""The store on real SQLite files and a real PostgreSQL database (every test runs on both)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

import storage.store
from harvester.record import Author, PartialDate, Record
from storage.models import SourceRecord, Work
from storage.store import Incoming, LeaseLost, Quarantined, Store

T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
DOI = "10.1108/ijpsm-08-2018-0173"
OWNER = "test-owner"


def rec(
    key: str, *, doi: str | None = None, title: str = "A title", stamp: dt.datetime = T0, **kw: Any
) -> Incoming:
    record = Record(key=key, datestamp=stamp, doi=doi, title=title, **kw)
    return Incoming.of(
        record, f"<raw key='{key}' doi='{doi}' title='{title}' stamp='{stamp.isoformat()}' kw='{kw}'/>"
    )


def deleted(key: str, stamp: dt.datetime) -> Incoming:
    return Incoming.of(
        Record(key=key, datestamp=stamp, deleted=True), f"<deleted key='{key}' stamp='{stamp}'/>"
    )


class Harvest:
    """A run of one source against the store, as the runner drives it."""

    def __init__(self, store: Store, source: str) -> None:
        self.store, self.source = store, source
        assert store.acquire_lease(source, OWNER, 60)
        self.run_id = store.start_run(source, OWNER)

    def page(self, *records: Incoming, checkpoint: dict[str, Any] | None = None, **kw: Any):  # type: ignore[no-untyped-def]
        return self.store.commit_page(
            self.source, list(records), run_id=self.run_id, owner=OWNER, checkpoint=checkpoint, **kw
        )


def count(store: Store, model: Any, *where: Any) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_records_with_one_doi_from_two_sources_make_one_work(store: Store) -> None:
    Harvest(store, "pure").page(rec("oai:1", doi=DOI, title="Pure title", language="en"))
    Harvest(store, "crossref").page(rec(DOI, doi=DOI, title="Crossref title", date=PartialDate(2019)))
    work = store.work_by_doi(DOI)
    assert work is not None
    assert work["title"] == "Crossref title"  # crossref outranks pure in the fixture's precedence
    assert work["language"] == "en"
    assert work["provenance"]["title"] == "crossref"
    assert work["provenance"]["language"] == "pure"
    assert work["sources"] == ["crossref", "pure"]
    assert sorted(r["source"] for r in work["records"]) == ["crossref", "pure"]
    assert count(store, Work) == 1


def test_reharvesting_an_unchanged_page_writes_nothing(store: Store) -> None:
    h = Harvest(store, "pure")
    first = h.page(rec("oai:1", doi=DOI), rec("oai:2"))
    assert (first.inserted, first.works_created) == (2, 2)
    with store.engine.connect() as conn:
        before = conn.execute(select(Work.updated_at, SourceRecord.updated_at).join(SourceRecord)).all()
    again = h.page(rec("oai:1", doi=DOI), rec("oai:2"))
    assert (again.inserted, again.updated, again.unchanged, again.works_updated, again.works_created) == (
        0,
        0,
        2,
        0,
        0,
    )
    with store.engine.connect() as conn:
        after = conn.execute(select(Work.updated_at, SourceRecord.updated_at).join(SourceRecord)).all()
    assert before == after


def test_a_changed_record_updates_its_work(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", doi=DOI, title="Old"))
    stats = h.page(rec("oai:1", doi=DOI, title="New", stamp=T0 + dt.timedelta(hours=1)))
    assert (stats.updated, stats.works_updated) == (1, 1)
    assert store.work_by_doi(DOI)["title"] == "New"  # type: ignore[index]


def test_an_older_version_never_overwrites_a_newer_one(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", doi=DOI, title="New", stamp=T0 + dt.timedelta(hours=1)))
    stats = h.page(rec("oai:1", doi=DOI, title="Old", stamp=T0))
    assert stats.unchanged == 1
    assert store.work_by_doi(DOI)["title"] == "New"  # type: ignore[index]


def test_duplicates_within_a_page_keep_the_newest(store: Store) -> None:
    h = Harvest(store, "pure")
    stats = h.page(
        rec("oai:1", title="Newer", stamp=T0 + dt.timedelta(1), doi=DOI), rec("oai:1", title="Older", doi=DOI)
    )
    assert (stats.fetched, stats.inserted, stats.unchanged) == (2, 1, 1)
    assert store.work_by_doi(DOI)["title"] == "Newer"  # type: ignore[index]


def test_deletion_tombstones_the_record_and_the_work_without_live_records(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", doi=DOI))
    Harvest(store, "crossref").page(rec(DOI, doi=DOI, title="From Crossref"))
    stats = h.page(deleted("oai:1", T0 + dt.timedelta(days=1)))
    assert stats.deleted == 1
    work = store.work_by_doi(DOI)
    assert work is not None and "deleted" not in work
    assert work["sources"] == ["crossref"]
    assert {(r["source"], r["deleted"]) for r in work["records"]} == {("pure", True), ("crossref", False)}

    Harvest(store, "crossref").page(deleted(DOI, T0 + dt.timedelta(days=1)))
    assert store.work_by_doi(DOI)["deleted"] is True  # type: ignore[index]
    assert list(store.iter_works()) == []
    assert [w["doi"] for w in store.iter_works(include_deleted=True)] == [DOI]


def test_a_deleted_work_comes_back_with_its_id_when_a_record_reappears(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", doi=DOI))
    work_id = store.work_by_doi(DOI)["id"]  # type: ignore[index]
    h.page(deleted("oai:1", T0 + dt.timedelta(days=1)))
    h.page(rec("oai:1", doi=DOI, stamp=T0 + dt.timedelta(days=2)))
    work = store.work_by_doi(DOI)
    assert work is not None and work["id"] == work_id and "deleted" not in work


def test_doi_less_records_are_works_of_their_own_and_move_when_they_gain_a_doi(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", title="No DOI yet"), rec("oai:2", title="Never a DOI"))
    assert count(store, Work, Work.deleted.is_(False)) == 2
    Harvest(store, "crossref").page(rec(DOI, doi=DOI, title="Crossref"))
    h.page(rec("oai:1", doi=DOI, title="Now with DOI", stamp=T0 + dt.timedelta(days=1)))
    assert (
        count(store, Work, Work.deleted.is_(False)) == 2
    )  # oai:1 joined the DOI work; its old work is a tombstone
    assert count(store, Work, Work.deleted.is_(True)) == 1
    assert store.work_by_doi(DOI)["sources"] == ["crossref", "pure"]  # type: ignore[index]


def test_checkpoint_moves_with_its_page_and_not_without_it(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1"), checkpoint={"through": "2024-05-01T00:00:00Z"})
    assert store.load_checkpoint("pure") == {"through": "2024-05-01T00:00:00Z"}
    h.page(rec("oai:2"), checkpoint=None)
    assert store.load_checkpoint("pure") == {"through": "2024-05-01T00:00:00Z"}
    # A process that lost its lease can no longer write: records AND checkpoint roll back together.
    store.release_lease("pure", OWNER)
    assert store.acquire_lease("pure", "someone-else", 60)
    with pytest.raises(LeaseLost):
        h.page(rec("oai:3"), checkpoint={"through": "2099-01-01T00:00:00Z"})
    assert store.load_checkpoint("pure") == {"through": "2024-05-01T00:00:00Z"}
    assert count(store, SourceRecord, SourceRecord.key == "oai:3") == 0


def test_leases_exclude_other_owners_until_they_expire(store: Store) -> None:
    assert store.acquire_lease("pure", "a", 60)
    assert not store.acquire_lease("pure", "b", 60)
    assert store.acquire_lease("pure", "a", 60)  # re-entrant for the owner
    assert store.acquire_lease("crossref", "b", 60)  # other sources are independent
    assert store.acquire_lease("scopus", "a", -1)  # already expired
    assert store.acquire_lease("scopus", "b", 60)


def test_quarantine_counts_repeats_of_the_same_bad_record(store: Store) -> None:
    h = Harvest(store, "pure")
    bad = Quarantined("<record>broken</record>", "NormalizationError: no title", "oai:9")
    assert h.page(quarantined=[bad]).quarantined == 1
    h.page(quarantined=[bad])
    items = store.quarantine_items()
    assert len(items) == 1 and items[0]["seen"] == 2 and items[0]["key"] == "oai:9"
    assert store.status()["sources"]["pure"]["quarantined"] == 1


def test_run_counters_and_stale_runs(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1"), rec("oai:2"))
    h.page(rec("oai:1"))
    run = store.status()["sources"]["pure"]["last_run"]
    assert (run["outcome"], run["fetched"], run["inserted"], run["unchanged"], run["pages"]) == (
        "running",
        3,
        2,
        1,
        2,
    )
    assert store.mark_stale_runs_interrupted() == 0  # its lease is alive
    store.release_lease("pure", OWNER)
    assert store.mark_stale_runs_interrupted() == 1
    assert store.status()["sources"]["pure"]["last_run"]["outcome"] == "interrupted"


def test_authors_and_dates_survive_the_round_trip(store: Store) -> None:
    Harvest(store, "pure").page(
        rec(
            "oai:1",
            doi=DOI,
            authors=(Author("Knox, Colin Gerard", "Knox", "Colin Gerard", "0000-0002-1825-0097"),),
            date=PartialDate(2019, 5),
        )
    )
    work = store.work_by_doi(DOI)
    assert work is not None
    assert work["authors"] == [
        {
            "family": "Knox",
            "given": "Colin Gerard",
            "name": "Knox, Colin Gerard",
            "orcid": "0000-0002-1825-0097",
            "affiliations": [],
        }
    ]
    assert (work["date"], work["year"]) == ("2019-05", 2019)


def test_iter_works_streams_in_id_order_with_filters(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(*[rec(f"oai:{i}", doi=f"10.1234/{i}") for i in range(25)])
    Harvest(store, "crossref").page(rec("10.1234/3", doi="10.1234/3"))
    ids = [w["id"] for w in store.iter_works(batch=7)]
    assert ids == sorted(ids) and len(ids) == 25
    assert [w["doi"] for w in store.iter_works(source="crossref")] == ["10.1234/3"]
    assert [w["doi"] for w in store.iter_works(dois=["10.1234/7", "10.1234/8"])] == ["10.1234/7", "10.1234/8"]


def test_retraction_notices_mark_their_target_and_never_merge_into_it(store: Store) -> None:
    target, notice = "10.5555/retracted.1", "10.5555/notice.1"
    crossref = Harvest(store, "crossref")
    # the notice arrives before its target ...
    crossref.page(rec(notice, doi=notice, title="Retraction notice", updates=(("retraction", target),)))
    crossref.page(rec(target, doi=target, title="A flawed study"))
    work = store.work_by_doi(target)
    assert work is not None
    assert work["retracted"] is True and work["provenance"]["retracted"] == "crossref"
    assert work["updated_by"] == [{"kind": "retraction", "doi": notice}]
    assert work["title"] == "A flawed study"  # the notice's fields never leak into the target
    notice_work = store.work_by_doi(notice)
    assert notice_work is not None and notice_work["updates"] == [{"kind": "retraction", "doi": target}]
    assert notice_work["retracted"] is False
    # ... the notice is withdrawn: the target is no longer retracted
    crossref.page(deleted(notice, T0 + dt.timedelta(days=1)))
    assert store.work_by_doi(target)["retracted"] is False  # type: ignore[index]
    # a correction notice arriving after its target lists itself without retracting
    crossref.page(rec("10.5555/erratum.1", doi="10.5555/erratum.1", updates=(("correction", target),)))
    work = store.work_by_doi(target)
    assert work is not None and work["retracted"] is False
    assert work["updated_by"] == [{"kind": "correction", "doi": "10.5555/erratum.1"}]


# -- moves: records that gain, lose or change their DOI (issue 5) ----------------------------


def work_of(store: Store, source: str, key: str) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(
            select(Work.id, Work.doi, Work.deleted, Work.merged_into, SourceRecord.link_reason)
            .join(SourceRecord, SourceRecord.work_id == Work.id)
            .where(SourceRecord.source == source, SourceRecord.key == key)
        ).one()


def work_row(store: Store, work_id: int) -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(Work.doi, Work.deleted, Work.merged_into).where(Work.id == work_id)).one()


def no_orphans(store: Store) -> None:
    """No live work without a live record, no live record in a tombstone."""
    with store.engine.connect() as conn:
        live_works = set(conn.execute(select(Work.id).where(Work.deleted.is_(False))).scalars())
        pointed = set(
            conn.execute(select(SourceRecord.work_id).where(SourceRecord.deleted.is_(False))).scalars()
        )
    assert pointed <= live_works, "a live record points at a tombstone"
    assert live_works <= pointed, "a live work has no live record"


def test_a_record_gaining_a_doi_moves_and_its_old_work_points_to_the_new_one(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", title="No DOI yet"))
    own = work_of(store, "pure", "oai:1")
    assert (own.doi, own.link_reason) == (None, "own")
    Harvest(store, "crossref").page(rec(DOI, doi=DOI))
    h.page(rec("oai:1", doi=DOI, stamp=T0 + dt.timedelta(days=1)))
    now = work_of(store, "pure", "oai:1")
    assert (now.doi, now.link_reason) == (DOI, "doi")
    assert work_row(store, own.id) == (None, True, now.id)
    no_orphans(store)


def test_a_record_losing_its_doi_moves_back_to_the_work_it_came_from(store: Store) -> None:
    h = Harvest(store, "pure")
    h.page(rec("oai:1", title="No DOI yet"))
    own = work_of(store, "pure", "oai:1").id
    h.page(rec("oai:1", doi=DOI, stamp=T0 + dt.timedelta(days=1)))
    doi_work = work_of(store, "pure", "oai:1").id
    h.page(rec("oai:1", stamp=T0 + dt.timedelta(days=2)))
    back = work_of(store, "pure", "oai:1")
    assert (back.id, back.deleted, back.merged_into) == (own, False, None)  # revived, same id
    assert work_row(store, doi_work) == (DOI, True, own)
    no_orphans(store)


def test_a_record_changing_its_doi_moves_and_both_works_are_recomputed(store: Store) -> None:
    other = "10.5555/other.1"
    h = Harvest(store, "pure")
    h.page(rec("oai:1", doi=DOI, title="T"))
    Harvest(store, "crossref").page(rec(DOI, doi=DOI, title="Crossref T"))
    h.page(rec("oai:1", doi=other, title="T", stamp=T0 + dt.timedelta(days=1)))
    assert store.work_by_doi(DOI)["sources"] == ["crossref"]  # type: ignore[index]
    assert store.work_by_doi(other)["sources"] == ["pure"]  # type: ignore[index]
    Harvest(store, "crossref").page(deleted(DOI, T0 + dt.timedelta(days=1)))
    first = store.work_by_doi(DOI)
    assert first is not None and first["deleted"] is True and "merged_into" not in first  # deleted, not moved
    h.page(rec("oai:1", doi=DOI, stamp=T0 + dt.timedelta(days=2)))  # and back: the tombstone is revived
    revived = store.work_by_doi(DOI)
    assert revived is not None and revived["id"] == first["id"] and "deleted" not in revived
    assert store.work_by_doi(other)["merged_into"] == first["id"]  # type: ignore[index]
    no_orphans(store)


def test_a_record_moving_back_and_forth_leaves_no_orphans_and_keeps_its_ids(store: Store) -> None:
    h = Harvest(store, "pure")
    Harvest(store, "scopus").page(rec("2-s2.0-1", title="S", identifiers=(("pmid", "42"),)))
    seen: dict[tuple[str | None, bool], set[int]] = {}
    for day, doi in enumerate([None, DOI, None, "10.5555/b.2", DOI, None, None, DOI, None]):
        ids = (("pmid", "42"),) if day % 3 == 0 else ()  # with the PMID, a DOI-less oai:1 joins 2-s2.0-1
        h.page(rec("oai:1", doi=doi, identifiers=ids, stamp=T0 + dt.timedelta(days=day)))
        seen.setdefault((doi, bool(ids) and doi is None), set()).add(work_of(store, "pure", "oai:1").id)
        no_orphans(store)
    assert all(len(ids) == 1 for ids in seen.values()), seen  # each place keeps its id
    assert count(store, Work) == len(seen)


def test_doi_less_records_follow_when_the_record_they_matched_changes(store: Store) -> None:
    """The DOI record that anchored a DOI-less one (by PMID) changes its DOI, then goes away."""
    other = "10.5555/other.1"
    Harvest(store, "pure").page(rec("oai:1", title="Repository copy", identifiers=(("pmid", "7"),)))
    own = work_of(store, "pure", "oai:1").id
    c = Harvest(store, "crossref")
    c.page(rec(DOI, doi=DOI, identifiers=(("pmid", "7"),)))
    assert work_of(store, "pure", "oai:1").doi == DOI
    c.page(rec(DOI, doi=other, identifiers=(("pmid", "7"),), stamp=T0 + dt.timedelta(days=1)))
    assert work_of(store, "pure", "oai:1").doi == other
    assert work_row(store, store.work_by_doi(DOI)["id"]).merged_into is not None  # type: ignore[index]
    c.page(deleted(DOI, T0 + dt.timedelta(days=2)))
    back = work_of(store, "pure", "oai:1")
    assert (back.id, back.doi, back.link_reason) == (own, None, "own")
    no_orphans(store)


def test_postgresql_statistics_are_refreshed_as_a_harvest_doubles_the_tables(store: Store) -> None:
    """Stale planner statistics made every identity lookup scan a whole scheme (issue 9)."""
    store.ANALYZE_AFTER = 20  # type: ignore[misc]  # instead of thousands of rows
    harvest = Harvest(store, "repo")
    with capture_logs() as logs:
        for p in range(5):  # 10 new records a page: ANALYZE after pages 2 and 4 (20, then 20 more)
            harvest.page(*(rec(f"k{p}-{i}", doi=f"10.1234/{p}.{i}") for i in range(10)))
        harvest.page(*(rec(f"k0-{i}", doi=f"10.1234/0.{i}") for i in range(10)))  # unchanged: adds nothing
    analyzed = [e for e in logs if e["event"] == "store.analyzed"]
    if store.engine.dialect.name != "postgresql":
        assert analyzed == []  # SQLite plans without such statistics
        return
    assert [e["rows"] for e in analyzed] == [20, 40]
    with store.engine.connect() as conn:
        last = conn.execute(
            text("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'record_identifiers'")
        ).scalar_one()
    assert last is not None


def test_a_failed_statistics_refresh_is_logged_and_the_page_stays(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only: SQLite keeps no such statistics")

    def broken(statement: str) -> Any:  # the real server refuses it: an unknown table
        return text(statement.replace("ANALYZE source_records", "ANALYZE no_such_table"))

    monkeypatch.setattr(storage.store, "text", broken)
    store.ANALYZE_AFTER = 1  # type: ignore[misc]
    with capture_logs() as logs:
        stats = Harvest(store, "repo").page(rec("k1", doi=DOI), checkpoint={"token": "t1"})
    assert stats.inserted == 1
    failed = [e for e in logs if e["event"] == "store.analyze_failed"]
    assert len(failed) == 1 and "no_such_table" in failed[0]["error"]
    assert count(store, SourceRecord) == 1 and store.load_checkpoint("repo") == {"token": "t1"}
