"""Tests of harvester/sources/scopus_format.py: Scopus Search entries → Record fields.

No real Scopus response may be redistributed: every fixture in tests/fixtures/scopus/ is
written by hand from the documented format (field names, views, the quirks of Scopus's
XML-to-JSON conversion); its README.md says what each one holds. Small inline entries
cover the rest and are marked "synthetic".
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

from harvester.merge import merge
from harvester.record import TYPES, Author, CitationCount, Issn, PartialDate, Record, Subject
from harvester.sources.base import NormalizationError
from harvester.sources.scopus_format import (
    AGGREGATION_TYPES,
    SUBTYPES,
    scopus_datestamp,
    scopus_fields,
    scopus_key,
    search_entries,
    subject_areas,
)

FIXTURES = Path(__file__).parent / "fixtures" / "scopus"
AS_OF = "2026-11-28"

STANDARD = "search_standard_page.json"
COMPLETE = "search_complete_page.json"
EMPTY = "search_empty.json"
ABSTRACT_FULL = "abstract_retrieval_full.json"
ABSTRACT_SINGLE = "abstract_retrieval_single_subject.json"
ERROR_401 = "service_error_401.json"
QUOTA_429 = "quota_exceeded_429.json"

SEED_EID = "2-s2.0-85061234567"
SEED_DOI = "10.1108/ijpsm-08-2018-0173"
REVIEW_EID = "2-s2.0-85062000001"
CONFERENCE_EID = "2-s2.0-85063000002"
CHAPTER_EID = "2-s2.0-85075000004"
RETRACTED_EID = "2-s2.0-85079000003"

SEED_TITLE = "The e-government paradox in post-Soviet countries"
SEED_ABSTRACT = (
    "Purpose: The purpose of this paper is to investigate why e-government, promoted as a means of "
    "making public services more transparent and accountable, has been embraced by governments in "
    "post-Soviet countries whose political systems remain closed. "
    "Design/methodology/approach: The study draws on documentary analysis and interviews with public "
    "officials and service users in Kazakhstan. "
    "Findings: E-government has improved the efficiency of service delivery, but the gains in "
    "openness and accountability that its advocates expected have not followed. "
    "Originality/value: The paper identifies an e-government paradox: digital services flourish "
    "where they strengthen, rather than challenge, the existing regime."
)
SCOPUS_URL = "https://www.scopus.com/inward/record.uri?partnerID=HzOxMe3b&scp={}&origin=inward"
CITEDBY_URL = "https://www.scopus.com/inward/citedby.uri?partnerID=HzOxMe3b&scp={}&origin=inward"
EXAMPLE_UNIVERSITY = "Example University, Astana, Kazakhstan"
EXAMPLE_INSTITUTE = "Example Institute of Public Administration, Belfast, United Kingdom"

# Every fixture file and (entries that normalize, entries that raise NormalizationError).
EXPECTED_COUNTS: dict[str, tuple[int, int]] = {
    STANDARD: (3, 0),
    COMPLETE: (3, 0),
    EMPTY: (0, 1),
    ABSTRACT_FULL: (0, 0),
    ABSTRACT_SINGLE: (0, 0),
    ERROR_401: (0, 0),
    QUOTA_429: (0, 0),
}


# --- helpers -----------------------------------------------------------------------------------


@functools.cache
def _body(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def raw_entries(name: str) -> list[Any]:
    """Every ``search-results.entry`` element of a body as sent, error entries included."""
    body = _body(name)
    results = body.get("search-results") if isinstance(body, dict) else None
    if not isinstance(results, dict):
        return []
    found = results.get("entry")
    return list(found) if isinstance(found, list) else [found]


def entry(name: str, eid: str = SEED_EID) -> dict[str, Any]:
    """A deep copy of the fixture's entry with that EID."""
    found = [e for e in raw_entries(name) if isinstance(e, dict) and e.get("eid") == eid]
    assert len(found) == 1, (name, eid)
    result: dict[str, Any] = copy.deepcopy(found[0])
    return result


def fields(name: str, eid: str = SEED_EID) -> dict[str, Any]:
    return scopus_fields(entry(name, eid), as_of=AS_OF)


def record(name: str, eid: str = SEED_EID) -> Record:
    work = entry(name, eid)
    return Record(key=scopus_key(work), datestamp=scopus_datestamp(work), **scopus_fields(work, as_of=AS_OF))


def ids(result: dict[str, Any], scheme: str) -> list[str]:
    return [value for s, value in result["identifiers"] if s == scheme]


def minimal(**extra: Any) -> dict[str, Any]:
    """Synthetic: an entry with only an EID, plus ``extra``."""
    return {"eid": "2-s2.0-85000000001", **extra}


def seed_identifiers(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            [
                ("doi", SEED_DOI),
                ("scopus_citedby_url", CITEDBY_URL.format("85061234567")),
                ("scopus_eid", SEED_EID),
                ("scopus_id", "85061234567"),
                ("scopus_url", SCOPUS_URL.format("85061234567")),
                *extra,
            ]
        )
    )


# --- the seed work ---------------------------------------------------------------------------------


def test_seed_standard_all_fields() -> None:
    """STANDARD: the first author only, as "Knox C.", with no given name; no abstract or keywords."""
    assert fields(STANDARD) == {
        "doi": SEED_DOI,
        "title": SEED_TITLE,
        "subtitle": None,
        "authors": (Author(name="Knox C.", family="Knox", given=None, orcid=None, affiliations=()),),
        "abstract": None,
        "container_title": "International Journal of Public Sector Management",
        "issn": (Issn("0951-3558", "print"), Issn("1758-6666", "electronic")),
        "isbn": (),
        "volume": "32",
        "issue": "4",
        "pages": "362-382",
        "publisher": None,
        "date": PartialDate(2019, 5, 13),
        "type": "journal-article",
        "language": None,
        "keywords": (),
        "subjects": (),
        "citation_count": CitationCount(41, AS_OF),
        "license": None,
        "url": None,
        "identifiers": seed_identifiers(),
        "retracted": False,
        "updates": (),
    }


