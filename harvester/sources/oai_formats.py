"""OAI-PMH metadata formats → the fields of a canonical :class:`~harvester.record.Record`.

The OAI source (:mod:`harvester.sources.oai_pmh`) hands over the first element inside a
record's ``<metadata>``, already parsed; the functions here read it and return the
keyword arguments of :class:`Record` other than ``key``, ``datestamp`` and ``deleted``
(the caller reads the OAI header and adds ``("oai", identifier)`` to ``identifiers``).
Everything is a pure function of the element: ``reprocess`` re-runs it on stored raw
XML and must get the same answer.

Two formats are understood, chosen by the namespace of the metadata root and never by
the ``metadataPrefix`` (servers name the same format ``oai_dc``, ``dc``, ``datacite``,
``oai_datacite`` or ``datacite4``):

* **Dublin Core** (``oai_dc``), which every repository must serve. It is also the
  lossiest format: every platform crams its own fields into fifteen elements, so most
  of this module is about reading the conventions of real servers (DSpace, EPrints,
  Pure, OJS, Zenodo, Érudit, RCAAP, DataCite's own 2012 crosswalk) without taking a
  value from an element that describes a *different* work. The rules are in
  :func:`oai_dc_fields`.
* **DataCite** (kernel 2.2, 3 and 4, bare or inside the ``oai_datacite`` wrapper), which
  Zenodo and DataCite serve with typed identifiers, split names and ORCIDs
  (:func:`datacite_fields`).

Anything else (MARCXML, DIF, PoS's ``pos-ext_dc``...) raises
:class:`~harvester.sources.base.NormalizationError` naming the namespace, so that the
record is quarantined with a message an operator can act on (configure ``oai_dc``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from lxml import etree

from harvester.doi import extract_doi, strict_doi
from harvester.identifiers import (
    normalize_arxiv,
    normalize_isbn,
    normalize_issn,
    normalize_language,
    normalize_orcid,
    normalize_pmid,
)
from harvester.record import Author, Issn, PartialDate, Subject
from harvester.sources.base import NormalizationError
from harvester.text import clean_block, clean_text, split_keywords

__all__ = [
    "DATACITE_NAMESPACES",
    "DC_NAMESPACE",
    "OAI_DATACITE_NAMESPACES",
    "OAI_DC_NAMESPACE",
    "datacite_fields",
    "normalize_metadata",
    "oai_dc_fields",
]


def _words(text: str) -> tuple[str, ...]:
    """A word list written as one string (vocabulary tables stay readable)."""
    return tuple(text.split())


OAI_NAMESPACE = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NAMESPACE = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NAMESPACE = "http://purl.org/dc/elements/1.1/"
_DC_BRACE = "{" + DC_NAMESPACE + "}"
# The fifteen Dublin Core elements by tag, with and without the DC namespace → local name.
_DC_ELEMENT_NAMES: dict[str, str] = {
    tag: name
    for name in _words(
        "contributor coverage creator date description format identifier language publisher relation "
        "rights source subject title type"
    )
    for tag in (name, _DC_BRACE + name)
}
#: The DataCite metadata kernels whose ``<resource>`` this module reads.
DATACITE_NAMESPACES: frozenset[str] = frozenset(
    {
        "http://datacite.org/schema/kernel-2.1",
        "http://datacite.org/schema/kernel-2.2",
        "http://datacite.org/schema/kernel-3",
        "http://datacite.org/schema/kernel-4",
    }
)
#: DataCite's OAI wrapper (oai.datacite.org ``oai_datacite``): the kernel ``<resource>``
#: sits in its ``<payload>``.
OAI_DATACITE_NAMESPACES: frozenset[str] = frozenset(
    {
        "http://schema.datacite.org/oai/oai-1.0/",
        "http://schema.datacite.org/oai/oai-1.1/",
    }
)


def normalize_metadata(metadata: etree._Element) -> dict[str, Any]:
    """Record fields from the metadata of one OAI record, dispatched on its namespace.

    ``metadata`` is the format's root element (``oai_dc:dc``, DataCite ``resource``,
    ``oai_datacite``); the OAI ``<metadata>`` element itself is accepted too and its
    first child is read. Raises :class:`NormalizationError` for an unsupported format
    (the message names the root as ``{namespace}tag``) or metadata without content.
    """
    root = metadata
    if _namespace(root) == OAI_NAMESPACE and _local(root) == "metadata":
        child = _first_child(root)
        if child is None:
            raise NormalizationError("empty <metadata> element")
        root = child
    namespace = _namespace(root)
    if namespace == OAI_DC_NAMESPACE:
        return oai_dc_fields(root)
    if namespace in DATACITE_NAMESPACES or namespace in OAI_DATACITE_NAMESPACES:
        return datacite_fields(root)
    raise NormalizationError(f"unsupported metadata format {root.tag}")


# ==========================================================================================
# Dublin Core
# ==========================================================================================


def oai_dc_fields(dc: etree._Element) -> dict[str, Any]:
    """Record fields from an ``oai_dc:dc`` element.

    Dublin Core elements are matched on the DC namespace URI, whatever the prefix: PUC-Rio
    declares DC as the default namespace under an ``oaidc:`` root, BnF Gallica declares
    ``dc``/``oai_dc`` once on the OAI-PMH root. Children in no namespace (``<title>``
    under ``oai_dc:dc``, from servers that forget the DC declaration) are read as DC too.
    Elements are read in document order.

    The rules, and the server behaviour behind them:

    * **DOI.** ``dc:identifier`` only, in three passes, first hit wins: (1) every value
      through :func:`strict_doi` (``doi:10.…``, ``DOI: 10.…``, ``https://doi.org/…``,
      ``http://dx.doi.org/…``, ``info:doi/…``, bare ``10.…``); (2) an OpenAIRE
      ``dc:relation`` ``info:eu-repo/semantics/altIdentifier/doi/…``; (3)
      :func:`extract_doi` on values mentioning "doi" or holding ``/10.``: publisher URLs
      (``onlinelibrary.wiley.com/doi/10.…``) and citations (EPrints writes the only DOI
      into a citation string, ``"… ISSN 0143-005X DOI: 10.x <http://dx.doi.org/10.x>"``;
      GMU's DSpace adds citations ending in ``doi:10.…``). The typed passes come first
      so that a DOI quoted in free text never beats an identifier field. Any other
      ``dc:relation`` names a different work (Zenodo's concept DOI, datasets, versions,
      references, RCAAP's publisher links) and ``dc:source`` the container, so no DOI is
      ever taken from them: doing so merges different works.
    * **Other identifiers** from ``dc:identifier``: handles (``hdl:``, hdl.handle.net),
      PubMed and PMC ids, arXiv ids, URNs (DataCite 2012's doubled ``urn:urn:nbn:…`` is
      repaired), ISBNs (labelled, ``urn:isbn:``, or bare and hyphenated as DSpace exports
      ``dc.identifier.isbn``), ISSNs (labelled, ``urn:issn:``, a labelled ISSN inside an
      EPrints citation, or a bare ``1566-5283`` as DSpace exports ``dc.identifier.issn``),
      OAI ids (Zenodo repeats its own) and the landing URL: the first http(s) URL that is
      no identifier resolver, preferring a page over a file (EPrints lists the PDF).
      OpenAIRE ``altIdentifier`` relations add pmid, pmcid, isbn, issn (print/electronic
      from ``pissn``/``eissn``), arxiv, handle, urn, ark and url.
    * **ISSN is a field, not an identifier**: it names the journal, so as a work
      identifier it would be shared by every article of the journal.
    * **Title**: the first ``dc:title``; ``subtitle`` stays None (DC has no subtitle, and
      splitting at a colon guesses).
    * **Authors**: ``dc:creator`` only, in order (``dc:contributor`` holds supervisors,
      editors, funders: RCAAP puts thesis advisors and "cnpq" there). See
      :func:`_personal_name` for the name split and :func:`_split_orcid` for ORCIDs
      written into the name.
    * **Abstract**: the longest ``dc:description`` of at least 40 characters (shorter ones
      are notes like "Peer Reviewed"; GMU adds funding notes, Érudit one abstract per
      language), via :func:`clean_block`, so labels of structured abstracts ("Purpose –")
      stay as written. DataCite's 2012 crosswalk writes a ``descriptionType`` name
      ("SeriesInformation") before each description: only the one after "Abstract" (or
      an unlabelled one) can be the abstract, and series information is read as the
      container (``"Iranian Biomedical Journal (IBJ); ISSN 1028-852X"``).
    * **Date**: ``dc:date`` values without a time part first (DSpace adds
      ``dc.date.accessioned``/``available`` as timestamps before ``dc.date.issued``),
      the first that parses, at its own precision; timestamps only when nothing else is
      there. ``info:eu-repo/date/embargoEnd/…`` is not a publication date.
    * **Type**: see :func:`_dc_type`. **Language**: the first ``dc:language`` that
      :func:`normalize_language` knows.
    * **Keywords and subjects**: ``dc:subject`` split by :func:`split_keywords`; DDC
      (``ddc:330``, ``info:eu-repo/classification/ddc/330``) and other
      ``info:eu-repo/classification/<scheme>/<code>`` values become :class:`Subject`;
      values without a letter (Erasmus's ``85.00;85.25``) are classification codes of
      an unnamed scheme and are dropped.
    * **Publisher**: the first ``dc:publisher``. **Licence**: see :func:`_license`.
    * **Container, volume, issue, pages, ISSN** from ``dc:source``: see
      :func:`_parse_source`.
    * PUC-Rio prefixes titles, subjects and descriptions with a language tag
      (``"[pt] PERFURACAO"``); it is removed.
    """
    if _namespace(dc) != OAI_DC_NAMESPACE or _local(dc) != "dc":
        raise NormalizationError(f"unsupported metadata format {dc.tag}")
    values = _dc_values(dc)
    if not values:
        raise NormalizationError("oai_dc record without any Dublin Core content")

    acc = _Accumulator()
    identifiers = values.get("identifier", [])

    # DOI: typed identifier values, then OpenAIRE altIdentifier, then free text.
    for value in identifiers:
        acc.doi = strict_doi(value)
        if acc.doi is not None:
            break
    for relation in values.get("relation", []):
        _read_alt_identifier(relation, acc)
    if acc.doi is None:
        for value in identifiers:
            if _may_hold_doi(value):
                acc.doi = extract_doi(value)
                if acc.doi is not None:
                    break
    for value in identifiers:
        _read_dc_identifier(value, acc)

    # Absent elements are common (most records have no source, rights or description):
    # their readers are not called at all, which gives the same empty results.
    descriptions = values.get("description")
    abstract, series = (
        _dc_abstract([_strip_lang_tag(v) for v in descriptions]) if descriptions else (None, None)
    )
    sources = values.get("source", [])
    if series is not None:
        sources = [*sources, series]
    container = _parse_source(sources, acc) if sources else _Container()
    subject_values = values.get("subject")
    keywords, subjects = _dc_subjects(subject_values) if subject_values else ((), ())

    title = None
    for value in values.get("title", []):
        title = clean_text(_strip_lang_tag(value))
        if title is not None:
            break
    creators = values.get("creator")
    publishers = values.get("publisher")
    dates = values.get("date")
    types = values.get("type")
    languages = values.get("language")
    rights = values.get("rights")
    return _fields(
        acc,
        title=title,
        subtitle=None,
        authors=tuple(a for a in map(_dc_author, creators) if a is not None) if creators else (),
        abstract=abstract,
        container_title=container.title,
        volume=container.volume,
        issue=container.issue,
        pages=container.pages,
        publisher=_first(map(clean_text, publishers)) if publishers else None,
        date=_dc_date(dates) if dates else None,
        type=_dc_type(types) if types else None,
        language=_first(map(normalize_language, languages)) if languages else None,
        keywords=keywords,
        subjects=subjects,
        license=_license(rights) if rights else None,
    )


def _dc_values(dc: etree._Element) -> dict[str, list[str]]:
    """The non-empty texts (:func:`_text`) of the DC children (DC namespace or none) by
    local name, in document order; one pass over the children."""
    values: dict[str, list[str]] = {}
    for child in dc:
        tag = child.tag
        name = _DC_ELEMENT_NAMES.get(tag) if isinstance(tag, str) else None
        if name is None:
            if not isinstance(tag, str) or (tag.startswith("{") and not tag.startswith(_DC_BRACE)):
                continue  # comments, processing instructions, other namespaces
            name = tag.rsplit("}", 1)[-1]  # a DC name outside the fifteen elements
        text = child.text
        if len(child):  # mixed content: all text inside, as _text reads it
            text = "".join(t for t in child.itertext() if isinstance(t, str)).strip()
        elif text:
            text = text.strip()
        if text:
            found = values.get(name)
            if found is None:
                values[name] = [text]
            else:
                found.append(text)
    return values


# --- identifiers -----------------------------------------------------------------------------


@dataclass
class _Accumulator:
    """Identifiers collected from several elements, deduplicated in first-seen order."""

    doi: str | None = None
    url: str | None = None
    file_url: str | None = None  # a URL to a file, used only when no landing page is given
    identifiers: dict[tuple[str, str], None] = field(default_factory=dict)
    issns: dict[str, Literal["print", "electronic"] | None] = field(default_factory=dict)
    isbns: dict[str, None] = field(default_factory=dict)

    def add(self, scheme: str, value: str | None) -> None:
        if value:
            self.identifiers.setdefault((scheme, value), None)

    def add_issn(self, value: str | None, kind: Literal["print", "electronic"] | None = None) -> None:
        issn = normalize_issn(value)
        if issn is not None and (issn not in self.issns or self.issns[issn] is None):
            self.issns[issn] = kind

    def add_isbn(self, value: str | None) -> None:
        isbn = normalize_isbn(value)
        if isbn is not None:
            self.isbns.setdefault(isbn, None)
            self.add("isbn", isbn)

    def add_url(self, url: str) -> None:
        if _FILE_URL.search(url):
            if self.file_url is None:
                self.file_url = url
        elif self.url is None:
            self.url = url

    def landing_url(self) -> str | None:
        return self.url or self.file_url


_DOI_HINT = re.compile(r"doi|/10\.", re.IGNORECASE)
_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_FILE_URL = re.compile(r"\.(?:pdf|docx?|zip|gz|tar|xlsx?|csv|pptx?|epub)(?:[?#].*)?$", re.IGNORECASE)
_DOI_RESOLVER = re.compile(r"^https?://(?:dx\.|www\.)?doi\.org/", re.IGNORECASE)
_HANDLE = re.compile(
    r"^(?:hdl:\s*|info:hdl/|urn:hdl:|https?://hdl\.handle\.net/)(?P<handle>[0-9][0-9.]*/[^\s?#]+)",
    re.IGNORECASE,
)
_HANDLE_VALUE = re.compile(r"^[0-9][0-9.]*/\S+$")
_PMID_HINT = re.compile(
    r"^(?:pmid\s*:?\s*\d|info:pmid/|https?://(?:www\.)?ncbi\.nlm\.nih\.gov/pubmed/"
    r"|https?://pubmed\.ncbi\.nlm\.nih\.gov/)",
    re.IGNORECASE,
)
_PMCID = re.compile(
    r"^(?:pmcid\s*:?\s*|https?://(?:www\.)?ncbi\.nlm\.nih\.gov/pmc/articles/"
    r"|https?://pmc\.ncbi\.nlm\.nih\.gov/articles/)?(PMC[0-9]+)/?$",
    re.IGNORECASE,
)
_ARXIV_HINT = re.compile(r"^(?:arxiv\s*:|https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/)", re.IGNORECASE)
_ISBN_LABEL = re.compile(r"^(?:urn:isbn:|isbn)", re.IGNORECASE)
_BARE_ISBN = re.compile(r"^[0-9][0-9 -]{8,}[0-9Xx]$")
_ISSN_LABEL = re.compile(r"^(?:urn:issn:|(?:[ep]-?)?issn)", re.IGNORECASE)
_BARE_ISSN = re.compile(r"^[0-9]{4}-[0-9]{3}[0-9Xx]$")
_ISSN_IN_TEXT = re.compile(
    r"\b(?P<label>[ep]-?)?ISSN\s*:?\s*(?P<issn>[0-9]{4}-?[0-9]{3}[0-9Xx])\b", re.IGNORECASE
)
_URN = re.compile(r"^urn:(?:urn:)*(?P<nid>[a-z0-9][a-z0-9-]{0,31}):(?P<nss>\S+)$", re.IGNORECASE)
_OAI_ID = re.compile(r"^oai:[a-z0-9][a-z0-9.-]*:\S+$", re.IGNORECASE)
_ARK = re.compile(r"^ark:/?[0-9]{5,}/\S+$", re.IGNORECASE)
_ARK_IN_URL = re.compile(r"^https?://[^/]+/(ark:/[0-9]{5,}/[^?#\s]+)", re.IGNORECASE)
_URN_ISBN = re.compile(r"^urn:isbn:", re.IGNORECASE)
_ISSN_KIND_LABEL = re.compile(r"^([ep])-?issn", re.IGNORECASE)
_SPACE_OR_HYPHEN = re.compile(r"[ -]")
_ALT_IDENTIFIER = re.compile(
    r"^info:eu-repo/semantics/altIdentifier/(?P<scheme>[a-z]+)/(?P<value>.+)$", re.IGNORECASE
)


def _may_hold_doi(value: str) -> bool:
    return _DOI_HINT.search(value) is not None


def _issn_kind(label: str | None) -> Literal["print", "electronic"] | None:
    if not label:
        return None
    return "electronic" if label[0] in "eE" else "print"


def _read_dc_identifier(value: str, acc: _Accumulator) -> None:
    """Classify one ``dc:identifier`` value (the DOI is read before, see oai_dc_fields)."""
    text = value.strip()
    if strict_doi(text) is not None or _DOI_RESOLVER.match(text):
        return
    handle = _HANDLE.match(text)
    if handle is not None:
        acc.add("handle", handle.group("handle").rstrip("/"))
        return
    if _PMID_HINT.match(text):
        acc.add("pmid", normalize_pmid(text))
        return
    pmcid = _PMCID.match(text)
    if pmcid is not None:
        acc.add("pmcid", pmcid.group(1).upper())
        return
    if _ARXIV_HINT.match(text):
        arxiv = normalize_arxiv(text)
        if arxiv is not None:
            acc.add("arxiv", arxiv)
            return
    if _ISBN_LABEL.match(text):
        acc.add_isbn(_URN_ISBN.sub("", text))
        return
    if _ISSN_LABEL.match(text):
        label = _ISSN_KIND_LABEL.match(text)
        acc.add_issn(text, _issn_kind(label.group(1) if label else None))
        return
    if _BARE_ISSN.match(text):
        acc.add_issn(text)
        return
    if (
        _BARE_ISBN.match(text)
        and _SPACE_OR_HYPHEN.search(text)
        and len(_SPACE_OR_HYPHEN.sub("", text)) in (10, 13)
    ):
        acc.add_isbn(text)
        return
    if _OAI_ID.match(text):
        acc.add("oai", text)
        return
    urn = _URN.match(text)
    if urn is not None:
        acc.add("urn", f"urn:{urn.group('nid').lower()}:{urn.group('nss')}")
        return
    if _ARK.match(text):
        acc.add("ark", text)
        return
    if _URL.match(text):
        acc.add_url(text)
        ark = _ARK_IN_URL.search(text)  # BnF Gallica's landing pages are ARK resolvers
        if ark is not None:
            acc.add("ark", ark.group(1).rstrip("/"))
        return
    # Free text (citations): a labelled ISSN of the container is still this work's.
    for match in _ISSN_IN_TEXT.finditer(text):
        acc.add_issn(match.group("issn"), _issn_kind(match.group("label")))


def _read_alt_identifier(relation: str, acc: _Accumulator) -> None:
    """OpenAIRE's ``info:eu-repo/semantics/altIdentifier/<scheme>/<value>`` relation.

    The OpenAIRE Guidelines for Literature Repositories use this relation for other
    identifiers of the *same* publication; it is the only ``dc:relation`` read.
    """
    match = _ALT_IDENTIFIER.match(relation.strip())
    if match is None:
        return
    scheme, value = match.group("scheme").lower(), match.group("value").strip()
    if scheme == "doi":
        if acc.doi is None:
            acc.doi = strict_doi(value)
    elif scheme == "pmid":
        acc.add("pmid", normalize_pmid(value))
    elif scheme == "pmc":
        pmcid = _PMCID.match(value)
        acc.add("pmcid", pmcid.group(1).upper() if pmcid else None)
    elif scheme == "isbn":
        acc.add_isbn(value)
    elif scheme in ("issn", "pissn", "eissn", "lissn"):
        acc.add_issn(value, _issn_kind(scheme[0] if scheme in ("pissn", "eissn") else None))
    elif scheme == "arxiv":
        acc.add("arxiv", normalize_arxiv(value))
    elif scheme in ("hdl", "handle"):
        handle = _HANDLE.match(value)
        bare = handle.group("handle") if handle else value
        acc.add("handle", bare.rstrip("/") if _HANDLE_VALUE.match(bare) else None)
    elif scheme == "urn":
        urn = _URN.match(value if value.lower().startswith("urn:") else f"urn:{value}")
        acc.add("urn", f"urn:{urn.group('nid').lower()}:{urn.group('nss')}" if urn else None)
    elif scheme == "ark":
        acc.add("ark", value if _ARK.match(value) else None)
    elif scheme in ("url", "purl") and _URL.match(value):
        acc.add_url(value)


# --- names -----------------------------------------------------------------------------------

_ORCID_IN_NAME = re.compile(
    r"[\s,;]*[(\[<]?\s*(?:orcid(?:\s*id)?\s*:?\s*)?(?:https?://)?(?:www\.)?(?:orcid\.org/)?"
    r"(?P<orcid>[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9Xx])\s*[)\]>]?",
    re.IGNORECASE,
)
_ORCID_DIGITS = re.compile(r"[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9Xx]")
# A word of a personal name: letters, with inner or final dots, hyphens and apostrophes
# ("O'Neill", "Heinz-Alexander", "A.-P.", "R.").
_NAME_WORD = r"[^\W\d_]+(?:[.'’-]+[^\W\d_]*)*\.?"
# Whitespace-separated name words (whitespace as str.split sees it), matched in one go.
_NAME_WORDS = re.compile(rf"\s*{_NAME_WORD}(?:\s+{_NAME_WORD})*\s*")
_PARTICLES = frozenset(
    _words("van von der den de del della des di da das do dos du la le ten ter bin ibn al el")
)
# Words that make a creator an organisation or a group, not a person (DataCite's 2012
# crosswalk has "World Bank"; Zenodo labels "AI-PRISM Consortium" as Personal).
_NOT_PERSONAL = frozenset(
    _words(
        "academy agency archive archives association bank board bureau center centre college "
        "collaboration commission committee company consortium corporation council department "
        "division faculty federation foundation fund group hospital inc initiative institut "
        "institute instituto institution laboratory library limited ltd ministry museum network "
        "office organisation organization partnership program programme project school service "
        "services society survey team trust unit universidad universidade universitat universität "
        "university et al al. and und"
    )
)


# Either side of "Family, Given": Portuguese and Spanish names carry up to six given names
# ("Monteiro, Ana Paula Teixeira de Almeida Vieira" at RCAAP).
_MAX_WORDS_AROUND_COMMA = 6
_SIDE = rf"{_NAME_WORD}(?:\s+{_NAME_WORD}){{0,{_MAX_WORDS_AROUND_COMMA - 1}}}"
_FAMILY_COMMA_GIVEN = re.compile(rf"\s*(?P<family>{_SIDE})\s*,\s*(?P<given>{_SIDE})?\s*")


def _split_orcid(text: str) -> tuple[str, str | None]:
    """An ORCID written into a name ("Knox, Colin (0000-0002-…)") → (name, orcid).

    Pure and some DSpace configurations append the ORCID (bare, in brackets or as an
    orcid.org URL) to ``dc:creator``. It is removed from the name whether or not its
    check digit is valid; only a valid one becomes the author's ``orcid``.
    """
    if _ORCID_DIGITS.search(text) is None:  # cheap: the one part every match must contain
        return text, None
    match = _ORCID_IN_NAME.search(text)
    if match is None:
        return text, None
    name = (text[: match.start()] + " " + text[match.end() :]).strip(" ,;")
    return " ".join(name.split()), normalize_orcid(match.group("orcid"))


def _is_name_part(text: str, max_words: int) -> bool:
    words = text.split()
    return (
        1 <= len(words) <= max_words
        and _NAME_WORDS.fullmatch(text) is not None  # every word is a name word
        and _NOT_PERSONAL.isdisjoint(map(str.casefold, words))
    )


def _personal_name(name: str) -> tuple[str | None, str | None]:
    """(family, given) of a personal name, or (None, None) when it is not clearly one.

    "Family, Given" splits at the first comma (DSpace, EPrints, Pure, Zenodo all write
    names this way), unless either side does not look like part of a person's name:
    several people in one string ("Dodson-Robinson, Sarah and Haley, Charlotte" on
    Zenodo), an organisation ("University of X, Department of Y"), more than six words
    on a side. "Given Family"
    without a comma (DataCite's 2012 crosswalk, PUC-Rio) splits before the last word,
    keeping lower-case particles with the family name ("Ludwig van Beethoven"), only for
    2 to 4 words of letters, dots, hyphens and apostrophes that are not organisation
    words or "et al.". A single word is a name without a family/given split.
    """
    if "," in name:
        # One match checks the shape of both sides of the first comma (1 to 6 name words
        # before it, none or 1 to 6 after it, as _is_name_part would); the organisation
        # words are checked below.
        sides = _FAMILY_COMMA_GIVEN.fullmatch(name)
        if sides is None:
            return None, None
        family, given = sides.group("family", "given")
        if not _NOT_PERSONAL.isdisjoint(map(str.casefold, family.split())):
            return None, None
        if given is None:
            return family, None
        if not _NOT_PERSONAL.isdisjoint(map(str.casefold, given.split())):
            return None, None
        return family, given
    words = name.split()
    if not 2 <= len(words) <= 4 or not _is_name_part(name, 4):
        return None, None
    start = len(words) - 1
    while start > 1 and words[start - 1] in _PARTICLES:
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start])


def _dc_author(value: str) -> Author | None:
    raw, orcid = _split_orcid(value)
    name = clean_text(raw)
    if name is None:
        return None
    family, given = _personal_name(name)
    return Author(name=name, family=family, given=given, orcid=orcid)


# --- descriptions ----------------------------------------------------------------------------

_MIN_ABSTRACT = 40
_NOT_A_TO_Z = re.compile(r"[^a-z]")
# DataCite descriptionType names, which DataCite's 2012 oai_dc crosswalk writes as a
# dc:description of their own before the description they label.
_DESCRIPTION_TYPES = {
    "abstract": "abstract",
    "methods": "methods",
    "seriesinformation": "series",
    "tableofcontents": "toc",
    "technicalinfo": "technical",
    "other": "other",
}
# A description wholly in square brackets is an editorial note, not an abstract (DataCite
# 2012, GMS: "[for full text, please go to the a.m. URL]").
_EDITORIAL_NOTE = re.compile(r"^\s*\[[^\]]*\]\s*$")
_ABSTRACT_HEADING = re.compile(r"^(?:abstract|summary)\s*[:.]?\s*(?:\n\n|$)", re.IGNORECASE)


def _clean_abstract(value: str | None) -> str | None:
    """:func:`clean_block`, minus a leading "Abstract:" heading (Zenodo's HTML has one)."""
    text = clean_block(value)
    if text is None:
        return None
    return _ABSTRACT_HEADING.sub("", text, count=1).strip() or None


def _dc_abstract(descriptions: list[str]) -> tuple[str | None, str | None]:
    """(abstract, series information) from the ``dc:description`` values."""
    candidates: list[str] = []
    series: str | None = None
    label: str | None = None
    for value in descriptions:
        if _EDITORIAL_NOTE.match(value):
            continue
        if len(value) < 30:
            key = _NOT_A_TO_Z.sub("", value.casefold())
            if key in _DESCRIPTION_TYPES:
                label = _DESCRIPTION_TYPES[key]
                continue
        if label == "series":
            series = series or value
        elif label in (None, "abstract"):
            text = _clean_abstract(value)
            if text is not None and len(text) >= _MIN_ABSTRACT:
                candidates.append(text)
        label = None
    abstract = max(candidates, key=len) if candidates else None  # max keeps the first of equals
    return abstract, series


_LANG_TAG = re.compile(r"^\s*\[[a-z]{2,3}(?:[-_][A-Za-z]{2})?\]\s*")


def _strip_lang_tag(value: str) -> str:
    if "[" not in value:  # the tag's bracket
        return value
    return _LANG_TAG.sub("", value, count=1)


# --- dates -----------------------------------------------------------------------------------

_TIME_PART = re.compile(r"\d[T ]\d{1,2}:\d{2}")
_ISO_START = re.compile(r"^[0-9]{4}(?:-|$|T)")
_LOOSE_YEAR = re.compile(r"^\[?c?(?P<year>[0-9]{4})\]?(?:\s*[-/]\s*[0-9]{2,4})?\.?$")


@functools.lru_cache(maxsize=4096)
def _parse_date(value: str) -> PartialDate | None:
    """A date at its own precision, or the year of a loose form; memoized (dates repeat
    from record to record, and PartialDate is immutable)."""
    text = value.strip()
    date = PartialDate.parse(text) if _ISO_START.match(text) else None
    if date is not None:
        return date
    loose = _LOOSE_YEAR.match(text)  # "[1889]", "c1998", a range "2019/2020" → its start
    if loose is not None:
        try:
            return PartialDate(int(loose.group("year")))
        except ValueError:
            return None
    return None


def _dc_date(values: list[str]) -> PartialDate | None:
    stamped: list[str] = []
    for value in values:
        if value.strip().lower().startswith("info:eu-repo/date/"):
            continue
        if _TIME_PART.search(value):
            stamped.append(value)  # tried after every value without a time part
            continue
        date = _parse_date(value)
        if date is not None:
            return date
    return _first(_parse_date(v) for v in stamped)


# --- types -----------------------------------------------------------------------------------

_OTHER = "other"
# Keys are lower-case, accent-free and without punctuation or spaces ("Master's thesis" is
# "mastersthesis"); ``info:eu-repo/semantics/`` is removed first.
_TYPE_NAMES: dict[str, tuple[str, ...]] = {
    "journal-article": _words(
        "article journalarticle contributiontoperiodical contributiontojournal researcharticle "
        "scientificarticle articlejournal journalpaper artigo artigodeperiodico articulo artikel "
        "zeitschriftenartikel articolo"
    ),
    "book": _words("book monograf livro libro buch"),
    "edited-book": _words("editedbook"),
    "book-chapter": _words(
        "bookpart bookchapter chapter chapterinbook booksection partofbook contributiontobook "
        "chapterinbookreportconferenceproceeding capitulodelivro bookcontribution"
    ),
    "proceedings-article": _words(
        "conferenceobject conferencepaper conferenceposter conferenceproceedings "
        "conferencecontribution contributiontoconference conferenceorworkshopitem conferenceitem "
        "paperinconferenceproceedings proceedingsarticle proceedingspaper inproceedings"
    ),
    "dissertation": _words(
        "doctoralthesis masterthesis mastersthesis bachelorthesis bachelorsthesis thesis "
        "dissertation phdthesis doctoraldissertation studentthesis thesisordissertation "
        "habilitationthesis tese dissertacao tesis these tesi doktorarbeit"
    ),
    "report": _words(
        "report workingpaper technicalreport researchreport discussionpaper projectreport "
        # EPrints' "Monograph" type holds technical reports and working papers (its
        # monograph_type field), not books.
        "monograph"
    ),
    "report-component": _words("reportpart"),
    "posted-content": _words("preprint"),
    "dataset": _words("dataset researchdata"),
    "standard": _words("standard"),
    "reference-entry": _words("encyclopediaentry dictionaryentry referenceentry"),
    # Known kinds without a Crossref type of their own. A review (eu-repo "review",
    # "bookReview") is not Crossref's "peer-review" (referee reports); Crossref registers a
    # book review published in a journal as journal-article, but the record does not say
    # where it appeared, so it stays "other" and a Crossref record wins the merge.
    _OTHER: _words(
        "other review bookreview lecture presentation patent annotation image stillimage "
        "movingimage video sound audio software interactiveresource physicalobject event service "
        "collection map cartographicmaterial musicalnotation learningobject poster"
    ),
}
_TYPES: dict[str, str] = {key: canonical for canonical, keys in _TYPE_NAMES.items() for key in keys}
# Values that say nothing about the kind of work: the generic DCMI "Text" (a more
# specific source should win the merge), version and peer-review statements and access
# rights (OpenAIRE and EPrints put them in dc:type).
_NOT_TYPES = frozenset(
    _words(
        "text texto texte testo tekst publishedversion acceptedversion submittedversion "
        "updatedversion draft versionofrecord authorsversion peerreviewed nonpeerreviewed "
        "notpeerreviewed refereed nonrefereed unrefereed openaccess closedaccess embargoedaccess "
        "restrictedaccess metadataonlyaccess published unpublished"
    )
)
# COAR resource types (OpenAIRE Guidelines v4), by concept id.
_COAR_TYPES: dict[str, str | None] = {
    "c_6501": "journal-article",
    "c_2df8fbb1": "journal-article",
    "c_dcae04bc": "journal-article",
    "c_5794": "proceedings-article",
    "c_c94f": "proceedings-article",
    "c_6670": "proceedings-article",
    "c_f744": "proceedings",
    "c_3248": "book-chapter",
    "c_2f33": "book",
    "c_db06": "dissertation",
    "c_bdcc": "dissertation",
    "c_7a1f": "dissertation",
    "c_46ec": "dissertation",
    "c_93fc": "report",
    "c_8042": "report",
    "c_816b": "posted-content",
    "c_ddb1": "dataset",
    "c_18cf": None,  # text
}
_EU_REPO_SEMANTICS = re.compile(r"^info:eu-repo/semantics/", re.IGNORECASE)
_COAR = re.compile(r"^https?://purl\.org/coar/resource_type/(c_[0-9a-f]+)/?$", re.IGNORECASE)


def _type_key(value: str) -> str:
    text = _EU_REPO_SEMANTICS.sub("", value.strip())
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if ch.isalnum() and ch.isascii())


@functools.lru_cache(maxsize=1024)
def _classify_type(value: str) -> str | None:
    """A canonical type, ``""`` for a value that is no type statement, None if unknown.

    Memoized: a repository uses a handful of type values on all its records.
    """
    coar = _COAR.match(value.strip())
    if coar is not None:
        return _COAR_TYPES.get(coar.group(1).lower(), _OTHER) or ""
    key = _type_key(value)
    if not key or key in _NOT_TYPES:
        return ""
    return _TYPES.get(key)


def _dc_type(values: Iterable[str]) -> str | None:
    """The canonical type of ``dc:type`` values (Crossref's vocabulary, see ``TYPES``).

    The first value with a specific type wins (RCAAP: ``info:eu-repo/semantics/article``,
    ``…/publishedVersion``, ``article``; LSHTM: ``Article``, ``PeerReviewed``). Version,
    peer-review and access statements are ignored, and so is the generic "Text", which
    gives None so that a more specific source wins the merge. Values that are known but
    have no Crossref type ("lecture", "review", "Image") and unknown values (BnF's
    "printed serial") give "other", but only when no value has a specific type.
    """
    fallback: str | None = None
    for value in values:
        kind = _classify_type(value)
        if kind == "":
            continue
        if kind is None or kind == _OTHER:
            fallback = _OTHER
            continue
        return kind
    return fallback


# --- subjects --------------------------------------------------------------------------------

_CLASSIFICATION = re.compile(r"^info:eu-repo/classification/(?P<scheme>[^/]+)/(?P<code>.+)$", re.IGNORECASE)
_DDC = re.compile(r"^ddc\s*:\s*(?P<code>[0-9][0-9.]*)$", re.IGNORECASE)
_SCHEME_NAMES = {
    "ddc": "DDC",
    "udc": "UDC",
    "lcc": "LCC",
    "jel": "JEL",
    "msc": "MSC",
    "pacs": "PACS",
    "acm": "ACM",
    "mesh": "MeSH",
    "rvk": "RVK",
    "bk": "BK",
}
_HAS_LETTER = re.compile(r"[^\W\d_]")


def _dc_subjects(values: list[str]) -> tuple[tuple[str, ...], tuple[Subject, ...]]:
    subjects: dict[Subject, None] = {}
    words: list[str] = []
    for value in values:
        text = value.strip()
        classification = _CLASSIFICATION.match(text)
        if classification is not None:
            scheme = classification.group("scheme")
            code = classification.group("code").strip().rstrip("/")
            subjects.setdefault(Subject(_SCHEME_NAMES.get(scheme.lower(), scheme), code, None), None)
            continue
        ddc = _DDC.match(text)
        if ddc is not None:
            subjects.setdefault(Subject("DDC", ddc.group("code"), None), None)
            continue
        words.append(_strip_lang_tag(text))
    return _keywords(words), tuple(subjects)


def _keywords(values: Iterable[str]) -> tuple[str, ...]:
    """split_keywords, minus values without a letter (classification codes, years)."""
    return tuple(k for k in split_keywords(values) if _HAS_LETTER.search(k))


# --- licences --------------------------------------------------------------------------------

_LICENSE_URL = re.compile(
    r"https?://(?:www\.)?(?:creativecommons\.org/(?:licenses|licences|publicdomain)/"
    r"|opensource\.org/licenses?/|(?:www\.)?apache\.org/licenses/|(?:www\.)?gnu\.org/licenses/"
    r"|opendatacommons\.org/licenses/|spdx\.org/licenses/)[^\s<>\"'\]]*",
    re.IGNORECASE,
)
_CC_URL = re.compile(
    r"^https?://(?:www\.)?creativecommons\.org/(?P<kind>licenses|licences|publicdomain)/"
    r"(?P<code>[a-z-]+)/(?P<version>[0-9.]+)(?:/(?P<jurisdiction>[a-z]{2}(?:-[a-z]{2})?)(?=/|$))?",
    re.IGNORECASE,
)
_LICENCE_WORD = re.compile(r"[a-z]+|[0-9]+(?:\.[0-9]+)?")
_CC_VERSION = re.compile(r"[1-4]\.[0-9]")
_CC_ZERO = re.compile(r"\bcc[\s_-]?(?:0|zero)\b")
_CC_ELEMENTS = {
    "attribution": "by",
    "by": "by",
    "noncommercial": "nc",
    "nc": "nc",
    "noderivatives": "nd",
    "noderivs": "nd",
    "noderivative": "nd",
    "nd": "nd",
    "sharealike": "sa",
    "sa": "sa",
}


def _canonical_cc_url(url: str) -> str:
    """``https://creativecommons.org/licenses/by/4.0/`` for every spelling of that URL.

    Zenodo links ``…/by/4.0/legalcode``, DSpace ``http://…/by/3.0/us/``, Crossref
    ``http://…/by/4.0/``: one spelling lets the merge compare licences with ``==``.
    """
    match = _CC_URL.match(url)
    if match is None:
        return url
    kind = "publicdomain" if match.group("kind").lower() == "publicdomain" else "licenses"
    path = f"{kind}/{match.group('code').lower()}/{match.group('version')}/"
    if match.group("jurisdiction"):
        path += f"{match.group('jurisdiction').lower()}/"
    return f"https://creativecommons.org/{path}"


@functools.lru_cache(maxsize=1024)
def _cc_from_name(text: str) -> str | None:
    """A Creative Commons licence named in words: its URL when versioned, else its name.

    "CC BY 4.0", "CC-BY-NC-ND", EPrints' ``cc_by_nc_nd``, "Creative Commons Attribution
    4.0 International", "Attribution-NonCommercial-ShareAlike 3.0" (DSpace's licence
    names), "CC0 1.0". Without a version no URL exists to point at, so the short name
    ("CC BY-NC-ND") is returned rather than a guessed version.
    """
    folded = unicodedata.normalize("NFKD", text).casefold()
    words = _LICENCE_WORD.findall(folded.replace("_", " "))
    if not words:
        return None
    version = next((w for w in words if _CC_VERSION.fullmatch(w)), None)
    if _CC_ZERO.search(folded):
        return "https://creativecommons.org/publicdomain/zero/1.0/"
    creative = "cc" in words or ("creative" in words and "commons" in words) or words[0] == "attribution"
    if not creative:
        return None
    elements: list[str] = []
    for word in words:
        element = _CC_ELEMENTS.get(word)
        if element is not None and element not in elements:
            elements.append(element)
    if not elements or elements[0] != "by":
        return None
    code = "-".join(elements)
    if version is not None:
        return f"https://creativecommons.org/licenses/{code}/{version}/"
    return f"CC {code.upper()}"


def _license(values: Iterable[str]) -> str | None:
    """The licence from ``dc:rights``: a licence URL first (also one inside text, as in
    DataCite's "Creative Commons License [CC BY-NC-ND] http://…"), else a CC licence
    named in words. Access rights (``info:eu-repo/semantics/openAccess``) and copyright
    statements are not licences.
    """
    texts = [v.strip() for v in values if v.strip()]
    for text in texts:
        match = _LICENSE_URL.search(text)
        if match is not None:
            return _canonical_cc_url(match.group(0).rstrip(".,;)"))
    for text in texts:
        if text.lower().startswith("info:eu-repo/"):
            continue
        named = _cc_from_name(text)
        if named is not None:
            return named
    return None


# --- dc:source -------------------------------------------------------------------------------


@dataclass
class _Container:
    title: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None


_VOL_ISSUE = re.compile(
    r"^(?:(?:vol(?:ume)?|v|bd|t)\.?\s*(?P<volume>[0-9][\w.-]*))?[\s,.]*"
    r"(?:(?:no|n[º°o]|nr|num|number|issue|iss|n|heft|h)\.?\s*(?P<issue>[0-9][\w./-]*))?"
    r"\s*(?:\((?P<year>[0-9]{4})\))?\s*(?::.*)?$",
    re.IGNORECASE,
)
_PAGES = re.compile(
    r"^(?:(?:pp?|pages?|s)\.?\s*)?(?P<pages>[A-Za-z]?[0-9]+(?:\s*[-–—]\s*[A-Za-z]?[0-9]+)?)\.?$",
    re.IGNORECASE,
)
_PAGES_LABEL = re.compile(r"^(?:pp?|pages?)\.?\s*\S", re.IGNORECASE)
_PAGE_RANGE = r"[A-Za-z]?[0-9]+\s*[-–—]\s*[A-Za-z]?[0-9]+"
_TRAILING_DATE = r"(?:,?\s*\((?P<date>[0-9]{4}(?:-[0-9]{2}){0,2})\))"
# "Journal of X, 12(3), 45-67" / "Journal of X 12(3): 45-67"; Zenodo appends ", (2026-04-01)"
_CITATION = re.compile(
    r"^(?P<title>[^;]*?[^\W\d_][^;]*?)[,.]?\s+(?P<volume>[0-9]+)\s*\((?P<issue>[^)]{1,15})\)"
    rf"\s*(?:[,:]\s*(?:pp?\.\s*)?(?P<pages>{_PAGE_RANGE}|[A-Za-z]?[0-9]+))?{_TRAILING_DATE}?\.?$"
)
# Zenodo without volume and issue: "Title, 113-121, (2025-02)", "People and Nature, (2023-10-13)"
_ZENODO_SOURCE = re.compile(
    rf"^(?P<title>[^;]*?[^\W\d_][^;]*?)(?:,\s*(?P<pages>{_PAGE_RANGE}))?,\s*{_TRAILING_DATE}$"
)
_CITATION_HINT = re.compile(r"\s[0-9]+\s*\([^)]{1,15}\)")  # " 12(3)", as _CITATION needs
_ZENODO_HINT = re.compile(r"\([0-9]{4}(?:-[0-9]{2}){0,2}\)$")  # the date _ZENODO_SOURCE ends with
# A page range inside the title means the "title" is a citation of something else
# (Zenodo's Plazi treatments: "Rediscovery of …, pp. 131-142 in Zootaxa, 5353(2), …").
# So does a volume(issue) left in the title ("D'GENERUS …, 3/4(2024/2025)" on Zenodo).
_PAGES_IN_TITLE = re.compile(r"\bpp?\.\s*[0-9]|[0-9]\s*\([^)]*\)\s*$", re.IGNORECASE)
_ISSN_ONLY = re.compile(
    r"^(?P<label>(?:[ep]-?)?issn)?\s*:?\s*(?P<issn>[0-9]{4}-?[0-9]{3}[0-9Xx])$", re.IGNORECASE
)


_DASH = re.compile(r"\s*[-–—]\s*")
_REPEATED_COMMAS = re.compile(r"\s*,(?:\s*,)+")
_RANGE = re.compile(r"[0-9]\s*[-–—]\s*[A-Za-z]?[0-9]")
_DIGIT = re.compile(r"[0-9]")


def _pages(text: str) -> str:
    return _DASH.sub("-", text)


def _parse_source(values: Iterable[str], acc: _Accumulator) -> _Container:
    """Container title, volume, issue, pages and ISSNs from ``dc:source`` citations.

    Handled forms (anything else gives at most a digit-free container title):

    * OJS and OpenAIRE: ``"Title; Vol 32, No 4 (2019); 362-382"``, ``"Title; Vol. 11
      No. 4 (2015): Issue title"``, ``"Title; v. 5 n. 2 (2010)"``, with ``;``-separated
      parts that may be ISSNs (``"ISSN 0951-3558"``, ``"1646-107X"``); OJS 3 also sends
      the ISSN as a ``dc:source`` of its own. The title is the leading part; pages only
      as a labelled (``pp. 45-67``) or ranged (``45-67``) part after the volume/issue.
    * ``"Journal of X, 12(3), 45-67"`` (volume, issue in brackets, pages), also with
      Zenodo's trailing publication date: ``"South American Development Society Journal,
      11(31), 271-293, (2025-04-18)"``, ``"People and Nature, (2023-10-13)"``. A title
      with a page label in it is a citation of something else and is not taken.
    * Otherwise the part before the first ``;`` is the container only if it has no
      digits: BnF's ``"Bibliothèque nationale de France, département …, 8-YE-2446"`` (a
      shelf mark, not a container) gives nothing.

    ISSNs (labelled or bare, check digit valid) are taken from every value; titles,
    volumes and pages from the first value that yields a title.
    """
    result = _Container()
    for value in values:
        text = " ".join(value.split())
        parts = [p.strip() for p in text.split(";")]
        kept: list[str] = []
        for part in parts:
            issn = _ISSN_ONLY.match(part)
            if issn is not None:
                label = (issn.group("label") or "")[:1]
                acc.add_issn(issn.group("issn"), _issn_kind(label if label.lower() in ("e", "p") else None))
            elif part:
                for match in _ISSN_IN_TEXT.finditer(part):
                    acc.add_issn(match.group("issn"), _issn_kind(match.group("label")))
                rest = _REPEATED_COMMAS.sub(",", _ISSN_IN_TEXT.sub("", part))
                kept.append(rest.strip(" ,.:"))
        kept = [p for p in kept if p]
        if result.title is not None or not kept:
            continue
        parsed = _parse_citation_parts(kept)
        if parsed.title is not None:
            result = parsed
    return result


def _parse_citation_parts(parts: list[str]) -> _Container:
    head = parts[0]
    if len(parts) == 1:
        # The hints are parts that every match must contain; checking them first spares
        # the full patterns, which backtrack a lot on long values that do not match.
        citation = _CITATION.match(head) if _CITATION_HINT.search(head) else None
        if citation is not None and not _PAGES_IN_TITLE.search(citation.group("title")):
            pages = citation.group("pages")
            return _Container(
                title=clean_text(citation.group("title")),
                volume=citation.group("volume"),
                issue=citation.group("issue").strip(),
                pages=_pages(pages) if pages else None,
            )
        zenodo = _ZENODO_SOURCE.match(head) if _ZENODO_HINT.search(head) else None
        if zenodo is not None and not _PAGES_IN_TITLE.search(zenodo.group("title")):
            pages = zenodo.group("pages")
            return _Container(title=clean_text(zenodo.group("title")), pages=_pages(pages) if pages else None)
    result = _Container()
    labelled = False
    for part in parts[1:]:
        vol_issue = _VOL_ISSUE.match(part)
        if vol_issue is not None and (vol_issue.group("volume") or vol_issue.group("issue")):
            if result.volume is None and result.issue is None:
                result.volume = vol_issue.group("volume")
                result.issue = vol_issue.group("issue")
                labelled = True
            continue
        pages = _PAGES.match(part)
        if pages is not None and result.pages is None:
            ranged = _RANGE.search(part) is not None
            if _PAGES_LABEL.match(part) or (labelled and ranged):
                result.pages = _pages(pages.group("pages"))
    if not labelled and _DIGIT.search(head):
        return _Container()
    result.title = clean_text(head)
    return result


# ==========================================================================================
# DataCite
# ==========================================================================================


def datacite_fields(resource: etree._Element) -> dict[str, Any]:
    """Record fields from a DataCite ``resource`` (kernel 2.2, 3 or 4) or its ``oai_datacite``
    wrapper (DataCite's own OAI server puts the resource in ``<payload>``).

    * **DOI**: ``identifier[@identifierType="DOI"]`` through :func:`strict_doi`.
      ``relatedIdentifiers`` are other works and never give the DOI: every Zenodo
      record carries ``IsVersionOf`` its concept DOI (taking it would merge all versions
      into one work), ``IsPartOf`` communities, ``Cites``, ``IsCitedBy``… Only an ISSN
      the resource ``IsPartOf`` is read (as ``issn``).
    * ``alternateIdentifiers``: URL (also the ``url`` field), arXiv, PMID, PMCID, ISBN,
      handle, URN, OAI (Zenodo repeats the OAI identifier), ISSN (to ``issn``); an
      alternate DOI only when the resource has no DOI.
    * **Titles**: the first ``title`` without ``titleType`` (else the first that is no
      subtitle or translation); ``subtitle`` from ``titleType="Subtitle"``.
    * **Creators** in order: ``creatorName`` as written, ``givenName``/``familyName``,
      ORCID from ``nameIdentifier`` (bare or URL), ``affiliation`` texts. Zenodo puts the
      whole name into ``familyName`` when the depositor typed "Given Family" without a
      comma ("Matteo Marchegiani", no ``givenName``); such a family name, and a missing
      one, is derived from ``creatorName`` as in Dublin Core (:func:`_personal_name`).
      ``nameType="Organizational"`` creators get no split.
    * **Date**: the ``Issued`` date (a range "2019-01/2019-12" gives its start) at its
      precision, else ``publicationYear``.
    * **Type** from ``resourceType/@resourceTypeGeneral`` and its text, see
      :func:`_datacite_type`.
    * **Keywords**: ``subject`` without ``subjectScheme`` (:func:`split_keywords`);
      with a scheme, a :class:`Subject` (code from ``classificationCode``, label the
      text).
    * **Abstract**: ``description[@descriptionType="Abstract"]``, HTML (Zenodo) removed
      by :func:`clean_block`. **Licence**: the first ``rightsURI`` that is a URL (not
      ``info:eu-repo/semantics/openAccess``), else a CC licence named by
      ``rightsIdentifier`` or text.
    * **Container** (kernel 4.4 ``relatedItems``): the item the resource
      ``IsPublishedIn`` gives container title, volume, issue, pages and ISSN.
    """
    root = resource
    if _namespace(root) in OAI_DATACITE_NAMESPACES:
        payload = _child(root, "payload")
        inner = _first_child(payload) if payload is not None else None
        if inner is None:
            raise NormalizationError(f"oai_datacite record without a payload resource: {root.tag}")
        root = inner
    if _namespace(root) not in DATACITE_NAMESPACES or _local(root) != "resource":
        raise NormalizationError(f"unsupported metadata format {root.tag}")

    acc = _Accumulator()
    for identifier in _children(root, "identifier"):
        if (identifier.get("identifierType") or "").upper() == "DOI":
            acc.doi = strict_doi(_text(identifier))
            break
    for alternate in _grandchildren(root, "alternateIdentifiers", "alternateIdentifier"):
        _read_datacite_alternate(alternate.get("alternateIdentifierType") or "", _text(alternate), acc)
    for related in _grandchildren(root, "relatedIdentifiers", "relatedIdentifier"):
        kind = (related.get("relatedIdentifierType") or "").upper()
        if kind == "ISSN" and (related.get("relationType") or "") == "IsPartOf":
            acc.add_issn(_text(related))

    titles = list(_grandchildren(root, "titles", "title"))
    title = _first(clean_text(_text(t)) for t in titles if not t.get("titleType"))
    if title is None:
        title = _first(
            clean_text(_text(t)) for t in titles if t.get("titleType") not in ("Subtitle", "TranslatedTitle")
        )
    subtitle = _first(clean_text(_text(t)) for t in titles if t.get("titleType") == "Subtitle")

    keywords: list[str] = []
    subjects: dict[Subject, None] = {}
    for subject in _grandchildren(root, "subjects", "subject"):
        scheme = (subject.get("subjectScheme") or "").strip()
        if scheme:
            code = (subject.get("classificationCode") or "").strip() or None
            label = clean_text(_text(subject))
            if code or label:
                subjects.setdefault(Subject(scheme, code, label), None)
        else:
            keywords.append(_text(subject))

    abstract = _first(
        _clean_abstract(_text(d))
        for d in _grandchildren(root, "descriptions", "description")
        if d.get("descriptionType") == "Abstract"
    )
    container = _datacite_container(root, acc)
    resource_type = _child(root, "resourceType")
    return _fields(
        acc,
        title=title,
        subtitle=subtitle,
        authors=tuple(
            a for a in map(_datacite_author, _grandchildren(root, "creators", "creator")) if a is not None
        ),
        abstract=abstract,
        container_title=container.title,
        volume=container.volume,
        issue=container.issue,
        pages=container.pages,
        publisher=clean_text(_text(_child(root, "publisher"))),
        date=_datacite_date(root),
        type=_datacite_type(
            resource_type.get("resourceTypeGeneral") if resource_type is not None else None,
            _text(resource_type),
        ),
        language=normalize_language(_text(_child(root, "language")) or None),
        keywords=_keywords(keywords),
        subjects=tuple(subjects),
        license=_datacite_license(root),
    )


def _read_datacite_alternate(kind: str, value: str, acc: _Accumulator) -> None:
    kind = _NOT_A_TO_Z.sub("", kind.lower())
    if not value:
        return
    if kind == "url" and _URL.match(value):
        acc.add_url(value)
    elif kind == "doi":
        if acc.doi is None:
            acc.doi = strict_doi(value)
    elif kind == "arxiv":
        acc.add("arxiv", normalize_arxiv(value))
    elif kind in ("pmid", "pubmed", "pubmedid"):
        acc.add("pmid", normalize_pmid(value))
    elif kind == "pmcid":
        pmcid = _PMCID.match(value)
        acc.add("pmcid", pmcid.group(1).upper() if pmcid else None)
    elif kind == "isbn":
        acc.add_isbn(value)
    elif kind in ("issn", "eissn", "pissn"):
        acc.add_issn(value, _issn_kind(kind[0] if kind != "issn" else None))
    elif kind in ("handle", "hdl"):
        handle = _HANDLE.match(value)
        bare = handle.group("handle") if handle else value
        acc.add("handle", bare.rstrip("/") if _HANDLE_VALUE.match(bare) else None)
    elif kind == "urn":
        urn = _URN.match(value)
        acc.add("urn", f"urn:{urn.group('nid').lower()}:{urn.group('nss')}" if urn else None)
    elif kind == "oai" and _OAI_ID.match(value):
        acc.add("oai", value)


def _datacite_author(creator: etree._Element) -> Author | None:
    name_element = _child(creator, "creatorName")
    raw_name = _text(name_element)
    name = clean_text(_split_orcid(raw_name)[0]) if raw_name else None
    given = clean_text(_text(_child(creator, "givenName")))
    family = clean_text(_text(_child(creator, "familyName")))
    if name is None:
        if family is None:
            return None
        name = f"{family}, {given}" if given else family
    name_type = name_element.get("nameType") if name_element is not None else None
    if name_type == "Organizational":
        family = given = None
    elif family is None or (given is None and family == name and len(name.split()) > 1):
        family, given = _personal_name(name)
    orcid = None
    for identifier in _children(creator, "nameIdentifier"):
        scheme = (identifier.get("nameIdentifierScheme") or "").upper()
        scheme_uri = identifier.get("schemeURI") or ""
        if scheme == "ORCID" or "orcid.org" in scheme_uri.lower():
            orcid = normalize_orcid(_text(identifier))
            if orcid is not None:
                break
    if orcid is None and raw_name:
        orcid = _split_orcid(raw_name)[1]
    affiliations: dict[str, None] = {}
    for affiliation in _children(creator, "affiliation"):
        text = clean_text(_text(affiliation))
        if text is not None:
            affiliations.setdefault(text, None)
    return Author(name=name, family=family, given=given, orcid=orcid, affiliations=tuple(affiliations))


_YEAR = re.compile(r"[0-9]{4}")


def _datacite_date(root: etree._Element) -> PartialDate | None:
    for date in _grandchildren(root, "dates", "date"):
        if date.get("dateType") == "Issued":
            start = _text(date).split("/", 1)[0].strip()
            parsed = _parse_date(start) if start else None
            if parsed is not None:
                return parsed
    year = _text(_child(root, "publicationYear"))
    return _parse_date(year) if _YEAR.fullmatch(year) else None


_DATACITE_GENERAL: dict[str, str | None] = {
    "audiovisual": _OTHER,
    "book": "book",
    "bookchapter": "book-chapter",
    "collection": _OTHER,
    "computationalnotebook": _OTHER,
    "conferencepaper": "proceedings-article",
    "conferenceproceeding": "proceedings",
    "datapaper": "journal-article",
    "dataset": "dataset",
    "dissertation": "dissertation",
    "event": _OTHER,
    "image": _OTHER,
    "instrument": _OTHER,
    "interactiveresource": _OTHER,
    "journal": "journal",
    "journalarticle": "journal-article",
    "model": _OTHER,
    "outputmanagementplan": _OTHER,
    "peerreview": "peer-review",
    "physicalobject": _OTHER,
    "preprint": "posted-content",
    "project": _OTHER,
    "report": "report",
    "service": _OTHER,
    "software": _OTHER,
    "sound": _OTHER,
    "standard": "standard",
    "studyregistration": _OTHER,
    "workflow": _OTHER,
    "text": None,  # generic: the element text decides
    "other": None,
}


def _datacite_type(general: str | None, text: str) -> str | None:
    """``resourceTypeGeneral`` decides, except the generic "Text" and "Other", where the
    element text does ("Journal article" → journal-article, Zenodo's "Presentation" or
    "Taxonomic treatment" → other). "Text" without text gives None, like DC's "Text";
    "Other" gives "other"; an unknown general type gives "other".
    """
    key = _NOT_A_TO_Z.sub("", (general or "").lower())
    if key and key not in ("text", "other"):
        return _DATACITE_GENERAL.get(key, _OTHER)
    specific = _classify_type(text) if text else ""
    if specific:
        return specific
    if specific is None:  # a text we do not know
        return _OTHER
    return _OTHER if key == "other" else None


def _datacite_license(root: etree._Element) -> str | None:
    rights = list(_grandchildren(root, "rightsList", "rights"))
    for element in rights:
        uri = (element.get("rightsURI") or "").strip()
        if _URL.match(uri):
            return _canonical_cc_url(uri)
    for element in rights:
        for text in (element.get("rightsIdentifier") or "", _text(element)):
            named = _cc_from_name(text) if text else None
            if named is not None:
                return named
    return None


def _datacite_container(root: etree._Element, acc: _Accumulator) -> _Container:
    for item in _grandchildren(root, "relatedItems", "relatedItem"):
        if item.get("relationType") not in ("IsPublishedIn", "IsPartOf"):
            continue
        title = _first(clean_text(_text(t)) for t in _grandchildren(item, "titles", "title"))
        for identifier in _children(item, "relatedItemIdentifier"):
            kind = (identifier.get("relatedItemIdentifierType") or "").upper()
            if kind in ("ISSN", "EISSN"):
                acc.add_issn(_text(identifier), "electronic" if kind == "EISSN" else None)
        if title is None:
            continue
        first, last = _text(_child(item, "firstPage")), _text(_child(item, "lastPage"))
        pages = f"{first}-{last}" if first and last and first != last else (first or None)
        return _Container(
            title=title,
            volume=_text(_child(item, "volume")) or None,
            issue=_text(_child(item, "issue")) or None,
            pages=pages,
        )
    return _Container()


# ==========================================================================================
# shared helpers
# ==========================================================================================


def _fields(acc: _Accumulator, **values: Any) -> dict[str, Any]:
    """The final keyword arguments: identifiers sorted, ``url`` chosen, emptiness checked."""
    url = acc.landing_url()
    if acc.doi is not None:
        acc.add("doi", acc.doi)
    if url is not None:
        acc.add("url", url)
    fields: dict[str, Any] = {
        "doi": acc.doi,
        **values,
        "issn": tuple(Issn(value, kind) for value, kind in acc.issns.items()) if acc.issns else (),
        "isbn": tuple(acc.isbns),
        "url": url,
        "identifiers": tuple(sorted(acc.identifiers)),
    }
    if not any(fields.values()):
        raise NormalizationError("metadata without any usable content")
    return fields


def _namespace(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return ""
    return tag[1 : tag.index("}")]


def _local(element: etree._Element) -> str:
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _first_child(element: etree._Element) -> etree._Element | None:
    return next((c for c in element if isinstance(c.tag, str)), None)


def _children(element: etree._Element | None, name: str) -> Iterator[etree._Element]:
    """Children with local name ``name`` in the parent's namespace."""
    if element is None:
        return iter(())
    # lxml filters by tag in C; "{}name" is "name" in no namespace.
    return element.iterchildren(f"{{{_namespace(element)}}}{name}")


def _child(element: etree._Element | None, name: str) -> etree._Element | None:
    return next(_children(element, name), None)


def _grandchildren(element: etree._Element, outer: str, inner: str) -> Iterator[etree._Element]:
    for wrapper in _children(element, outer):
        yield from _children(wrapper, inner)


def _text(element: etree._Element | None) -> str:
    """All text inside the element (its tail excluded), stripped; ``""`` for None."""
    if element is None:
        return ""
    if not len(element):  # no child nodes: the text is all there is, without itertext's cost
        return (element.text or "").strip()
    return "".join(t for t in element.itertext() if isinstance(t, str)).strip()


_T = TypeVar("_T")


def _first(values: Iterable[_T | None]) -> _T | None:
    return next((v for v in values if v is not None), None)
