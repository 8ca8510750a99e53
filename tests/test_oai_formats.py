"""Tests of harvester/sources/oai_formats.py: OAI metadata (oai_dc, DataCite) → Record fields.

Most cases are real responses (tests/fixtures/oai/, provenance in its README.md): the
rules exist because of what these servers do. Small inline records (built with the
``dc``/``datacite`` helpers below) cover spellings the real corpus lacks (OpenAIRE
altIdentifier, info:doi/, ORCIDs in creator strings...); they are marked "synthetic".
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from lxml import etree

from harvester.doi import strict_doi
from harvester.identifiers import normalize_orcid
from harvester.record import TYPES, Author, Issn, PartialDate, Record, Subject
from harvester.sources import oai_formats
from harvester.sources.base import NormalizationError
from harvester.sources.oai_formats import DC_NAMESPACE, datacite_fields, normalize_metadata, oai_dc_fields

FIXTURES = Path(__file__).parent / "fixtures" / "oai"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
STRICT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=False)

# Fixture files whose records are oai_dc or DataCite (every record must normalize).
SUPPORTED_FILES = [
    "bnf_gallica_ns_on_root.xml",
    "datacite_oai_dc_2012.xml",
    "erasmus_dspace_2003.xml",
    "erudit_doi_prefix.xml",
    "gmu_mars_dspace_doi_spellings.xml",
    "lshtm_eprints_citation_dois.xml",
    "pucrio_default_dc_namespace.xml",
    "pure_seed_ijpsm_oai_dc.xml",
    "rcaap_page1_eu_repo_types.xml",
    "rcaap_page2_eu_repo.xml",
    "zenodo_getrecord_datacite.xml",
    "zenodo_listrecords_datacite.xml",
    "zenodo_listrecords_oai_dc_resumed_page.xml",
    "zenodo_listrecords_oai_dc_sources.xml",
    "zenodo_listrecords_oai_dc_until.xml",
]


# --- helpers -----------------------------------------------------------------------------------


@functools.cache
def _records(name: str) -> dict[str, etree._Element | None]:
    """OAI identifier → the metadata payload element (None for a deleted record)."""
    tree = etree.parse(str(FIXTURES / name), STRICT)
    out: dict[str, etree._Element | None] = {}
    for record in tree.iter(f"{OAI}record"):
        key = record.findtext(f"{OAI}header/{OAI}identifier")
        assert key
        metadata = record.find(f"{OAI}metadata")
        out[key.strip()] = next(metadata.iterchildren(etree.Element), None) if metadata is not None else None
    return out


def payload(name: str, key: str) -> etree._Element:
    element = _records(name)[key]
    assert element is not None
    return element


def fields(name: str, key: str) -> dict[str, Any]:
    return normalize_metadata(payload(name, key))


def ids(result: dict[str, Any], scheme: str) -> list[str]:
    return [value for s, value in result["identifiers"] if s == scheme]


def dc(*elements: tuple[str, str]) -> etree._Element:
    """Synthetic oai_dc record from (element, value) pairs."""
    body = "".join(f"<dc:{name}>{escape(value)}</dc:{name}>" for name, value in elements)
    return etree.fromstring(
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/">{body}</oai_dc:dc>',
        STRICT,
    )


def datacite(body: str, kernel: str = "http://datacite.org/schema/kernel-4") -> etree._Element:
    """Synthetic DataCite resource around ``body``."""
    return etree.fromstring(f'<resource xmlns="{kernel}">{body}</resource>', STRICT)


def build(result: dict[str, Any]) -> Record:
    return Record(key="x", **result)


# --- the seed work as a Pure portal serves it ------------------------------------------------

SEED = (
    "pure_seed_ijpsm_oai_dc.xml",
    "oai:pure.example.edu:publications/5d0c6a9e-1b2f-4c51-9e36-7a0f3c1d2e4b",
)


def test_seed_pure_record_all_fields() -> None:
    result = fields(*SEED)
    abstract = result.pop("abstract")
    assert result == {
        "doi": "10.1108/ijpsm-08-2018-0173",
        "title": "The e-government paradox in post-Soviet countries",
        "subtitle": None,
        "authors": (
            Author(name="Knox, Colin Gerard", family="Knox", given="Colin Gerard"),
            Author(name="Janenova, Saltanat", family="Janenova", given="Saltanat"),
        ),
        "container_title": "International Journal of Public Sector Management",
        "volume": "32",
        "issue": "4",
        "pages": None,
        "publisher": "Emerald Group Publishing Ltd.",
        "date": PartialDate(2019),
        "type": "journal-article",
        "language": "en",
        "keywords": ("E-government", "Kazakhstan", "Post-Soviet countries"),
        "subjects": (),
        "license": None,  # info:eu-repo/semantics/closedAccess is an access right, not a licence
        "issn": (Issn("0951-3558", None),),
        "isbn": (),
        "url": "https://research.example.edu/en/publications/the-e-government-paradox-in-post-soviet-countries",
        "identifiers": (
            ("doi", "10.1108/ijpsm-08-2018-0173"),
            (
                "url",
                "https://research.example.edu/en/publications/the-e-government-paradox-in-post-soviet-countries",
            ),
        ),
    }
    # The structured Emerald abstract keeps its labels as written; the "Peer Reviewed"
    # note is not the abstract.
    assert abstract.startswith("Purpose – The purpose of this paper is to investigate why e-government")
    for label in ("Design/methodology/approach – ", "Findings – ", "Originality/value – "):
        assert label in abstract
    assert "\n" not in abstract
    record = Record(key=SEED[1], **fields(*SEED))
    assert record.date is not None and record.date.precision == "year"


def test_seed_relation_to_another_work_is_not_taken() -> None:
    result = fields(*SEED)
    assert result["doi"] != "10.1108/ijpsm-02-2017-0050"
    assert all("ijpsm-02-2017-0050" not in value for _, value in result["identifiers"])


def test_seed_contributor_is_not_an_author() -> None:
    names = [a.name for a in fields(*SEED)["authors"]]
    assert not any("Example University" in n for n in names)


# --- DOI spellings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "doi"),
    [
        # http://dx.doi.org/ identifier next to a citation without a DOI
        ("oai:mars.gmu.edu:1920/9993", "10.1371/journal.pone.0060808"),
        # citation ending "doi:10.1371/…" plus the dx.doi.org identifier
        ("oai:mars.gmu.edu:1920/9996", "10.1371/journal.pone.0073820"),
        # citation ending "doi: 10.3389/…" (a space after the colon)
        ("oai:mars.gmu.edu:1920/9997", "10.3389/fphar.2013.00095"),
        # APA citation ending "http://doi.org/10.1103/PhysRevE.88.042712": lower-cased
        ("oai:mars.gmu.edu:1920/10000", "10.1103/physreve.88.042712"),
    ],
)
def test_gmu_dspace_doi_spellings(key: str, doi: str) -> None:
    result = fields("gmu_mars_dspace_doi_spellings.xml", key)
    assert result["doi"] == doi
    assert ids(result, "doi") == [doi]
    assert ids(result, "handle") == [key.removeprefix("oai:mars.gmu.edu:")]
    assert result["url"] is None  # only DOI and handle resolvers: no landing URL of its own


def test_gmu_dspace_other_fields() -> None:
    result = fields("gmu_mars_dspace_doi_spellings.xml", "oai:mars.gmu.edu:1920/9993")
    assert result["title"] == "Employment Growth through Labor Flow Networks"
    assert result["authors"] == (
        Author(name="Guerrero, Omar A.", family="Guerrero", given="Omar A."),
        Author(name="Axtell, Robert L.", family="Axtell", given="Robert L."),
    )
    # dc.date.accessioned/available are timestamps (2015-10-29T15:49:06Z); issued wins
    assert result["date"] == PartialDate(2013, 5, 2)
    assert result["type"] == "journal-article"
    assert result["language"] == "en"  # en_US
    assert result["license"] == "https://creativecommons.org/licenses/by/3.0/us/"
    assert result["publisher"] == "Public Library of Science"
    assert result["keywords"][:3] == ("employment", "labor economics", "agent-based modeling")
    # the longest description is the abstract, not the funding note
    assert result["abstract"].startswith("It is conventional in labor economics")
    assert "Open Access Publishing Fund" not in result["abstract"]


@pytest.mark.parametrize(
    ("value", "doi"),
    [
        ("doi:10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("DOI: 10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("https://doi.org/10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("http://dx.doi.org/10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("info:doi/10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("10.1108/IJPSM-08-2018-0173", "10.1108/ijpsm-08-2018-0173"),
        ("https://onlinelibrary.wiley.com/doi/10.1002/pan3.10001", "10.1002/pan3.10001"),
        ("https://onlinelibrary.wiley.com/doi/abs/10.1002/pan3.10001", "10.1002/pan3.10001"),
        ("https://link.springer.com/article/10.1007/s13244-014-0317-5", "10.1007/s13244-014-0317-5"),
        (
            "Knox C (2019) The paradox. IJPSM 32(4). doi:10.1108/IJPSM-08-2018-0173.",
            "10.1108/ijpsm-08-2018-0173",
        ),
    ],
)
def test_dc_identifier_doi_spellings(value: str, doi: str) -> None:  # synthetic
    assert oai_dc_fields(dc(("title", "T"), ("identifier", value)))["doi"] == doi


def test_identifier_field_beats_doi_in_citation() -> None:  # synthetic
    result = oai_dc_fields(
        dc(
            ("identifier", "Smith J (2020) Reply to Jones, doi:10.1234/other-work"),
            ("identifier", "https://doi.org/10.1234/this-work"),
        )
    )
    assert result["doi"] == "10.1234/this-work"


def test_first_doi_identifier_wins() -> None:  # synthetic
    result = oai_dc_fields(dc(("identifier", "doi:10.1234/first"), ("identifier", "doi:10.1234/second")))
    assert result["doi"] == "10.1234/first"
    assert ids(result, "doi") == ["10.1234/first"]


@pytest.mark.parametrize(
    ("key", "doi", "issn"),
    [
        ("oai:researchonline.lshtm.ac.uk:407", "10.1517/17425255.2011.598506", "1742-5255"),
        ("oai:researchonline.lshtm.ac.uk:920", "10.1111/j.1365-3156.2011.02765.x", "1360-2276"),
        # brackets inside the DOI survive; the "<http://dx.doi.org/…>" after it is ignored
        ("oai:researchonline.lshtm.ac.uk:2398", "10.1016/s1473-3099(10)70008-6", "1473-3099"),
    ],
)
def test_lshtm_eprints_doi_from_citation(key: str, doi: str, issn: str) -> None:
    result = fields("lshtm_eprints_citation_dois.xml", key)
    assert result["doi"] == doi
    assert result["issn"] == (Issn(issn, None),)
    assert result["type"] == "journal-article"  # Article + PeerReviewed/NonPeerReviewed
    assert result["date"] == PartialDate(int(result["date"].iso()))


def test_lshtm_eprints_details() -> None:
    first = fields("lshtm_eprints_citation_dois.xml", "oai:researchonline.lshtm.ac.uk:407")
    assert first["authors"] == (
        Author(name="Chico, RM", family="Chico", given="RM"),
        Author(name="Chandramohan, D", family="Chandramohan", given="D"),
    )
    assert first["url"] == "http://researchonline.lshtm.ac.uk/407/1/emt7-1153.pdf"  # only a file is given
    assert first["license"] == "CC BY-NC-ND"  # EPrints' "cc_by_nc_nd": no version, so no URL
    assert first["publisher"] == "Taylor & Francis"
    assert first["abstract"].startswith("Introduction: The first-line therapy")

    book = fields("lshtm_eprints_citation_dois.xml", "oai:researchonline.lshtm.ac.uk:9074")
    assert (book["type"], book["doi"]) == ("book", None)

    monograph = fields("lshtm_eprints_citation_dois.xml", "oai:researchonline.lshtm.ac.uk:2331705")
    assert monograph["type"] == "report"  # EPrints "Monograph" = reports and working papers
    assert monograph["authors"][0] == Author(name="Office of Science and Innovation( inc. Barnett, T")
    assert monograph["authors"][1] == Author(name="Bartlett, C", family="Bartlett", given="C")

    deleted = _records("lshtm_eprints_citation_dois.xml")["oai:researchonline.lshtm.ac.uk:2331691"]
    assert deleted is None  # the caller handles deleted headers


def test_lshtm_relation_doi_is_not_taken_even_when_bare() -> None:
    # EPrints puts its id_number into dc:relation; the rule reads no DOI from dc:relation,
    # and this conference item's citation has none.
    result = fields("lshtm_eprints_citation_dois.xml", "oai:researchonline.lshtm.ac.uk:2324782")
    assert result["doi"] is None
    assert ids(result, "doi") == []
    assert result["type"] == "proceedings-article"  # "Conference or Workshop Item"


def test_erudit_doi_prefix() -> None:
    result = fields("erudit_doi_prefix.xml", "oai:erudit.org:1033512ar")
    assert result["doi"] == "10.7202/1033512ar"
    assert result["url"] == "http://id.erudit.org/iderudit/1033512ar"
    assert result["identifiers"] == (
        ("doi", "10.7202/1033512ar"),
        ("url", "http://id.erudit.org/iderudit/1033512ar"),
    )
    assert result["authors"] == (Author(name="Bégin, Luna", family="Bégin", given="Luna"),)
    assert result["language"] == "fr"
    assert result["type"] is None  # only the generic "text"
    assert result["publisher"] == "McGill University Library"
    assert result["date"] == PartialDate(2015)
    assert result["license"] is None  # "All Rights Reserved ©…"
    # Érudit's container citation is a dc:relation, which is never read
    assert result["container_title"] is None

    bilingual = fields("erudit_doi_prefix.xml", "oai:erudit.org:1033634ar")
    assert (
        bilingual["title"]
        == "« Les bois engendrent les frimas et les gelées » : comprendre le climat en Nouvelle-France"
    )
    assert bilingual["abstract"] is not None
    assert bilingual["abstract"].startswith(("Cet article", "This article"))


# --- dc:relation: only OpenAIRE altIdentifier ---------------------------------------------------


def test_openaire_alt_identifiers() -> None:  # synthetic
    result = oai_dc_fields(
        dc(
            ("title", "T"),
            ("relation", "info:eu-repo/semantics/altIdentifier/doi/10.1234/ALT"),
            ("relation", "info:eu-repo/semantics/altIdentifier/pmid/31452104"),
            ("relation", "info:eu-repo/semantics/altIdentifier/isbn/978-0-306-40615-7"),
            ("relation", "info:eu-repo/semantics/altIdentifier/eissn/1476-4687"),
            ("relation", "info:eu-repo/semantics/altIdentifier/pissn/0028-0836"),
            ("relation", "info:eu-repo/semantics/altIdentifier/arxiv/arXiv:1501.00001v2"),
            ("relation", "info:eu-repo/semantics/altIdentifier/hdl/1721.1/123456"),
            ("relation", "info:eu-repo/semantics/altIdentifier/urn/urn:nbn:de:0183-mbi0002519"),
            ("relation", "info:eu-repo/semantics/reference/doi/10.9999/cited-work"),
            ("relation", "info:eu-repo/grantAgreement/EC/H2020/654321/EU"),
        )
    )
    assert result["doi"] == "10.1234/alt"
    assert result["identifiers"] == (
        ("arxiv", "1501.00001"),
        ("doi", "10.1234/alt"),
        ("handle", "1721.1/123456"),
        ("isbn", "9780306406157"),
        ("pmid", "31452104"),
        ("urn", "urn:nbn:de:0183-mbi0002519"),
    )
    assert result["isbn"] == ("9780306406157",)
    assert result["issn"] == (Issn("1476-4687", "electronic"), Issn("0028-0836", "print"))


def test_alt_identifier_ranks_between_identifier_and_free_text() -> None:  # synthetic
    alt = ("relation", "info:eu-repo/semantics/altIdentifier/doi/10.1234/alt")
    citation = ("identifier", "Smith (2020) Title. J 1(2). DOI: 10.1234/cited")
    assert oai_dc_fields(dc(("identifier", "doi:10.1234/own"), alt))["doi"] == "10.1234/own"
    assert oai_dc_fields(dc(citation, alt))["doi"] == "10.1234/alt"


@pytest.mark.parametrize(
    ("name", "key", "own_doi", "foreign"),
    [
        # Zenodo: dc:relation is the concept DOI of all versions
        (
            "zenodo_listrecords_oai_dc_resumed_page.xml",
            "oai:zenodo.org:20589672",
            "10.5281/zenodo.20589672",
            "10.5281/zenodo.20589671",
        ),
        (
            "zenodo_listrecords_oai_dc_resumed_page.xml",
            "oai:zenodo.org:20565714",
            "10.5281/zenodo.20565714",
            "10.5281/zenodo.20565713",
        ),
        # DataCite 2012: "doi:10.5194/hessd-9-11049-2012" is the paper this dataset supplements
        (
            "datacite_oai_dc_2012.xml",
            "oai:oai.datacite.org:1212666",
            "10.5880/gfz.5.4.2012.001",
            "10.5194/hessd-9-11049-2012",
        ),
        # RCAAP: publisher URLs in dc:relation carry DOIs; no DOI in dc:identifier
        (
            "rcaap_page1_eu_repo_types.xml",
            "oai:repositorio.ipl.pt:10400.21/5435",
            None,
            "10.1007/s13244-014-0317-5",
        ),
        (
            "rcaap_page1_eu_repo_types.xml",
            "oai:repositorio.ipl.pt:10400.21/2890",
            None,
            "10.3109/21679169.2013.840859",
        ),
    ],
)
def test_relation_dois_are_never_the_records_doi(
    name: str, key: str, own_doi: str | None, foreign: str
) -> None:
    result = fields(name, key)
    assert result["doi"] == own_doi
    assert all(foreign not in value for _, value in result["identifiers"])


def test_relation_and_source_dois_are_not_taken() -> None:  # synthetic
    result = oai_dc_fields(
        dc(
            ("title", "T"),
            ("relation", "https://doi.org/10.1234/dataset"),
            ("relation", "10.1234/version"),
            ("source", "Journal of X; Vol 1, No 2 (2020); doi:10.1234/issue"),
        )
    )
    assert result["doi"] is None
    assert result["identifiers"] == ()
    assert (result["container_title"], result["volume"], result["issue"]) == ("Journal of X", "1", "2")


# --- other identifiers --------------------------------------------------------------------------


def test_identifier_schemes() -> None:  # synthetic
    result = oai_dc_fields(
        dc(
            ("identifier", "hdl:1721.1/123"),
            ("identifier", "https://hdl.handle.net/1721.1/456"),
            ("identifier", "PMID: 31452104"),
            ("identifier", "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC6707467/"),
            ("identifier", "arXiv:2101.00001v3"),
            ("identifier", "ISBN: 978-0-306-40615-7"),
            ("identifier", "urn:isbn:0-306-40615-2"),
            ("identifier", "ISSN: 0951-3558"),
            ("identifier", "urn:issn:1476-4687"),
            ("identifier", "URN:NBN:de:0183-mbi0002519"),
            ("identifier", "https://repo.example.org/files/paper.pdf"),
            ("identifier", "https://repo.example.org/items/42"),
            ("identifier", "not an identifier"),
        )
    )
    assert result["identifiers"] == (
        ("arxiv", "2101.00001"),
        ("handle", "1721.1/123"),
        ("handle", "1721.1/456"),
        ("isbn", "9780306406157"),
        ("pmcid", "PMC6707467"),
        ("pmid", "31452104"),
        ("url", "https://repo.example.org/items/42"),  # a landing page beats the PDF
        ("urn", "urn:nbn:de:0183-mbi0002519"),
    )
    assert result["isbn"] == ("9780306406157",)  # ISBN-10 and -13 of one book
    assert result["issn"] == (Issn("0951-3558"), Issn("1476-4687"))
    assert result["url"] == "https://repo.example.org/items/42"


def test_erasmus_dspace_bare_isbn_and_issn() -> None:
    # DSpace flattens dc.identifier.isbn/.issn into bare dc:identifier values
    books = {
        "hdl:1765/308": "9789058920362",  # 90-5892-036-4
        "hdl:1765/309": "9789058920324",  # "90 - 5892 - 032 - 1"
        "hdl:1765/315": "9789090149806",  # 90-9014980-5
    }
    for key, isbn in books.items():
        result = fields("erasmus_dspace_2003.xml", key)
        assert result["isbn"] == (isbn,)
        assert ("isbn", isbn) in result["identifiers"]
        assert result["authors"] == ()  # Erasmus lists people as dc:contributor only
    paper = fields("erasmus_dspace_2003.xml", "hdl:1765/317")
    assert paper["issn"] == (Issn("1566-5283"),)
    assert paper["isbn"] == ()
    assert paper["type"] == "report"  # Working Paper
    assert fields("erasmus_dspace_2003.xml", "hdl:1765/315")["type"] == "report"  # Technical Report
    other = fields("erasmus_dspace_2003.xml", "hdl:1765/308")
    assert other["type"] == "other"
    assert other["language"] is None  # "other"
    # only system timestamps: the first is used, at its own precision
    assert other["date"] == PartialDate(2003, 4, 15)


def test_datacite_2012_oai_dc_crosswalk() -> None:
    ibj = fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1540717")
    assert ibj["doi"] == "10.6091/ibj.1104.2012"
    assert ibj["type"] == "journal-article"  # Text + Article
    assert ibj["language"] == "en"  # eng
    # "SeriesInformation" labels the next description: it is the container, not the abstract
    assert ibj["abstract"] is None
    assert ibj["container_title"] == "Iranian Biomedical Journal (IBJ)"
    assert ibj["issn"] == (Issn("1028-852X"),)
    assert ibj["authors"][0] == Author(name="Reza Yadegarazari", family="Yadegarazari", given="Reza")

    assert fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1540719")["authors"] == (
        Author(name="World Bank"),
    )
    assert fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1540765")["authors"] == (
        Author(name="Jenni Schmitt et al."),
    )

    gms = fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1543869")
    assert ids(gms, "urn") == ["urn:nbn:de:0183-mbi0002523"]  # from "urn:urn:nbn:…"
    assert gms["abstract"] is None  # "[for full text, please go to the a.m. URL]"
    assert gms["license"] == "https://creativecommons.org/licenses/by-nc-nd/3.0/de/"  # URL inside text
    assert gms["container_title"] == "GMS Medizin - Bibliothek - Information"

    flood = fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1212666")
    assert flood["type"] == "dataset"
    assert flood["abstract"].startswith("Flood event documentations are a valuable data source")
    assert "1952-2002" not in flood["keywords"]  # no letter: not a keyword
    assert "Floods" in flood["keywords"]

    cdiac = fields("datacite_oai_dc_2012.xml", "oai:oai.datacite.org:1539856")
    assert cdiac["type"] == "dataset"
    assert cdiac["authors"] == (
        Author(name="Environmental Sciences Division, Oak Ridge National Laboratory"),
    )


# --- types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("oai:repositorio-aberto.up.pt:10216/11441", "dissertation"),  # eu-repo doctoralThesis
        ("oai:repositorio-aberto.up.pt:10216/12148", "dissertation"),  # eu-repo masterThesis
        ("oai:repositorio-aberto.up.pt:10216/81653", "book"),  # eu-repo book
        ("oai:repositorio.ipl.pt:10400.21/5435", "proceedings-article"),  # conferenceObject
        ("oai:repositorio.ipl.pt:10400.21/5424", "other"),  # lecture
        ("oai:repositorio.ipl.pt:10400.21/2890", "journal-article"),  # article
        ("oai:repositorio.ipl.pt:10400.21/4375", "book-chapter"),  # bookPart
        # eu-repo article + publishedVersion + "review": the first that maps wins
        ("oai:ojs.revistas.rcaap.pt:article/3184", "journal-article"),
    ],
)
def test_rcaap_eu_repo_types(key: str, expected: str) -> None:
    assert fields("rcaap_page1_eu_repo_types.xml", key)["type"] == expected


def test_rcaap_page2() -> None:
    editorial = fields("rcaap_page2_eu_repo.xml", "oai:ojs.revistas.rcaap.pt:article/7877")
    assert editorial["type"] == "journal-article"
    assert editorial["language"] == "pt"  # por
    assert editorial["authors"] == (Author(name="Barbosa, Tiago M", family="Barbosa", given="Tiago M"),)
    assert editorial["url"] == "http://www.rcaap.pt/detail.jsp?id=oai:ojs.revistas.rcaap.pt:article/7877"
    article = fields("rcaap_page2_eu_repo.xml", "oai:ojs.revistas.rcaap.pt:article/4100")
    assert len(article["authors"]) == 6  # the funder in dc:contributor is not an author
    assert article["license"] is None  # "openAccess"
    thesis = fields("rcaap_page2_eu_repo.xml", "oai:ubibliorum.ubi.pt:10400.6/2163")
    assert thesis["type"] == "dissertation"
    # the advisors are dc:contributor
    assert [a.name for a in thesis["authors"]] == ["Dias, Lara da Conceição Moura"]
    assert thesis["keywords"] == ("Planeamento urbano", "Reurbanização")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        (["Text"], None),
        (["TEXTO"], None),
        (["info:eu-repo/semantics/publishedVersion"], None),
        (["Peer-reviewed"], None),
        (["info:eu-repo/semantics/openAccess"], None),
        (["Article"], "journal-article"),
        (["Journal Article"], "journal-article"),
        (["info:eu-repo/semantics/contributionToPeriodical"], "journal-article"),
        (["Text", "Article"], "journal-article"),
        (["Image", "Journal Article"], "journal-article"),  # "other" never beats a specific type
        (["book"], "book"),
        (["bookPart"], "book-chapter"),
        (["Book chapter"], "book-chapter"),
        (["Chapter"], "book-chapter"),
        (["conferenceObject"], "proceedings-article"),
        (["Conference paper"], "proceedings-article"),
        (["conferencePaper"], "proceedings-article"),
        (["conferencePoster"], "proceedings-article"),
        (["Conference proceedings"], "proceedings-article"),
        (["doctoralThesis"], "dissertation"),
        (["masterThesis"], "dissertation"),
        (["bachelorThesis"], "dissertation"),
        (["Thesis"], "dissertation"),
        (["Dissertation"], "dissertation"),
        (["report"], "report"),
        (["workingPaper"], "report"),
        (["Technical Report"], "report"),
        (["info:eu-repo/semantics/preprint"], "posted-content"),
        (["Dataset"], "dataset"),
        (["review"], "other"),
        (["bookReview"], "other"),
        (["info:eu-repo/semantics/other"], "other"),
        (["printed serial"], "other"),  # unknown
        (["http://purl.org/coar/resource_type/c_6501"], "journal-article"),
        (["http://purl.org/coar/resource_type/c_db06"], "dissertation"),
    ],
)
def test_dc_type_mapping(values: list[str], expected: str | None) -> None:  # synthetic
    result = oai_dc_fields(dc(("title", "T"), *(("type", v) for v in values)))
    assert result["type"] == expected
    assert expected is None or expected in TYPES


# --- authors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creator", "expected"),
    [
        ("Knox, Colin (0000-0002-1825-0097)", Author("Knox, Colin", "Knox", "Colin", "0000-0002-1825-0097")),
        (
            "Knox, Colin https://orcid.org/0000-0002-1825-0097",
            Author("Knox, Colin", "Knox", "Colin", "0000-0002-1825-0097"),
        ),
        (
            "Knox, Colin [ORCID: 0000-0002-1825-0097]",
            Author("Knox, Colin", "Knox", "Colin", "0000-0002-1825-0097"),
        ),
        # a wrong check digit is removed from the name but not kept as an ORCID
        ("Knox, Colin (0000-0002-1825-0098)", Author("Knox, Colin", "Knox", "Colin", None)),
        ("Colin Knox", Author("Colin Knox", "Knox", "Colin")),
        ("Ludwig van Beethoven", Author("Ludwig van Beethoven", "van Beethoven", "Ludwig")),
        ("O'Neill, Morgan", Author("O'Neill, Morgan", "O'Neill", "Morgan")),
        ("World Health Organization", Author("World Health Organization")),
        ("Madonna", Author("Madonna")),
        ("Smith, John and Doe, Jane", Author("Smith, John and Doe, Jane")),
        ("The ATLAS Collaboration", Author("The ATLAS Collaboration")),
    ],
)
def test_dc_creator_names(creator: str, expected: Author) -> None:  # synthetic
    assert oai_dc_fields(dc(("creator", creator)))["authors"] == (expected,)


# --- dates, subjects, licences ---------------------------------------------------------------


def test_dc_dates() -> None:  # synthetic
    stamped = dc(("date", "2015-10-30T14:02:13Z"), ("date", "2019-05"))
    assert oai_dc_fields(stamped)["date"] == PartialDate(2019, 5)
    embargo = dc(("date", "info:eu-repo/date/embargoEnd/2030-01-01"), ("date", "2019"))
    assert oai_dc_fields(embargo)["date"] == PartialDate(2019)
    assert oai_dc_fields(dc(("date", "2019-02-30")))["date"] == PartialDate(2019, 2)  # keeps what is valid
    assert oai_dc_fields(dc(("date", "[1889]")))["date"] == PartialDate(1889)
    assert oai_dc_fields(dc(("date", "sometime"), ("title", "T")))["date"] is None


def test_dc_subjects_and_classifications() -> None:  # synthetic
    result = oai_dc_fields(
        dc(
            ("subject", "info:eu-repo/classification/ddc/330"),
            ("subject", "ddc:004.6"),
            ("subject", "info:eu-repo/classification/jel/C23"),
            ("subject", "E-government; Kazakhstan"),
            ("subject", "85.00;85.25"),
            ("subject", "kazakhstan"),
        )
    )
    assert result["subjects"] == (Subject("DDC", "330"), Subject("DDC", "004.6"), Subject("JEL", "C23"))
    assert result["keywords"] == ("E-government", "Kazakhstan")


@pytest.mark.parametrize(
    ("rights", "expected"),
    [
        (["info:eu-repo/semantics/openAccess"], None),
        (["Copyright (c) 2015 Motricidade"], None),
        (["CC BY 4.0"], "https://creativecommons.org/licenses/by/4.0/"),
        (
            ["Creative Commons Attribution-NonCommercial 4.0 International"],
            "https://creativecommons.org/licenses/by-nc/4.0/",
        ),
        (["cc_by"], "CC BY"),
        (["CC0 1.0"], "https://creativecommons.org/publicdomain/zero/1.0/"),
        (
            ["https://creativecommons.org/licenses/by/4.0/legalcode"],
            "https://creativecommons.org/licenses/by/4.0/",
        ),
        (
            ["Attribution 3.0 United States", "http://creativecommons.org/licenses/by/3.0/us/"],
            "https://creativecommons.org/licenses/by/3.0/us/",
        ),
        (["https://opensource.org/licenses/MIT"], "https://opensource.org/licenses/MIT"),
    ],
)
def test_dc_rights_to_license(rights: list[str], expected: str | None) -> None:  # synthetic
    assert oai_dc_fields(dc(("title", "T"), *(("rights", r) for r in rights)))["license"] == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "International Journal of Public Sector Management; Vol 32, No 4 (2019); 362-382",
            ("International Journal of Public Sector Management", "32", "4", "362-382"),
        ),
        ("Motricidade; Vol. 11 No. 4 (2015): Suplemento", ("Motricidade", "11", "4", None)),
        ("Revista X; v. 5 n. 2 (2010)", ("Revista X", "5", "2", None)),
        ("Journal of X, 12(3), 45-67", ("Journal of X", "12", "3", "45-67")),
        ("Journal of X", ("Journal of X", None, None, None)),
        ("Nature 2019; 12", (None, None, None, None)),  # unsure and with digits: nothing
    ],
)
def test_dc_source_forms(source: str, expected: tuple[str | None, ...]) -> None:  # synthetic
    result = oai_dc_fields(dc(("title", "T"), ("source", source)))
    assert (result["container_title"], result["volume"], result["issue"], result["pages"]) == expected


@pytest.mark.parametrize(
    ("key", "container", "issn"),
    [
        (
            "oai:zenodo.org:20568304",
            ("Journal of Applied Health Sciences and Medicine", "5", "9", "16-23"),
            "2583-1887",
        ),
        (
            "oai:zenodo.org:20632831",
            ("South American Development Society Journal", "11", "31", "271-293"),
            None,
        ),
        (
            "oai:zenodo.org:20531931",
            ("Musytari: Neraca Manajemen, Akuntansi, dan Ekonomi", "25", "7", None),
            "3025-9495",
        ),
        ("oai:zenodo.org:20637409", ("ТЕРАПЕВТИЧЕСКИЙ ВЕСТНИК УЗБЕКИСТАНА", None, None, "113-121"), None),
    ],
)
def test_zenodo_oai_dc_sources(key: str, container: tuple[str | None, ...], issn: str | None) -> None:
    result = fields("zenodo_listrecords_oai_dc_sources.xml", key)
    assert (result["container_title"], result["volume"], result["issue"], result["pages"]) == container
    assert result["issn"] == ((Issn(issn),) if issn else ())


def test_zenodo_oai_dc_misc() -> None:
    jpub = fields("zenodo_listrecords_oai_dc_sources.xml", "oai:zenodo.org:20568304")
    assert jpub["doi"] == "10.58614/jahsm593"
    assert jpub["url"] == "https://www.jpub.org/article-details.php?article-id=246"
    assert ids(jpub, "oai") == ["oai:zenodo.org:20568304"]
    # Plazi treatment: its dc:source is a citation of the article it comes from
    plazi = fields("zenodo_listrecords_oai_dc_until.xml", "oai:zenodo.org:8436503")
    assert plazi["doi"] == "10.5281/zenodo.8436503"
    assert plazi["container_title"] is None
    assert fields("zenodo_listrecords_oai_dc_until.xml", "oai:zenodo.org:8437146")["container_title"] == (
        "People and Nature"
    )
    # doubly escaped HTML and a leading "Abstract:" heading
    html = fields("zenodo_listrecords_oai_dc_resumed_page.xml", "oai:zenodo.org:20589672")
    assert html["abstract"].startswith("This paper proposes a topological origin for gauge field theory")
    assert "<" not in html["abstract"] and "&" not in html["abstract"]
    assert html["license"] == "https://creativecommons.org/licenses/by/4.0/"
    assert html["type"] == "other"
    assert html["authors"][0] == Author(name="liu, xudong", family="liu", given="xudong")


# --- namespaces: BnF, PUC-Rio -------------------------------------------------------------------


def test_bnf_gallica_namespaces_on_root() -> None:
    result = fields("bnf_gallica_ns_on_root.xml", "oai:bnf.fr:gallica/ark:/12148/bpt6k5440618t")
    assert result["title"] == "Le Poème. Publication mensuelle"
    assert result["date"] == PartialDate(1889, 4)
    assert result["date"].precision == "month"
    assert result["language"] == "fr"  # fre
    assert result["publisher"] == "[s.n.?] (Paris)"
    assert result["type"] == "other"  # texte/text/printed serial: only unknown beyond the generic
    assert result["url"] == "http://gallica.bnf.fr/ark:/12148/bpt6k5440618t"
    assert ids(result, "ark") == ["ark:/12148/bpt6k5440618t"]
    assert result["container_title"] is None  # dc:source is a shelf mark
    assert result["authors"] == ()
    assert result["license"] is None  # "public domain" is a statement, not a licence
    assert result["doi"] is None


def test_pucrio_default_dc_namespace_and_language_tags() -> None:
    result = fields("pucrio_default_dc_namespace.xml", "oai:MAXWELL.puc-rio.br:24182")
    assert result["title"] == "APERFEIÇOAMENTO DE TACÔMETRO MAGNÉTICO PARA COLUNAS DE PERFURAÇÃO"
    assert result["authors"] == (
        Author(name="DIOGO SPAZZAFUMO REINOSO", family="REINOSO", given="DIOGO SPAZZAFUMO"),
    )
    assert result["keywords"] == ("PERFURACAO", "TACOMETRO", "GMR - MAGNETORRESISTENCIA GIGANTE")
    assert result["abstract"].startswith("No Projeto Final do aluno")
    assert result["type"] is None  # TEXTO
    assert result["language"] == "pt"
    assert result["date"] == PartialDate(2015, 3, 3)


# --- DataCite ----------------------------------------------------------------------------------


def test_zenodo_getrecord_datacite() -> None:
    result = fields("zenodo_getrecord_datacite.xml", "oai:zenodo.org:10357859")
    assert result["doi"] == "10.5281/zenodo.10357859"  # not the IsVersionOf concept DOI 10.5281/zenodo.596581
    assert result["identifiers"] == (("doi", "10.5281/zenodo.10357859"), ("oai", "oai:zenodo.org:10357859"))
    assert result["title"] == "Research Data Management Organiser (RDMO)"
    assert result["subtitle"] is None
    assert len(result["authors"]) == 9
    assert result["authors"][1] == Author(
        name="Michaelis, Olaf", family="Michaelis", given="Olaf", orcid="0000-0002-5282-703X"
    )
    assert result["authors"][6] == Author(
        name="Martínez Muñoz, David", family="Martínez Muñoz", given="David"
    )
    assert result["date"] == PartialDate(2023, 12, 11)
    assert result["publisher"] == "Zenodo"
    assert result["type"] == "other"  # Software
    assert result["license"] == "http://www.apache.org/licenses/LICENSE-2.0"
    assert result["abstract"].startswith("RDMO 2.1.0 (Dec 11, 2023)\n\nRefactor progress bar and overview")
    assert "please cite it as below" not in result["abstract"]  # descriptionType="Other"
    assert result["container_title"] is None


@functools.cache
def _listing() -> dict[str, dict[str, Any]]:
    return {
        key: fields("zenodo_listrecords_datacite.xml", key)
        for key in _records("zenodo_listrecords_datacite.xml")
    }


def test_zenodo_datacite_doi_is_never_a_related_identifier() -> None:
    for key, element in _records("zenodo_listrecords_datacite.xml").items():
        assert element is not None
        related = {strict_doi(e.text) for e in element.iter("{*}relatedIdentifier")} - {None}
        own = _listing()[key]["doi"]
        assert own is not None
        assert own not in related
        assert own == strict_doi(element.findtext("{*}identifier"))


def test_zenodo_datacite_records() -> None:
    records = _listing()
    presentation = records["oai:zenodo.org:8435696"]
    assert presentation["type"] == "other"  # Text + "Presentation"
    # Zenodo put the unsplit name into familyName and sent no givenName
    assert presentation["authors"][0] == Author(
        name="Matteo Marchegiani", family="Marchegiani", given="Matteo", affiliations=("ETH Zurich",)
    )

    dryad = records["oai:zenodo.org:8433037"]
    assert dryad["doi"] == "10.5061/dryad.cz8w9gj8q"
    assert dryad["type"] == "dataset"
    assert dryad["license"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert dryad["authors"][0] == Author(
        name="Dahlgren, Johan",
        family="Dahlgren",
        given="Johan",
        orcid="0000-0002-1125-9769",
        affiliations=("University of Southern Denmark",),
    )
    assert dryad["keywords"] == ("Rhododendron", "botanic garden", "age")

    plazi = records["oai:zenodo.org:8436503"]
    assert plazi["doi"] == "10.5281/zenodo.8436503"  # not IsPartOf 10.11646/zootaxa.5353.2.3
    assert plazi["url"] == "http://treatment.plazi.org/id/23593C1D04231753FF114995FC52DAA9"
    assert ("url", plazi["url"]) in plazi["identifiers"]

    assert records["oai:zenodo.org:8436180"]["authors"][0] == Author(
        name="Dodson-Robinson, Sarah and Haley, Charlotte",
        affiliations=("University of Delaware, Argonne National Lab",),
    )
    assert records["oai:zenodo.org:8433925"]["authors"][0].family is None  # "AI-PRISM Consortium"

    preprint = records["oai:zenodo.org:8433329"]
    assert preprint["type"] == "posted-content"
    assert preprint["license"] == "https://creativecommons.org/licenses/by/1.0/"

    article = records["oai:zenodo.org:8434828"]
    assert article["type"] == "journal-article"
    assert article["language"] == "en"
    assert (article["authors"][0].family, article["authors"][0].given) == ("Liu", "Yunbo")

    assert records["oai:zenodo.org:8433947"]["language"] is None  # "ang" has no ISO 639-1 code
    assert records["oai:zenodo.org:8433947"]["authors"][0] == Author(
        name="Larwubah", family="Larwubah", affiliations=("Zhejiang Sci-Tech University",)
    )
    lion = records["oai:zenodo.org:8406062"]
    assert lion["authors"][1].family == "A. Etotépé"  # explicit familyName/givenName are kept
    assert lion["authors"][1].given == "Sogbohossou"


DATACITE_KERNEL_4 = """
  <identifier identifierType="DOI">10.1234/ABC-1</identifier>
  <creators>
    <creator>
      <creatorName nameType="Personal">Knox, Colin</creatorName>
      <nameIdentifier nameIdentifierScheme="ORCID" schemeURI="https://orcid.org"
        >https://orcid.org/0000-0002-1825-0097</nameIdentifier>
      <affiliation affiliationIdentifier="https://ror.org/052gg0110" affiliationIdentifierScheme="ROR"
        >University of Oxford</affiliation>
      <affiliation>University of Oxford</affiliation>
    </creator>
    <creator><creatorName nameType="Organizational">Example University Library</creatorName></creator>
    <creator><creatorName>Janenova, Saltanat</creatorName></creator>
  </creators>
  <titles>
    <title xml:lang="en">The e-government paradox</title>
    <title titleType="Subtitle">Evidence from Kazakhstan</title>
    <title titleType="TranslatedTitle">Le paradoxe</title>
  </titles>
  <publisher>Emerald</publisher>
  <publicationYear>2018</publicationYear>
  <subjects>
    <subject>E-government; Kazakhstan</subject>
    <subject subjectScheme="DDC" classificationCode="352">Public administration</subject>
  </subjects>
  <dates><date dateType="Issued">2019-01/2019-12</date></dates>
  <language>en-GB</language>
  <resourceType resourceTypeGeneral="Text">Journal article</resourceType>
  <alternateIdentifiers>
    <alternateIdentifier alternateIdentifierType="URL">https://repo.example.org/items/7</alternateIdentifier>
    <alternateIdentifier alternateIdentifierType="arXiv">arXiv:1501.00001</alternateIdentifier>
    <alternateIdentifier alternateIdentifierType="PMID">31452104</alternateIdentifier>
    <alternateIdentifier alternateIdentifierType="ISBN">978-0-306-40615-7</alternateIdentifier>
    <alternateIdentifier alternateIdentifierType="Handle">1721.1/99</alternateIdentifier>
  </alternateIdentifiers>
  <relatedIdentifiers>
    <relatedIdentifier relationType="IsVersionOf" relatedIdentifierType="DOI"
      >10.1234/CONCEPT</relatedIdentifier>
    <relatedIdentifier relationType="IsPartOf" relatedIdentifierType="ISSN">0951-3558</relatedIdentifier>
    <relatedIdentifier relationType="Cites" relatedIdentifierType="ISSN">1476-4687</relatedIdentifier>
  </relatedIdentifiers>
  <rightsList>
    <rights rightsIdentifier="CC-BY-4.0" rightsIdentifierScheme="SPDX"
      >Creative Commons Attribution 4.0</rights>
  </rightsList>
  <descriptions>
    <description descriptionType="Other">A note.</description>
    <description descriptionType="Abstract"
      >&lt;p&gt;Purpose: to look.&lt;/p&gt;&lt;p&gt;Findings: seen.&lt;/p&gt;</description>
  </descriptions>
  <relatedItems>
    <relatedItem relationType="IsPublishedIn" relatedItemType="Journal">
      <relatedItemIdentifier relatedItemIdentifierType="ISSN">0951-3558</relatedItemIdentifier>
      <titles><title>International Journal of Public Sector Management</title></titles>
      <volume>32</volume><issue>4</issue><firstPage>362</firstPage><lastPage>382</lastPage>
    </relatedItem>
  </relatedItems>