def test_seed_complete_all_fields() -> None:
    """COMPLETE: both authors in @seq order with full given names, their affiliations joined
    from the entry's affiliation list by afid, the ORCID, keywords split on " | ", and the
    abstract without Scopus's copyright line."""
    assert fields(COMPLETE) == {
        "doi": SEED_DOI,
        "title": SEED_TITLE,
        "subtitle": None,
        "authors": (
            Author(
                name="Colin Knox",
                family="Knox",
                given="Colin",
                orcid="0000-0002-1825-0097",
                affiliations=(EXAMPLE_INSTITUTE, EXAMPLE_UNIVERSITY),
            ),
            Author(
                name="Saltanat Janenova",
                family="Janenova",
                given="Saltanat",
                orcid=None,
                affiliations=(EXAMPLE_UNIVERSITY,),
            ),
        ),
        "abstract": SEED_ABSTRACT,
        "container_title": "International Journal of Public Sector Management",
        "issn": (Issn("0951-3558", "print"), Issn("1758-6666", "electronic")),
        "isbn": (),
        "volume": "32",
        "issue": "4",
        "pages": "362-382",
        "publisher": None,
        "date": PartialDate(2019, 5, 13),
        "type": "journal-article",
        "language": None,
        "keywords": ("E-government", "Kazakhstan", "Post-Soviet countries"),
        "subjects": (),
        "citation_count": CitationCount(41, AS_OF),
        "license": None,
        "url": None,
        "identifiers": seed_identifiers(),
        "retracted": False,
        "updates": (),
    }
    assert "©" not in fields(COMPLETE)["abstract"]
    assert entry(COMPLETE)["dc:description"].endswith("© 2019, Emerald Publishing Limited.")


def test_seed_views_differ_only_in_the_complete_fields() -> None:
    standard, complete = fields(STANDARD), fields(COMPLETE)
    assert {k for k in standard if standard[k] != complete[k]} == {"authors", "abstract", "keywords"}


def test_seed_key_datestamp_and_record() -> None:
    for name in (STANDARD, COMPLETE):
        assert scopus_key(entry(name)) == SEED_EID
        assert scopus_datestamp(entry(name)) is None  # Search results carry no change date
        built = record(name)
        assert built.key == SEED_EID
        assert built.identifier_map()["scopus_id"] == ["85061234567"]
        assert Record.from_json(json.loads(json.dumps(built.to_json()))) == built


def test_seed_as_of_dates_the_citation_count() -> None:
    assert scopus_fields(entry(STANDARD), as_of="2027-01-02")["citation_count"] == CitationCount(
        41, "2027-01-02"
    )
    for bad in ("28.11.2026", "2026-11-28T00:00:00Z", "2026-02-30", "20261128"):
        with pytest.raises(ValueError, match="as_of must be an ISO date") as info:
            scopus_fields(entry(STANDARD), as_of=bad)
        assert not isinstance(info.value, NormalizationError)  # a caller bug, not a bad entry


def test_nothing_outside_the_documented_fields_is_read() -> None:
    """Open access, funding, source id, author count, display date and API links change nothing."""
    work = entry(COMPLETE)
    ignored = (
        "openaccess",
        "openaccessFlag",
        "freetoread",
        "freetoreadLabel",
        "fund-no",
        "source-id",
        "author-count",
        "prism:coverDisplayDate",
        "prism:url",
        "dc:identifier",
        "@_fa",
    )
    stripped = {k: v for k, v in work.items() if k not in ignored}
    assert scopus_fields(stripped, as_of=AS_OF) == scopus_fields(work, as_of=AS_OF)
    flipped = {**work, "openaccess": "1", "openaccessFlag": "true", "freetoread": {"value": {"$": "all"}}}
    assert scopus_fields(flipped, as_of=AS_OF) == scopus_fields(work, as_of=AS_OF)


# --- the other fixture entries ---------------------------------------------------------------------


def test_standard_review_with_pii_pmid_and_a_lone_affiliation() -> None:
    result = fields(STANDARD, REVIEW_EID)
    assert result["type"] == "journal-article"  # re, Review
    assert result["authors"] == (Author(name="van der Berg J.-P.", family="van der Berg", given=None),)
    assert result["issn"] == (Issn("0740-624X", "print"),)  # "0740624X", check digit X
    assert ids(result, "pii") == ["S0740624X19300127"]
    assert ids(result, "pmid") == ["30987654"]
    assert result["doi"] == "10.5555/gov-inf-q-2019-0012"
    assert result["date"] == PartialDate(2019, 4)  # "April 2019": Scopus's first of the month is not a day
    assert result["citation_count"] == CitationCount(117, AS_OF)
    assert result["license"] is None  # open access (openaccessFlag "true") is not a licence


def test_standard_conference_paper_without_doi() -> None:
    result = fields(STANDARD, CONFERENCE_EID)
    assert result["doi"] is None
    assert ids(result, "doi") == []
    assert result["type"] == "proceedings-article"
    assert result["title"] == "Open data portals in Central Asia: CO2 emissions reporting as a test case"
    assert result["isbn"] == ("9780306406157",)
    assert ids(result, "isbn") == ["9780306406157"]
    assert result["issn"] == (Issn("0302-9743", "print"), Issn("1611-3349", "electronic"))
    assert (result["volume"], result["issue"], result["pages"]) == ("11685 LNCS", None, "77-89")
    assert result["citation_count"] == CitationCount(0, AS_OF)  # 0 is a real count
    assert result["date"] == PartialDate(2019)  # display date "2019": never an invented -01-01


