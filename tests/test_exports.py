"""Citation exports (issue 6): BibTeX, RIS and CSL-JSON, against the portal's "Cite this".

The seed is Knox & Janenova (2019), merged from three sources the way the store
merges them. Our BibTeX and RIS are read back with the libraries reference managers
and scripts use (bibtexparser 2, rispy), and our CSL-JSON is validated against the
official CSL data schema, ``tests/data/csl-data.json``: the file
``schemas/input/csl-data.json`` of https://github.com/citation-style-language/schema
(commit 40b3ce0bbbda517ad14b98c93a2c65ab4cde56a9, ``$id``
https://resource.citationstyles.org/schema/v1.0/input/json/csl-data.json), copied
unchanged.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bibtexparser
import jsonschema
import pytest
import rispy
from bibtexparser.middlewares import LatexDecodingMiddleware, SeparateCoAuthors, SplitNameParts
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.cli import main
from harvester.export import FORMATS
from harvester.exports import citation_key, write_bibtex, write_csl_json, write_ris
from harvester.exports.bibtex import ENTRY_TYPES, bibtex_entry, entry_type, latex_escape
from harvester.exports.common import split_pages
from harvester.exports.csl import CSL_TYPES, csl_item, csl_type
from harvester.exports.ris import RIS_TYPES, ris_record, ris_type
from harvester.merge import EXPORT_KEYS, merge
from harvester.record import TYPES, Author, CitationCount, Issn, PartialDate, Record, Subject
from tests.crossref_server import CrossrefWork, FakeCrossref, work_item
from tests.helpers import T0, oai_source_block, write_config
from tests.oai_server import FakeOaiServer, OaiRecord, dc_metadata

DOI = "10.1108/ijpsm-08-2018-0173"
TITLE = "The e-government paradox in post-Soviet countries"
JOURNAL = "International Journal of Public Sector Management"
PUBLISHER = "Emerald Group Publishing Ltd."
KEYWORDS = ("E-government", "Kazakhstan", "Post-Soviet countries")
ABSTRACT = (
    "Purpose: The purpose of this paper is to investigate the e-government paradox in "
    "post-Soviet countries.\n\n"
    "Design/methodology/approach: The research draws on a survey of public servants & "
    "interviews (n = 40) in Kazakhstan.\n\n"
    "Findings: E-government has improved the efficiency of public services."
)
PURE_URL = "https://research.example.ac.uk/en/publications/the-e-government-paradox-in-post-soviet-countries"
SCOPUS_EID = "2-s2.0-85062339052"
PURE_OAI = "oai:research.example.ac.uk:publications/44d68578-bae0-4f63-ba32-1ca1e8801b6b"
#: A university portal trusts its own Pure first (its publisher name, its author names).
PRECEDENCE = ("pure", "crossref", "scopus")
#: Crossref's date for the seed (its print issue); Pure gives the year only.
SEED_DATE = PartialDate(2019, 5, 13)

#: The portal's BibTeX, verbatim from the issue (its abstract is cut short there).
PORTAL_BIBTEX = """@article{44d68578bae04f63ba321ca1e8801b6b,
title = "The e-government paradox in post-Soviet countries",
abstract = "Purpose: The purpose of this paper is to investigate ...",
keywords = "E-government, Kazakhstan, Post-Soviet countries",
author = "Knox, {Colin Gerard} and Saltanat Janenova",
year = "2019", month = "1", day = "1",
doi = "10.1108/IJPSM-08-2018-0173",
language = "English",
journal = "International Journal of Public Sector Management",
issn = "0951-3558",
publisher = "Emerald Group Publishing Ltd.",
}
"""
#: The portal's RIS tags, in its order.
PORTAL_RIS_TAGS = ["TY", "T1", "AU", "AU", "PY", "Y1", "N2", "AB", "KW", "KW", "KW"]
PORTAL_RIS_TAGS += ["UR", "DO", "M3", "JO", "JF", "SN", "ER"]


def seed_records(crossref_date: PartialDate | None = SEED_DATE) -> list[tuple[str, Record]]:
    crossref = Record(
        key=DOI,
        datestamp=T0,
        doi=DOI,
        title=TITLE,
        authors=(
            Author("Colin Gerard Knox", "Knox", "Colin Gerard"),
            Author("Saltanat Janenova", "Janenova", "Saltanat"),
        ),
        container_title=JOURNAL,
        issn=(Issn("0951-3558", "print"),),
        volume="32",
        issue="4",
        pages="362-382",
        publisher="Emerald",
        date=crossref_date,
        type="journal-article",
        language="en",
        url="https://www.emerald.com/insight/content/doi/10.1108/IJPSM-08-2018-0173/full/html",
        identifiers=(("doi", DOI),),
    )
    pure = Record(
        key=PURE_OAI,
        datestamp=T0,
        doi=DOI,
        title=TITLE,
        authors=(
            Author("Knox, Colin Gerard", "Knox", "Colin Gerard"),
            Author("Janenova, Saltanat", "Janenova", "Saltanat"),
        ),
        abstract=ABSTRACT,
        container_title=JOURNAL,
        issn=(Issn("0951-3558"),),
        publisher=PUBLISHER,
        date=PartialDate(2019),
        type="journal-article",
        language="en",
        keywords=KEYWORDS,
        url=PURE_URL,
        identifiers=(("doi", DOI), ("oai", PURE_OAI)),
    )
    scopus = Record(
        key=SCOPUS_EID,
        datestamp=T0,
        doi=DOI,
        title=TITLE,
        authors=(Author("Knox C.G.", "Knox", "C.G."), Author("Janenova S.", "Janenova", "S.")),
        container_title=JOURNAL,
        volume="32",
        issue="4",
        pages="362-382",
        date=PartialDate(2019),
        type="journal-article",
        subjects=(Subject("ASJC", "3321", "Public Administration"),),
        citation_count=CitationCount(25, "2026-01-01"),
        identifiers=(("doi", DOI), ("scopus_eid", SCOPUS_EID)),
    )
    return [("crossref", crossref), ("pure", pure), ("scopus", scopus)]


def seed_work(crossref_date: PartialDate | None = SEED_DATE, work_id: int = 42) -> dict[str, Any]:
    """The exported work as the store gives it: the merge's data, an id, through JSON."""
    merged = merge(DOI, seed_records(crossref_date), PRECEDENCE)
    work: dict[str, Any] = json.loads(json.dumps({"id": work_id, **merged.data}))
    assert list(work) == list(EXPORT_KEYS)
    return work


