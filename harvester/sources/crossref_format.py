"""Crossref ``/works`` items → the fields of a canonical :class:`~harvester.record.Record`.

The Crossref source (:mod:`harvester.sources.crossref`) hands over one work object of a
``/works`` page (``message.items[i]``) or of a single-work response (``message``), as
the JSON parser left it: ``\\/`` escapes in DOIs (rcrossref's 2022 PeerJ review,
``10.7287\\/peerj.3819v0.1\\/reviews\\/2``) are already plain slashes. Two pure
functions read it:

* :func:`crossref_fields` returns the keyword arguments of :class:`Record` other than
  ``key``, ``datestamp`` and ``deleted``; ``reprocess`` re-runs it on the stored JSON and
  must get the same answer, so the harvest date for the citation count is a parameter.
* :func:`crossref_datestamp` returns the item's change time, which decides between two
  records of the same DOI.

:data:`SELECT_FIELDS` is the ``select=`` list the source sends: the fields read here that
the API lets a client select, and nothing more.

Crossref's data is more regular than Dublin Core, but every field can still be absent,
null, empty or of an unexpected type (a string where an array is due, a number where a
string is due). The rule everywhere: a bad piece is skipped, the rest of the item is
kept; only an item that is not an object or has no valid ``DOI`` is unusable
(:class:`~harvester.sources.base.NormalizationError`). The facts behind each rule, from
the recorded responses in ``tests/fixtures/crossref/`` (2022 rcrossref and 2026 habanero
cassettes) and ``shared/notes/crossref-scopus.md`` ("Work JSON"), are in the docstrings of
the helpers below.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from harvester.doi import strict_doi
from harvester.identifiers import normalize_isbn, normalize_issn, normalize_language, normalize_orcid
from harvester.record import TYPES, Author, CitationCount, Issn, PartialDate, Subject
from harvester.sources.base import NormalizationError
from harvester.sources.base import http_url as _http_url
from harvester.sources.base import is_iso_date as _is_iso_date
from harvester.sources.base import preview as _preview
from harvester.text import clean_text, jats_to_text

__all__ = [
    "SELECT_FIELDS",
    "UNSELECTABLE_FIELDS",
    "UPDATE_KINDS",
    "crossref_datestamp",
    "crossref_fields",
]

#: The ``select=`` fields this normalizer reads, in the order of the Record. Every one is
#: in the API's list of selectable elements ("Elements" in the ``/works`` documentation of
#: api.crossref.org, API 3.32; habanero's ``VALID_SELECTS`` is the same list): an invalid
#: name makes Crossref answer 400 to every request.
SELECT_FIELDS: tuple[str, ...] = (
    "DOI",
    "title",
    "subtitle",
    "author",
    "abstract",
    "container-title",
    "short-container-title",
    "ISSN",
    "issn-type",
    "ISBN",
    "volume",
    "issue",
    "page",
    "publisher",
    "published",
    "published-print",
    "published-online",
    "issued",
    "type",
    "subject",
    "is-referenced-by-count",
    "license",
    "URL",
    "alternative-id",
    "update-to",
    "updated-by",
    "indexed",
    "deposited",
    "created",
)

#: Fields this normalizer reads when they are present but that are NOT selectable (they
#: are missing from the API's list): a harvest with ``select=`` never receives them, so
#: such records have no language, no ``isbn-type`` (``ISBN`` still comes) and take the
#: ``URL`` (the doi.org link) instead of the publisher's landing page.
UNSELECTABLE_FIELDS: tuple[str, ...] = ("isbn-type", "language", "resource")

#: The kinds of ``Record.updates``.
UPDATE_KINDS: frozenset[str] = frozenset(
    {"retraction", "correction", "expression_of_concern", "withdrawal", "addendum", "other"}
)

_IssnKind = Literal["print", "electronic"]

# ``issn-type[].type``: the data says print/electronic (every fixture, 2022 and 2026);
# api_format.md documents pissn/eissn. Both are read.
_ISSN_KINDS: dict[str, _IssnKind] = {
    "print": "print",
    "pissn": "print",
    "electronic": "electronic",
    "eissn": "electronic",
}
_ISSN_ORDER: dict[_IssnKind | None, int] = {"print": 0, "electronic": 1, None: 2}

# Crossref's update types (the Crossmark ``update`` vocabulary) → Record.updates kinds.
_UPDATE_KINDS: dict[str, str] = {
    "retraction": "retraction",
    "partial_retraction": "correction",  # the work stands, in part: not a retraction of it
    "correction": "correction",
    "erratum": "correction",
    "corrigendum": "correction",
    "clarification": "correction",
    "expression_of_concern": "expression_of_concern",
    "withdrawal": "withdrawal",
    "removal": "withdrawal",
    "addendum": "addendum",
}
# ``updated-by`` types that make THIS work retracted.
_RETRACTING = frozenset({"retraction", "withdrawal", "removal"})

# The publication date, in this order: ``published`` (seen in 2026; in the fixtures the
# earliest of print and online), then print, online, and ``issued`` (documented as the
# earliest of print and online, and present on every item, possibly with a null year).
_DATE_FIELDS = ("published", "published-print", "published-online", "issued")
# The change timestamp: indexed (every reindex), else deposited, else created.
_STAMP_FIELDS = ("indexed", "deposited", "created")

_COUNT = re.compile(r"[0-9]{1,15}")
# Until 2017 the API wrote ISSNs and ISBNs as URLs (CrossRef/rest-api-doc#214); stored
# payloads from then still carry them.
_ID_URL = re.compile(r"^https?://id\.crossref\.org/(?:issn|isbn)/", re.IGNORECASE)
_NOT_A_TO_Z = re.compile(r"[^a-z]+")


def crossref_fields(item: Mapping[str, Any], *, as_of: str) -> dict[str, Any]:
    """Record fields (without ``key``, ``datestamp``, ``deleted``) from one Crossref work.

    ``as_of`` is the harvest date (ISO ``YYYY-MM-DD``) that the citation count is dated
    with; a malformed one is a caller bug (``ValueError``). Raises
    :class:`NormalizationError` when ``item`` is not an object or its ``DOI`` is missing or
    not a DOI (:func:`strict_doi`: bare, ASCII lower case).

    * **Title, subtitle, container**: arrays of strings (notes: "title, subtitle,
      container-title and short-container-title are arrays"); the first non-empty one
      through :func:`clean_text`, which removes the markup and the line breaks that
      publishers put inside titles (BMJ's ``"…detecting\\n   <i>KRAS</i>\\n   /…"``).
      The container falls back to ``short-container-title``. Wiley's running heads come
      as ``subtitle`` ("Cerebral edema in DKA") and are kept: nothing tells them apart.
    * **Authors**: :func:`_author`. **Abstract**: JATS, see :func:`_abstract`.
    * **ISSN** (:func:`_issns`), **ISBN** (:func:`_isbns`), **volume**, **issue**,
      **pages** (``page``, e.g. "305-349", "e33693"), **publisher**: strings, cleaned.
    * **Date**: :func:`_date`. **Type**: :func:`_type`. **Language**:
      :func:`normalize_language` (Crossref writes "en").
    * **Subjects**: each ``subject`` label as ``Subject("Crossref", None, label)``. The
      field is ``[]`` in every 2026 fixture but populated in 2022 (Frontiers: "Genetics
      (clinical)", "Genetics", "Molecular Medicine"), so stored 2022 payloads have
      subjects and fresh ones do not; an empty list is not an error.
    * **Citation count**: ``is-referenced-by-count`` as ``CitationCount(n, as_of)``;
      0 is a real count (most fixtures have 0) and is kept.
    * **Licence**: :func:`_license`. **URL**: ``resource.primary.URL`` (the publisher's
      landing page), else ``URL`` (the doi.org link), when it is an http(s) URL.
    * **Identifiers**: ``("doi", doi)``, each ``alternative-id`` as ``("publisher_id",
      value)`` (Elsevier PIIs ``S0197458010001570``, Springer ``BFsrep16696``; a value
      that is the work's own DOI, as Wiley and BMJ write there, is dropped, and Hindawi's
      doubled id is kept once), and the ISBNs as ``("isbn", value)``; sorted.
    * **Retraction**: :func:`_retracted` and :func:`_updates`.
    """
    if not isinstance(item, Mapping):
        raise NormalizationError(f"a Crossref item must be a JSON object, not {type(item).__name__}")
    if not _is_iso_date(as_of):
        raise ValueError(f"as_of must be an ISO date (YYYY-MM-DD): {as_of!r}")
    raw_doi = item.get("DOI")
    doi = strict_doi(raw_doi) if isinstance(raw_doi, str) else None
    if doi is None:
        if raw_doi is None:
            raise NormalizationError("Crossref item without a DOI")
        raise NormalizationError(f"Crossref item whose DOI is not a DOI: {_preview(raw_doi)}")

    isbns = _isbns(item)
    identifiers = {("doi", doi)}
    identifiers.update(("isbn", isbn) for isbn in isbns)
    for value in _array(item.get("alternative-id")):
        text = _scalar_text(value)
        if text is not None and strict_doi(text) != doi:
            identifiers.add(("publisher_id", text))

    return {
        "doi": doi,
        "title": _first_text(item.get("title")),
        "subtitle": _first_text(item.get("subtitle")),
        "authors": tuple(a for a in map(_author, _array(item.get("author"))) if a is not None),
        "abstract": _abstract(item.get("abstract")),
        "container_title": _first_text(item.get("container-title"))
        or _first_text(item.get("short-container-title")),
        "issn": _issns(item),
        "isbn": isbns,
        "volume": _scalar_text(item.get("volume")),
        "issue": _scalar_text(item.get("issue")),
        "pages": _scalar_text(item.get("page")),
        "publisher": _scalar_text(item.get("publisher")),
        "date": _date(item),
        "type": _type(item.get("type")),
        "language": _language(item.get("language")),
        "keywords": (),
        "subjects": _subjects(item.get("subject")),
        "citation_count": _citation_count(item.get("is-referenced-by-count"), as_of),
        "license": _license(item.get("license")),
        "url": _url(item),
        "identifiers": tuple(sorted(identifiers)),
        "retracted": _retracted(item.get("updated-by")),
        "updates": _updates(item.get("update-to"), doi),
    }


def crossref_datestamp(item: Any) -> dt.datetime | None:
    """The item's change time (UTC): ``indexed``, else ``deposited``, else ``created``.

    ``indexed`` changes on every reindex, which is what the source's ``from-index-date``
    window filters on (a citing work's deposit reindexes the works it cites, and only a
    reindex shows a new citation count). Each is read from its ``date-time``
    (``"2026-03-18T13:02:09Z"``), else from its ``timestamp`` in milliseconds. None when
    none is readable, or when ``item`` is not an object.
    """
    if not isinstance(item, Mapping):
        return None
    for name in _STAMP_FIELDS:
        stamp = _timestamp(item.get(name))
        if stamp is not None:
            return stamp
    return None


# --- field readers ---------------------------------------------------------------------------


def _author(entry: Any) -> Author | None:
    """One ``author[]`` entry, in the order the API gives.

    A person has ``family`` and usually ``given`` (Spandidos's sparse record has only
    ``family: "Stravopodis"``); ``name`` as written is "Given Family" plus ``suffix``
    ("Donald Hora Jr.", Wiley). An organisation has only ``name`` (notes, "Work JSON":
    organisations appear as ``name`` in 2026): it becomes the name, with no family or
    given. ``ORCID`` is a URL (``http(s)://orcid.org/…``) and goes through
    :func:`normalize_orcid`; an invalid one is dropped, the author kept. Affiliations are
    ``affiliation[{name}]``, cleaned, repeats removed. ``sequence`` (first/additional) is
    not used to reorder: the API order is the byline, and ``sequence`` is not reliable
    (the only author of the PeerJ review is "additional").
    """
    if not isinstance(entry, Mapping):
        return None
    given = _text(entry.get("given"))
    family = _text(entry.get("family"))
    if given is None and family is None:
        name = _text(entry.get("name"))
        if name is None:
            return None
    else:
        name = " ".join(p for p in (given, family, _text(entry.get("suffix"))) if p)
    affiliations: dict[str, None] = {}
    for affiliation in _array(entry.get("affiliation")):
        text = _text(affiliation.get("name") if isinstance(affiliation, Mapping) else affiliation)
        if text is not None:
            affiliations.setdefault(text, None)
    orcid = entry.get("ORCID")
    return Author(
        name=name,
        family=family,
        given=given,
        orcid=normalize_orcid(orcid) if isinstance(orcid, str) else None,
        affiliations=tuple(affiliations),
    )


def _abstract(value: Any) -> str | None:
    """``abstract`` is a JATS XML string (``<jats:sec><jats:title>Background</jats:title>
    <jats:p>…``, BMJ) or a bare ``<jats:p>`` (Hindawi), and often absent (BMJ's ESMO Open
    item, Elsevier, IEEE). :func:`jats_to_text` keeps section titles as labels
    ("Purpose: …" paragraphs) and drops Wiley's and Nature's lone "Abstract" title.
    """
    return jats_to_text(value) if isinstance(value, str) else None


def _issns(item: Mapping[str, Any]) -> tuple[Issn, ...]:
    """``issn-type[{value, type}]`` typed, then any ``ISSN[]`` value not typed (kind None).

    All through :func:`normalize_issn` (invalid check digits dropped), repeats removed, print
    first, then electronic, then untyped. The type vocabulary is print/electronic in the
    data (PLOS 1932-6203 electronic; Wiley 0736-0266 print and 1554-527X electronic) while
    the documentation says pissn/eissn: both are read, anything else is untyped.
    """
    kinds: dict[str, _IssnKind | None] = {}
    for entry in _array(item.get("issn-type")):
        if not isinstance(entry, Mapping):
            continue
        value = _issn(entry.get("value"))
        if value is None:
            continue
        kind_name = entry.get("type")
        kind = _ISSN_KINDS.get(kind_name.strip().lower()) if isinstance(kind_name, str) else None
        if kinds.get(value) is None:
            kinds[value] = kind
    for raw in _array(item.get("ISSN")):
        value = _issn(raw)
        if value is not None:
            kinds.setdefault(value, None)
    ordered = sorted(kinds.items(), key=lambda pair: _ISSN_ORDER[pair[1]])
    return tuple(Issn(value, kind) for value, kind in ordered)


def _issn(value: Any) -> str | None:
    return normalize_issn(_ID_URL.sub("", value)) if isinstance(value, str) else None


def _isbns(item: Mapping[str, Any]) -> tuple[str, ...]:
    """``ISBN[]``, then ``isbn-type[].value``, as ISBN-13 (:func:`normalize_isbn`), deduplicated.

    Book chapters (Apress, Elsevier, Springer) carry the ISBN of their book; reference
    entries and proceedings articles often none (IEEE's ICDCS workshop paper).
    """
    values: list[Any] = list(_array(item.get("ISBN")))
    values.extend(e.get("value") for e in _array(item.get("isbn-type")) if isinstance(e, Mapping))
    isbns: dict[str, None] = {}
    for value in values:
        isbn = normalize_isbn(_ID_URL.sub("", value)) if isinstance(value, str) else None
        if isbn is not None:
            isbns.setdefault(isbn, None)
    return tuple(isbns)


def _date(item: Mapping[str, Any]) -> PartialDate | None:
    """The first readable of ``published``, ``published-print``, ``published-online``,
    ``issued``, at its own precision.

    Each is ``{"date-parts": [[y, m, d]]}`` with month and day optional: 2012-03 stays
    month precision, nothing is completed to ``-01``. The year can be null
    (``[[null]]``: IEEE's 2003 workshop paper, Springer reference entries, IGI's book
    chapter); such a date is skipped and the next one tried, and without any the date is
    None. Parts that are not integers (or digit strings) end the date there; impossible
    days or months shrink the precision (:meth:`PartialDate.from_parts`).
    """
    for name in _DATE_FIELDS:
        value = item.get(name)
        if not isinstance(value, Mapping):
            continue
        parts = value.get("date-parts")
        first = parts[0] if isinstance(parts, list) and parts else None
        if not isinstance(first, list):
            continue
        clean: list[int | str] = []
        for part in first[:3]:
            if isinstance(part, bool) or not isinstance(part, int | str):
                break
            if isinstance(part, str) and not _COUNT.fullmatch(part.strip()):
                break
            clean.append(part)
        date = PartialDate.from_parts(clean)
        if date is not None:
            return date
    return None


def _type(value: Any) -> str | None:
    """Crossref's work types ARE the canonical vocabulary (``harvester.record.TYPES``, from
    api.crossref.org/types): journal-article, proceedings-article, posted-content,
    peer-review, book-chapter, dataset, reference-entry, component, dissertation, report,
    standard, monograph, edited-book, grant, journal-issue… are kept as they are. A type
    the vocabulary does not know (a new one) is "other"; a missing one is None.
    """
    if not isinstance(value, str):
        return None
    key = value.strip().lower()
    if not key:
        return None
    return key if key in TYPES else "other"


def _language(value: Any) -> str | None:
    for element in _array(value):
        language = normalize_language(element) if isinstance(element, str) else None
        if language is not None:
            return language
    return None


def _subjects(value: Any) -> tuple[Subject, ...]:
    subjects: dict[Subject, None] = {}
    for label in _array(value):
        text = _text(label)
        if text is not None:
            subjects.setdefault(Subject("Crossref", None, text), None)
    return tuple(subjects)


def _citation_count(value: Any, as_of: str) -> CitationCount | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _COUNT.fullmatch(value.strip()):
        value = int(value)
    if isinstance(value, int) and value >= 0:
        return CitationCount(value, as_of)
    return None


def _license(value: Any) -> str | None:
    """The ``URL`` of the first ``license[]`` whose ``content-version`` is ``vor`` (the
    version of record), else of the first licence, as given (trimmed; only http(s) URLs).

    Publishers list text-and-data-mining licences (``tdm``) first: Elsevier's ESMO Open item
    has two ``tdm`` URLs and then ``vor`` CC BY-NC 4.0, which is the one that applies to
    readers. PLOS and Hindawi mark their CC licence ``unspecified``: then the first wins.
    """
    licences: list[tuple[Any, str]] = []
    for entry in _array(value):
        if isinstance(entry, Mapping):
            url = _http_url(entry.get("URL"))
            if url is not None:
                licences.append((entry.get("content-version"), url))
    for version, url in licences:
        if version == "vor":
            return url
    return licences[0][1] if licences else None


def _url(item: Mapping[str, Any]) -> str | None:
    resource = item.get("resource")
    primary = resource.get("primary") if isinstance(resource, Mapping) else None
    url = _http_url(primary.get("URL")) if isinstance(primary, Mapping) else None
    return url if url is not None else _http_url(item.get("URL"))


def _retracted(value: Any) -> bool:
    """True when an ``updated-by[]`` entry is a retraction, withdrawal or removal.

    Crossref marks a retracted work on the work itself with ``updated-by[{DOI, type,
    label, source, updated, record-id}]``, in the production API since January 2025;
    ``source`` is "publisher" (Crossmark) or "retraction-watch" (the Retraction Watch
    database Crossref acquired), and one retraction can appear once per source. PLOS's
    item has one ``correction`` from its publisher: corrected, not retracted. A partial
    retraction does not retract the work. ``relation`` is not read: Crossref's relation
    types (is-preprint-of, has-review, is-review-of, is-replaced-by…) have no retraction
    type, and the names ``is-retracted-by``/``has-retraction`` do not occur; a retraction
    is always an update. A "RETRACTED:" prefix in the title is not read either.
    """
    return any(_update_type(entry) in _RETRACTING for entry in _array(value) if isinstance(entry, Mapping))


def _updates(value: Any, doi: str) -> tuple[tuple[str, str], ...]:
    """(kind, target DOI) pairs from ``update-to[{DOI, type, label, updated, source}]``,
    sorted, repeats removed (an update asserted by the publisher and by Retraction Watch
    is one update).

    An item with ``update-to`` IS an editorial notice about another work (its own DOI
    differs): a retraction notice is flagged through ``updates`` and never merged into
    its target; the store uses the pairs to mark the target retracted. The type is mapped
    to a kind: retraction; correction, erratum, corrigendum, clarification and
    partial_retraction → correction; expression_of_concern; withdrawal and removal →
    withdrawal; addendum; anything else (new_version, new_edition, a type without a
    name) → other. Targets go through :func:`strict_doi`; an invalid one, or the item's
    own DOI, is skipped.
    """
    pairs: set[tuple[str, str]] = set()
    for entry in _array(value):
        if not isinstance(entry, Mapping):
            continue
        target = entry.get("DOI")
        target_doi = strict_doi(target) if isinstance(target, str) else None
        if target_doi is None or target_doi == doi:
            continue
        pairs.add((_UPDATE_KINDS.get(_update_type(entry), "other"), target_doi))
    return tuple(sorted(pairs))


def _update_type(entry: Mapping[str, Any]) -> str:
    """``type`` (else ``label``) as a vocabulary key: "Expression of Concern" and
    "expression-of-concern" both give ``expression_of_concern``."""
    for name in ("type", "label"):
        value = entry.get(name)
        if isinstance(value, str):
            key = _NOT_A_TO_Z.sub("_", value.lower()).strip("_")
            if key:
                return key
    return ""


def _timestamp(value: Any) -> dt.datetime | None:
    if not isinstance(value, Mapping):
        return None
    text = value.get("date-time")
    if isinstance(text, str):
        try:
            parsed = dt.datetime.fromisoformat(text.strip())
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            pass
    millis = value.get("timestamp")
    if isinstance(millis, int) and not isinstance(millis, bool):
        try:
            return dt.datetime.fromtimestamp(millis / 1000, tz=dt.UTC)
        except (ValueError, OverflowError, OSError):
            return None
    return None


# --- shared helpers ----------------------------------------------------------------------------


def _array(value: Any) -> Iterator[Any]:
    """The elements of a JSON array; a lone value where an array is due counts as a
    one-element array (a string title), null as an empty one."""
    if isinstance(value, list):
        yield from value
    elif value is not None:
        yield value


def _text(value: Any) -> str | None:
    return clean_text(value) if isinstance(value, str) else None


def _first_text(value: Any) -> str | None:
    for element in _array(value):
        text = _text(element)
        if text is not None:
            return text
    return None


def _scalar_text(value: Any) -> str | None:
    """A string field, cleaned; an integer (a volume sent as a number) as its digits."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 <= value < 10**15 else None
    return _text(value)