def test_complete_entry_with_single_objects() -> None:
    """author, author.afid and affiliation as lone objects; citedby-count a number; a given
    name that is only initials; an ISBN as a hyphenated string; city equal to country."""
    work = entry(COMPLETE, CHAPTER_EID)
    assert isinstance(work["author"], dict)
    assert isinstance(work["affiliation"], dict)
    assert isinstance(work["citedby-count"], int)
    result = scopus_fields(work, as_of=AS_OF)
    assert result["authors"] == (
        Author(
            name="Okafor M.",
            family="Okafor",
            given=None,  # given-name "M.": initials are never a given name
            affiliations=("National University of Example, Singapore",),
        ),
    )
    assert result["citation_count"] == CitationCount(7, AS_OF)
    assert result["isbn"] == ("9783161484100",)
    assert result["issn"] == ()
    assert result["type"] == "book-chapter"
    assert result["keywords"] == (
        "Administrative reform",
        "Institutional isomorphism",
        "Post-independence states",
    )
    assert result["abstract"] == (
        "This chapter traces the administrative reforms of three countries in the decade after "
        "independence.\n\nIt argues that the reforms copied the form rather than the function of the "
        "models they followed."
    )
    assert ids(result, "scopus_citedby_url") == []  # no cited-by link in this entry
    assert ids(result, "scopus_url") == [SCOPUS_URL.format("85075000004")]


def test_complete_retracted_entry_with_null_page_range() -> None:
    result = fields(COMPLETE, RETRACTED_EID)
    assert entry(COMPLETE, RETRACTED_EID)["prism:pageRange"] is None
    assert result["pages"] == "101-118"  # startingPage-endingPage
    assert result["retracted"] is True
    assert result["type"] == "journal-article"  # tb, Retracted
    assert result["updates"] == ()
    assert result["date"] == PartialDate(2020, 3)  # coverDate as a list of {"$"}; "March 2020"
    assert result["volume"] == "8"  # a number
    assert result["issn"] == (Issn("2412-3218", "electronic"),)  # only the eISSN
    assert ids(result, "pmid") == ["32100000"]
    assert result["authors"] == (
        Author(
            name="Dilnoza Rahimova",
            family="Rahimova",
            given="Dilnoza",
            orcid="0000-0002-1825-0097",  # given as an orcid.org URL
            affiliations=("Example State University, Uzbekistan",),  # city null
        ),
        Author(
            name="Bakhtiyor T. Karimov",
            family="Karimov",
            given="Bakhtiyor T.",  # a name with an initial is still a name
            orcid=None,  # bad check digit
            affiliations=("Example State University, Uzbekistan",),  # afid 69999999 is not listed
        ),
    )
    assert result["title"].startswith("RETRACTED: ")  # kept as Scopus writes it


# --- quirks (synthetic) ------------------------------------------------------------------------------


def test_numbers_as_strings_and_as_numbers() -> None:
    for value, expected in (("41", 41), (41, 41), (" 7 ", 7), ({"$": "5"}, 5), ("0", 0)):
        assert scopus_fields(minimal(**{"citedby-count": value}), as_of=AS_OF)["citation_count"] == (
            CitationCount(expected, AS_OF)
        )
    bad_counts: tuple[Any, ...] = ("-1", "4.1", "", "many", True, -3, 4.0, None, [], {"$": None})
    for bad in bad_counts:
        assert scopus_fields(minimal(**{"citedby-count": bad}), as_of=AS_OF)["citation_count"] is None
    result = scopus_fields(minimal(**{"prism:volume": 32, "prism:issueIdentifier": {"$": "4"}}), as_of=AS_OF)
    assert (result["volume"], result["issue"]) == ("32", "4")
    assert scopus_fields(minimal(**{"prism:volume": True}), as_of=AS_OF)["volume"] is None


@pytest.mark.parametrize(
    ("issn", "eissn", "expected"),
    [
        ("09513558", None, (Issn("0951-3558", "print"),)),
        ("0951-3558", "17586666", (Issn("0951-3558", "print"), Issn("1758-6666", "electronic"))),
        (None, "17586666", (Issn("1758-6666", "electronic"),)),
        ("09513558 17586666", None, (Issn("0951-3558", "print"), Issn("1758-6666", None))),
        ("09513558 17586666", "17586666", (Issn("0951-3558", "print"), Issn("1758-6666", "electronic"))),
        (
            [{"$": "09513558"}],
            {"$": "17586666"},
            (Issn("0951-3558", "print"), Issn("1758-6666", "electronic")),
        ),
        ("17586666", "17586666", (Issn("1758-6666", "electronic"),)),  # the same value twice
        ("09513559", "1758666X", ()),  # bad check digits
        (9513558, None, ()),  # a number has lost its leading zero
        ("", "", ()),
    ],
)
def test_issns(issn: Any, eissn: Any, expected: tuple[Issn, ...]) -> None:
    result = scopus_fields(minimal(**{"prism:issn": issn, "prism:eIssn": eissn}), as_of=AS_OF)
    assert result["issn"] == expected


def test_isbns() -> None:
    cases: list[tuple[Any, tuple[str, ...]]] = [
        ([{"@_fa": "true", "$": "9780306406157"}, {"$": "0306406152"}], ("9780306406157",)),
        ("978-3-16-148410-0", ("9783161484100",)),
        ("9780306406157 9783161484100", ("9780306406157", "9783161484100")),
        ({"@length": "13", "@type": "print", "$": "9783161484100"}, ("9783161484100",)),
        (9780306406157, ("9780306406157",)),
        ("9780306406158", ()),
        (None, ()),
    ]
    for value, expected in cases:
        result = scopus_fields(minimal(**{"prism:isbn": value}), as_of=AS_OF)
        assert result["isbn"] == expected, value
        assert tuple(ids(result, "isbn")) == tuple(sorted(expected))