def export(writer: Any, works: list[dict[str, Any]]) -> str:
    out = io.StringIO(newline="")
    assert writer(iter(works), out) == len(works)
    return out.getvalue()


# --- readers: what a reference manager or a script makes of our output ---------------------


def parse_bibtex(text: str, *middleware: Any) -> list[Any]:
    """bibtexparser's entries; authors split into name parts unless middleware is given."""
    stack = list(middleware) or [SeparateCoAuthors(), SplitNameParts()]
    library = bibtexparser.parse_string(text, append_middleware=stack)
    assert not library.failed_blocks, [b.error for b in library.failed_blocks]
    return list(library.entries)


_UNESCAPES = {
    r"\textbackslash{}": "\\",
    r"\textasciitilde{}": "~",
    r"\textasciicircum{}": "^",
    r"{\textbackslash}": "\\",
    r"{\textasciitilde}": "~",
    r"{\textasciicircum}": "^",
    '{"}': '"',
    "{@}": "@",
    "{}": "",
}
_UNESCAPE = re.compile(
    r"\{\\text(?:backslash|asciitilde|asciicircum)\}|\\text(?:backslash|asciitilde|asciicircum)\{\}"
    r'|\{\\[{}&%$#_]\}|\\[{}&%$#_]|\{"\}|\{@\}|\{\}'
)


def _unescape_one(match: re.Match[str]) -> str:
    token = match.group(0)
    if token in _UNESCAPES:
        return _UNESCAPES[token]
    return token[2] if token.startswith("{") else token[1]  # {\&} in names, \& elsewhere


def unescape(value: str) -> str:
    """The exact inverse of :func:`latex_escape`, names included (stricter than a LaTeX decoder)."""
    return _UNESCAPE.sub(_unescape_one, value)


