"""The merge rule: precedence per field, unions for lists, order independence."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.merge import EXPORT_KEYS, merge
from harvester.record import Author, CitationCount, Issn, PartialDate, Record, Subject

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
DOI = "10.1108/ijpsm-08-2018-0173"


def crossref() -> Record:
    return Record(
        key=DOI,
        datestamp=T0,
        doi=DOI,
        title="The e-government paradox in post-Soviet countries",
        authors=(Author("Colin Knox", "Knox", "Colin"), Author("Saltanat Janenova", "Janenova", "Saltanat")),
        container_title="International Journal of Public Sector Management",
        issn=(Issn("0951-3558", "print"),),
        publisher="Emerald",
        date=PartialDate(2019),
        type="journal-article",
        citation_count=CitationCount(41, "2026-11-01"),
        keywords=("E-government",),
    )


def pure() -> Record:
    return Record(
        key="oai:pure.example.org:publications/44d68578",
        datestamp=T0 + dt.timedelta(days=3),
        doi=DOI,
        title="The e-government paradox in post-Soviet countries (accepted manuscript)",
        abstract="Purpose: The purpose of this paper is to investigate ...",
        authors=(Author("Knox, Colin Gerard", "Knox", "Colin Gerard"),),
        publisher="Emerald Group Publishing Ltd.",
        date=PartialDate(2019, 1, 1),
        language="en",
        keywords=("e-government", "Kazakhstan", "Post-Soviet countries"),
        subjects=(Subject("ASJC", "3321", "Public Administration"),),
        issn=(Issn("0951-3558"),),
        identifiers=(("oai", "oai:pure.example.org:publications/44d68578"),),
    )


def test_precedence_per_field_with_provenance() -> None:
    merged = merge(DOI, [("pure", pure()), ("crossref", crossref())], ["crossref", "scopus", "pure"])
    data, prov = merged.data, merged.provenance
    assert list(data) == [k for k in EXPORT_KEYS if k != "id"]
    assert data["title"] == "The e-government paradox in post-Soviet countries"
    assert prov["title"] == "crossref"
    assert data["abstract"].startswith("Purpose:")
    assert prov["abstract"] == "pure"
    assert data["publisher"] == "Emerald"
    assert [a["family"] for a in data["authors"]] == ["Knox", "Janenova"]
    assert data["language"] == "en" and prov["language"] == "pure"
    # keywords unioned, case-insensitively deduplicated, most trusted spelling first
    assert data["keywords"] == ["E-government", "Kazakhstan", "Post-Soviet countries"]
    assert data["subjects"] == [{"scheme": "ASJC", "code": "3321", "label": "Public Administration"}]
    assert data["issn"] == ["0951-3558"]
    assert data["citation_count"] == {"value": 41, "source": "crossref", "as_of": "2026-11-01"}
    assert data["identifiers"] == {"doi": [DOI], "oai": ["oai:pure.example.org:publications/44d68578"]}
    assert data["sources"] == ["crossref", "pure"]
    assert data["retracted"] is False


def test_date_is_refined_by_a_more_precise_reading_of_the_same_date() -> None:
    merged = merge(DOI, [("pure", pure()), ("crossref", crossref())], ["crossref", "pure"])
    assert merged.data["date"] == "2019-01-01"
    assert merged.data["year"] == 2019
    assert merged.provenance["date"] == "pure"


def test_a_different_date_never_replaces_the_trusted_one() -> None:
    other = Record(key="x", datestamp=T0, doi=DOI, date=PartialDate(2018, 12, 30))
    merged = merge(DOI, [("crossref", crossref()), ("pure", other)], ["crossref", "pure"])
    assert merged.data["date"] == "2019"


def test_unlisted_sources_rank_after_listed_ones_by_name() -> None:
    a = Record(key="a", datestamp=T0, title="from zeta")
    b = Record(key="b", datestamp=T0, title="from alpha")
    c = Record(key="c", datestamp=T0, title="from listed")
    assert merge(None, [("zeta", a), ("alpha", b)], []).data["title"] == "from alpha"
    assert merge(None, [("zeta", a), ("alpha", b), ("listed", c)], ["listed"]).data["title"] == "from listed"


def test_within_one_source_the_most_recently_changed_record_wins() -> None:
    old = Record(key="oai:1", datestamp=T0, title="old title")
    new = Record(key="oai:2", datestamp=T0 + dt.timedelta(days=1), title="new title")
    assert merge(None, [("pure", old), ("pure", new)], []).data["title"] == "new title"


def test_deleted_records_do_not_contribute() -> None:
    gone = Record(key="oai:1", datestamp=T0, deleted=True)
    merged = merge(DOI, [("pure", gone), ("crossref", crossref())], [])
    assert merged.data["sources"] == ["crossref"]


# -- order independence --------------------------------------------------------------

names = st.sampled_from(["crossref", "scopus", "pure", "dspace"])
maybe_text = st.one_of(st.none(), st.sampled_from(["A", "B", "Title one", "Ω title"]))
dates = st.one_of(
    st.none(),
    st.builds(PartialDate, st.just(2019), st.one_of(st.none(), st.integers(1, 12)), st.none()),
    st.just(PartialDate(2019, 3, 4)),
    st.just(PartialDate(2020)),
)
records = st.builds(
    Record,
    key=st.sampled_from(["k1", "k2", "k3", "k4"]),
    datestamp=st.sampled_from([T0, T0 + dt.timedelta(hours=1), None]),
    deleted=st.booleans(),
    title=maybe_text,
    abstract=maybe_text,
    publisher=maybe_text,
    date=dates,
    keywords=st.lists(st.sampled_from(["x", "X", "y", "z"]), max_size=3).map(tuple),
    subjects=st.lists(
        st.builds(Subject, st.sampled_from(["ASJC", "DDC"]), st.sampled_from(["1", "2"])), max_size=2
    ).map(tuple),
    issn=st.lists(
        st.builds(
            Issn, st.sampled_from(["0951-3558", "0028-0836"]), st.sampled_from(["print", "electronic", None])
        ),
        max_size=2,
    ).map(tuple),
    authors=st.lists(st.builds(Author, st.sampled_from(["A B", "C D"])), max_size=2).map(tuple),
    citation_count=st.one_of(st.none(), st.builds(CitationCount, st.integers(0, 5), st.just("2026-01-01"))),
    identifiers=st.lists(
        st.tuples(st.sampled_from(["pmid", "oai"]), st.sampled_from(["1", "2"])), max_size=2
    ).map(lambda pairs: tuple(sorted(set(pairs)))),
    retracted=st.booleans(),
)


@settings(max_examples=300, deadline=None)
@given(
    contributions=st.lists(
        st.tuples(names, records), min_size=1, max_size=6, unique_by=lambda c: (c[0], c[1].key)
    ),
    precedence=st.lists(names, unique=True, max_size=4),
    data=st.data(),
)
def test_merge_is_independent_of_arrival_order(contributions, precedence, data) -> None:  # type: ignore[no-untyped-def]
    shuffled = data.draw(st.permutations(contributions))
    assert merge(DOI, shuffled, precedence) == merge(DOI, contributions, precedence)


def test_initials_never_replace_full_given_names() -> None:
    scopus_standard = Record(
        key="2-s2.0-1", datestamp=T0, doi=DOI, authors=(Author("Knox C.", "Knox", None),)
    )
    scopus_complete = Record(
        key="2-s2.0-1",
        datestamp=T0,
        doi=DOI,
        authors=(Author("Knox C.", "Knox", "C."), Author("Janenova S.", "Janenova", "S.")),
    )
    for scopus in (scopus_standard, scopus_complete):
        merged = merge(DOI, [("scopus", scopus), ("crossref", crossref())], ["scopus", "crossref"])
        assert [(a["family"], a["given"]) for a in merged.data["authors"]] == [
            ("Knox", "Colin"),
            ("Janenova", "Saltanat"),
        ]
        assert merged.provenance["authors"] == "crossref"
    # a different author list never replaces the trusted one
    other = Record(key="x", datestamp=T0, doi=DOI, authors=(Author("Smith, Jane", "Smith", "Jane"),))
    merged = merge(DOI, [("scopus", scopus_standard), ("pure", other)], ["scopus", "pure"])
    assert merged.data["authors"][0]["family"] == "Knox"