def test_pages() -> None:
    def pages(**extra: Any) -> Any:
        return scopus_fields(minimal(**extra), as_of=AS_OF)["pages"]

    assert pages(**{"prism:pageRange": "362-382"}) == "362-382"
    assert (
        pages(**{"prism:pageRange": None, "prism:startingPage": "101", "prism:endingPage": "118"})
        == "101-118"
    )
    assert pages(**{"prism:pageRange": "", "prism:startingPage": "7", "prism:endingPage": "7"}) == "7"
    assert pages(**{"prism:startingPage": 12}) == "12"
    assert pages(**{"prism:endingPage": "118"}) is None
    assert pages(**{"prism:pageRange": None, "article-number": "e0212345"}) == "e0212345"
    assert pages(**{"prism:pageRange": "1-10", "article-number": "e0212345"}) == "1-10"
    assert pages() is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2019-05-13", PartialDate(2019, 5, 13)),
        ("2019-05-01", PartialDate(2019, 5, 1)),  # monthly issue, first of the month: kept
        ("2019-05", PartialDate(2019, 5)),
        ("2019", PartialDate(2019)),
        ("2019-02-30", PartialDate(2019, 2)),  # impossible day: precision shrinks
        ([{"$": "2020-03-01"}], PartialDate(2020, 3, 1)),
        ({"$": "2020-03-01"}, PartialDate(2020, 3, 1)),
        (["junk", "2021-01-02"], PartialDate(2021, 1, 2)),
        ("13 May 2019", None),
        ("", None),
        (20190513, None),
        (None, None),
    ],
)
def test_cover_dates(value: Any, expected: PartialDate | None) -> None:
    assert scopus_fields(minimal(**{"prism:coverDate": value}), as_of=AS_OF)["date"] == expected


@pytest.mark.parametrize(("code", "description"), [(code, None) for code in SUBTYPES])
def test_every_subtype_maps_into_the_vocabulary(code: str, description: str | None) -> None:
    result = scopus_fields(minimal(subtype=code), as_of=AS_OF)
    assert result["type"] == SUBTYPES[code]
    assert result["type"] in TYPES
    assert result["retracted"] is (code == "tb")


@pytest.mark.parametrize(
    ("extra", "expected_type", "retracted"),
    [
        ({"subtype": "ar", "subtypeDescription": "Article"}, "journal-article", False),
        ({"subtype": "re"}, "journal-article", False),
        ({"subtype": "cp", "prism:aggregationType": "Book Series"}, "proceedings-article", False),
        ({"subtype": "cr"}, "proceedings", False),
        ({"subtype": "ch"}, "book-chapter", False),
        ({"subtype": "bk", "prism:aggregationType": "Book"}, "book", False),
        ({"subtype": "ed"}, "journal-article", False),
        ({"subtype": "er"}, "journal-article", False),
        ({"subtype": "dp"}, "journal-article", False),
        ({"subtype": "pr"}, "other", False),
        ({"subtype": "tb", "subtypeDescription": "Retracted"}, "journal-article", True),
        ({"subtype": " TB "}, "journal-article", True),
        ({"subtype": {"$": "le"}}, "journal-article", False),
        # subtype missing or unknown: the description, then the aggregation type
        ({"subtypeDescription": "Conference Paper"}, "proceedings-article", False),
        ({"subtypeDescription": "Retracted"}, "journal-article", True),
        ({"subtype": "zz", "subtypeDescription": "book chapter"}, "book-chapter", False),
        ({"prism:aggregationType": "Journal"}, "journal-article", False),
        ({"prism:aggregationType": "Conference Proceeding"}, "proceedings-article", False),
        ({"prism:aggregationType": "Book"}, "book-chapter", False),
        ({"prism:aggregationType": "Book Series"}, "book-chapter", False),
        ({"subtype": "zz", "prism:aggregationType": "Trade Journal"}, "journal-article", False),
        ({"subtype": "zz"}, "other", False),
        ({"prism:aggregationType": "Newsletter"}, "other", False),
        ({}, None, False),
        ({"subtype": "", "subtypeDescription": None, "prism:aggregationType": 3}, None, False),
    ],
)
def test_types(extra: dict[str, Any], expected_type: str | None, retracted: bool) -> None:
    result = scopus_fields(minimal(**extra), as_of=AS_OF)
    assert (result["type"], result["retracted"]) == (expected_type, retracted)


def test_aggregation_types_are_in_the_vocabulary() -> None:
    assert set(AGGREGATION_TYPES.values()) <= TYPES
    assert set(SUBTYPES.values()) <= TYPES


@pytest.mark.parametrize("initials", ["C.", "C.G.", "C. G.", "J.-P.", "Ž.", "C"])
def test_initials_are_never_a_given_name(initials: str) -> None:
    author = {"@seq": "1", "authname": "Knox C.", "surname": "Knox", "given-name": initials}
    (result,) = scopus_fields(minimal(author=author), as_of=AS_OF)["authors"]
    assert result == Author(name="Knox C.", family="Knox", given=None)


@pytest.mark.parametrize("given_name", ["Colin", "Colin Gerard", "Colin G.", "Jean-Pierre", "CG"])
def test_real_given_names_are_kept(given_name: str) -> None:
    author = {"@seq": "1", "authname": "Knox C.", "surname": "Knox", "given-name": given_name}
    (result,) = scopus_fields(minimal(author=author), as_of=AS_OF)["authors"]
    assert result == Author(name=f"{given_name} Knox", family="Knox", given=given_name)


@pytest.mark.parametrize(
    ("creator", "expected"),
    [
        ("Knox C.", Author(name="Knox C.", family="Knox")),
        ("Knox C.G.", Author(name="Knox C.G.", family="Knox")),
        ("van der Berg J.-P.", Author(name="van der Berg J.-P.", family="van der Berg")),
        ("Al-Hassan A.M.", Author(name="Al-Hassan A.M.", family="Al-Hassan")),
        ({"$": "Knox C."}, Author(name="Knox C.", family="Knox")),
        ("World Health Organization", Author(name="World Health Organization")),  # no initials: no family
        ("Knox", Author(name="Knox")),
    ],
)
def test_dc_creator(creator: Any, expected: Author) -> None:
    assert scopus_fields(minimal(**{"dc:creator": creator}), as_of=AS_OF)["authors"] == (expected,)


def test_dc_creator_junk_gives_no_author() -> None:
    for creator in (None, "", "   ", 5, ["Knox C."][1:], {"x": 1}):
        assert scopus_fields(minimal(**{"dc:creator": creator}), as_of=AS_OF)["authors"] == ()


