"""Work identity beyond the DOI: title keys, matching rules, secondary identifiers, conflicts,
and order independence of the works (hypothesis), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, select, update

from harvester import identity
from harvester.cli import main
from harvester.identity import Profile, link, match_title, partition, profile, title_key, title_numbers
from harvester.record import Author, PartialDate, Record
from storage.models import Base, SourceRecord, Work
from storage.store import Incoming, Store
from tests.helpers import write_config

T0 = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
OWNER = "test-owner"
TITLE = "Deep learning for medical image analysis: a survey"
KEY = title_key(TITLE)


def authors(*families: str) -> tuple[Author, ...]:
    return tuple(Author(f"{f}, A.", f, "A.") for f in families)


def make(
    key: str,
    *,
    doi: str | None = None,
    title: str | None = TITLE,
    year: int | None = 2019,
    by: Sequence[str] = ("Smith", "Jones"),
    ids: Sequence[tuple[str, str]] = (),
    stamp: dt.datetime = T0,
    deleted: bool = False,
) -> Incoming:
    if deleted:
        record = Record(key=key, datestamp=stamp, deleted=True)
    else:
        record = Record(
            key=key,
            datestamp=stamp,
            doi=doi,
            title=title,
            date=PartialDate(year) if year else None,
            authors=authors(*by),
            identifiers=tuple(sorted(set(ids))),
        )
    return Incoming.of(record, json.dumps(record.to_json(), sort_keys=True))


def commit(store: Store, source: str, *records: Incoming) -> Any:
    assert store.acquire_lease(source, OWNER, 60)
    return store.commit_page(source, list(records), run_id="run", owner=OWNER)


@pytest.fixture
def matching(db_url: str) -> Iterator[Store]:
    """A store with ``merge.match_without_doi: true``."""
    s = Store.open(db_url, precedence=("crossref", "scopus", "pure"), match_without_doi=True)
    yield s
    s.close()


def members(store: Store) -> dict[int, set[tuple[str, str]]]:
    """Live work id -> its live records."""
    out: dict[int, set[tuple[str, str]]] = {}
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(SourceRecord.source, SourceRecord.key, SourceRecord.work_id).where(
                SourceRecord.deleted.is_(False)
            )
        )
        for source, key, work in rows:
            out.setdefault(work, set()).add((source, key))
    return out


def groups(store: Store) -> list[set[tuple[str, str]]]:
    return sorted(members(store).values(), key=sorted)


def reason(store: Store, source: str, key: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(
            select(SourceRecord.link_reason).where(SourceRecord.source == source, SourceRecord.key == key)
        ).scalar_one()


def check_invariants(store: Store) -> None:
    """No live work without live records, no live record in a tombstone, DOIs where they belong."""
    with store.engine.connect() as conn:
        works = {w.id: w for w in conn.execute(select(Work.id, Work.doi, Work.deleted, Work.merged_into))}
        records = conn.execute(
            select(SourceRecord.work_id, SourceRecord.doi, SourceRecord.link_reason).where(
                SourceRecord.deleted.is_(False)
            )
        ).all()
    used = set()
    for work_id, doi, why in records:
        work = works[work_id]
        assert not work.deleted, f"a live record points at tombstone {work_id}"
        assert why, "a live record without a link reason"
        if doi:
            assert work.doi == doi and why == "doi"
        used.add(work_id)
    for work in works.values():
        if not work.deleted:
            assert work.id in used, f"live work {work.id} has no live record"
            assert work.merged_into is None
        elif work.merged_into is not None:
            assert work.merged_into in works


# -- the title key and the rules (pure) ----------------------------------------------------


def test_title_key_unescapes_strips_tags_folds_case_and_keeps_letters_and_digits() -> None:
    assert title_key("<i>Deep</i> Learning &amp; MRI: a SURVEY (2nd ed.)") == "deeplearningmriasurvey2nded"
    assert title_key("Deep learning &amp;amp; MRI: a survey") == title_key("Deep Learning & MRI - A survey")
    assert title_key("ﬁnite element methods") == "finiteelementmethods"  # NFKC ligature
    assert title_key("Straße und Fluss") == title_key("STRASSE UND FLUSS")  # casefold
    assert title_key("深度学习在医学影像中的应用研究") == "深度学习在医学影像中的应用研究"  # CJK keeps a key
    assert title_key("Main title", "and its subtitle") == "maintitleanditssubtitle"


@pytest.mark.parametrize(
    "title",
    [
        "Editorial",
        "EDITORIAL.",
        "Editorial 2019",
        "Index",
        "Book review",
        "Book Reviews",
        "Authors' reply",
        "Erratum to: Deep learning for medical image analysis",
        "Book review: The structure of scientific revolutions",
        "Short one",  # 8 characters
        "",
        None,
    ],
)
def test_short_and_generic_titles_have_no_key(title: str | None) -> None:
    assert title_key(title) is None


def test_title_numbers_digits_and_roman_numerals() -> None:
    assert title_numbers("Results, Part 1") == (1,)
    assert title_numbers("Results, Part II of III") == (2, 3)
    assert title_numbers("COVID-19 in 2020") == (19, 2020)
    assert title_numbers("Volume 1 2") != title_numbers("Volume 12")


def prof(key: str, **kw: Any) -> Profile:
    inc = make(key, **kw)
    return profile(kw.get("source", "pure"), inc.record)


def test_match_title_positive_and_each_negative() -> None:
    a = prof("a", doi="10.1/a")
    assert match_title(a, prof("b")) is not None
    found = match_title(a, prof("b", year=2020, by=("Smith", "Jones", "Brown")))
    assert found is not None and found.reason == f"title:{KEY} year±1 authors 2/2"
    assert match_title(a, prof("b", year=2022)) is None  # years 3 apart
    assert match_title(a, prof("b", year=None)) is None  # a year unknown
    assert match_title(a, prof("b", doi="10.1/b")) is None  # both carry DOIs
    assert match_title(a, prof("b", by=())) is None  # one side without authors
    assert match_title(a, prof("b", by=("Brown", "Green"))) is None  # authors disjoint
    assert match_title(prof("x", by=("A", "B", "C")), prof("y", by=("A", "D", "E"))) is None  # 1/3
    assert match_title(prof("x", by=("A", "B", "C")), prof("y", by=("A", "B", "E"))) is not None  # 2/3
    assert (
        match_title(prof("x", title="Volume 1 2 of results"), prof("y", title="Volume 12 of results")) is None
    )
    assert match_title(prof("x", title="Editorial"), prof("y", title="Editorial")) is None


def test_surnames_fold_accents_and_read_names_without_family() -> None:
    assert identity.surname(Author("García Márquez, G.", "García-Márquez")) == "garciamarquez"
    assert identity.surname(Author("Knox, Colin")) == "knox"
    assert identity.surname(Author("Colin Knox")) == "knox"
    assert identity.surname(Author("")) is None


def test_a_unit_joins_the_doi_it_shares_most_identifiers_with_then_the_smallest() -> None:
    free = prof("free", ids=[("pmid", "1"), ("scopus_eid", "2-s2.0-1")])
    one = prof("one", doi="10.1/b", title="Something else entirely", ids=[("pmid", "1")])
    two = prof(
        "two", doi="10.1/c", title="Something else entirely", ids=[("pmid", "1"), ("scopus_eid", "2-s2.0-1")]
    )
    assert link([free], [one, two], match_without_doi=True)[free.ref].doi == "10.1/c"
    three = prof("three", doi="10.1/a", title="Something else entirely", ids=[("pmid", "1")])
    assert link([free], [one, three], match_without_doi=True)[free.ref].doi == "10.1/a"
    # an identifier edge beats a (stronger looking) title edge
    titled = prof("titled", doi="10.1/0")
    assert link([free], [titled, one], match_without_doi=True)[free.ref].doi == "10.1/b"
    assert link([free], [titled], match_without_doi=True)[free.ref].reason.startswith("title:")
    assert link([free], [titled], match_without_doi=False)[free.ref].doi is None


def test_an_oai_identifier_only_links_records_of_the_same_source() -> None:
    a = profile("repo", make("oai:repo:1", title="x", ids=[("oai", "oai:repo:1")]).record)
    b = profile(
        "repo", make("oai:repo:2", title="y", ids=[("oai", "oai:repo:2"), ("oai", "oai:repo:1")]).record
    )
    c = profile("other", make("oai:repo:1", title="z", ids=[("oai", "oai:repo:1")]).record)
    result = link([a, b, c], [], match_without_doi=False)
    assert result[a.ref].group == result[b.ref].group == (a.ref, b.ref)
    assert result[b.ref].reason == "identifier:oai=oai:repo:1"
    assert result[c.ref].group == (c.ref,) and result[c.ref].reason == "own"


# -- through the store -----------------------------------------------------------------


@pytest.mark.parametrize("doi_first", [True, False])
def test_a_doi_less_record_joins_the_doi_work_whichever_arrives_first(
    matching: Store, doi_first: bool
) -> None:
    pages: list[tuple[str, Incoming]] = [
        ("crossref", make("10.1/x", doi="10.1/x", year=2020)),
        ("pure", make("oai:1")),
    ]
    for source, record in pages if doi_first else reversed(pages):
        commit(matching, source, record)
    work = matching.work_by_doi("10.1/x")
    assert work is not None
    assert work["sources"] == ["crossref", "pure"]
    assert {r["key"]: r["reason"] for r in work["records"]} == {
        "10.1/x": "doi",
        "oai:1": f"title:{KEY} year±1 authors 2/2",
    }
    assert groups(matching) == [{("crossref", "10.1/x"), ("pure", "oai:1")}]
    check_invariants(matching)
    if not doi_first:  # the DOI-less record's own work became a tombstone pointing at the DOI work
        with matching.engine.connect() as conn:
            tomb = conn.execute(select(Work.deleted, Work.merged_into).where(Work.doi.is_(None))).one()
        assert tomb == (True, work["id"])


SURVEY_1 = "Results of the national survey, Part 1"


@pytest.mark.parametrize(
    ("with_doi", "without"),
    [
        pytest.param({"title": SURVEY_1}, {"title": SURVEY_1.replace("1", "2")}, id="numbers-differ"),
        pytest.param({}, {"year": 2022}, id="years-3-apart"),
        pytest.param({}, {"year": None}, id="year-unknown"),
        pytest.param({}, {"doi": "10.1/other"}, id="different-dois"),
        pytest.param({"title": "Editorial"}, {"title": "Editorial"}, id="generic-title"),
        pytest.param({"title": "Results"}, {"title": "Results"}, id="short-title"),
        pytest.param({}, {"by": ("Brown", "Green")}, id="authors-disjoint"),
        pytest.param({}, {"by": ()}, id="no-authors"),
    ],
)
def test_no_match(matching: Store, with_doi: dict[str, Any], without: dict[str, Any]) -> None:
    commit(matching, "crossref", make("10.1/x", doi="10.1/x", **with_doi))
    commit(matching, "pure", make("oai:1", **{**with_doi, **without}))
    assert len(groups(matching)) == 2
    check_invariants(matching)


def test_cjk_titles_match(matching: Store) -> None:
    title = "深度学习在医学影像中的应用研究"
    commit(matching, "crossref", make("10.1/cjk", doi="10.1/cjk", title=title, by=("王", "李")))
    commit(matching, "pure", make("oai:cjk", title=f"{title}。", by=("王",)))
    assert groups(matching) == [{("crossref", "10.1/cjk"), ("pure", "oai:cjk")}]
    assert reason(matching, "pure", "oai:cjk") == f"title:{title} year= authors 1/1"


def test_doi_less_records_of_two_sources_make_one_work_shown_by_record(matching: Store) -> None:
    commit(matching, "pure", make("oai:1"))
    commit(matching, "scopus", make("2-s2.0-9", by=("Smith", "Jones", "Brown")))
    assert groups(matching) == [{("pure", "oai:1"), ("scopus", "2-s2.0-9")}]
    work = matching.work_of_record("scopus", "2-s2.0-9")
    assert work is not None and work["doi"] is None and work["sources"] == ["pure", "scopus"]
    assert [r["reason"] for r in work["records"]] == [f"title:{KEY} year= authors 2/2"] * 2
    check_invariants(matching)


def test_title_matching_is_off_by_default(store: Store) -> None:
    commit(store, "crossref", make("10.1/x", doi="10.1/x"))
    commit(store, "pure", make("oai:1"))
    assert len(groups(store)) == 2
    assert reason(store, "pure", "oai:1") == "own"


def test_secondary_identifiers_join_works(store: Store) -> None:
    """EID and PMID, always on (no title matching needed)."""
    commit(store, "crossref", make("10.1/x", doi="10.1/x", ids=[("pmid", "123")]))
    commit(
        store,
        "scopus",
        make("2-s2.0-1", title="Another spelling", ids=[("scopus_eid", "2-s2.0-1"), ("pmid", "123")]),
    )
    commit(store, "pure", make("oai:1", title="Yet another", ids=[("scopus_eid", "2-s2.0-1")]))
    assert groups(store) == [{("crossref", "10.1/x"), ("scopus", "2-s2.0-1"), ("pure", "oai:1")}]
    assert reason(store, "scopus", "2-s2.0-1") == "identifier:pmid=123"
    assert reason(store, "pure", "oai:1") == "identifier:scopus_eid=2-s2.0-1"
    work = store.work_by_doi("10.1/x")
    assert work is not None and work["identifiers"]["pmid"] == ["123"]
    check_invariants(store)


def test_an_oai_identifier_joins_only_records_of_the_same_repository(store: Store) -> None:
    commit(store, "repo", make("oai:repo:1", title="First", ids=[("oai", "oai:repo:1")]))
    commit(
        store, "repo", make("oai:repo:2", title="Second", ids=[("oai", "oai:repo:2"), ("oai", "oai:repo:1")])
    )
    commit(store, "other", make("oai:other:7", title="Third", ids=[("oai", "oai:repo:1")]))
    assert groups(store) == [{("other", "oai:other:7")}, {("repo", "oai:repo:1"), ("repo", "oai:repo:2")}]
    check_invariants(store)


def test_a_doi_wins_a_conflict_which_is_recorded_and_listed(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    commit(store, "crossref", make("10.1/a", doi="10.1/a", ids=[("scopus_eid", "2-s2.0-5")]))
    commit(store, "scopus", make("2-s2.0-5", doi="10.1/b", ids=[("scopus_eid", "2-s2.0-5")]))
    assert len(groups(store)) == 2  # each record stays with its DOI
    conflicts = store.identity_conflicts()
    assert [(c["scheme"], c["value"], c["record"]["doi"], c["other"]["doi"]) for c in conflicts] == [
        ("scopus_eid", "2-s2.0-5", "10.1/b", "10.1/a")  # the identifier's owner is the smallest DOI
    ]
    commit(store, "scopus", make("2-s2.0-5", doi="10.1/b", ids=[("scopus_eid", "2-s2.0-5")], title="Changed"))
    assert len(store.identity_conflicts()) == 1  # still there, seen again

    config = write_config(
        tmp_path / "h.yaml", db_url, "- name: crossref\n  type: crossref\n  mailto: t@example.org"
    )
    result = CliRunner().invoke(main, ["--config", str(config), "status", "--conflicts", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)["conflicts"]
    assert listed[0]["record"] == {"source": "scopus", "key": "2-s2.0-5", "doi": "10.1/b"}
    assert listed[0]["other"] == {"source": "crossref", "key": "10.1/a", "doi": "10.1/a"}
    result = CliRunner().invoke(main, ["--config", str(config), "status", "--conflicts"])
    assert "scopus_eid=2-s2.0-5" in result.stdout and "doi 10.1/b" in result.stdout

    # the identifier goes away: so does the conflict
    commit(store, "scopus", make("2-s2.0-5", doi="10.1/b", stamp=T0 + dt.timedelta(days=1)))
    assert store.identity_conflicts() == []


def test_a_doi_less_record_with_a_conflicting_identifier_joins_one_doi_deterministically(
    store: Store,
) -> None:
    commit(
        store,
        "crossref",
        make("10.1/b", doi="10.1/b", ids=[("pmid", "7")]),
        make("10.1/a", doi="10.1/a", ids=[("pmid", "7")]),
    )
    commit(store, "pure", make("oai:1", title="Unrelated", ids=[("pmid", "7")]))
    work = store.work_by_doi("10.1/a")
    assert work is not None and [r["key"] for r in work["records"]] == ["10.1/a", "oai:1"]


def test_show_prints_the_reason_of_each_record(matching: Store, tmp_path: Path, db_url: str) -> None:
    commit(matching, "crossref", make("10.1234/x", doi="10.1234/x"))
    commit(matching, "pure", make("oai:1"))
    config = write_config(
        tmp_path / "h.yaml", db_url, "- name: pure\n  type: oai-pmh\n  url: http://127.0.0.1:9/oai"
    )
    for arg in ("10.1234/x", "pure:oai:1", str(matching.work_by_doi("10.1234/x")["id"])):  # type: ignore[index]
        result = CliRunner().invoke(main, ["--config", str(config), "show", arg])
        assert result.exit_code == 0, result.output
        records = json.loads(result.stdout)["records"]
        assert [(r["key"], r["reason"]) for r in records] == [
            ("10.1234/x", "doi"),
            ("oai:1", f"title:{KEY} year= authors 2/2"),
        ]
        assert list(records[0]) == ["source", "key", "deleted", "datestamp", "reason"]
    assert CliRunner().invoke(main, ["--config", str(config), "show", "pure:oai:unknown"]).exit_code == 1


# -- matching stays one indexed lookup per page ------------------------------------------------


def count_statements(store: Store, action: Callable[[], Any]) -> int:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", before)
    try:
        action()
    finally:
        event.remove(store.engine, "before_cursor_execute", before)
    return len(seen)


def test_statements_per_page_do_not_grow_with_the_page(matching: Store) -> None:
    """Matching a page is a few indexed lookups, whatever its size: 50 and 500 records alike."""
    s = matching
    counts = {}
    for size in (50, 500):
        titles = [f"A study of subject number {size}-{i} in the wide world" for i in range(size)]
        commit(
            s,
            "crossref",
            *[
                make(f"10.1/{size}.{i}", doi=f"10.1/{size}.{i}", title=t, ids=[("pmid", f"{size}{i}")])
                for i, t in enumerate(titles)
            ],
        )
        page = [
            make(f"oai:{size}:{i}", title=t, ids=[("oai", f"oai:{size}:{i}"), ("pmid", f"9{size}{i}")])
            for i, t in enumerate(titles)
        ]
        assert s.acquire_lease("pure", OWNER, 60)
        counts[size] = count_statements(
            s, lambda page=page: s.commit_page("pure", page, run_id="run", owner=OWNER)
        )  # type: ignore[misc]
        assert all(reason(s, "pure", f"oai:{size}:{i}").startswith("title:") for i in (0, size - 1))  # type: ignore[union-attr]
    assert len(members(s)) == 550  # every DOI-less record joined its DOI work
    assert counts[50] == counts[500], counts
    assert counts[500] <= 25, counts


# -- order independence (hypothesis) ---------------------------------------------------------

SOURCES = ("crossref", "pure", "scopus")
TITLES = (
    TITLE,
    "Results of the national survey, Part 1",
    "Results of the national survey, Part 2",
    "Editorial",
)
DOIS = (None, None, "10.1/a", "10.1/b")
IDS = (("pmid", "1"), ("pmid", "2"), ("scopus_eid", "2-s2.0-1"), ("oai", "oai:x:1"))
FAMILIES = ("Smith", "Jones", "Brown")

versions = st.fixed_dictionaries(
    {
        "doi": st.sampled_from(DOIS),
        "title": st.sampled_from(TITLES),
        "year": st.sampled_from((2019, 2020, 2022)),
        "by": st.lists(st.sampled_from(FAMILIES), max_size=2, unique=True),
        "ids": st.lists(st.sampled_from(IDS), max_size=2, unique=True),
    }
)


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, list[Incoming]]]:
    """Records (source, key) with 1-3 versions each (later versions newer; the last may be a deletion)."""
    refs = draw(
        st.lists(
            st.tuples(st.sampled_from(SOURCES), st.sampled_from(("k1", "k2", "k3"))),
            min_size=1,
            max_size=7,
            unique=True,
        )
    )
    out = []
    for source, key in refs:
        chain = draw(st.lists(versions, min_size=1, max_size=3))
        incs = []
        for i, v in enumerate(chain):
            stamp = T0 + dt.timedelta(hours=i)
            if i == len(chain) - 1 and len(chain) > 1 and draw(st.integers(0, 4)) == 0:
                incs.append(make(key, stamp=stamp, deleted=True))
            else:
                incs.append(make(key, stamp=stamp, **v))
        out.append((source, incs))
    return out


def reset(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(Work).values(merged_into=None))
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


def play(store: Store, pages: list[tuple[str, list[Incoming]]]) -> None:
    for source, records in pages:
        commit(store, source, *records)


def snapshot(store: Store) -> set[tuple[frozenset[tuple[str, str]], str]]:
    """For each live work: its live records and its merged data (without the id)."""
    by_id = {w["id"]: w for w in store.iter_works()}
    out = set()
    for work_id, refs in members(store).items():
        data = dict(by_id[work_id])
        del data["id"]
        out.add((frozenset(refs), json.dumps(data, sort_keys=True)))
    return out


def expected_partition(store: Store) -> list[frozenset[tuple[str, str]]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(SourceRecord.source, SourceRecord.normalized).where(SourceRecord.deleted.is_(False))
        ).all()
    return partition(
        [profile(src, Record.from_json(n)) for src, n in rows], match_without_doi=store.match_without_doi
    )


def arrange(
    data: st.DataObject, history: list[tuple[str, list[Incoming]]]
) -> list[tuple[str, list[Incoming]]]:
    """All versions in a random order (older versions may come late), cut into pages of one source."""
    items = [(source, inc) for source, incs in history for inc in incs]
    order = data.draw(st.permutations(items))
    cuts = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)))
    pages: list[tuple[str, list[Incoming]]] = []
    for (source, inc), cut in zip(order, cuts, strict=True):
        if pages and pages[-1][0] == source and not cut:
            pages[-1][1].append(inc)
        else:
            pages.append((source, [inc]))
    return pages


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_any_order_and_paging_gives_the_same_works(
    matching: Store, history: list[tuple[str, list[Incoming]]], data: st.DataObject
) -> None:
    """The works depend on the final records only: not on arrival order, page cuts or history."""
    reset(matching)
    finals = [(source, [incs[-1]]) for source, incs in history]  # a fresh harvest of the final versions
    play(matching, finals)
    reference = snapshot(matching)
    assert {refs for refs, _ in reference} == set(expected_partition(matching))
    check_invariants(matching)

    reset(matching)
    play(matching, arrange(data, history))
    assert snapshot(matching) == reference
    check_invariants(matching)


# -- values held by too many records identify nothing ------------------------------------------


def test_an_identifier_held_by_too_many_records_links_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "MAX_ID_HOLDERS", 2)
    commit(store, "crossref", make("10.1/x", doi="10.1/x", ids=[("pmid", "9")]))
    commit(store, "pure", make("oai:1", title="Copy", ids=[("pmid", "9")]))
    assert groups(store) == [{("crossref", "10.1/x"), ("pure", "oai:1")}]
    commit(store, "scopus", make("2-s2.0-1", doi="10.1/y", title="Other", ids=[("pmid", "9")]))
    assert len(groups(store)) == 3  # three holders: the PMID is junk, the copy is on its own again
    assert reason(store, "pure", "oai:1") == "own" and store.identity_conflicts() == []
    check_invariants(store)
    commit(store, "scopus", make("2-s2.0-1", deleted=True, stamp=T0 + dt.timedelta(days=1)))
    assert groups(store) == [{("crossref", "10.1/x"), ("pure", "oai:1")}]  # two holders again
    commit(store, "pure", make("oai:1", deleted=True, stamp=T0 + dt.timedelta(days=1)))
    commit(
        store, "scopus", make("2-s2.0-1", doi="10.1/y", ids=[("pmid", "9")], stamp=T0 + dt.timedelta(days=2))
    )
    assert [c["record"]["doi"] for c in store.identity_conflicts()] == ["10.1/y"]
    check_invariants(store)


def test_a_title_held_by_too_many_records_is_generic(
    matching: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(identity, "MAX_TITLE_HOLDERS", 2)
    commit(matching, "crossref", make("10.1/x", doi="10.1/x"))
    commit(matching, "pure", make("oai:1"))
    assert len(groups(matching)) == 1
    commit(matching, "scopus", make("2-s2.0-1", doi="10.1/y"))
    assert len(groups(matching)) == 3
    assert partition_of(matching) == set(expected_partition(matching))


def partition_of(store: Store) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(refs) for refs in members(store).values()}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(), data=st.data())
def test_any_order_gives_the_same_works_when_values_turn_junk(
    matching: Store, history: list[tuple[str, list[Incoming]]], data: st.DataObject
) -> None:
    """The same property with holder caps of 2: values cross the cap back and forth."""
    with (
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setattr(identity, "MAX_ID_HOLDERS", 2)
        patch.setattr(identity, "MAX_TITLE_HOLDERS", 2)
        reset(matching)
        play(matching, [(source, [incs[-1]]) for source, incs in history])
        reference = snapshot(matching)
        assert {refs for refs, _ in reference} == set(expected_partition(matching))
        reset(matching)
        play(matching, arrange(data, history))
        assert snapshot(matching) == reference
        check_invariants(matching)
