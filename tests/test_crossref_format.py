"""Tests of harvester/sources/crossref_format.py: Crossref ``/works`` items → Record fields.

Most cases are real API responses (tests/fixtures/crossref/habanero and rcrossref,
provenance in its README.md): the 2026 habanero cassettes and the 2022 rcrossref ones.
tests/fixtures/crossref/written/ holds items written for these tests, modelled on them:
the seed work (no real Crossref record of it is stored anywhere), a retraction notice and
the work it retracts, and a page of odd items. Small inline items cover the rest and are
marked "synthetic".
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.record import TYPES, Author, CitationCount, Issn, PartialDate, Record, Subject
from harvester.sources.base import NormalizationError
from harvester.sources.crossref_format import (
    SELECT_FIELDS,
    UNSELECTABLE_FIELDS,
    UPDATE_KINDS,
    crossref_datestamp,
    crossref_fields,
)

FIXTURES = Path(__file__).parent / "fixtures" / "crossref"
AS_OF = "2026-11-28"

SEED = "written/seed_ijpsm_work.json"
SEED_DOI = "10.1108/ijpsm-08-2018-0173"
NOTICE = "written/retraction_notice.json"
NOTICE_DOI = "10.5555/retraction-notice-2026-01"
TARGET = "written/retracted_target.json"
TARGET_DOI = "10.5555/retracted-work-2024-17"
ODD_PAGE = "written/odd_items_page.json"

PLOS = "habanero/test_works_with_one_id.body.json"
BMJ_ABSTRACT = "habanero/test_workscontainer_with_two_ids.0.body.json"
BMJ_NO_ABSTRACT = "habanero/test_workscontainer_with_two_ids.1.body.json"
ELSEVIER = "habanero/test_works_with_many_ids.0.body.json"
WILEY = "habanero/test_works_with_many_ids.1.body.json"
NATURE = "habanero/test_works_with_many_ids.2.body.json"
IEEE = "habanero/test_works_with_many_ids.3.body.json"
SPANDIDOS = "habanero/test_works_with_many_ids.4.body.json"
CURSOR_PAGE = "habanero/test_cursor.body.json"
MEMBER_PAGES = [f"habanero/test_workscontainer_with_cursor.{i}.body.json" for i in range(4)]
SELECT_PAGE = "habanero/test_works_with_select_param.body.json"
QUERY_PAGE = "habanero/test_worksquery_execute.body.json"
FRONTIERS_2022 = "rcrossref/cr_works_empty_funder.body.json"
PEER_REVIEW = "rcrossref/cr_works_no_content_domain_fail.body.json"
BOOK_CHAPTER = "rcrossref/cr_works_parses_affilitation.body.json"
EMPTY_PAGE = "rcrossref/cr_works_fails_well.0.body.json"

# Every fixture file and (items that normalize, items that raise NormalizationError).
EXPECTED_COUNTS: dict[str, tuple[int, int]] = {
    CURSOR_PAGE: (20, 0),
    ELSEVIER: (1, 0),
    WILEY: (1, 0),
    NATURE: (1, 0),
    IEEE: (1, 0),
    SPANDIDOS: (1, 0),
    PLOS: (1, 0),
    SELECT_PAGE: (20, 0),
    **{name: (5, 0) for name in MEMBER_PAGES},
    BMJ_ABSTRACT: (1, 0),
    BMJ_NO_ABSTRACT: (1, 0),
    QUERY_PAGE: (3, 0),
    FRONTIERS_2022: (1, 0),
    PEER_REVIEW: (1, 0),
    BOOK_CHAPTER: (1, 0),
    EMPTY_PAGE: (0, 0),
    SEED: (1, 0),
    NOTICE: (1, 0),
    TARGET: (1, 0),
    ODD_PAGE: (2, 8),
}

#: The elements the API lets ``select=`` name: "This endpoint supports selecting the
#: following elements" in the ``/works`` documentation of api.crossref.org (API 3.32),
#: identical to habanero's ``habanero/select.py`` ``VALID_SELECTS``.
SELECTABLE = frozenset(
    {
        "DOI",
        "ISBN",
        "ISSN",
        "URL",
        "abstract",
        "accepted",
        "alternative-id",
        "approved",
        "archive",
        "article-number",
        "assertion",
        "author",
        "chair",
        "clinical-trial-number",
        "container-title",
        "content-created",
        "content-domain",
        "created",
        "degree",
        "deposited",
        "editor",
        "event",
        "funder",
        "group-title",
        "indexed",
        "is-referenced-by-count",
        "issn-type",
        "issue",
        "issued",
        "license",
        "link",
        "member",
        "original-title",
        "page",
        "posted",
        "prefix",
        "published",
        "published-online",
        "published-print",
        "publisher",
        "publisher-location",
        "reference",
        "references-count",
        "relation",
        "score",
        "short-container-title",
        "short-title",
        "standards-body",
        "subject",
        "subtitle",
        "title",
        "translator",
        "type",
        "update-policy",
        "update-to",
        "updated-by",
        "volume",
    }
)
READ_FIELDS = (*SELECT_FIELDS, *UNSELECTABLE_FIELDS)


# --- helpers -----------------------------------------------------------------------------------


@functools.cache
def _body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def items(name: str) -> list[Any]:
    """The work objects of a body: ``message.items`` of a list, ``message`` of one work."""
    message = _body(name)["message"]
    if isinstance(message, dict) and "items" in message:
        return list(message["items"])
    return [message]


def item(name: str, doi: str | None = None) -> dict[str, Any]:
    """A deep copy of the fixture's single work, or of its item with that DOI."""
    found = [i for i in items(name) if doi is None or (isinstance(i, dict) and i.get("DOI") == doi)]
    assert len(found) == 1, (name, doi)
    result: dict[str, Any] = copy.deepcopy(found[0])
    return result