def test_author_list_order_duplicates_and_junk() -> None:
    """Synthetic: @seq order; a repeated (@seq, authid) merged; junk skipped; dc:creator
    ignored when the author list gives anyone."""
    work = minimal(
        **{
            "dc:creator": "Ignored X.",
            "affiliation": [
                {
                    "afid": "1",
                    "affilname": "A Univ",
                    "affiliation-city": "Oslo",
                    "affiliation-country": "Norway",
                },
                {"afid": 2, "affilname": {"$": "B Inst"}},
                {"afid": "3"},  # no name: skipped
                {"affilname": "No afid"},  # no afid: cannot be joined
                "junk",
            ],
            "author": [
                {"@seq": "3", "authid": "30", "surname": "Third", "given-name": "Tia", "afid": "2"},
                {"@seq": "1", "authid": "10", "surname": "First", "given-name": "Fay", "afid": {"$": "1"}},
                {"@seq": "1", "authid": "10", "surname": "First", "given-name": "Fay", "afid": [{"$": "2"}]},
                {"@seq": "2", "authid": "20", "authname": "Second S."},  # no surname: from authname
                "not an author",
                {"@seq": "4", "authid": "40"},  # no name at all
                {"@seq": "5", "authid": "50", "surname": "Fifth", "afid": [{"$": "3"}, {"$": "99"}, None]},
            ],
        }
    )
    assert scopus_fields(work, as_of=AS_OF)["authors"] == (
        Author(
            name="Fay First", family="First", given="Fay", affiliations=("A Univ, Oslo, Norway", "B Inst")
        ),
        Author(name="Second S.", family="Second", given=None),
        Author(name="Tia Third", family="Third", given="Tia", affiliations=("B Inst",)),
        Author(name="Fifth", family="Fifth", given=None),
    )


def test_author_list_without_seq_keeps_the_given_order() -> None:
    work = minimal(
        author=[
            {"@seq": "2", "surname": "B", "given-name": "Bea"},
            {"surname": "A", "given-name": "Al"},  # no @seq: nothing is reordered
        ]
    )
    assert [a.family for a in scopus_fields(work, as_of=AS_OF)["authors"]] == ["B", "A"]


def test_author_list_of_junk_falls_back_to_dc_creator() -> None:
    work = minimal(**{"dc:creator": "Knox C.", "author": ["x", 3, {"@seq": "1"}]})
    assert scopus_fields(work, as_of=AS_OF)["authors"] == (Author(name="Knox C.", family="Knox"),)


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Text. © 2019, Emerald Publishing Limited.", "Text."),
        ("Text.\n\n© 2019 Elsevier B.V. All rights reserved.", "Text."),
        ("Text. Copyright © 2019 John Wiley & Sons, Ltd.", "Text."),
        ("Text. (C) 2019 Elsevier Ltd.", "Text."),
        ("Text. Copyright 2019 IEEE.", "Text."),
        ("Text! © The Author(s) 2019.", "Text!"),
        ("One.\n\nTwo. © Springer Nature Switzerland AG 2019.", "One.\n\nTwo."),
        ("© 2019 Emerald Publishing Limited.", None),  # only a copyright line
        ("The sign © appears in 30 cases.", "The sign © appears in 30 cases."),  # not a statement
        ("Text © 2019 X", "Text © 2019 X"),  # not at a sentence start
        (
            "Text. © 2019 X. " + "More text. " * 40,
            "Text. © 2019 X. " + ("More text. " * 40).strip(),
        ),  # too long
        ("Three aims: (a) one. (b) two. (c) three.", "Three aims: (a) one. (b) two. (c) three."),
        ("Text. (c) The Authors.", "Text. (c) The Authors."),  # "(c)" without a year: not read as ©
        ("[No abstract available]", None),
        ("Li<inf>4</inf>Ti<inf>5</inf>O<inf>12</inf> anodes. <p>Second.</p>", "Li4Ti5O12 anodes.\n\nSecond."),
        ({"$": "Wrapped. © 2020 X."}, "Wrapped."),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_abstracts(description: Any, expected: str | None) -> None:
    assert scopus_fields(minimal(**{"dc:description": description}), as_of=AS_OF)["abstract"] == expected


def test_keywords() -> None:
    def keywords(value: Any) -> Any:
        return scopus_fields(minimal(authkeywords=value), as_of=AS_OF)["keywords"]

    assert keywords("E-government | Kazakhstan | Post-Soviet countries") == (
        "E-government",
        "Kazakhstan",
        "Post-Soviet countries",
    )
    assert keywords("a|b | A | ") == ("a", "b")  # repeats removed case-insensitively
    assert keywords({"author-keyword": [{"@_fa": "true", "$": "X"}, {"$": "Y"}]}) == ("X", "Y")
    assert keywords({"author-keyword": {"$": "Z"}}) == ("Z",)
    assert keywords(["P", {"$": "Q | R"}, 5, None]) == ("P", "Q", "R")
    assert keywords(None) == ()
    assert keywords(7) == ()


def test_identifiers() -> None:
    work = minimal(
        **{
            "eid": {"$": " 2-s2.0-0035863587 "},  # an older record: leading zeros are part of the id
            "dc:identifier": "SCOPUS_ID:35863587",  # disagrees: the EID wins
            "prism:doi": "https://doi.org/10.5555/ABC",
            "pubmed-id": 123,
            "pii": "S0740-624X(19)30012-7",
            "link": {"@ref": "scopus", "@href": " https://www.scopus.com/x "},
        }
    )
    assert scopus_key(work) == "2-s2.0-0035863587"
    result = scopus_fields(work, as_of=AS_OF)
    assert result["doi"] == "10.5555/abc"
    assert result["identifiers"] == (
        ("doi", "10.5555/abc"),
        ("pii", "S0740624X19300127"),
        ("pmid", "123"),
        ("scopus_eid", "2-s2.0-0035863587"),
        ("scopus_id", "0035863587"),
        ("scopus_url", "https://www.scopus.com/x"),
    )
    junk = minimal(
        **{
            "prism:doi": "not a doi",
            "pubmed-id": "PMC123",
            "pii": "12345",
            "link": [
                {"@ref": "scopus", "@href": "javascript:alert(1)"},
                {"@ref": "scopus-citedby", "@href": None},
                {"@ref": "self", "@href": "https://api.elsevier.com/content/abstract/scopus_id/1"},
                "junk",
                {"@ref": "scopus", "@href": "https://www.scopus.com/second"},
            ],
        }
    )
    result = scopus_fields(junk, as_of=AS_OF)
    assert result["doi"] is None
    assert result["identifiers"] == (
        ("scopus_eid", "2-s2.0-85000000001"),
        ("scopus_id", "85000000001"),
        ("scopus_url", "https://www.scopus.com/second"),
    )