def _unbrace(part: str) -> str:
    """``{World Health Organization}`` without the braces that keep a name whole."""
    if not (part.startswith("{") and part.endswith("}")):
        return part
    depth, i = 0, 0
    while i < len(part):
        if part[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(part[i], 0)
        if depth == 0:
            return part[1:-1] if i == len(part) - 1 else part
        i += 1
    return part


def read_name(parts: list[str]) -> str:
    return unescape(_unbrace(" ".join(parts)))


def read_bibtex(text: str) -> list[dict[str, Any]]:
    """Entries as a BibTeX user sees them: values LaTeX-decoded by bibtexparser, except the
    verbatim doi and url; authors as (family, given) split by bibtexparser, each part
    unescaped by the exact inverse of our escapes (bibtexparser decodes no split names)."""
    raw = parse_bibtex(text)
    decoded = parse_bibtex(text, LatexDecodingMiddleware())
    entries = []
    for raw_entry, entry in zip(raw, decoded, strict=True):
        fields: dict[str, Any] = {"ENTRYTYPE": entry.entry_type, "ID": entry.key}
        for field in entry.fields:
            if field.key == "author":
                fields["author"] = [
                    (read_name([*name.von, *name.last]), read_name(name.first))
                    for name in raw_entry.fields_dict["author"].value
                ]
            elif field.key in ("doi", "url"):
                fields[field.key] = raw_entry.fields_dict[field.key].value
            else:
                fields[field.key] = field.value
        entries.append(fields)
    return entries


def read_ris(text: str) -> list[dict[str, Any]]:
    return list(rispy.loads(text))


# --- (a) the seed against the portal -------------------------------------------------------


@pytest.mark.parametrize(
    ("crossref_date", "month", "day"),
    [(PartialDate(2019, 5, 13), "5", "13"), (PartialDate(2019), None, None), (None, None, None)],
)
def test_bibtex_matches_the_portal_field_for_field(
    crossref_date: PartialDate | None, month: str | None, day: str | None
) -> None:
    ours = read_bibtex(export(write_bibtex, [seed_work(crossref_date)]))[0]
    portal = read_bibtex(PORTAL_BIBTEX)[0]
    assert ours["ENTRYTYPE"] == portal["ENTRYTYPE"] == "article"
    assert ours["ID"] == "knox2019egovernment_42"  # ours: a readable key (portal: Pure's UUID)
    for name, value in portal.items():
        if name in ("ENTRYTYPE", "ID"):
            continue
        if name == "month":  # the portal's "1"/"1" is Pure's placeholder; ours only when known
            assert ours.get("month") == month
        elif name == "day":
            assert ours.get("day") == day
        elif name == "doi":  # the contract's lower case
            assert ours["doi"] == value.lower() == DOI
        elif name == "abstract":  # cut short in the issue
            assert ours["abstract"].startswith(value.removesuffix("...").strip())
        else:  # author too: "Knox, {Colin Gerard} and Saltanat Janenova" names the same people
            assert ours[name] == value, name
    # what the portal shows in its RIS (UR) and what the sources add
    extras = {k: v for k, v in ours.items() if k not in portal}
    assert extras == {"volume": "32", "number": "4", "pages": "362–382", "url": PURE_URL}


def test_bibtex_of_the_seed_verbatim() -> None:
    assert bibtex_entry(seed_work()) == (
        "@article{knox2019egovernment_42,\n"
        '  title = "The e-government paradox in post-Soviet countries",\n'
        '  abstract = "Purpose: The purpose of this paper is to investigate the e-government paradox'
        " in post-Soviet countries.\n\n"
        "Design/methodology/approach: The research draws on a survey of public servants \\& "
        "interviews (n = 40) in Kazakhstan.\n\n"
        'Findings: E-government has improved the efficiency of public services.",\n'
        '  keywords = "E-government, Kazakhstan, Post-Soviet countries",\n'
        '  author = "Knox, Colin Gerard and Janenova, Saltanat",\n'
        '  year = "2019",\n'
        '  month = "5",\n'
        '  day = "13",\n'
        '  doi = "10.1108/ijpsm-08-2018-0173",\n'
        '  language = "English",\n'
        '  journal = "International Journal of Public Sector Management",\n'
        '  issn = "0951-3558",\n'
        '  publisher = "Emerald Group Publishing Ltd.",\n'
        '  volume = "32",\n'
        '  number = "4",\n'
        '  pages = "362--382",\n'
        f'  url = "{PURE_URL}",\n'
        "}\n"
    )


@pytest.mark.parametrize(
    ("crossref_date", "y1"),
    [(PartialDate(2019, 5, 13), "2019/05/13/"), (PartialDate(2019, 5), "2019/05//"), (None, "2019///")],
)
def test_ris_carries_the_portals_tags_in_its_order(crossref_date: PartialDate | None, y1: str) -> None:
    text = export(write_ris, [seed_work(crossref_date)])
    lines = text.split("\r\n")
    assert "\n" not in text.replace("\r\n", "")  # CR LF everywhere, no bare LF
    assert lines[0] == "TY  - JOUR"
    assert lines[-3:] == ["ER  - ", "", ""]  # ER, then the blank line that ends each record
    assert all(re.fullmatch(r"[A-Z][A-Z0-9]  - .*", line) for line in lines[:-2])
    tags = [line[:2] for line in lines[:-2]]
    assert [t for t in tags if t in PORTAL_RIS_TAGS] == PORTAL_RIS_TAGS  # DA, VL... in between
    assert tags == [
        *PORTAL_RIS_TAGS[:6],
        "DA",
        *PORTAL_RIS_TAGS[6:-1],
        "VL",
        "IS",
        "SP",
        "EP",
        "PB",
        "LA",
        "ER",
    ]
    record = read_ris(text)[0]
    assert record == {
        "type_of_reference": "JOUR",
        "primary_title": TITLE,
        "authors": ["Knox, Colin Gerard", "Janenova, Saltanat"],
        "year": "2019",
        "publication_year": y1,
        "date": y1,
        "notes_abstract": " ".join(ABSTRACT.split("\n\n")),
        "abstract": " ".join(ABSTRACT.split("\n\n")),
        "keywords": list(KEYWORDS),
        "urls": [PURE_URL],
        "doi": DOI,
        "type_of_work": "Article",
        "journal_name": JOURNAL,
        "alternate_title3": JOURNAL,
        "issn": "0951-3558",
        "volume": "32",
        "number": "4",
        "start_page": "362",
        "end_page": "382",
        "publisher": PUBLISHER,
        "language": "English",
    }


# --- (b) round trips -----------------------------------------------------------------------

CHAPTER: dict[str, Any] = {
    **seed_work(work_id=7),
    "doi": "10.1007/978-3-030-12345-6_3",
    "title": "Öffentliche Verwaltung",
    "subtitle": "Reform in Kazakhstan",
    "authors": [
        {
            "family": "van der Berg",
            "given": "Jan",
            "name": "Jan van der Berg",
            "orcid": None,
            "affiliations": [],
        },
        {"family": "Wałęsa", "given": "Zoë", "name": "Zoë Wałęsa", "orcid": None, "affiliations": []},
        {
            "family": None,
            "given": None,
            "name": "World Health Organization",
            "orcid": None,
            "affiliations": [],
        },
    ],
    "container_title": "Handbook of Public Administration",
    "issn": ["1234-5679", "0951-3558"],
    "isbn": ["9783030123456"],
    "pages": "45–67",
    "date": "2020-02",
    "year": 2020,
    "type": "book-chapter",
    "language": "de",
    "retracted": True,
}


def test_bibtexparser_gives_back_the_stored_fields() -> None:
    seed = seed_work()
    first, chapter = read_bibtex(export(write_bibtex, [seed, CHAPTER]))
    assert first["title"] == TITLE
    assert first["author"] == [("Knox", "Colin Gerard"), ("Janenova", "Saltanat")]
    assert (first["year"], first["month"], first["day"]) == ("2019", "5", "13")
    assert first["doi"] == DOI
    assert first["journal"] == JOURNAL
    assert first["issn"] == "0951-3558"
    assert first["keywords"].split(", ") == list(KEYWORDS)
    assert first["abstract"] == ABSTRACT  # the paragraphs too
    assert first["abstract"].count("\n\n") == 2
    assert first["pages"] == "362–382"  # "362--382", an en dash once typeset

    assert chapter["ENTRYTYPE"] == "incollection"
    assert chapter["ID"] == "vanderberg2020offentliche_7"
    assert chapter["title"] == "Öffentliche Verwaltung: Reform in Kazakhstan"
    assert chapter["author"] == [
        ("van der Berg", "Jan"),
        ("Wałęsa", "Zoë"),
        ("World Health Organization", ""),
    ]
    assert (chapter["year"], chapter["month"]) == ("2020", "2")
    assert "day" not in chapter
    assert chapter["booktitle"] == "Handbook of Public Administration"
    assert "journal" not in chapter
    assert chapter["issn"] == "1234-5679, 0951-3558"
    assert chapter["isbn"] == "9783030123456"
    assert chapter["language"] == "German"
    assert chapter["pages"] == "45–67"
    assert chapter["note"] == "Retracted"
    assert chapter["doi"] == "10.1007/978-3-030-12345-6_3"  # verbatim: no \_


def test_an_unsplit_name_stays_one_author() -> None:
    work = {**CHAPTER, "authors": [{"family": None, "given": None, "name": "Knox, Colin and Janenova, S."}]}
    (entry,) = parse_bibtex(export(write_bibtex, [work]))
    (name,) = entry.fields_dict["author"].value
    assert name.last == ["{Knox, Colin and Janenova, S.}"] and name.first == []


def test_rispy_gives_back_the_stored_fields() -> None:
    first, chapter = read_ris(export(write_ris, [seed_work(), CHAPTER]))
    assert first["primary_title"] == TITLE
    assert first["authors"] == ["Knox, Colin Gerard", "Janenova, Saltanat"]
    assert (first["year"], first["date"]) == ("2019", "2019/05/13/")
    assert first["doi"] == DOI
    assert first["journal_name"] == first["alternate_title3"] == JOURNAL
    assert first["issn"] == "0951-3558"
    assert first["keywords"] == list(KEYWORDS)
    # RIS has no paragraph break: the sections follow each other on one line, labels kept
    assert first["abstract"] == first["notes_abstract"] == ABSTRACT.replace("\n\n", " ")
    assert re.split(r" (?=[A-Z][\w/]+: )", first["abstract"]) == ABSTRACT.split("\n\n")
    assert (first["start_page"], first["end_page"]) == ("362", "382")

    assert chapter["type_of_reference"] == "CHAP"
    assert chapter["primary_title"] == "Öffentliche Verwaltung: Reform in Kazakhstan"
    assert chapter["authors"] == ["van der Berg, Jan", "Wałęsa, Zoë", "World Health Organization"]
    assert (chapter["year"], chapter["date"]) == ("2020", "2020/02//")
    assert chapter["secondary_title"] == "Handbook of Public Administration"
    assert "journal_name" not in chapter
    assert (chapter["start_page"], chapter["end_page"]) == ("45", "67")
    assert chapter["language"] == "German"
    assert chapter["notes"] == ["Retracted"]
    assert chapter["type_of_work"] == "Book chapter"
    # several SN lines: rispy keeps the first (the print ISSN), reference managers all
    text = ris_record(CHAPTER)
    assert [line for line in text.split("\r\n") if line.startswith("SN")] == [
        "SN  - 1234-5679",
        "SN  - 0951-3558",
        "SN  - 9783030123456",
    ]


def test_a_minimal_work_exports_without_empty_fields() -> None:
    work = {key: None for key in EXPORT_KEYS} | {
        "id": 9,
        "authors": [],
        "keywords": [],
        "issn": [],
        "isbn": [],
    }
    assert bibtex_entry(work) == "@misc{work_9,\n}\n"
    assert ris_record(work) == "TY  - GEN\r\nER  - \r\n\r\n"
    assert csl_item(work) == {"id": "work_9", "type": "document"}
    assert read_ris(ris_record(work)) == [{"type_of_reference": "GEN"}]
    assert parse_bibtex(bibtex_entry(work))[0].key == "work_9"


def test_keys_are_readable_and_unique() -> None:
    assert citation_key(seed_work()) == "knox2019egovernment_42"
    base = {"id": 1, "authors": [], "title": None, "date": None, "year": None}
    assert citation_key(base) == "work_1"
    assert citation_key(base | {"title": "L'économie de la santé", "year": 2001}) == "2001economie_1"
    org = [{"family": None, "given": None, "name": "World Health Organization"}]
    assert citation_key(base | {"authors": org, "title": "漢字とかな"}) == "worldhealthorganization_1"
    unsplit = [{"family": None, "given": None, "name": "Łukasiewicz, Jan"}]
    assert citation_key(base | {"authors": unsplit, "date": "1951-03"}) == "lukasiewicz1951_1"
    works = [seed_work(work_id=i) for i in range(1, 4)]
    keys = [e["ID"] for e in read_bibtex(export(write_bibtex, works))]
    assert keys == ["knox2019egovernment_1", "knox2019egovernment_2", "knox2019egovernment_3"]


# --- (c) escaping --------------------------------------------------------------------------

SPECIAL_TITLES = [
    "R&D 100% $5 #1 snake_case {braces} ~tilde^caret back\\slash",
    "The \"quoted\" word and 'single' ones",
    "Müller, Łódź, Ω-3, 漢字とかな, Ελληνικά",
    "Lone { brace and lone } brace",
    "Dashes -- and --- stay, ``quotes'' too",
    "E-mail @ home\n@article{evil, title = {x}}",
    "Ends with a backslash \\",
]


@pytest.mark.parametrize("title", SPECIAL_TITLES)
def test_latex_specials_survive_bibtexparser(title: str) -> None:
    work = {**seed_work(), "title": title, "abstract": title, "keywords": [title]}
    (entry,) = read_bibtex(export(write_bibtex, [work]))
    # pylatexenc renders \textasciicircum as U+02C6 (modifier letter circumflex)
    expected = title.replace("^", "\u02c6")
    assert entry["title"] == entry["abstract"] == entry["keywords"] == expected


def test_doi_and_url_are_verbatim() -> None:
    work = {**seed_work(), "doi": "10.1002/(sici)1097-4636(199706)35:4<503::aid-jbm11>3.0.co;2-e"}
    work["url"] = 'https://example.org/a_b%20c?q="1"&r={2}#top'
    (entry,) = parse_bibtex(export(write_bibtex, [work]))
    assert entry.fields_dict["doi"].value == work["doi"]
    assert entry.fields_dict["url"].value == "https://example.org/a_b%20c?q=%221%22&r=%7B2%7D#top"


NAMES_WITH_SPECIALS = [
    "R&D_% $#",
    "{braces} and {more",
    "~tilde^caret\\",
    'Quo"te',
    "Müller-Łódź Ωmega",
    "Tom AND Jerry",
    "Smith, Jr.",
    "O''Brien--Dash",
    "van der Berg",
]


@pytest.mark.parametrize("name", NAMES_WITH_SPECIALS)
def test_names_with_specials_survive_bibtexparser(name: str) -> None:
    authors = [
        {"family": name, "given": name, "name": None},
        {"family": None, "given": None, "name": name},
        {"family": "Knox", "given": "Colin Gerard", "name": None},
    ]
    (entry,) = read_bibtex(export(write_bibtex, [{**seed_work(), "authors": authors}]))
    assert entry["author"] == [(name, name), (name, ""), ("Knox", "Colin Gerard")]


def test_escapes_are_the_documented_ones() -> None:
    assert latex_escape('&%$#_{}~^\\"') == (
        r"\&\%\$\#\_\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}" + '{"}'
    )
    assert latex_escape("a--b ``c'' ¿d?`") == "a-{}-b `{}`c'{}' ¿d?{}`"
    assert latex_escape("x\n  @misc{y") == "x\n  {@}misc\\{y"
    assert latex_escape("Zoë 漢字") == "Zoë 漢字"  # UTF-8 as it is, no TeX accents
    assert (
        latex_escape("a&b\\c~^", name=True) == r"a{\&}b{\textbackslash}c{\textasciitilde}{\textasciicircum}"
    )


texts = st.text(
    st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc")),
        st.sampled_from(list("\\{}&%$#_~^\"'`@-!? \n")),
    ),
    min_size=1,
).map(str.strip)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts, abstract=texts)
def test_any_text_round_trips_through_bibtexparser(title: str, abstract: str) -> None:
    work = {**seed_work(), "title": title or None, "subtitle": None, "abstract": abstract or None}
    (entry,) = parse_bibtex(export(write_bibtex, [work]))
    fields = entry.fields_dict
    assert unescape(fields["title"].value) == title if title else "title" not in fields
    assert unescape(fields["abstract"].value) == abstract if abstract else "abstract" not in fields
    assert fields["doi"].value == DOI