def fields(name: str, doi: str | None = None) -> dict[str, Any]:
    return crossref_fields(item(name, doi), as_of=AS_OF)


def record(name: str, doi: str | None = None) -> Record:
    result = fields(name, doi)
    return Record(key=result["doi"], **result)


def ids(result: dict[str, Any], scheme: str) -> list[str]:
    return [value for s, value in result["identifiers"] if s == scheme]


# --- select= -------------------------------------------------------------------------------------


def test_select_fields_are_all_selectable_and_unique() -> None:
    assert set(SELECT_FIELDS) <= SELECTABLE
    assert len(set(SELECT_FIELDS)) == len(SELECT_FIELDS)
    assert not set(UNSELECTABLE_FIELDS) & SELECTABLE
    assert "DOI" in SELECT_FIELDS
    assert {"indexed", "deposited", "created"} <= set(SELECT_FIELDS)  # crossref_datestamp


def test_nothing_outside_the_read_fields_is_read() -> None:
    full = item(SEED)
    projected = {k: v for k, v in full.items() if k in READ_FIELDS}
    assert crossref_fields(projected, as_of=AS_OF) == crossref_fields(full, as_of=AS_OF)
    assert crossref_datestamp(projected) == crossref_datestamp(full)


def test_a_select_projection_loses_only_the_unselectable_fields() -> None:
    full = fields(SEED)
    selected = crossref_fields({k: v for k, v in item(SEED).items() if k in SELECT_FIELDS}, as_of=AS_OF)
    differences = {k for k in full if full[k] != selected[k]}
    assert differences == {"language", "url"}
    assert selected["language"] is None
    assert selected["url"] == "https://doi.org/10.1108/ijpsm-08-2018-0173"  # URL instead of resource


# One meaningful value for every field the normalizer reads (synthetic).
_ONE_VALUE: dict[str, Any] = {
    "title": ["T"],
    "subtitle": ["S"],
    "author": [{"family": "F"}],
    "abstract": "<jats:p>A</jats:p>",
    "container-title": ["C"],
    "short-container-title": ["SC"],
    "ISSN": ["0951-3558"],
    "issn-type": [{"value": "0951-3558", "type": "print"}],
    "ISBN": ["9780306406157"],
    "isbn-type": [{"value": "9780306406157", "type": "print"}],
    "volume": "1",
    "issue": "2",
    "page": "3-4",
    "publisher": "P",
    "published": {"date-parts": [[2019]]},
    "published-print": {"date-parts": [[2019]]},
    "published-online": {"date-parts": [[2019]]},
    "issued": {"date-parts": [[2019]]},
    "type": "journal-article",
    "language": "en",
    "subject": ["S"],
    "is-referenced-by-count": 1,
    "license": [{"URL": "https://example.org/licence"}],
    "resource": {"primary": {"URL": "https://example.org/landing"}},
    "URL": "https://doi.org/10.5555/x",
    "alternative-id": ["X1"],
    "update-to": [{"DOI": "10.5555/y", "type": "retraction"}],
    "updated-by": [{"DOI": "10.5555/y", "type": "retraction"}],
    "indexed": {"date-time": "2020-01-01T00:00:00Z"},
    "deposited": {"date-time": "2020-01-01T00:00:00Z"},
    "created": {"date-time": "2020-01-01T00:00:00Z"},
}


def test_every_read_field_is_read() -> None:
    """Each field of SELECT_FIELDS and UNSELECTABLE_FIELDS changes the result when present."""
    assert set(_ONE_VALUE) == set(READ_FIELDS) - {"DOI"}
    base = {"DOI": "10.5555/x"}
    empty = (crossref_fields(base, as_of=AS_OF), crossref_datestamp(base))
    for name, value in _ONE_VALUE.items():
        work = {**base, name: value}
        assert (crossref_fields(work, as_of=AS_OF), crossref_datestamp(work)) != empty, name


# --- the seed work -------------------------------------------------------------------------------


def test_seed_all_fields() -> None:
    assert fields(SEED) == {
        "doi": SEED_DOI,
        "title": "The e-government paradox in post-Soviet countries",
        "subtitle": None,
        "authors": (
            Author(
                name="Colin Knox",
                family="Knox",
                given="Colin",
                orcid="0000-0002-1825-0097",
                affiliations=("Graduate School of Public Policy, Example University, Astana, Kazakhstan",),
            ),
            Author(
                name="Saltanat Janenova",
                family="Janenova",
                given="Saltanat",
                orcid=None,
                affiliations=("Graduate School of Public Policy, Example University, Astana, Kazakhstan",),
            ),
        ),
        "abstract": (
            "Purpose: The purpose of this paper is to investigate why e-government, promoted as a means of "
            "making public services more transparent and accountable, has been embraced by governments in "
            "post-Soviet countries whose political systems remain closed.\n\n"
            "Design/methodology/approach: The study draws on documentary analysis and interviews with public "
            "officials and service users in Kazakhstan.\n\n"
            "Findings: E-government has improved the efficiency of service delivery, but the gains in "
            "openness and accountability that its advocates expected have not followed.\n\n"
            "Originality/value: The paper identifies an e-government paradox: digital services flourish "
            "where they strengthen, rather than challenge, the existing regime."
        ),
        "container_title": "International Journal of Public Sector Management",
        "issn": (Issn("0951-3558", "print"),),
        "isbn": (),
        "volume": "32",
        "issue": "4",
        "pages": "362-382",
        "publisher": "Emerald",
        "date": PartialDate(2019, 1, 1),
        "type": "journal-article",
        "language": "en",
        "keywords": (),
        "subjects": (),
        "citation_count": CitationCount(31, AS_OF),
        "license": "https://www.emerald.com/insight/site-policies#vor",
        "url": "https://www.emerald.com/insight/content/doi/10.1108/IJPSM-08-2018-0173/full/html",
        "identifiers": (("doi", SEED_DOI),),  # alternative-id repeats the DOI: dropped
        "retracted": False,
        "updates": (),
    }