def test_orcids() -> None:
    for value, expected in (
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
        ({"$": "000000021825009 7"}, None),
        ("0000-0002-1825-0098", None),
        (18250097, None),
    ):
        author = {"surname": "Knox", "given-name": "Colin", "orcid": value}
        (result,) = scopus_fields(minimal(author=author), as_of=AS_OF)["authors"]
        assert result.orcid == expected, value


def test_titles_are_cleaned() -> None:
    result = scopus_fields(
        minimal(
            **{
                "dc:title": {"$": "  H<inf>2</inf>O  &amp; <sup>13</sup>C\n in <i>vivo</i> "},
                "prism:publicationName": "Journal\tof  Things",
            }
        ),
        as_of=AS_OF,
    )
    assert result["title"] == "H2O & 13C in vivo"
    assert result["container_title"] == "Journal of Things"


# --- unusable entries ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("work", "reason"),
    [
        (
            {"@_fa": "true", "error": "Result set was empty"},
            "Scopus error entry, not a record: 'Result set was empty'",
        ),
        ({"error": "Some other error"}, "Scopus error entry, not a record: 'Some other error'"),
        ({"dc:title": "No EID"}, "Scopus entry without an EID"),
        ({"eid": None}, "Scopus entry without an EID"),
        ({"eid": {"$": None}}, "Scopus entry without an EID"),
        ({"eid": "85061234567"}, "Scopus entry whose EID is not an EID: '85061234567'"),
        ({"eid": "2-s2.0-"}, "Scopus entry whose EID is not an EID: '2-s2.0-'"),
        ({"eid": "1-s2.0-S0740624X19300127"}, "Scopus entry whose EID is not an EID"),
        ({"eid": 85061234567}, "Scopus entry whose EID is not an EID: 85061234567"),
        ([], "a Scopus entry must be a JSON object, not list"),
        ("2-s2.0-85061234567", "a Scopus entry must be a JSON object, not str"),
        (None, "a Scopus entry must be a JSON object, not NoneType"),
    ],
)
def test_unusable_entries(work: Any, reason: str) -> None:
    with pytest.raises(NormalizationError) as info:
        scopus_fields(work, as_of=AS_OF)
    assert str(info.value).startswith(reason)
    with pytest.raises(NormalizationError):
        scopus_key(work)
    assert scopus_datestamp(work) is None


def test_empty_result_set() -> None:
    (marker,) = raw_entries(EMPTY)
    assert marker == {"@_fa": "true", "error": "Result set was empty"}
    assert _body(EMPTY)["search-results"]["opensearch:totalResults"] == "0"
    with pytest.raises(NormalizationError, match="Result set was empty"):
        scopus_fields(marker, as_of=AS_OF)
    with pytest.raises(NormalizationError, match="Result set was empty"):
        scopus_key(marker)
    assert search_entries(_body(EMPTY)) == []


# --- datestamp ------------------------------------------------------------------------------------------


def test_datestamp_only_from_a_load_date() -> None:
    assert scopus_datestamp(minimal()) is None
    midnight = dt.datetime(2023, 6, 15, tzinfo=dt.UTC)
    assert scopus_datestamp(minimal(**{"load-date": "20230615"})) == midnight
    assert scopus_datestamp(minimal(**{"load-date": " 2023-06-15 "})) == midnight
    assert scopus_datestamp(minimal(**{"load-date": {"$": "2023-06-15"}})) == midnight
    assert scopus_datestamp(minimal(**{"load-date": "2023-06-15T10:30:00Z"})) == midnight.replace(
        hour=10, minute=30
    )
    assert scopus_datestamp(minimal(**{"load-date": "2023-06-15T10:30:00+02:00"})) == midnight.replace(
        hour=8, minute=30
    )
    assert scopus_datestamp(minimal(**{"load-date": "2023-06-15T10:30:00"})) == midnight.replace(
        hour=10, minute=30
    )
    for bad in ("20230230", "2023-13-01", "yesterday", "2023-06-15Tnoon", "", 20230615, None):
        assert scopus_datestamp(minimal(**{"load-date": bad})) is None, bad
    assert scopus_datestamp(minimal(**{"orig-load-date": "20230615"})) is None  # first load, not a change


# --- search_entries ------------------------------------------------------------------------------------


def test_search_entries() -> None:
    assert [scopus_key(e) for e in search_entries(_body(STANDARD))] == [SEED_EID, REVIEW_EID, CONFERENCE_EID]
    assert [scopus_key(e) for e in search_entries(_body(COMPLETE))] == [SEED_EID, CHAPTER_EID, RETRACTED_EID]
    for name in (EMPTY, ABSTRACT_FULL, ERROR_401, QUOTA_429):
        assert search_entries(_body(name)) == []
    lone = {"eid": SEED_EID}
    assert search_entries({"search-results": {"entry": lone}}) == [lone]
    assert search_entries({"search-results": {"entry": [lone, "junk", None]}}) == [lone, "junk", None]
    not_pages: tuple[Any, ...] = (
        None,
        [],
        "x",
        {"search-results": None},
        {"search-results": {"entry": None}},
    )
    for junk in not_pages:
        assert search_entries(junk) == []