name_words = st.text(
    st.one_of(
        st.characters(whitelist_categories=("L", "N", "P", "S")),
        st.sampled_from(list("\\{}&%$#_~^\"'`@-!?,")),
    ),
    min_size=1,
    max_size=8,
)
names = st.lists(name_words, min_size=1, max_size=3).map(" ".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(family=names, given_name=st.one_of(st.none(), names), whole=names)
def test_any_name_round_trips_through_bibtexparser(family: str, given_name: str | None, whole: str) -> None:
    authors = [{"family": family, "given": given_name}, {"family": None, "given": None, "name": whole}]
    (entry,) = read_bibtex(export(write_bibtex, [{**seed_work(), "authors": authors}]))
    assert entry["author"] == [(family, given_name or ""), (whole, "")]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=texts, abstract=texts, keyword=texts)
def test_any_text_round_trips_through_rispy(title: str, abstract: str, keyword: str) -> None:
    work = {**seed_work(), "title": title, "subtitle": None, "abstract": abstract, "keywords": [keyword]}
    text = export(write_ris, [work, work])
    records = read_ris(text)
    assert len(records) == 2
    one_line = re.compile(r"\s*\n\s*")
    assert records[0].get("primary_title") == (one_line.sub(" ", title) or None)
    assert records[0].get("abstract") == (one_line.sub(" ", abstract) or None)
    assert records[0].get("keywords") == ([one_line.sub(" ", keyword)] if keyword else None)
    assert records[0]["doi"] == DOI and records[0] == records[1]