def test_seed_date_is_published_then_print_then_online() -> None:
    """``published`` (the earliest, 2019-01-01 online) wins; without it ``published-print``
    (2019-05-13) comes before ``published-online``."""
    work = item(SEED)
    assert crossref_fields(work, as_of=AS_OF)["date"] == PartialDate(2019, 1, 1)
    del work["published"]
    assert crossref_fields(work, as_of=AS_OF)["date"] == PartialDate(2019, 5, 13)
    del work["published-print"]
    assert crossref_fields(work, as_of=AS_OF)["date"] == PartialDate(2019, 1, 1)
    work["published-online"] = {"date-parts": [[None]]}
    work["issued"] = {"date-parts": [[2019]]}
    assert crossref_fields(work, as_of=AS_OF)["date"] == PartialDate(2019)


def test_seed_doi_in_any_case_is_normalized() -> None:
    work = item(SEED)
    work["DOI"] = "10.1108/IJPSM-08-2018-0173"
    assert crossref_fields(work, as_of=AS_OF)["doi"] == SEED_DOI
    work["DOI"] = "https://doi.org/10.1108/IJPSM-08-2018-0173"
    assert crossref_fields(work, as_of=AS_OF)["doi"] == SEED_DOI


def test_seed_datestamp_is_the_index_time() -> None:
    assert crossref_datestamp(item(SEED)) == dt.datetime(2026, 11, 27, 6, 41, 12, tzinfo=dt.UTC)


def test_seed_record_round_trips_through_json() -> None:
    seed = record(SEED)
    restored = Record.from_json(json.loads(json.dumps(seed.to_json())))
    assert restored == seed
    assert seed.to_json()["updates"] == []


def test_seed_as_of_dates_the_citation_count() -> None:
    assert crossref_fields(item(SEED), as_of="2027-01-02")["citation_count"] == CitationCount(
        31, "2027-01-02"
    )
    for bad in ("28.11.2026", "2026-11-28T00:00:00Z", "2026-02-30", "20261128"):
        with pytest.raises(ValueError, match="as_of must be an ISO date") as info:
            crossref_fields(item(SEED), as_of=bad)
        assert not isinstance(info.value, NormalizationError)  # a caller bug, not a bad item


# --- real works ----------------------------------------------------------------------------------


def test_plos_work() -> None:
    result = fields(PLOS)
    assert result["doi"] == "10.1371/journal.pone.0033693"
    assert result["title"] == (
        "Methylphenidate Exposure Induces Dopamine Neuron Loss and Activation of Microglia in the Basal "
        "Ganglia of Mice"
    )
    assert result["container_title"] == "PLoS ONE"
    assert result["issn"] == (Issn("1932-6203", "electronic"),)
    assert (result["volume"], result["issue"], result["pages"]) == ("7", "3", "e33693")
    assert result["publisher"] == "Public Library of Science (PLoS)"
    assert result["date"] == PartialDate(2012, 3, 21)
    assert result["language"] == "en"
    assert result["subjects"] == ()  # subject: [] in 2026
    assert result["citation_count"] == CitationCount(72, AS_OF)
    assert result["license"] == "http://creativecommons.org/licenses/by/4.0/"  # "unspecified", the only one
    assert result["url"] == "https://dx.plos.org/10.1371/journal.pone.0033693"
    assert result["authors"][0] == Author(name="Shankar Sadasivan", family="Sadasivan", given="Shankar")
    assert len(result["authors"]) == len(item(PLOS)["author"])
    assert "Borlongan" not in {a.family for a in result["authors"]}  # the editor is not an author
    # updated-by: a correction from the publisher; corrected, not retracted.
    assert item(PLOS)["updated-by"][0]["type"] == "correction"
    assert result["retracted"] is False
    assert result["updates"] == ()


def test_bmj_work_with_jats_abstract() -> None:
    result = fields(BMJ_ABSTRACT)
    assert result["title"] == (
        "Construction of a reference material panel for detecting KRAS / NRAS / EGFR / BRAF / MET mutations "
        "in plasma ctDNA"
    )
    abstract = result["abstract"]
    assert abstract.startswith(
        "Background: The absence of high-quality next-generation sequencing (NGS) reference material (RM) "
        "has impeded the clinical use of liquid biopsies with plasma cell-free DNA (cfDNA) in China.\n\n"
        "Objective: This study aimed"
    )
    labels = [paragraph.split(":", 1)[0] for paragraph in abstract.split("\n\n")]
    assert labels == ["Background", "Objective", "Methods", "Results", "Conclusion"]
    assert "<" not in abstract
    assert result["issn"] == (Issn("0021-9746", "print"), Issn("1472-4146", "electronic"))
    # published (online 2020-08-17) comes before published-print (2021-05).
    assert result["date"] == PartialDate(2020, 8, 17)
    assert (result["volume"], result["issue"], result["pages"]) == ("74", "5", "314-320")
    assert result["license"] == "http://creativecommons.org/licenses/by-nc/4.0/"
    assert result["citation_count"] == CitationCount(10, AS_OF)
    assert result["identifiers"] == (("doi", "10.1136/jclinpath-2020-206745"),)  # alternative-id = DOI
    authors = result["authors"]
    assert len(authors) == 15
    assert authors[0] == Author(
        name="Jun Xu",
        family="Xu",
        given="Jun",
        affiliations=("Department of Neurosurgery, China-Japan Friendship Hospital, Beijing, China",),
    )
    assert [(a.name, a.orcid) for a in authors if a.orcid] == [("Xuexi Yang", "0000-0002-3513-6501")]