"""


def test_datacite_kernel_4_synthetic() -> None:  # synthetic
    result = datacite_fields(datacite(DATACITE_KERNEL_4))
    assert result == {
        "doi": "10.1234/abc-1",
        "title": "The e-government paradox",
        "subtitle": "Evidence from Kazakhstan",
        "authors": (
            Author("Knox, Colin", "Knox", "Colin", "0000-0002-1825-0097", ("University of Oxford",)),
            Author("Example University Library"),
            Author("Janenova, Saltanat", "Janenova", "Saltanat"),
        ),
        "abstract": "Purpose: to look.\n\nFindings: seen.",
        "container_title": "International Journal of Public Sector Management",
        "volume": "32",
        "issue": "4",
        "pages": "362-382",
        "publisher": "Emerald",
        "date": PartialDate(2019, 1),
        "type": "journal-article",
        "language": "en",
        "keywords": ("E-government", "Kazakhstan"),
        "subjects": (Subject("DDC", "352", "Public administration"),),
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "issn": (Issn("0951-3558"),),
        "isbn": ("9780306406157",),
        "url": "https://repo.example.org/items/7",
        "identifiers": (
            ("arxiv", "1501.00001"),
            ("doi", "10.1234/abc-1"),
            ("handle", "1721.1/99"),
            ("isbn", "9780306406157"),
            ("pmid", "31452104"),
            ("url", "https://repo.example.org/items/7"),
        ),
    }
    build(result)


def test_oai_datacite_wrapper_kernel_3() -> None:  # synthetic, the oai.datacite.org shape
    element = etree.fromstring(
        '<oai_datacite xmlns="http://schema.datacite.org/oai/oai-1.1/">'
        "<schemaVersion>3</schemaVersion><datacentreSymbol>TIB.GFZ</datacentreSymbol><payload>"
        '<resource xmlns="http://datacite.org/schema/kernel-3">'
        '<identifier identifierType="DOI">10.5880/GFZ.5.4.2012.001</identifier>'
        "<creators><creator><creatorName>Uhlemann, Steffi</creatorName></creator></creators>"
        "<titles><title>Supplement</title></titles><publisher>GFZ</publisher>"
        '<publicationYear>2012</publicationYear><resourceType resourceTypeGeneral="Dataset"/>'
        "</resource></payload></oai_datacite>",
        STRICT,
    )
    result = normalize_metadata(element)
    assert result["doi"] == "10.5880/gfz.5.4.2012.001"
    assert result["date"] == PartialDate(2012)  # publicationYear when no Issued date
    assert result["type"] == "dataset"
    assert result["authors"] == (Author("Uhlemann, Steffi", "Uhlemann", "Steffi"),)


@pytest.mark.parametrize(
    ("general", "text", "expected"),
    [
        ("JournalArticle", "", "journal-article"),
        ("Text", "Journal article", "journal-article"),
        ("Text", "", None),
        ("Text", "Presentation", "other"),
        ("Text", "Taxonomic treatment", "other"),
        ("Dataset", "Survey data", "dataset"),
        ("Preprint", "", "posted-content"),
        ("ConferencePaper", "", "proceedings-article"),
        ("Book", "", "book"),
        ("BookChapter", "", "book-chapter"),
        ("Dissertation", "", "dissertation"),
        ("Report", "", "report"),
        ("Software", "", "other"),
        ("Image", "Figure", "other"),
        ("Other", "", "other"),
        ("Other", "Conference paper", "proceedings-article"),
    ],
)
def test_datacite_types(general: str, text: str, expected: str | None) -> None:  # synthetic
    body = (
        '<identifier identifierType="DOI">10.1234/x</identifier>'
        f'<resourceType resourceTypeGeneral="{general}">{text}</resourceType>'
    )
    assert datacite_fields(datacite(body))["type"] == expected


# --- dispatch and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key", "namespace"),
    [
        ("cds_getrecord_marcxml.xml", "oai:cds.cern.ch:2653609", "http://www.loc.gov/MARC21/slim"),
        (
            "ncar_esg_dif.xml",
            "oai:ESG-NCAR:701c2719-481e-11e5-861f-00c0f03d5b7c",
            "http://gcmd.gsfc.nasa.gov/Aboutus/xml/dif/",
        ),
        (
            "pos_ext_dc.xml",
            "oai:pos.sissa.it:LATTICE 2013/001",
            "http://pos.sissa.it/pos-ext_dc/pos-ext_dc.xsd",
        ),
    ],
)
def test_unsupported_formats_raise_with_namespace(name: str, key: str, namespace: str) -> None:
    with pytest.raises(NormalizationError, match="unsupported metadata format") as info:
        normalize_metadata(payload(name, key))
    assert f"{{{namespace}}}" in str(info.value)


def test_the_oai_metadata_element_itself_is_accepted() -> None:
    metadata = payload(*SEED).getparent()
    assert metadata is not None and metadata.tag == f"{OAI}metadata"
    assert normalize_metadata(metadata) == fields(*SEED)


def test_unusable_metadata_raises() -> None:  # synthetic
    with pytest.raises(NormalizationError, match="without any Dublin Core content"):
        oai_dc_fields(dc())
    with pytest.raises(NormalizationError, match="without any usable content"):
        oai_dc_fields(dc(("format", "application/pdf")))
    with pytest.raises(NormalizationError, match="unsupported metadata format"):
        oai_dc_fields(etree.fromstring('<x xmlns="http://www.openarchives.org/OAI/2.0/oai_dc/"/>'))
    with pytest.raises(NormalizationError, match="payload"):
        normalize_metadata(
            etree.fromstring('<oai_datacite xmlns="http://schema.datacite.org/oai/oai-1.0/"/>')
        )
    with pytest.raises(NormalizationError, match="empty <metadata>"):
        normalize_metadata(etree.fromstring(f'<metadata xmlns="{OAI[1:-1]}"/>'))
    with pytest.raises(NormalizationError, match="unsupported metadata format"):
        datacite_fields(dc(("title", "T")))


def test_record_without_title_is_returned() -> None:  # synthetic
    result = oai_dc_fields(dc(("identifier", "doi:10.1234/untitled")))
    assert result["title"] is None
    assert result["doi"] == "10.1234/untitled"


# --- every record of every supported fixture ------------------------------------------------


def _all_payloads() -> Iterator[tuple[str, str, etree._Element]]:
    for name in SUPPORTED_FILES:
        for key, element in _records(name).items():
            if element is not None:
                yield name, key, element


def test_every_fixture_record_builds_a_record() -> None:
    seen = 0
    for name, key, element in _all_payloads():
        before = etree.tostring(element)
        result = normalize_metadata(element)
        assert etree.tostring(element) == before, (name, key)  # the element is not modified
        assert normalize_metadata(element) == result, (name, key)  # pure
        assert not {"key", "datestamp", "deleted"} & result.keys()
        record = Record(key=key, **result)
        assert list(record.identifiers) == sorted(set(record.identifiers)), (name, key)
        assert record.type is None or record.type in TYPES
        assert record.doi is None or strict_doi(record.doi) == record.doi
        assert all(isinstance(a, Author) and a.name for a in record.authors)
        assert all(isinstance(i, Issn) for i in record.issn)
        assert record.to_json()["key"] == key
        seen += 1
    assert seen == 61  # every non-deleted record of SUPPORTED_FILES


@pytest.mark.parametrize("name", SUPPORTED_FILES)
def test_each_supported_fixture_has_records(name: str) -> None:
    assert any(element is not None for element in _records(name).values())


# --- fast paths: the same answers as the straightforward code -------------------------------

_DC = "{http://purl.org/dc/elements/1.1/}"
_OAI_DC = "{http://www.openarchives.org/OAI/2.0/oai_dc/}"
_CHILD_TAGS = st.sampled_from(
    [f"{_DC}title", f"{_DC}creator", f"{_DC}identifier", f"{_DC}subject", f"{_DC}notdc", "title", "creator",
     "other", "{urn:x}title", "{urn:x}identifier", f"{_OAI_DC}title"]
)  # fmt: skip
_XML_TEXT = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "\n  ", " a ", "Knox, Colin", "10.1234/x"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn", "Co")), max_size=6),
)


@st.composite
def _xml_trees(draw: st.DrawFn, depth: int = 2) -> etree._Element:
    """An oai_dc:dc element with children in the DC, no and other namespaces, comments,
    processing instructions, nested markup, text and tails (None, blank or not)."""
    root = etree.Element(f"{_OAI_DC}dc", nsmap={"oai_dc": _OAI_DC[1:-1], "dc": _DC[1:-1]})

    def fill(parent: etree._Element, level: int) -> None:
        for _ in range(draw(st.integers(0, 4))):
            kind = draw(st.sampled_from(["element", "element", "element", "comment", "pi"]))
            if kind == "comment":
                node = etree.Comment(draw(st.text("abc ", max_size=4)))
            elif kind == "pi":
                node = etree.ProcessingInstruction("pi", draw(st.text("abc", max_size=4)))
            else:
                node = etree.Element(draw(_CHILD_TAGS))
                node.text = draw(_XML_TEXT)
                if level:
                    fill(node, level - 1)
            node.tail = draw(_XML_TEXT)
            parent.append(node)

    fill(root, depth)
    return root


def _reference_dc_values(dc: etree._Element) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for child in dc:
        if not isinstance(child.tag, str) or oai_formats._namespace(child) not in (DC_NAMESPACE, ""):
            continue
        text = "".join(t for t in child.itertext() if isinstance(t, str)).strip()
        if text:
            values.setdefault(oai_formats._local(child), []).append(text)
    return values


@given(_xml_trees())
def test_dc_values_match_a_reading_of_every_child(dc: etree._Element) -> None:
    # One pass, known tags looked up, and .text instead of itertext() for childless elements.
    assert oai_formats._dc_values(dc) == _reference_dc_values(dc)
    for child in dc.iter(etree.Element):
        assert oai_formats._text(child) == "".join(child.itertext()).strip()


@given(_xml_trees(), st.sampled_from(["title", "creator", "identifier", "other", "notdc", "x"]))
def test_children_match_a_filter_on_every_child(root: etree._Element, name: str) -> None:
    for element in [root, *root.iter(etree.Element)]:
        namespace = oai_formats._namespace(element)
        expected = [
            c
            for c in element
            if isinstance(c.tag, str)
            and oai_formats._local(c) == name
            and oai_formats._namespace(c) == namespace
        ]
        assert list(oai_formats._children(element, name)) == expected


def test_regex_whitespace_is_str_whitespace() -> None:
    # _NAME_WORDS and _FAMILY_COMMA_GIVEN stand in for str.split() and str.strip(): they
    # must agree on what whitespace is, for every code point.
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert re.findall(r"\s", every) == [ch for ch in every if ch.isspace()]


_NAME_PIECES = st.sampled_from(
    [
        "Ann", "Lee", "van", "de", "O'Neill", "A.", "A.-P.", "R", "Łukasz", "Müller", "’", "-", ".", "'",
        ",", ", ", " ", "  ", "\t", "\n", "\u00a0", "\u2009", "\x1c", "\u3000", "University", "UNIVERSITÄT",
        "et al.", "al.", "and", "1", "_", "x9", "(", "Group", "0000-0002-1825-0097", "orcid.org/",
    ]
)  # fmt: skip
_NAMES = st.one_of(st.text(max_size=12), st.lists(_NAME_PIECES, max_size=16).map("".join))


def _reference_is_name_part(text: str, max_words: int) -> bool:
    words = text.split()
    return (
        1 <= len(words) <= max_words
        and all(re.match(rf"^{oai_formats._NAME_WORD}$", w) for w in words)
        and not any(w.casefold() in oai_formats._NOT_PERSONAL for w in words)
    )


def _reference_personal_name(name: str) -> tuple[str | None, str | None]:
    if "," in name:
        family, _, given = name.partition(",")
        family, given = family.strip(), given.strip()
        if not family or not _reference_is_name_part(family, 6):
            return None, None
        if not given:
            return family, None
        if not _reference_is_name_part(given, 6):
            return None, None
        return family, given
    words = name.split()
    if not 2 <= len(words) <= 4 or not _reference_is_name_part(name, 4):
        return None, None
    start = len(words) - 1
    while start > 1 and words[start - 1] in oai_formats._PARTICLES:
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start])


@given(_NAMES)
@example("Monteiro, Ana Paula Teixeira de Almeida Vieira")
@example("Monteiro, Ana Paula Teixeira de Almeida Vieira Lopes")
@example("University of X, Department of Y")
@example("Knox,")
@example(" , Colin")
@example("Ludwig\u00a0van\tBeethoven")
def test_name_split_matches_word_by_word_checks(name: str) -> None:
    # One regular expression per name instead of one per word.
    assert oai_formats._personal_name(name) == _reference_personal_name(name)
    for max_words in (4, 6):
        assert oai_formats._is_name_part(name, max_words) == _reference_is_name_part(name, max_words)


@given(_NAMES)
@example("Knox, Colin (0000-0002-1825-0097)")
@example("Knox, Colin https://orcid.org/0000-0002-1694-233x")
def test_orcid_split_with_and_without_the_digit_check(text: str) -> None:
    match = oai_formats._ORCID_IN_NAME.search(text)
    if match is None:
        expected: tuple[str, str | None] = (text, None)
    else:
        name = (text[: match.start()] + " " + text[match.end() :]).strip(" ,;")
        expected = (" ".join(name.split()), normalize_orcid(match.group("orcid")))
    assert oai_formats._split_orcid(text) == expected


_DATES = st.one_of(
    st.text(max_size=12),
    st.lists(
        st.sampled_from(["2019", "-05", "-13", "T10:00:00Z", " 12:30", "[1889]", "c1998",
                         "info:eu-repo/date/", "embargoEnd/", "2019/2020", " ", "x", "-02-30"]),
        max_size=4,
    ).map("".join),
)  # fmt: skip


@given(st.lists(_DATES, max_size=4))
def test_dc_date_matches_plain_then_stamped(values: list[str]) -> None:
    usable = [v for v in values if not v.strip().lower().startswith("info:eu-repo/date/")]
    plain = [v for v in usable if not oai_formats._TIME_PART.search(v)]
    stamped = [v for v in usable if oai_formats._TIME_PART.search(v)]
    parsed = (oai_formats._parse_date.__wrapped__(v) for v in [*plain, *stamped])
    assert oai_formats._dc_date(values) == next((d for d in parsed if d is not None), None)


def _reference_dc_abstract(descriptions: list[str]) -> tuple[str | None, str | None]:
    candidates: list[str] = []
    series: str | None = None
    label: str | None = None
    for value in descriptions:
        if oai_formats._EDITORIAL_NOTE.match(value):
            continue
        key = re.sub(r"[^a-z]", "", value.casefold())
        if key in oai_formats._DESCRIPTION_TYPES and len(value) < 30:
            label = oai_formats._DESCRIPTION_TYPES[key]
            continue
        if label == "series":
            series = series or value
        elif label in (None, "abstract"):
            text = oai_formats._clean_abstract(value)
            if text is not None and len(text) >= 40:
                candidates.append(text)
        label = None
    return (max(candidates, key=len) if candidates else None), series


_DESCRIPTIONS = st.lists(
    st.one_of(
        st.sampled_from(
            ["Abstract", "SeriesInformation", "Series-Information ", "Other", "[a note]", "Methods"]
        ),
        st.sampled_from(["Abstract"]).map(lambda a: a + " " * 30),  # a label word, but too long for one
        st.text(max_size=60),
        st.just("A description that is long enough to be the abstract of a work."),
    ),
    max_size=5,
)


@given(_DESCRIPTIONS)
def test_dc_abstract_matches_the_label_check_on_every_value(descriptions: list[str]) -> None:
    assert oai_formats._dc_abstract(descriptions) == _reference_dc_abstract(descriptions)


_SOURCES = st.lists(
    st.sampled_from(["Journal of X", ", ", " ", "12", "(3)", "(2023-10-13)", "45-67", "pp. ", ";", "Vol 3",
                     "(", ")", "x", "2019", "-", "é"]),
    max_size=10,
).map("".join)  # fmt: skip


@given(_SOURCES)
@example("People and Nature, (2023-10-13)")
@example("Journal of X, 12(3), 45-67")
@example("Journal of X 12 (3): 45-67, (2020)")
def test_source_hints_are_in_every_match(head: str) -> None:
    # _parse_citation_parts skips a pattern when its hint is missing: the hint must be part
    # of every string the pattern matches.
    if oai_formats._CITATION.match(head):
        assert oai_formats._CITATION_HINT.search(head)
    if oai_formats._ZENODO_SOURCE.match(head):
        assert oai_formats._ZENODO_HINT.search(head)


@given(st.one_of(st.text(max_size=12), st.sampled_from(["[pt] PERFURACAO", " [en-US]x", "[abc]", "a[pt] b"])))
def test_lang_tag_check_matches_the_pattern(value: str) -> None:
    assert oai_formats._strip_lang_tag(value) == oai_formats._LANG_TAG.sub("", value, count=1)


@given(
    st.one_of(
        st.text(max_size=20), st.sampled_from(["Article", "info:eu-repo/semantics/article", "CC BY 4.0"])
    )
)
def test_memoized_helpers_change_nothing(value: str) -> None:
    for helper in (oai_formats._classify_type, oai_formats._cc_from_name, oai_formats._parse_date):
        uncached = helper.__wrapped__(value)
        assert helper(value) == uncached
        assert helper(value) == uncached  # a second time, from the cache


def test_readers_of_absent_elements_give_what_skipping_them_gives() -> None:
    # oai_dc_fields does not call these for elements a record lacks.
    acc = oai_formats._Accumulator()
    assert oai_formats._dc_abstract([]) == (None, None)
    assert oai_formats._parse_source([], acc) == oai_formats._Container()
    assert acc == oai_formats._Accumulator()
    assert oai_formats._dc_subjects([]) == ((), ())
    assert oai_formats._dc_date([]) is None
    assert oai_formats._dc_type([]) is None
    assert oai_formats._license([]) is None