# --- (d) types -----------------------------------------------------------------------------

BIBTEX_TYPES = {"article", "inproceedings", "incollection", "book", "phdthesis", "techreport", "misc"}


@pytest.mark.parametrize("work_type", [*sorted(TYPES), None])
def test_every_canonical_type_maps(work_type: str | None) -> None:
    schema_types = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["items"]["properties"]["type"]["enum"]
    assert entry_type(work_type) in BIBTEX_TYPES
    assert ris_type(work_type) in rispy.TYPE_OF_REFERENCE_MAPPING
    assert csl_type(work_type) in schema_types
    work = {**seed_work(), "type": work_type}
    (entry,) = parse_bibtex(export(write_bibtex, [work]))
    assert entry.entry_type == entry_type(work_type)
    assert read_ris(export(write_ris, [work]))[0]["type_of_reference"] == ris_type(work_type)


def test_type_tables() -> None:
    assert set(ENTRY_TYPES) | set(RIS_TYPES) | set(CSL_TYPES) <= TYPES
    expected_bibtex = {
        "journal-article": "article",
        "proceedings-article": "inproceedings",
        "book-chapter": "incollection",
        "book-part": "incollection",
        "book-section": "incollection",
        "book": "book",
        "monograph": "book",
        "edited-book": "book",
        "reference-book": "book",
        "dissertation": "phdthesis",
        "report": "techreport",
        "report-component": "techreport",
    }
    assert {t: entry_type(t) for t in TYPES if entry_type(t) != "misc"} == expected_bibtex
    assert ris_type("journal-article") == "JOUR" and ris_type("proceedings-article") == "CONF"
    assert ris_type("book-part") == "CHAP" and ris_type("edited-book") == "BOOK"
    assert ris_type("dissertation") == "THES" and ris_type("report-component") == "RPRT"
    assert ris_type("dataset") == "DATA" and ris_type("peer-review") == ris_type("other") == "GEN"
    assert csl_type("journal-article") == "article-journal"
    assert csl_type("posted-content") == "article" and csl_type("peer-review") == "review"
    assert csl_type("reference-entry") == "entry-encyclopedia" and csl_type("other") == "document"