def test_bmj_work_without_abstract() -> None:
    result = fields(BMJ_NO_ABSTRACT)
    assert result["doi"] == "10.1136/esmoopen-2020-000776"
    assert result["abstract"] is None
    assert result["authors"][0] == Author(
        name="Satoru Iwasa", family="Iwasa", given="Satoru", orcid="0000-0003-3863-9582"
    )
    assert [a.orcid for a in result["authors"] if a.orcid] == ["0000-0003-3863-9582", "0000-0003-0692-8419"]
    # tdm, tdm, then vor: the version-of-record licence wins.
    assert [lic["content-version"] for lic in item(BMJ_NO_ABSTRACT)["license"]] == ["tdm", "tdm", "vor"]
    assert result["license"] == "http://creativecommons.org/licenses/by-nc/4.0/"
    assert ids(result, "publisher_id") == ["S2059702920326508"]
    assert result["date"] == PartialDate(2020)
    assert result["issn"] == (Issn("2059-7029", "print"),)
    assert result["pages"] == "e000776"
    assert result["publisher"] == "Elsevier BV"


def test_ieee_proceedings_article_without_issn_or_date() -> None:
    result = fields(IEEE)
    assert result["type"] == "proceedings-article"
    assert result["container_title"] == (
        "23rd International Conference on Distributed Computing Systems Workshops, 2003. Proceedings."
    )
    assert result["issn"] == ()
    assert result["isbn"] == ()
    assert item(IEEE)["issued"] == {"date-parts": [[None]]}
    assert result["date"] is None  # the only date has a null year
    assert result["pages"] == "877-882"
    assert [a.name for a in result["authors"]] == ["V. Arya", "T. Turletti"]
    assert result["url"] == "http://ieeexplore.ieee.org/document/1203662/"
    assert result["citation_count"] == CitationCount(4, AS_OF)


def test_spandidos_sparse_record_with_family_name_only() -> None:
    result = fields(SPANDIDOS)
    assert result["authors"] == (Author(name="Stravopodis", family="Stravopodis", given=None),)
    assert result["abstract"] is None
    assert result["license"] is None
    assert result["language"] is None
    assert (result["volume"], result["issue"], result["pages"]) == (None, None, None)
    assert result["date"] == PartialDate(2009, 6, 26)
    assert result["issn"] == (Issn("1019-6439", "print"),)
    assert result["container_title"] == "International Journal of Oncology"
    assert result["url"] == "http://www.spandidos-publications.com/ijo/35/2/401"


def test_peer_review_with_escaped_slashes() -> None:
    raw = (FIXTURES / PEER_REVIEW).read_bytes()
    assert b'"DOI":"10.7287\\/peerj.3819v0.1\\/reviews\\/2"' in raw
    result = fields(PEER_REVIEW)
    assert result["doi"] == "10.7287/peerj.3819v0.1/reviews/2"
    assert result["type"] == "peer-review"
    assert result["title"] == (
        'Peer Review #2 of "Human agency beliefs influence behaviour during virtual social interactions '
        '(v0.1)"'
    )
    assert result["container_title"] is None  # container-title and short-container-title are []
    assert result["issn"] == ()
    # The only author is "additional": sequence does not reorder or drop anyone.
    assert item(PEER_REVIEW)["author"][0]["sequence"] == "additional"
    assert result["authors"] == (Author(name="A Georgescu", family="Georgescu", given="A"),)
    assert result["date"] == PartialDate(2017, 9, 20)
    assert result["citation_count"] == CitationCount(0, AS_OF)  # 0 is a count
    assert result["url"] == "https://peerj.com/articles/3819v0.1/reviews/2/"


def test_2022_record_with_populated_subject() -> None:
    result = fields(FRONTIERS_2022)
    assert result["subjects"] == (
        Subject("Crossref", None, "Genetics (clinical)"),
        Subject("Crossref", None, "Genetics"),
        Subject("Crossref", None, "Molecular Medicine"),
    )
    assert result["issn"] == (Issn("1664-8021", "electronic"),)
    assert result["date"] == PartialDate(2017, 10, 10)
    assert result["container_title"] == "Frontiers in Genetics"
    assert [a.name for a in result["authors"]] == ["Josef Pánek", "Martin Modrák", "Marek Schwarz"]
    assert result["language"] is None  # no language field in 2022
    assert result["identifiers"] == (("doi", "10.3389/fgene.2017.00147"),)
    assert crossref_datestamp(item(FRONTIERS_2022)) == dt.datetime(2022, 4, 1, 13, 42, 10, tzinfo=dt.UTC)


def test_book_chapter_with_affiliation() -> None:
    result = fields(BOOK_CHAPTER)
    assert result["type"] == "book-chapter"
    assert result["title"] == '"Racial Epithet"'
    assert result["subtitle"] is None  # subtitle: [""]
    assert result["authors"] == (
        Author(
            name="Nicholas D. Hartlep",
            family="Hartlep",
            given="Nicholas D.",
            affiliations=("Illinois State University, USA",),
        ),
    )
    assert result["container_title"] == "Impact of the Model Minority Stereotype on Modern Society"
    assert result["pages"] == "525-916"
    assert result["date"] is None  # issued [[null]]
    assert result["publisher"] == "IGI Global"