def test_search_page_metadata() -> None:
    """The pages have the documented paging fields (read by the source, not by this module)."""
    for name, count in ((STANDARD, "200"), (COMPLETE, "25")):
        results = _body(name)["search-results"]
        assert results["opensearch:totalResults"] == "3"
        assert results["opensearch:startIndex"] == "0"
        assert results["cursor"]["@current"] == "*"
        assert results["cursor"]["@next"]
        hrefs = {link["@ref"]: link["@href"] for link in results["link"]}
        assert f"count={count}" in hrefs["self"]
    refs = {link["@ref"] for link in _body(STANDARD)["search-results"]["link"]}
    assert refs == {"self", "first", "next", "last"}


def test_error_bodies() -> None:
    status = _body(ERROR_401)["service-error"]["status"]
    assert status["statusCode"] == "AUTHORIZATION_ERROR"
    assert status["statusText"]
    assert _body(QUOTA_429)["error-response"]["error-code"] == "TOO_MANY_REQUESTS"
    assert subject_areas(_body(ERROR_401)) == ()


# --- subject areas (Abstract Retrieval) --------------------------------------------------------------


def test_subject_areas_from_a_full_response() -> None:
    expected = (
        Subject("ASJC", "3321", "Public Administration"),
        Subject("ASJC", "3312", "Sociology and Political Science"),
        Subject("ASJC", "1710", "Information Systems"),
    )
    body = _body(ABSTRACT_FULL)
    assert subject_areas(body) == expected
    assert subject_areas(body["abstracts-retrieval-response"]) == expected  # the inner object too
    assert {a["@abbrev"] for a in body["abstracts-retrieval-response"]["subject-areas"]["subject-area"]} == {
        "SOCI",
        "COMP",
    }  # in the response, not in the Subject


def test_subject_areas_single_object() -> None:
    body = _body(ABSTRACT_SINGLE)
    assert isinstance(body["abstracts-retrieval-response"]["subject-areas"]["subject-area"], dict)
    assert subject_areas(body) == (Subject("ASJC", "3312", "Sociology and Political Science"),)


def test_subject_areas_junk() -> None:
    def areas(value: Any) -> Any:
        return subject_areas({"abstracts-retrieval-response": {"subject-areas": {"subject-area": value}}})

    assert areas([{"$": "Sociology", "@code": 3312}]) == (Subject("ASJC", "3312", "Sociology"),)
    assert areas([{"$": "No code", "@code": "33"}]) == (Subject("ASJC", None, "No code"),)
    assert areas([{"@code": "3321"}]) == (Subject("ASJC", "3321", None),)
    assert areas([{"$": "A", "@code": "3321"}, {"$": "B", "@code": "3321"}]) == (
        Subject("ASJC", "3321", "A"),
    )
    assert areas([{"$": "A"}, {"$": "A"}]) == (Subject("ASJC", None, "A"),)
    assert areas(["x", None, 5, {}, {"$": None, "@code": True}]) == ()
    assert areas(None) == ()
    not_responses: tuple[Any, ...] = (
        None,
        [],
        "x",
        5,
        {"abstracts-retrieval-response": None},
        {"subject-areas": None},
    )
    for junk in not_responses:
        assert subject_areas(junk) == ()
    assert subject_areas({"abstracts-retrieval-response": {"coredata": {}}}) == ()  # a META view


# --- every entry of every fixture ---------------------------------------------------------------------


def test_every_fixture_entry_builds_a_record_or_is_rejected_with_a_reason() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.json")}
    assert on_disk == set(EXPECTED_COUNTS)
    counts: dict[str, tuple[int, int]] = {}
    reasons: list[str] = []
    for name in sorted(EXPECTED_COUNTS):
        built = rejected = 0
        for work in raw_entries(name):
            try:
                normalized = Record(
                    key=scopus_key(work),
                    datestamp=scopus_datestamp(work),
                    **scopus_fields(work, as_of=AS_OF),
                )
            except NormalizationError as error:
                reasons.append(str(error))
                rejected += 1
                continue
            assert normalized.key == normalized.identifier_map()["scopus_eid"][0]
            assert Record.from_json(json.loads(json.dumps(normalized.to_json()))) == normalized
            built += 1
        counts[name] = (built, rejected)
    assert counts == EXPECTED_COUNTS
    assert reasons == ["Scopus error entry, not a record: 'Result set was empty'"]


# --- merge with a fuller source --------------------------------------------------------------------------


def crossref_like() -> Record:
    """A Crossref-like record of the seed with full given names (synthetic)."""
    return Record(
        key=SEED_DOI,
        datestamp=dt.datetime(2026, 11, 27, tzinfo=dt.UTC),
        doi=SEED_DOI,
        title=SEED_TITLE,
        authors=(
            Author("Colin Gerard Knox", "Knox", "Colin Gerard"),
            Author("Saltanat Janenova", "Janenova", "Saltanat"),
        ),
        container_title="International Journal of Public Sector Management",
        date=PartialDate(2019, 5, 13),
        type="journal-article",
    )


@pytest.mark.parametrize("view", [STANDARD, COMPLETE])
@pytest.mark.parametrize("precedence", [["crossref", "scopus"], ["scopus", "crossref"]])
def test_merge_keeps_full_given_names_whatever_the_precedence(view: str, precedence: list[str]) -> None:
    """STANDARD's "Knox C." (first author only, no given name) and COMPLETE's "Colin" never
    replace Crossref's "Colin Gerard": harvester.merge lets a less trusted author list win
    when it is the same list told more fully (same surnames in order, longer or with longer
    given names), and keeps the trusted list otherwise."""
    scopus = record(view)
    merged = merge(SEED_DOI, [("scopus", scopus), ("crossref", crossref_like())], precedence)
    assert [(a["family"], a["given"]) for a in merged.data["authors"]] == [
        ("Knox", "Colin Gerard"),
        ("Janenova", "Saltanat"),
    ]
    assert merged.provenance["authors"] == "crossref"