def test_pages_split() -> None:
    assert split_pages("362-382") == ("362", "382")
    assert split_pages("362 – 382") == ("362", "382")
    assert split_pages("e1234") == ("e1234", None)
    assert split_pages("S12-S14, 20") == ("S12", "S14, 20")
    assert split_pages("  ") == (None, None)
    assert split_pages(None) == (None, None)


# --- (e) CSL-JSON against the official schema ----------------------------------------------

SCHEMA_PATH = Path(__file__).parent / "data" / "csl-data.json"


@pytest.fixture(scope="module")
def csl_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_csl_json_of_the_seed(csl_validator: jsonschema.Draft7Validator) -> None:
    items = json.loads(export(write_csl_json, [seed_work(), CHAPTER]))
    csl_validator.validate(items)
    assert items[0] == {
        "id": "knox2019egovernment_42",
        "type": "article-journal",
        "title": TITLE,
        "author": [{"family": "Knox", "given": "Colin Gerard"}, {"family": "Janenova", "given": "Saltanat"}],
        "issued": {"date-parts": [[2019, 5, 13]]},
        "container-title": JOURNAL,
        "publisher": PUBLISHER,
        "volume": "32",
        "issue": "4",
        "page": "362-382",
        "DOI": DOI,
        "ISSN": "0951-3558",
        "URL": PURE_URL,
        "abstract": ABSTRACT,
        "keyword": "E-government, Kazakhstan, Post-Soviet countries",
        "language": "en",
    }
    assert items[1]["type"] == "chapter" and items[1]["status"] == "retracted"
    assert items[1]["author"][2] == {"literal": "World Health Organization"}
    assert items[1]["issued"] == {"date-parts": [[2020, 2]]}