def test_wiley_abstract_label_and_author_suffix() -> None:
    result = fields(WILEY)
    assert item(WILEY)["abstract"].startswith("<jats:title>Abstract</jats:title><jats:p>Twenty")
    assert result["abstract"].startswith("Twenty‐two beagles were divided into two equal groups")
    hora = [a for a in result["authors"] if a.family == "Hora"]
    assert hora == [Author(name="Donald Hora Jr.", family="Hora", given="Donald")]
    assert result["issn"] == (Issn("0736-0266", "print"), Issn("1554-527X", "electronic"))
    assert result["date"] == PartialDate(1997, 7)  # month precision, not 1997-07-01
    assert result["license"] == "http://onlinelibrary.wiley.com/termsAndConditions#vor"
    assert result["identifiers"] == (("doi", "10.1002/jor.1100150407"),)


def test_elsevier_and_nature_publisher_ids_and_licences() -> None:
    elsevier = fields(ELSEVIER)
    assert ids(elsevier, "publisher_id") == ["S0197458010001570"]
    assert elsevier["license"] == "https://www.elsevier.com/tdm/userlicense/1.0/"  # no vor: the first
    assert elsevier["date"] == PartialDate(2012, 3)
    nature = fields(NATURE)
    assert ids(nature, "publisher_id") == ["BFsrep16696"]
    assert nature["license"] == "https://creativecommons.org/licenses/by/4.0"
    assert nature["abstract"].startswith("Oligomers of alpha-synuclein are toxic to cells")
    assert nature["issn"] == (Issn("2045-2322", "electronic"),)


def test_cursor_page_mixed_types() -> None:
    records = {str(r.doi): r for r in (record(CURSOR_PAGE, i["DOI"]) for i in items(CURSOR_PAGE))}
    assert len(records) == 20
    assert {r.type for r in records.values()} == {
        "book-chapter",
        "reference-entry",
        "proceedings-article",
        "dataset",
        "journal-article",
        "posted-content",
    }
    # Two items whose only date is issued [[null]].
    undated = sorted(doi for doi, r in records.items() if r.date is None)
    assert undated == ["10.1007/978-1-4302-0197-7_9", "10.1007/springerreference_66110"]
    chapter = records["10.1007/978-1-4302-0197-7_9"]
    assert chapter.isbn == ("9781590598160",)
    assert ("isbn", "9781590598160") in chapter.identifiers
    assert chapter.pages == "305-349"
    assert chapter.container_title == "Practical JavaScript™, DOM Scripting, and Ajax Projects"
    africon = records["10.1109/afrcon.2009.5308146"]
    assert africon.date == PartialDate(2009, 9)
    assert [a.name for a in africon.authors] == ["Paco Mendes", "Marcos Caceres", "Barry Dwolatzky"]
    blog = records["10.59350/7mtwq-q3661"]
    assert blog.authors == (
        Author(name="Egon Willighagen", family="Willighagen", given="Egon", orcid="0000-0001-7542-0286"),
    )
    assert blog.abstract is not None
    assert blog.abstract.startswith("In addition to this Swing-based screenshot of JChemPaint")
    assert blog.license == "https://creativecommons.org/licenses/by/4.0/legalcode"  # vor listed first
    assert blog.container_title is None
    widgetkit = records["10.1007/978-1-4842-6700-4_5"]
    assert widgetkit.date == PartialDate(2020)  # published [[2020]], not published-online 2020-11-13
    assert widgetkit.license == "http://www.springer.com/tdm"  # the vor entry, as given
    spie = records["10.1117/1.jei.28.6.063006"]
    assert spie.issue == "06"  # as written
    assert spie.authors[0].affiliations == (
        "Hebei University of Science and Technology, School of Information Science and Engineering, "
        "Shijiazhu",
    )


def test_member_cursor_pages() -> None:
    records = {
        r.doi: r for name in MEMBER_PAGES for r in (record(name, i["DOI"]) for i in items(name)) if r.doi
    }
    assert len(records) == 20
    hindawi = records["10.4061/2010/505436"]
    assert item(MEMBER_PAGES[0], "10.4061/2010/505436")["alternative-id"] == ["505436", "505436"]
    assert [v for s, v in hindawi.identifiers if s == "publisher_id"] == ["505436"]
    assert hindawi.authors[0].affiliations == (
        "Tissue Pathology and Diagnostic Oncology, Royal Prince Alfred Hospital, Camperdown, NSW 2050, "
        "Australia",
        "Department of Histopathology, Douglass Hanly Moir Pathology, 14 Giffnock Avenue Macquarie Park, "
        "Sydney, NSW 2113, Australia",
    )
    assert hindawi.abstract is not None
    assert hindawi.abstract.startswith("Well differentiated liposarcoma (WDLS) is the commonest subtype")
    issue = records["10.1002/humu.2018.39.issue-6"]
    assert (issue.type, issue.title, issue.authors) == ("journal-issue", None, ())
    assert issue.container_title == "Human Mutation"
    # Wiley's running head arrives as the subtitle and is kept as written.
    assert records["10.1046/j.1399543x.2000.010407.x"].subtitle == "Cerebral edema in DKA"
    assert records["10.1111/dth.13147"].date == PartialDate(2019, 11, 19)
    assert all(r.citation_count is not None for r in records.values())


def test_select_projection_pages() -> None:
    sparse = record(SELECT_PAGE, "10.1093/obo/9780199830060-0238")
    assert sparse == Record(
        key="10.1093/obo/9780199830060-0238",
        doi="10.1093/obo/9780199830060-0238",
        title="Communicating Ecology",
        identifiers=(("doi", "10.1093/obo/9780199830060-0238"),),
    )
    assert crossref_datestamp(item(SELECT_PAGE, "10.1093/obo/9780199830060-0238")) is None
    query = fields(QUERY_PAGE, "10.1093/obo/9780199830060-0026")
    assert query["date"] == PartialDate(2012, 5, 23)
    assert query["authors"] == (Author(name="John Parminter", family="Parminter", given="John"),)