def test_merge_takes_the_complete_scopus_list_over_an_abbreviated_one() -> None:
    """Scopus COMPLETE (full given names, affiliations, ORCID) is the same list as an
    abbreviated record of it told more fully, so it wins even when less trusted (synthetic)."""
    abbreviated = Record(
        key="oai:example.org:1",
        doi=SEED_DOI,
        authors=(Author("Knox, C.", "Knox", None), Author("Janenova, S.", "Janenova", None)),
    )
    merged = merge(SEED_DOI, [("scopus", record(COMPLETE)), ("repo", abbreviated)], ["repo", "scopus"])
    assert [a["given"] for a in merged.data["authors"]] == ["Colin", "Saltanat"]
    assert merged.data["authors"][0]["orcid"] == "0000-0002-1825-0097"
    assert merged.provenance["authors"] == "scopus"


def test_merge_keeps_the_scopus_identifiers_and_count() -> None:
    merged = merge(
        SEED_DOI, [("scopus", record(STANDARD)), ("crossref", crossref_like())], ["crossref", "scopus"]
    ).data
    assert merged["identifiers"]["scopus_eid"] == [SEED_EID]
    assert merged["identifiers"]["scopus_url"] == [SCOPUS_URL.format("85061234567")]
    assert merged["identifiers"]["scopus_citedby_url"] == [CITEDBY_URL.format("85061234567")]
    assert merged["citation_count"] == {"value": 41, "source": "scopus", "as_of": AS_OF}
    assert merged["issn"] == ["0951-3558", "1758-6666"]


# --- property: junk never raises anything but NormalizationError ---------------------------------------

READ_FIELDS = (
    "eid",
    "dc:identifier",
    "prism:doi",
    "pii",
    "pubmed-id",
    "dc:title",
    "dc:creator",
    "author",
    "affiliation",
    "dc:description",
    "prism:publicationName",
    "prism:issn",
    "prism:eIssn",
    "prism:isbn",
    "prism:volume",
    "prism:issueIdentifier",
    "prism:pageRange",
    "prism:startingPage",
    "prism:endingPage",
    "article-number",
    "prism:coverDate",
    "subtype",
    "subtypeDescription",
    "prism:aggregationType",
    "authkeywords",
    "citedby-count",
    "link",
    "load-date",
    "error",
)
_INNER_KEYS = (
    "$",
    "@_fa",
    "@seq",
    "@ref",
    "@href",
    "@code",
    "@abbrev",
    "authid",
    "authname",
    "surname",
    "given-name",
    "initials",
    "afid",
    "orcid",
    "affilname",
    "affiliation-city",
    "affiliation-country",
    "author-keyword",
    "subject-area",
    "subject-areas",
    "abstracts-retrieval-response",
    "value",
)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.text(alphabet="<>/&;|:#!?©.()[]'\"=- \n0123456789Xinfsupcrt", max_size=40)
    | st.sampled_from(
        [
            "2-s2.0-85061234567",
            "SCOPUS_ID:85061234567",
            "10.1108/IJPSM-08-2018-0173",
            "09513558",
            "2019-05-13",
            "2019-02-30",
            "20230615",
            "2023-06-15T10:30:00Z",
            "9999-12-31T23:59:59-05:00",
            "0001-01-01T00:00:00+05:00",
            "41",
            "ar",
            "tb",
            "Retracted",
            "Book Series",
            "Knox C.",
            "C.",
            "60000001",
            "3321",
            "scopus",
            "scopus-citedby",
            "https://www.scopus.com/x",
            "a | b ; c",
            "Text. © 2019 X.",
            "<inf>2</inf>",
            "Result set was empty",
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
    stamp = scopus_datestamp(work)
    assert stamp is None or stamp.utcoffset() == dt.timedelta(0)
    try:
        result = scopus_fields(work, as_of=AS_OF)
    except NormalizationError:
        with pytest.raises(NormalizationError):
            scopus_key(work)
        return
    built = Record(key=scopus_key(work), datestamp=stamp, **result)
    assert built.type is None or built.type in TYPES
    assert all(a.name for a in built.authors)
    assert all(a.given is None or a.given.strip() for a in built.authors)
    Record.from_json(json.loads(json.dumps(built.to_json())))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(READ_FIELDS), junk=_junk, view=st.sampled_from([STANDARD, COMPLETE]))
def test_junk_in_any_field_of_the_seed(name: str, junk: Any, view: str) -> None:
    work = entry(view)
    work[name] = junk
    _check(work)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(work=st.dictionaries(st.sampled_from(READ_FIELDS), _junk, max_size=8) | _junk)
def test_junk_entries(work: Any) -> None:
    _check(work)
    search_entries({"search-results": {"entry": work}})


@settings(max_examples=200, deadline=None)
@given(value=_junk)
def test_junk_inside_nested_structures(value: Any) -> None:
    """Junk one level down: inside authors, affiliations, links, wrappers."""
    _check(
        {
            "eid": "2-s2.0-85000000001",
            "author": [
                value,
                {"@seq": value, "authid": value, "surname": value, "given-name": value, "afid": [value]},
                {"@seq": "1", "surname": "X", "authname": value, "orcid": value, "afid": value},
            ],
            "affiliation": [value, {"afid": value, "affilname": value, "affiliation-city": value}],
            "link": [value, {"@ref": value, "@href": value}, {"@ref": "scopus", "@href": value}],
            "prism:isbn": [value, {"$": value}],
            "prism:coverDate": [{"$": value}],
            "authkeywords": {"author-keyword": [value, {"$": value}]},
            "dc:creator": {"$": value},
            "citedby-count": {"$": value},
            "load-date": {"$": value},
        }
    )


@settings(max_examples=200, deadline=None)
@given(value=_junk)
def test_junk_subject_areas(value: Any) -> None:
    for body in (
        value,
        {"abstracts-retrieval-response": value},
        {"abstracts-retrieval-response": {"subject-areas": value}},
        {"subject-areas": {"subject-area": value}},
        {"subject-areas": {"subject-area": [value, {"$": value, "@code": value, "@abbrev": value}]}},
    ):
        for subject in subject_areas(body):
            assert subject.scheme == "ASJC"
            assert subject.code is None or (len(subject.code) == 4 and subject.code.isdigit())
            assert subject.code is not None or subject.label is not None