def test_csl_json_empty_and_streamed_shape() -> None:
    assert export(write_csl_json, []) == "[]\n"
    text = export(write_csl_json, [seed_work(work_id=1), seed_work(work_id=2)])
    assert text.startswith("[\n{") and text.endswith("}\n]\n") and text.count("},\n{") == 1


maybe_text = st.one_of(st.none(), st.text(max_size=30))
partial_dates = st.one_of(
    st.none(),
    st.just("not a date"),
    st.builds(
        lambda y, m, d: (
            PartialDate(y, m, d if m else None).iso() if (m is None or d is None or d <= 28) else None
        ),
        st.integers(1, 9999),
        st.one_of(st.none(), st.integers(1, 12)),
        st.one_of(st.none(), st.integers(1, 28)),
    ),
)
authors: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "family": maybe_text,
        "given": maybe_text,
        "name": maybe_text,
        "orcid": st.none(),
        "affiliations": st.just([]),
    }
)
works: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "id": st.integers(1, 10**9),
        "doi": maybe_text,
        "title": maybe_text,
        "subtitle": maybe_text,
        "authors": st.lists(authors, max_size=3),
        "abstract": maybe_text,
        "container_title": maybe_text,
        "issn": st.lists(st.text(max_size=9), max_size=2),
        "isbn": st.lists(st.text(max_size=13), max_size=2),
        "publisher": maybe_text,
        "volume": maybe_text,
        "issue": maybe_text,
        "pages": maybe_text,
        "date": partial_dates,
        "year": st.one_of(st.none(), st.integers(1, 9999)),
        "type": st.one_of(st.none(), st.sampled_from(sorted(TYPES))),
        "language": st.one_of(st.none(), st.sampled_from(["en", "de", "kk", "xx"])),
        "keywords": st.lists(st.text(max_size=12), max_size=3),
        "url": maybe_text,
        "retracted": st.booleans(),
    }
)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(works, max_size=4, unique_by=lambda w: w["id"]))
def test_csl_json_of_any_works_is_valid(
    csl_validator: jsonschema.Draft7Validator, batch: list[dict[str, Any]]
) -> None:
    items = json.loads(export(write_csl_json, batch))
    csl_validator.validate(items)
    assert len(items) == len(batch)


@settings(max_examples=200, deadline=None)
@given(batch=st.lists(works, max_size=4, unique_by=lambda w: w["id"]))
def test_any_works_export_to_parseable_bibtex_and_ris(batch: list[dict[str, Any]]) -> None:
    assert len(parse_bibtex(export(write_bibtex, batch))) == len(batch)
    records = read_ris(export(write_ris, batch))
    assert [r["type_of_reference"] for r in records] == [ris_type(w["type"]) for w in batch]


# --- (f) streaming -------------------------------------------------------------------------