# --- retractions and other editorial updates -----------------------------------------------------


def test_retraction_notice_is_flagged_through_updates() -> None:
    notice = record(NOTICE)
    assert notice.doi == NOTICE_DOI
    assert notice.doi != TARGET_DOI
    # Asserted by the publisher and by Retraction Watch: one update.
    assert len(item(NOTICE)["update-to"]) == 2
    assert notice.updates == (("retraction", TARGET_DOI),)
    assert notice.retracted is False  # the notice itself stands
    assert notice.title == "Retraction notice: Widget models of public service delivery"
    assert notice.authors == (Author(name="Journal of Example Studies Editorial Office"),)
    assert Record.from_json(notice.to_json()) == notice
    assert notice.to_json()["updates"] == [["retraction", TARGET_DOI]]


def test_retracted_target_is_retracted() -> None:
    target = record(TARGET)
    assert target.doi == TARGET_DOI
    assert target.retracted is True
    assert target.updates == ()
    assert target.date == PartialDate(2024, 2)


@pytest.mark.parametrize(
    ("crossref_type", "kind"),
    [
        ("retraction", "retraction"),
        ("correction", "correction"),
        ("erratum", "correction"),
        ("corrigendum", "correction"),
        ("clarification", "correction"),
        ("partial_retraction", "correction"),
        ("expression_of_concern", "expression_of_concern"),
        ("Expression of Concern", "expression_of_concern"),
        ("withdrawal", "withdrawal"),
        ("removal", "withdrawal"),
        ("addendum", "addendum"),
        ("new_version", "other"),
        ("new_edition", "other"),
        ("something-new", "other"),
        ("", "other"),
    ],
)
def test_update_types_map_to_kinds(crossref_type: str, kind: str) -> None:
    """Synthetic notices with each Crossref update type."""
    work = {"DOI": "10.5555/notice", "update-to": [{"DOI": "10.5555/Target", "type": crossref_type}]}
    assert crossref_fields(work, as_of=AS_OF)["updates"] == ((kind, "10.5555/target"),)
    assert kind in UPDATE_KINDS


@pytest.mark.parametrize(
    ("crossref_type", "retracted"),
    [
        ("retraction", True),
        ("Retraction", True),
        ("withdrawal", True),
        ("removal", True),
        ("partial_retraction", False),
        ("correction", False),
        ("expression_of_concern", False),
        ("new_version", False),
    ],
)
def test_updated_by_types_that_retract(crossref_type: str, retracted: bool) -> None:
    """Synthetic ``updated-by`` entries as Crossref writes them since January 2025."""
    work = {
        "DOI": "10.5555/work",
        "updated-by": [
            {
                "DOI": "10.5555/notice",
                "type": crossref_type,
                "label": crossref_type,
                "source": "retraction-watch",
            }
        ],
    }
    assert crossref_fields(work, as_of=AS_OF)["retracted"] is retracted


def test_updates_skip_invalid_and_self_targets() -> None:
    """Synthetic: an update pointing at the notice itself would mark the notice retracted."""
    work = {
        "DOI": "10.5555/notice",
        "update-to": [
            {"DOI": "10.5555/NOTICE", "type": "retraction"},
            {"DOI": "not a doi", "type": "retraction"},
            {"DOI": None, "type": "retraction"},
            {"type": "retraction"},
            "10.5555/a-string",
            {"DOI": "https://doi.org/10.5555/B", "type": "correction"},
            {"DOI": "10.5555/a", "type": "retraction"},
        ],
    }
    assert crossref_fields(work, as_of=AS_OF)["updates"] == (
        ("correction", "10.5555/b"),
        ("retraction", "10.5555/a"),
    )


def test_relation_is_not_a_retraction_signal() -> None:
    """Synthetic: Crossref's relation vocabulary has no retraction type; such keys are ignored."""
    work = {"DOI": "10.5555/work", "relation": {"is-retracted-by": [{"id": "10.5555/n", "id-type": "doi"}]}}
    assert crossref_fields(work, as_of=AS_OF)["retracted"] is False


# --- authors -------------------------------------------------------------------------------------


def test_organisation_and_odd_authors() -> None:
    """Synthetic authors: organisations by ``name``, given-only, junk entries, bad ORCIDs."""
    work = {
        "DOI": "10.5555/authors",
        "author": [
            {"name": "The  CRISPR\nConsortium", "sequence": "additional", "affiliation": []},
            {
                "given": "Ada",
                "family": "Lovelace",
                "sequence": "first",
                "ORCID": "https://orcid.org/0000-0002-1825-0098",
            },
            {"given": "Mononym", "sequence": "additional"},
            {"family": "<i>Doe</i>", "given": " Jane ", "ORCID": "0000-0002-1825-0097"},
            {"sequence": "additional", "affiliation": [{"name": "Nobody"}]},
            "Not An Object",
            None,
            {
                "given": "Bo",
                "family": "Li",
                "affiliation": [{"name": " A  Uni "}, {"name": "A Uni"}, "B Uni", {}, 7],
            },
        ],
    }
    assert crossref_fields(work, as_of=AS_OF)["authors"] == (
        Author(name="The CRISPR Consortium"),
        Author(name="Ada Lovelace", family="Lovelace", given="Ada"),  # checksum-invalid ORCID dropped
        Author(name="Mononym", given="Mononym"),
        Author(name="Jane Doe", family="Doe", given="Jane", orcid="0000-0002-1825-0097"),
        Author(name="Bo Li", family="Li", given="Bo", affiliations=("A Uni", "B Uni")),
    )


# --- other field rules ---------------------------------------------------------------------------