class NullSink(io.TextIOBase):
    """Counts what is written and keeps nothing."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


def minimal_works(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {
            "id": i,
            "doi": f"10.5555/stream.{i}",
            "title": f"Streamed work number {i}",
            "authors": [{"family": "Family", "given": "Given", "name": "Family, Given"}],
            "date": "2020-01-02",
            "year": 2020,
            "type": "journal-article",
            "keywords": ["k"],
        }


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["bibtex", "ris", "csl-json"])
def test_exports_stream_in_constant_memory(fmt: str) -> None:
    sink = NullSink()
    tracemalloc.start()
    try:
        count = FORMATS[fmt](minimal_works(50_000), sink)  # type: ignore[arg-type]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 50_000
    assert sink.chars > 50_000 * 100
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes"


# --- (g) through the CLI, harvested from three sources ------------------------------------

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def three_sources() -> Iterator[tuple[FakeCrossref, FakeOaiServer, FakeOaiServer]]:
    crossref = CrossrefWork(
        work_item(
            "10.1108/IJPSM-08-2018-0173",
            TITLE,
            author=[
                {"given": "Colin Gerard", "family": "Knox", "sequence": "first", "affiliation": []},
                {"given": "Saltanat", "family": "Janenova", "sequence": "additional", "affiliation": []},
            ],
            container_title=[JOURNAL],
            publisher="Emerald",
            volume="32",
            issue="4",
            page="362-382",
            ISSN=["0951-3558"],
            published={"date-parts": [[2019, 5, 13]]},
            published_print={"date-parts": [[2019, 5, 13]]},
            issued={"date-parts": [[2019, 5, 13]]},
        ),
        indexed=dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
    )
    pure = OaiRecord(
        identifier=PURE_OAI,
        datestamp=T0,
        metadata=dc_metadata(
            TITLE,
            creators=["Knox, Colin Gerard", "Janenova, Saltanat"],
            subjects=list(KEYWORDS),
            description=ABSTRACT,
            publisher=PUBLISHER,
            date="2019",
            types=["info:eu-repo/semantics/article"],
            identifiers=[PURE_URL, "https://doi.org/10.1108/IJPSM-08-2018-0173"],
            sources=[JOURNAL],
            languages=["eng"],
        ),
    )
    repo = OaiRecord(
        identifier="oai:dspace.example.org:123456789/42",
        datestamp=T0,
        metadata=dc_metadata(
            TITLE,
            creators=["Knox, Colin", "Janenova, Saltanat"],
            date="2019-05",
            types=["Article"],
            identifiers=["http://hdl.handle.net/123456789/42", "doi:10.1108/ijpsm-08-2018-0173"],
            languages=["en"],
        ),
    )
    with (
        FakeCrossref([crossref]) as cr,
        FakeOaiServer([pure], now=lambda: NOW, earliest_datestamp=T0) as pure_server,
        FakeOaiServer([repo], now=lambda: NOW, earliest_datestamp=T0) as repo_server,
    ):
        yield cr, pure_server, repo_server


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_export_through_the_cli_from_three_sources(
    tmp_path: Path, db_url: str, three_sources: tuple[FakeCrossref, FakeOaiServer, FakeOaiServer]
) -> None:
    cr, pure_server, repo_server = three_sources
    crossref_block = "\n".join(
        [
            "- name: crossref",
            "  type: crossref",
            f"  url: {cr.url}",
            "  mailto: tests@example.org",
            f"  since: {(TODAY - dt.timedelta(days=60)).isoformat()}",
        ]
    )
    sources = "\n".join(
        [oai_source_block("pure", pure_server.url), oai_source_block("repo", repo_server.url), crossref_block]
    )
    config = str(write_config(tmp_path / "h.yaml", db_url, sources, precedence="pure, crossref, repo"))
    harvested = cli("--config", config, "harvest")
    assert harvested.exit_code == 0, harvested.stderr

    shown = json.loads(cli("--config", config, "show", DOI).stdout)
    assert shown["sources"] == ["crossref", "pure", "repo"]

    result = cli("--config", config, "export", "--format", "bibtex", "--doi", "10.1108/IJPSM-08-2018-0173")
    assert result.exit_code == 0, result.stderr
    (entry,) = read_bibtex(result.stdout)
    portal = read_bibtex(PORTAL_BIBTEX)[0]
    for name in (
        "ENTRYTYPE",
        "title",
        "keywords",
        "author",
        "year",
        "language",
        "journal",
        "issn",
        "publisher",
    ):
        assert entry[name] == portal[name], name
    assert entry["doi"] == DOI
    assert (entry["month"], entry["day"]) == ("5", "13")  # Crossref's day, not Pure's placeholder
    assert entry["abstract"] == ABSTRACT
    assert entry["ID"] == f"knox2019egovernment_{shown['id']}"

    target = tmp_path / "seed.ris"
    result = cli("--config", config, "export", "--format", "ris", "--doi", DOI, "-o", str(target))
    assert result.exit_code == 0, result.stderr
    raw = target.read_bytes()
    assert raw.startswith(b"TY  - JOUR\r\n") and raw.endswith(b"ER  - \r\n\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    (record,) = read_ris(raw.decode("utf-8"))
    assert record["primary_title"] == TITLE
    assert record["authors"] == ["Knox, Colin Gerard", "Janenova, Saltanat"]
    assert (record["year"], record["publication_year"]) == ("2019", "2019/05/13/")
    assert record["keywords"] == list(KEYWORDS)
    assert record["abstract"] == record["notes_abstract"] == ABSTRACT.replace("\n\n", " ")
    assert record["doi"] == DOI and record["type_of_work"] == "Article"
    assert record["journal_name"] == record["alternate_title3"] == JOURNAL
    assert record["issn"] == "0951-3558" and record["publisher"] == PUBLISHER
    assert record["language"] == "English"

    result = cli("--config", config, "export", "--format", "csl-json")
    items = json.loads(result.stdout)
    jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))).validate(items)
    (item,) = items
    assert item["issued"] == {"date-parts": [[2019, 5, 13]]} and item["DOI"] == DOI
    assert item["author"] == [
        {"family": "Knox", "given": "Colin Gerard"},
        {"family": "Janenova", "given": "Saltanat"},
    ]

    result = cli("--config", config, "export", "--format", "bibtex", "--doi", "10.9999/none")
    assert result.exit_code == 0 and result.stdout == ""