def test_every_canonical_type_is_kept_and_unknown_ones_are_other() -> None:
    for crossref_type in sorted(TYPES):
        assert (
            crossref_fields({"DOI": "10.5555/t", "type": crossref_type}, as_of=AS_OF)["type"] == crossref_type
        )
    assert (
        crossref_fields({"DOI": "10.5555/t", "type": "preprint-of-the-future"}, as_of=AS_OF)["type"]
        == "other"
    )
    assert (
        crossref_fields({"DOI": "10.5555/t", "type": " Book-Chapter "}, as_of=AS_OF)["type"] == "book-chapter"
    )
    for missing in (None, "", 3, ["journal-article"]):
        assert crossref_fields({"DOI": "10.5555/t", "type": missing}, as_of=AS_OF)["type"] is None


def test_issn_type_vocabularies_and_untyped_issns() -> None:
    """Synthetic: the documented pissn/eissn names, untyped ISSN[] values, print first."""
    work = {
        "DOI": "10.5555/issn",
        "ISSN": ["2049-3630", "0951-3558", "1758-6666", "2049-3631"],
        "issn-type": [{"value": "1758-6666", "type": "eissn"}, {"value": "09513558", "type": "pissn"}],
    }
    assert crossref_fields(work, as_of=AS_OF)["issn"] == (
        Issn("0951-3558", "print"),
        Issn("1758-6666", "electronic"),
        Issn("2049-3630", None),  # in ISSN[] only; 2049-3631 has a bad check digit
    )


def test_dates_never_invent_precision() -> None:
    """Synthetic date-parts: partial, null year, impossible day, junk parts."""

    def date(parts: Any) -> PartialDate | None:
        result: PartialDate | None = crossref_fields(
            {"DOI": "10.5555/d", "issued": {"date-parts": parts}}, as_of=AS_OF
        )["date"]
        return result

    assert date([[2019]]) == PartialDate(2019)
    assert date([[2019, 5]]) == PartialDate(2019, 5)
    assert date([[2019, 2, 30]]) == PartialDate(2019, 2)
    assert date([[2019, 13, 1]]) == PartialDate(2019)
    assert date([[None, 5, 1]]) is None
    assert date([[None]]) is None
    assert date([[]]) is None
    assert date([]) is None
    assert date(None) is None
    assert date([["2019", "05"]]) == PartialDate(2019, 5)
    assert date([[2019, 5.5]]) == PartialDate(2019)
    assert date([[True]]) is None
    assert date([[10**40]]) is None
    assert date([2019, 5]) is None  # not nested


def test_odd_items_page() -> None:
    """The written page of odd items: eight are unusable, two normalize."""
    odd = items(ODD_PAGE)
    errors = []
    for work in odd[:8]:
        with pytest.raises(NormalizationError) as info:
            crossref_fields(work, as_of=AS_OF)
        errors.append(str(info.value))
    assert errors == [
        "Crossref item without a DOI",
        "Crossref item without a DOI",
        "Crossref item whose DOI is not a DOI: '10/aabbe'",
        "Crossref item whose DOI is not a DOI: 101108",
        "Crossref item whose DOI is not a DOI: '10.5555/has space'",
        "a Crossref item must be a JSON object, not str",
        "a Crossref item must be a JSON object, not NoneType",
        "a Crossref item must be a JSON object, not list",
    ]
    assert crossref_fields(odd[8], as_of=AS_OF) == {
        "doi": "10.5555/odd-types",
        "title": "A string where the title array is due",
        "subtitle": "The real subtitle",
        "authors": (Author(name="Solo", family="Solo", affiliations=("Plain-string affiliation",)),),
        "abstract": None,
        "container_title": "Short Title",
        "issn": (Issn("0951-3558", "print"), Issn("1758-6666", "electronic")),
        "isbn": ("9780306406157",),  # an old id.crossref.org URL and a hyphenated ISBN-13: one book
        "volume": "7",
        "issue": None,
        "pages": None,
        "publisher": None,
        "date": PartialDate(2020, 7),  # published has a null year; published-print's day is 32
        "type": "journal-article",
        "language": "en",
        "keywords": (),
        "subjects": (Subject("Crossref", None, "Sociology"),),
        "citation_count": CitationCount(12, AS_OF),
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "url": "https://doi.org/10.5555/odd-types",
        "identifiers": (("doi", "10.5555/odd-types"), ("isbn", "9780306406157"), ("publisher_id", "12345")),
        "retracted": True,  # updated-by as a lone object, type "Withdrawal"
        "updates": (("expression_of_concern", "10.5555/other-work"),),
    }
    assert crossref_datestamp(odd[8]) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)  # from the timestamp
    assert crossref_fields(odd[9], as_of=AS_OF)["identifiers"] == (("doi", "10.5555/bare-minimum"),)


def test_citation_counts() -> None:
    def count(value: Any) -> CitationCount | None:
        result: CitationCount | None = crossref_fields(
            {"DOI": "10.5555/c", "is-referenced-by-count": value}, as_of=AS_OF
        )["citation_count"]
        return result

    assert count(0) == CitationCount(0, AS_OF)
    assert count(7) == CitationCount(7, AS_OF)
    assert count("7") == CitationCount(7, AS_OF)
    junk: Any
    for junk in (None, -1, True, 1.5, "seven", [], {}):
        assert count(junk) is None


def test_licence_and_url_need_http_urls() -> None:
    work = {
        "DOI": "10.5555/l",
        "license": [
            {"URL": "ftp://example.org/licence", "content-version": "vor"},
            {"URL": "not a url", "content-version": "vor"},
            {"URL": " http://example.org/am ", "content-version": "am"},
        ],
        "resource": {"primary": {"URL": "javascript:alert(1)"}},
        "URL": "http://dx.doi.org/10.5555/l",
    }
    result = crossref_fields(work, as_of=AS_OF)
    assert result["license"] == "http://example.org/am"
    assert result["url"] == "http://dx.doi.org/10.5555/l"


# --- datestamp -----------------------------------------------------------------------------------


def test_datestamp_prefers_indexed_then_deposited_then_created() -> None:
    stamp = {"date-parts": [[2026, 1, 2]], "date-time": "2026-01-02T03:04:05Z", "timestamp": 1767323045000}
    older = {"date-time": "2020-01-01T00:00:00Z"}
    oldest = {"date-time": "2010-01-01T00:00:00Z"}
    assert crossref_datestamp({"indexed": stamp, "deposited": older, "created": oldest}) == dt.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    assert crossref_datestamp({"deposited": older, "created": oldest}) == dt.datetime(
        2020, 1, 1, tzinfo=dt.UTC
    )
    assert crossref_datestamp({"indexed": {"date-time": "junk"}, "created": oldest}) == dt.datetime(
        2010, 1, 1, tzinfo=dt.UTC
    )
    assert crossref_datestamp({"indexed": {"timestamp": 1767323045000}}) == dt.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    assert crossref_datestamp({"indexed": {"date-time": "2026-01-02T05:04:05+02:00"}}) == dt.datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC
    )
    naive = crossref_datestamp({"indexed": {"date-time": "2026-01-02T03:04:05"}})
    assert naive == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    junk: Any
    for junk in (None, [], "2026-01-02", {}, {"indexed": None}, {"indexed": {"timestamp": 10**30}}):
        assert crossref_datestamp(junk) is None


def test_every_real_item_has_a_utc_datestamp_unless_projected() -> None:
    for name in EXPECTED_COUNTS:
        for work in items(name):
            if name.startswith("written/") or name in (SELECT_PAGE, QUERY_PAGE):
                continue
            stamp = crossref_datestamp(work)
            assert stamp is not None, (name, work.get("DOI"))
            assert stamp.utcoffset() == dt.timedelta(0)


# --- every item of every fixture -----------------------------------------------------------------


def test_every_fixture_item_builds_a_record_or_is_rejected_with_a_reason() -> None:
    on_disk = {str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*.json")}
    assert on_disk == set(EXPECTED_COUNTS)
    counts: dict[str, tuple[int, int]] = {}
    reasons: list[str] = []
    for name in sorted(EXPECTED_COUNTS):
        built = rejected = 0
        for work in items(name):
            try:
                result = crossref_fields(work, as_of=AS_OF)
            except NormalizationError as error:
                reasons.append(str(error))
                rejected += 1
                continue
            normalized = Record(key=result["doi"], datestamp=crossref_datestamp(work), **result)
            assert Record.from_json(json.loads(json.dumps(normalized.to_json()))) == normalized
            built += 1
        counts[name] = (built, rejected)
    assert counts == EXPECTED_COUNTS
    assert sum(b for b, _ in counts.values()) == 79
    assert sum(r for _, r in counts.values()) == 8
    assert len(reasons) == 8
    assert all(reason.startswith(("Crossref item", "a Crossref item")) for reason in reasons)


# --- property: junk never raises anything but NormalizationError ---------------------------------

_INNER_KEYS = (
    "date-parts",
    "date-time",
    "timestamp",
    "URL",
    "content-version",
    "value",
    "type",
    "label",
    "name",
    "given",
    "family",
    "suffix",
    "ORCID",
    "affiliation",
    "DOI",
    "primary",
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.text(alphabet="<>/&;:#!?[]'\"=- \njatsecpitl0x", max_size=40)  # markup-like
    | st.sampled_from(
        [
            "10.5555/x",
            "2019",
            "0951-3558",
            "vor",
            "print",
            "retraction",
            "https://x.org/a",
            "<jats:sec><jats:title>Purpose</jats:title><jats:p>x</jats:p>",
            "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
            "&lt;i&gt;x&lt;/i&gt;",
        ]
    )
)
_junk = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_INNER_KEYS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


def _check(work: Any) -> None:
    try:
        result = crossref_fields(work, as_of=AS_OF)
    except NormalizationError:
        return
    stamp = crossref_datestamp(work)
    assert stamp is None or stamp.utcoffset() == dt.timedelta(0)
    built = Record(key=result["doi"], datestamp=stamp, **result)
    assert all(kind in UPDATE_KINDS for kind, _ in built.updates)
    Record.from_json(json.loads(json.dumps(built.to_json())))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(READ_FIELDS), junk=_junk)
def test_junk_in_any_field_of_the_seed(name: str, junk: Any) -> None:
    work = item(SEED)
    work[name] = junk
    _check(work)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(work=st.dictionaries(st.sampled_from(READ_FIELDS), _junk, max_size=8) | _junk)
def test_junk_items(work: Any) -> None:
    _check(work)
    assert crossref_datestamp(work) is None or isinstance(crossref_datestamp(work), dt.datetime)


@settings(max_examples=200, deadline=None)
@given(value=_junk)
def test_junk_inside_nested_structures(value: Any) -> None:
    """Junk one level down: inside author, license, dates, update entries."""
    _check(
        {
            "DOI": "10.5555/nested",
            "author": [value, {"given": value, "family": "X", "affiliation": [value], "ORCID": value}],
            "license": [{"URL": value, "content-version": value}, value],
            "published": {"date-parts": [value]},
            "issued": {"date-parts": value},
            "update-to": [{"DOI": value, "type": value, "label": value}],
            "updated-by": [{"type": value, "label": value}],
            "issn-type": [{"value": value, "type": value}],
            "isbn-type": [{"value": value}],
            "resource": {"primary": {"URL": value}},
            "indexed": {"date-time": value, "timestamp": value},
            "subject": [value],
            "alternative-id": [value],
        }
    )
