"""Scopus Search ``entry`` objects → the fields of a canonical :class:`~harvester.record.Record`.

The Scopus source hands over one ``search-results.entry[i]`` object of a Scopus Search
response (``GET /content/search/scopus``, STANDARD or COMPLETE view) as the JSON parser left
it. Four pure functions read it:

* :func:`scopus_key` returns the EID (``2-s2.0-85061234567``), the source key.
* :func:`scopus_fields` returns the keyword arguments of :class:`Record` other than
  ``key``, ``datestamp`` and ``deleted``; ``reprocess`` re-runs it on the stored JSON and
  must get the same answer, so the harvest date for the citation count is a parameter.
* :func:`scopus_datestamp` returns the entry's change time, which Search results do not
  carry (see there).
* :func:`subject_areas` reads the ASJC subject areas of an Abstract Retrieval response
  (``/content/abstract/…?view=FULL``): Search entries have none.

:func:`search_entries` lists the entries of a response body without Scopus's "Result set
was empty" marker, which is not a record.

The JSON is converted from Scopus's XML (``shared/notes/crossref-scopus.md``, "Entry
fields"): text may come wrapped as ``{"$": text}`` (with ``@`` attributes beside it), a
list with one element comes as the element itself (pybliometrics calls ``listify()``
everywhere), numbers come as strings (``"citedby-count": "41"``) and any field can be
absent, null or empty. The rule everywhere: a bad piece is skipped, the rest of the entry
is kept; only an entry that is not an object or has no valid ``eid`` is unusable
(:class:`~harvester.sources.base.NormalizationError`). No real Scopus response may be
redistributed, so ``tests/fixtures/scopus/`` holds responses written by hand from the
documented format; the facts behind each rule are in the docstrings of the helpers below.

**Not in the canonical record.** Open access (``openaccess`` "0"/"1"/"2",
``openaccessFlag`` true/false/"true"/"false", ``freetoread``/``freetoreadLabel``
``{"value": [{"$": "all"}, {"$": "repository"}]}``) says whether a copy is free to read,
not under which licence, so it does not go to ``license`` and there is no canonical field
for it: it is not read (the raw entry keeps it). Nor are ``fund-acr``/``fund-no``/
``fund-sponsor``, ``source-id``, ``author-count``, ``prism:coverDisplayDate`` and the API
links (``prism:url``, ``link[@ref=self]``, ``link[@ref=author-affiliation]``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from typing import Any

from harvester.doi import strict_doi
from harvester.identifiers import normalize_isbn, normalize_issn, normalize_orcid, normalize_pmid
from harvester.record import Author, CitationCount, Issn, PartialDate, Subject
from harvester.sources.base import NormalizationError
from harvester.sources.base import http_url as _http_url
from harvester.sources.base import is_iso_date as _is_iso_date
from harvester.sources.base import preview as _preview
from harvester.text import clean_block, clean_text, split_keywords

__all__ = [
    "AGGREGATION_TYPES",
    "SUBTYPES",
    "scopus_datestamp",
    "scopus_fields",
    "scopus_key",
    "search_entries",
    "subject_areas",
]

#: Scopus document types (``subtype`` codes, Scopus Content Coverage Guide) → the canonical
#: vocabulary (Crossref's work types). Crossref registers editorials, letters, notes,
#: errata and the like as ``journal-article``, and so do we: a Scopus erratum ("er") names
#: no corrected DOI, so it cannot be an editorial notice in ``Record.updates``. "cr"
#: (Conference Review) is the record of a whole proceedings volume ("The proceedings
#: contain 45 papers…"), hence ``proceedings``. "tb" (Retracted) is a retracted article:
#: ``journal-article`` and ``retracted=True``. "ip" (Article in Press) and "bz" (Business
#: Article) occur in older records.
SUBTYPES: Mapping[str, str] = {
    "ar": "journal-article",  # Article
    "re": "journal-article",  # Review
    "ed": "journal-article",  # Editorial
    "le": "journal-article",  # Letter
    "no": "journal-article",  # Note
    "sh": "journal-article",  # Short Survey
    "er": "journal-article",  # Erratum
    "dp": "journal-article",  # Data Paper
    "tb": "journal-article",  # Retracted
    "ip": "journal-article",  # Article in Press
    "bz": "journal-article",  # Business Article
    "cp": "proceedings-article",  # Conference Paper
    "cr": "proceedings",  # Conference Review
    "ch": "book-chapter",  # Book Chapter
    "bk": "book",  # Book
    "rp": "report",  # Report
    "pr": "other",  # Press Release
    "ab": "other",  # Abstract Report
}

#: ``prism:aggregationType`` (the kind of source) → canonical type, used only when neither
#: ``subtype`` nor ``subtypeDescription`` is known. An item of a Book or Book Series without
#: a document type is taken for a chapter (whole books carry "bk").
AGGREGATION_TYPES: Mapping[str, str] = {
    "journal": "journal-article",
    "trade journal": "journal-article",
    "conference proceeding": "proceedings-article",
    "book": "book-chapter",
    "book series": "book-chapter",
    "report": "report",
}

# ``subtypeDescription`` → ``subtype`` code, for entries whose code is missing or unknown.
_DESCRIPTIONS: dict[str, str] = {
    "article": "ar",
    "review": "re",
    "editorial": "ed",
    "letter": "le",
    "note": "no",
    "short survey": "sh",
    "erratum": "er",
    "data paper": "dp",
    "retracted": "tb",
    "article in press": "ip",
    "business article": "bz",
    "conference paper": "cp",
    "conference review": "cr",
    "book chapter": "ch",
    "chapter": "ch",
    "book": "bk",
    "report": "rp",
    "press release": "pr",
    "abstract report": "ab",
}
_RETRACTED_SUBTYPE = "tb"

_EID = re.compile(r"2-s2\.0-([0-9]{1,20})")
_DIGITS = re.compile(r"[0-9]{1,15}")
_LOAD_DATE = re.compile(r"([0-9]{4})-?([0-9]{2})-?([0-9]{2})")
_ASJC = re.compile(r"[1-9][0-9]{3}")
_PII = re.compile(r"[SB][0-9]{4}[0-9X]{12,20}")
_PII_PUNCTUATION = re.compile(r"[\s()\-.]")
_LIST_SPLIT = re.compile(r"[\s,;]+")
# Scopus marks subscripts as <inf>…</inf> ("Li<inf>4</inf>Ti<inf>5</inf>O<inf>12</inf>"):
# not an HTML element, so clean_text would keep the tags as text.
_INF_TAG = re.compile(r"</?inf\s*>", re.IGNORECASE)
# A copyright statement at the end of an abstract: "© 2019, Emerald Publishing Limited.",
# "Copyright © 2019 John Wiley & Sons, Ltd.", "(C) 2019 Elsevier B.V. All rights reserved.",
# "© The Author(s) 2019." It must start the abstract, a paragraph or a sentence, and run
# (without another ©) to the end in at most 300 characters. "(c)" and a bare "Copyright"
# count only before a year: "(a) … (b) … (c) …" is an enumeration.
_COPYRIGHT_TAIL = re.compile(
    r"(?:^|(?<=[.!?\n]))\s*(?:(?:Copyright\s*)?(?:©|\(c\)\s*(?=[0-9]{4}))|Copyright\s+(?=[0-9]{4}))"
    r"[^©]{0,300}\Z",
    re.IGNORECASE,
)
_NO_ABSTRACT = frozenset({"[no abstract available]", "no abstract available"})
# A name part made only of initials: "C.", "C.G.", "J.-P.", "C. G.".
_INITIALS = re.compile(r"(?:[^\W\d_]\.?[\s-]*)+", re.UNICODE)
_INITIAL_TOKEN = re.compile(r"[^\W\d_]{2,}", re.UNICODE)
# Scopus's indexed name "Surname I.": the surname, then initials that end with a dot.
_INDEXED_NAME = re.compile(r"(?P<family>.*?[^\W\d_].*?)\s+(?P<initials>(?:[^\W\d_]\.[\s-]*)+)", re.UNICODE)


def scopus_key(entry: Any) -> str:
    """The entry's EID, ``2-s2.0-`` and the Scopus id (``2-s2.0-85061234567``): the source key.

    Raises :class:`NormalizationError` when ``entry`` is not an object, is an error entry
    (``{"@_fa": "true", "error": "Result set was empty"}``, the one entry of an empty
    result) or has no ``eid`` of that form. The EID may come as ``{"$": …}`` and with
    surrounding spaces; its digits are kept as they are (the ids of older records start
    with zeros, ``2-s2.0-0035863587``).
    """
    return _eid(entry)[0]


def scopus_fields(entry: Mapping[str, Any], *, as_of: str) -> dict[str, Any]:
    """Record fields (without ``key``, ``datestamp``, ``deleted``) from one Scopus Search entry.

    ``as_of`` is the harvest date (ISO ``YYYY-MM-DD``) that the citation count is dated
    with; a malformed one is a caller bug (``ValueError``). Raises
    :class:`NormalizationError` for an unusable entry (see :func:`scopus_key`).

    * **DOI**: ``prism:doi`` through :func:`strict_doi`; optional (conference papers and
      book chapters often have none), an invalid one is dropped.
    * **Title**: ``dc:title``; **container**: ``prism:publicationName``; both through
      :func:`clean_text` after Scopus's ``<inf>`` subscript tags are removed. Scopus has no
      subtitle (it is part of the title) and no publisher in Search results.
    * **Authors**: :func:`_authors`. **Abstract** (COMPLETE only): :func:`_abstract`.
    * **ISSN**: :func:`_issns`. **ISBN**: :func:`_isbns`. **Volume**, **issue**:
      ``prism:volume``, ``prism:issueIdentifier`` (strings, or numbers). **Pages**:
      :func:`_pages`.
    * **Date**: ``prism:coverDate`` ("2019-05-13", sometimes a list of ``{"$"}``). Scopus
      dates monthly issues on the first of the month and yearly ones on 1 January
      ("2019-01-01"): a day it did not mean. ``prism:coverDisplayDate`` ("13 May 2019",
      "May 2019", "2019") tells how precise the date really is, and the date is cut to
      that precision (:func:`_cover_date`): never an invented ``-01-01``.
    * **Type** and **retracted**: :func:`_type`. **Language**: None (Search results have
      none in either view).
    * **Keywords** (COMPLETE only): ``authkeywords``, "E-government | Kazakhstan | …",
      split by :func:`split_keywords` (a list of strings or of ``{"$"}``, as Abstract
      Retrieval writes them, is read too). **Subjects**: none; Search entries carry no
      subject areas, see :func:`subject_areas`.
    * **Citation count**: ``citedby-count`` ("41", or a number) as ``CitationCount(n,
      as_of)``; 0 is a real count.
    * **Licence**, **URL**: None. Scopus gives no licence (open access is not a licence,
      see the module docstring) and no publisher landing page; the links it gives are to
      Scopus itself, which the landing URL must not be. They are kept as identifiers.
    * **Identifiers**, sorted: ``("scopus_eid", eid)``; ``("scopus_id", n)``, the number
      of the EID (``dc:identifier`` "SCOPUS_ID:n" says the same; should it disagree, the
      EID, which is the key, wins); ``("doi", doi)``; ``("pmid", …)`` from ``pubmed-id``
      (:func:`normalize_pmid`); ``("pii", …)`` from ``pii`` (Elsevier's PII in its compact
      form, ``S0740624X19300127``); the ISBNs as ``("isbn", …)``; and the Scopus record and
      cited-by pages as ``("scopus_url", …)`` and ``("scopus_citedby_url", …)``
      (``link[@ref="scopus"]`` and ``link[@ref="scopus-citedby"]``, http(s) only).
    """
    if not _is_iso_date(as_of):
        raise ValueError(f"as_of must be an ISO date (YYYY-MM-DD): {as_of!r}")
    eid, scopus_id = _eid(entry)
    raw_doi = _unwrap(entry.get("prism:doi"))
    doi = strict_doi(raw_doi) if isinstance(raw_doi, str) else None
    record_type, retracted = _type(entry)
    isbns = _isbns(entry.get("prism:isbn"))

    identifiers = {("scopus_eid", eid), ("scopus_id", scopus_id)}
    if doi is not None:
        identifiers.add(("doi", doi))
    identifiers.update(("isbn", isbn) for isbn in isbns)
    pmid = _unwrap(entry.get("pubmed-id"))
    if isinstance(pmid, int) and not isinstance(pmid, bool):
        pmid = str(pmid)
    pmid = normalize_pmid(pmid) if isinstance(pmid, str) else None
    if pmid is not None:
        identifiers.add(("pmid", pmid))
    pii = _pii(entry.get("pii"))
    if pii is not None:
        identifiers.add(("pii", pii))
    for scheme, url in _scopus_links(entry.get("link")).items():
        identifiers.add((scheme, url))

    return {
        "doi": doi,
        "title": _title(entry.get("dc:title")),
        "subtitle": None,
        "authors": _authors(entry),
        "abstract": _abstract(entry.get("dc:description")),
        "container_title": _title(entry.get("prism:publicationName")),
        "issn": _issns(entry),
        "isbn": isbns,
        "volume": _scalar_text(entry.get("prism:volume")),
        "issue": _scalar_text(entry.get("prism:issueIdentifier")),
        "pages": _pages(entry),
        "publisher": None,
        "date": _cover_date(_date(entry.get("prism:coverDate")), entry.get("prism:coverDisplayDate")),
        "type": record_type,
        "language": None,
        "keywords": _keywords(entry.get("authkeywords")),
        "subjects": (),
        "citation_count": _citation_count(entry.get("citedby-count"), as_of),
        "license": None,
        "url": None,
        "identifiers": tuple(sorted(identifiers)),
        "retracted": retracted,
        "updates": (),
    }


def scopus_datestamp(entry: Any) -> dt.datetime | None:
    """The entry's change time (UTC), or None: Scopus Search results carry none.

    Neither view has a modification date: ``LOAD-DATE`` and ``ORIG-LOAD-DATE`` can be
    queried but are not returned, and ``prism:coverDate`` is the publication date. A
    source that knows when a record was (re)loaded, because it harvested it through a
    ``LOAD-DATE`` window, may put that date in the entry as ``"load-date"`` before storing
    it: written as in the query syntax (``"20230615"``) or ISO (``"2023-06-15"``, also as a
    timestamp), it becomes midnight UTC of that day (the time part of a timestamp is
    kept). Anything else, or an entry that is not an object, gives None: the records of
    one EID are then told apart by the store's own order, not by this.
    """
    if not isinstance(entry, Mapping):
        return None
    value = _unwrap(entry.get("load-date"))
    if not isinstance(value, str):
        return None
    text = value.strip()
    if "T" in text:
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        try:
            return parsed.astimezone(dt.UTC)
        except (OverflowError, ValueError):
            return None
    match = _LOAD_DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = (int(part) for part in match.groups())
    try:
        return dt.datetime(year, month, day, tzinfo=dt.UTC)
    except ValueError:
        return None


def subject_areas(abstract_response: Mapping[str, Any]) -> tuple[Subject, ...]:
    """The ASJC subject areas of an Abstract Retrieval response (view FULL), in order.

    ``abstract_response`` is the whole body (``{"abstracts-retrieval-response": {…}}``) or
    the object inside it. Each ``subject-areas.subject-area`` element (a list, or a lone
    object when there is one) ``{"$": "Public Administration", "@code": "3321", "@abbrev":
    "SOCI"}`` becomes ``Subject("ASJC", "3321", "Public Administration")``. The code must be
    four digits (a number is read too); without a valid code the label alone is kept, and
    an element with neither is skipped. Repeats of a code are dropped.

    ``@abbrev`` ("SOCI", "COMP") is not kept: :class:`Subject` has no place for it and it
    adds nothing, being the abbreviation of the ASJC subject area that the first two
    digits of the code already name (33xx Social Sciences, 17xx Computer Science).
    Anything that is not a response with subject areas (a META view, a ``service-error``
    body, junk) gives ``()``; this function never raises.
    """
    response: Any = abstract_response
    if isinstance(response, Mapping):
        inner = response.get("abstracts-retrieval-response")
        if isinstance(inner, Mapping):
            response = inner
    if not isinstance(response, Mapping):
        return ()
    areas = response.get("subject-areas")
    if not isinstance(areas, Mapping):
        return ()
    subjects: dict[str, Subject] = {}
    for area in _listify(areas.get("subject-area")):
        if not isinstance(area, Mapping):
            continue
        code = _asjc(area.get("@code"))
        label = _text(area.get("$"))
        if code is None and label is None:
            continue
        subjects.setdefault(code or f"label:{label}", Subject("ASJC", code, label))
    return tuple(subjects.values())


def search_entries(body: Any) -> list[Any]:
    """The entries of a Scopus Search response body (``search-results.entry``), as given.

    A lone entry object counts as a one-entry list. Error entries (an object with
    ``error`` and no ``eid``: the ``{"@_fa": "true", "error": "Result set was empty"}`` that
    stands for an empty result) are left out: they are not records and must not be
    quarantined as such. Anything else, however broken, is kept for
    :func:`scopus_fields` to accept or reject. A body that is not a search page gives [].
    """
    results = body.get("search-results") if isinstance(body, Mapping) else None
    if not isinstance(results, Mapping):
        return []
    return [entry for entry in _listify(results.get("entry")) if not _is_error_entry(entry)]


# --- field readers ---------------------------------------------------------------------------


def _eid(entry: Any) -> tuple[str, str]:
    """(EID, Scopus id) of a usable entry; NormalizationError otherwise."""
    if not isinstance(entry, Mapping):
        raise NormalizationError(f"a Scopus entry must be a JSON object, not {type(entry).__name__}")
    if _is_error_entry(entry):
        raise NormalizationError(f"Scopus error entry, not a record: {_preview(entry.get('error'))}")
    raw = _unwrap(entry.get("eid"))
    if raw is None:
        raise NormalizationError("Scopus entry without an EID")
    match = _EID.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if match is None:
        raise NormalizationError(f"Scopus entry whose EID is not an EID: {_preview(raw)}")
    number = match.group(1)  # as given: ids of older records start with zeros (0035863587)
    return f"2-s2.0-{number}", number


def _authors(entry: Mapping[str, Any]) -> tuple[Author, ...]:
    """The COMPLETE view's ``author`` list; else the STANDARD view's ``dc:creator``.

    COMPLETE: each ``author`` element ``{"@seq": "1", "authid", "authname": "Knox C.",
    "surname": "Knox", "given-name": "Colin", "initials": "C.", "afid": [{"$": "60000001"}],
    "orcid"}`` (a lone object when there is one author, ``afid`` a lone object when there
    is one affiliation) becomes an :class:`Author`, in ``@seq`` order when every author has
    a numeric ``@seq`` and as given otherwise. An author listed twice under one ``@seq``
    and ``authid`` is kept once, with the affiliations of both. Per author:

    * ``family`` is ``surname``; ``given`` is ``given-name`` only when it is a name: a
      given name that is only initials ("C.", "C.G.") is never put in ``given``, which
      stays None. ``initials`` is not read.
    * ``name`` is "given family" when both are known (as Crossref builds it); otherwise
      Scopus's indexed name ``authname`` ("Knox C."), else the surname. Without a surname,
      the family name is read from ``authname`` (see :func:`_indexed_name`).
    * ``orcid`` through :func:`normalize_orcid` (an invalid one is dropped, the author
      kept).
    * ``affiliations``: each of the author's ``afid`` looked up in the entry's
      ``affiliation`` list (see :func:`_affiliations`); an ``afid`` with no entry there is
      skipped.

    STANDARD gives only the first author, as ``dc:creator`` "Knox C.": one
    ``Author(name="Knox C.", family="Knox", given=None)`` with no affiliations (the entry's
    ``affiliation`` list covers all authors and cannot be attributed). ``given`` is None
    on purpose: initials are not a given name, and a record whose authors have a family
    name but no given name is one whose author list is abbreviated, which the merge can
    recognise and rank below a fuller list of the same authors.
    """
    by_afid = _affiliations(entry.get("affiliation"))
    people: list[tuple[int | None, str | None, Author]] = []
    for raw in _listify(entry.get("author")):
        if not isinstance(raw, Mapping):
            continue
        author = _author(raw, by_afid)
        if author is not None:
            people.append((_seq(raw.get("@seq")), _id_text(raw.get("authid")), author))
    if not people:
        creator = _creator(entry.get("dc:creator"))
        return (creator,) if creator is not None else ()
    if all(seq is not None for seq, _, _ in people):
        people.sort(key=lambda person: person[0] or 0)  # stable: ties keep their order
    merged: dict[object, Author] = {}
    for index, (seq, authid, author) in enumerate(people):
        identity: object = (seq, authid) if seq is not None and authid is not None else index
        earlier = merged.get(identity)
        if earlier is None:
            merged[identity] = author
            continue
        affiliations = dict.fromkeys((*earlier.affiliations, *author.affiliations))
        merged[identity] = Author(
            name=earlier.name,
            family=earlier.family,
            given=earlier.given,
            orcid=earlier.orcid or author.orcid,
            affiliations=tuple(affiliations),
        )
    return tuple(merged.values())


def _author(raw: Mapping[str, Any], by_afid: Mapping[str, str]) -> Author | None:
    family = _text(raw.get("surname"))
    given_name = _text(raw.get("given-name"))
    given = None if given_name is None or _is_initials(given_name) else given_name
    authname = _text(raw.get("authname"))
    if family is None and authname is not None:
        family = _indexed_name(authname)
    if given is not None and family is not None:
        name = f"{given} {family}"
    else:
        found = authname or family or given
        if found is None:
            return None
        name = found
    orcid = _unwrap(raw.get("orcid"))
    affiliations: dict[str, None] = {}
    for afid in _listify(raw.get("afid")):
        key = _id_text(afid)
        label = by_afid.get(key) if key is not None else None
        if label is not None:
            affiliations.setdefault(label, None)
    return Author(
        name=name,
        family=family,
        given=given,
        orcid=normalize_orcid(orcid) if isinstance(orcid, str) else None,
        affiliations=tuple(affiliations),
    )


def _creator(value: Any) -> Author | None:
    """STANDARD's ``dc:creator``, the first author as "Surname I.": see :func:`_authors`."""
    name = _text(value)
    if name is None:
        return None
    return Author(name=name, family=_indexed_name(name), given=None)


def _indexed_name(name: str) -> str | None:
    """The surname of an indexed name: "Knox C." → "Knox", "van der Berg J.-P." → "van der
    Berg". None when the name does not end in initials with dots (an organisation, a lone
    word): then nothing says which part is the family name."""
    match = _INDEXED_NAME.fullmatch(name)
    if match is None:
        return None
    return match.group("family").strip(" ,") or None


def _is_initials(text: str) -> bool:
    """True for "C.", "C.G.", "J.-P.", "C G": single letters with dots, spaces or hyphens."""
    return _INITIALS.fullmatch(text) is not None and _INITIAL_TOKEN.search(text) is None


def _affiliations(value: Any) -> dict[str, str]:
    """afid → "affilname, city, country" from the entry's ``affiliation`` list.

    Each element (a lone object when there is one) is ``{"afid": "60000001", "affilname":
    …, "affiliation-city": …, "affiliation-country": …}``; the parts are cleaned, empty or
    null ones left out, and a part equal to the one before it dropped ("National
    University of Singapore, Singapore", not "…, Singapore, Singapore"). Elements without a
    usable ``afid`` (STANDARD has none) or without a name are skipped.
    """
    labels: dict[str, str] = {}
    for element in _listify(value):
        if not isinstance(element, Mapping):
            continue
        afid = _id_text(element.get("afid"))
        name = _text(element.get("affilname"))
        if afid is None or name is None:
            continue
        parts = [name]
        for key in ("affiliation-city", "affiliation-country"):
            part = _text(element.get(key))
            if part is not None and part.casefold() != parts[-1].casefold():
                parts.append(part)
        labels.setdefault(afid, ", ".join(parts))
    return labels


def _abstract(value: Any) -> str | None:
    """COMPLETE's ``dc:description``, through :func:`clean_block`, without its copyright line.

    Scopus ends most abstracts with the publisher's copyright statement ("© 2019, Emerald
    Publishing Limited.", "© 2019 Elsevier B.V. All rights reserved."): it is not part of
    the abstract and is removed when it starts the abstract, a paragraph or a sentence and
    runs to the end (at most 300 characters, no second ©). Structured abstracts keep their
    labels as Scopus writes them, run together in one paragraph ("Purpose: … Design/
    methodology/approach: …"); paragraph breaks, when present, are kept. "[No abstract
    available]" is no abstract.
    """
    text = _block(value)
    if text is None:
        return None
    text = _COPYRIGHT_TAIL.sub("", text).rstrip()
    if not text or text.casefold() in _NO_ABSTRACT:
        return None
    return text


def _issns(entry: Mapping[str, Any]) -> tuple[Issn, ...]:
    """``prism:issn`` (print) and ``prism:eIssn`` (electronic), hyphenated, check digit valid.

    Scopus writes ISSNs as 8 characters without the hyphen ("09513558", "0740624X");
    :func:`normalize_issn` adds it and drops invalid ones. A field holding two ISSNs
    ("09513558 17586666", as Abstract Retrieval's ``coredata`` does) or a list of ``{"$"}``
    gives each; values after the first of ``prism:issn`` are untyped unless they are the
    eISSN. A value in both fields is electronic. Print first.
    """
    electronic = [v for v in _issn_values(entry.get("prism:eIssn")) if v is not None]
    issns: dict[str, Issn] = {}
    for index, value in enumerate(_issn_values(entry.get("prism:issn"))):
        if value is not None and value not in electronic:
            issns.setdefault(value, Issn(value, "print" if index == 0 else None))
    for value in electronic:
        issns.setdefault(value, Issn(value, "electronic"))
    order = {"print": 0, "electronic": 1, None: 2}
    return tuple(sorted(issns.values(), key=lambda issn: order[issn.kind]))


def _issn_values(value: Any) -> Iterator[str | None]:
    """Each ISSN of a field, normalized (None where one is invalid, to keep positions)."""
    for element in _listify(value):
        text = _unwrap(element)
        if not isinstance(text, str):
            continue
        whole = normalize_issn(text)
        if whole is not None:
            yield whole
            continue
        for part in _LIST_SPLIT.split(text.strip()):
            if part:
                yield normalize_issn(part)


def _isbns(value: Any) -> tuple[str, ...]:
    """``prism:isbn``: a list of ``{"@_fa": "true", "$": "9780306406157"}``, a lone one, or a
    string (possibly several ISBNs separated by spaces or commas); each as ISBN-13 through
    :func:`normalize_isbn`, invalid ones dropped, repeats removed."""
    isbns: dict[str, None] = {}
    for element in _listify(value):
        text = _unwrap(element)
        if isinstance(text, int) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str):
            continue
        whole = normalize_isbn(text)
        parts = [text] if whole is not None else _LIST_SPLIT.split(text)
        for isbn in map(normalize_isbn, parts):
            if isbn is not None:
                isbns.setdefault(isbn, None)
    return tuple(isbns)


def _pages(entry: Mapping[str, Any]) -> str | None:
    """``prism:pageRange`` ("362-382"); when it is null or empty, ``prism:startingPage`` and
    ``prism:endingPage`` ("101-118", or the first page alone); else ``article-number``
    (COMPLETE: "e0212345"), which Crossref also gives as the page."""
    page_range = _scalar_text(entry.get("prism:pageRange"))
    if page_range is not None:
        return page_range
    first = _scalar_text(entry.get("prism:startingPage"))
    last = _scalar_text(entry.get("prism:endingPage"))
    if first is not None:
        return first if last is None or last == first else f"{first}-{last}"
    return _scalar_text(entry.get("article-number"))


def _date(value: Any) -> PartialDate | None:
    """``prism:coverDate``: the first readable date of the field (a string, or a list of them
    or of ``{"$"}``), through :meth:`PartialDate.parse`."""
    for element in _listify(value):
        text = _unwrap(element)
        date = PartialDate.parse(text) if isinstance(text, str) else None
        if date is not None:
            return date
    return None


_MONTH_NAME = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec|spring|summer|autumn|fall|winter)", re.IGNORECASE
)
_DAY_NUMBER = re.compile(r"(?<![\d-])(?:[1-9]|[12]\d|3[01])(?![\d-])")


def _cover_date(date: PartialDate | None, display: Any) -> PartialDate | None:
    """Cut ``date`` to the precision ``prism:coverDisplayDate`` shows ("May 2019": month)."""
    text = _unwrap(display)
    if date is None or not isinstance(text, str) or not text.strip():
        return date
    text = text.strip()
    year_free = text.replace(str(date.year), " ")
    has_month = bool(_MONTH_NAME.search(text))
    has_day = has_month and bool(_DAY_NUMBER.search(year_free)) and "-" not in year_free
    if not has_month:
        return PartialDate(date.year)
    if not has_day and date.day is not None:
        return PartialDate(date.year, date.month)
    return date


def _type(entry: Mapping[str, Any]) -> tuple[str | None, bool]:
    """(canonical type, retracted) from ``subtype``, else ``subtypeDescription``, else
    ``prism:aggregationType``.

    The code ("ar") is read first (:data:`SUBTYPES`); a missing or unknown code falls back
    to the description ("Article"), and then to the kind of source
    (:data:`AGGREGATION_TYPES`: Journal, Conference Proceeding, Book, Book Series). A type
    that none of them maps is "other"; no type information at all is None. ``retracted`` is
    true for "tb" / "Retracted", Scopus's type for a retracted article.
    """
    subtype = _code(entry.get("subtype"))
    description = _text(entry.get("subtypeDescription"))
    aggregation = _text(entry.get("prism:aggregationType"))
    code = subtype if subtype in SUBTYPES else None
    if code is None and description is not None:
        code = _DESCRIPTIONS.get(description.casefold())
    if code is not None:
        return SUBTYPES[code], code == _RETRACTED_SUBTYPE
    if aggregation is not None and aggregation.casefold() in AGGREGATION_TYPES:
        return AGGREGATION_TYPES[aggregation.casefold()], False
    if subtype is not None or description is not None or aggregation is not None:
        return "other", False
    return None, False


def _keywords(value: Any) -> tuple[str, ...]:
    if isinstance(value, Mapping) and "author-keyword" in value:
        value = value["author-keyword"]  # Abstract Retrieval's shape
    texts = [text for text in map(_unwrap, _listify(value)) if isinstance(text, str)]
    return split_keywords(texts)


def _citation_count(value: Any, as_of: str) -> CitationCount | None:
    count = _unwrap(value)
    if isinstance(count, bool):
        return None
    if isinstance(count, str) and _DIGITS.fullmatch(count.strip()):
        count = int(count)
    if isinstance(count, int) and 0 <= count < 10**15:
        return CitationCount(count, as_of)
    return None


def _pii(value: Any) -> str | None:
    """Elsevier's PII in its compact form: "S0740-624X(19)30012-7" → "S0740624X19300127"."""
    text = _unwrap(value)
    if not isinstance(text, str):
        return None
    compact = _PII_PUNCTUATION.sub("", text).upper()
    return compact if _PII.fullmatch(compact) else None


def _scopus_links(value: Any) -> dict[str, str]:
    """``link[{"@ref", "@href"}]``: the first http(s) ``scopus`` and ``scopus-citedby`` links."""
    schemes = {"scopus": "scopus_url", "scopus-citedby": "scopus_citedby_url"}
    found: dict[str, str] = {}
    for link in _listify(value):
        if not isinstance(link, Mapping):
            continue
        ref = link.get("@ref")
        scheme = schemes.get(ref.strip()) if isinstance(ref, str) else None
        url = _http_url(link.get("@href"))
        if scheme is not None and url is not None:
            found.setdefault(scheme, url)
    return found


def _asjc(value: Any) -> str | None:
    code = _unwrap(value)
    if isinstance(code, int) and not isinstance(code, bool):
        code = str(code)
    if not isinstance(code, str):
        return None
    code = code.strip()
    return code if _ASJC.fullmatch(code) else None


# --- shared helpers ----------------------------------------------------------------------------


def _listify(value: Any) -> Iterator[Any]:
    """The elements of a JSON array; a lone value where an array is due (the XML-to-JSON
    conversion writes a one-element list as the element) counts as a one-element array,
    null as an empty one."""
    if isinstance(value, list):
        yield from value
    elif value is not None:
        yield value


def _unwrap(value: Any) -> Any:
    """The text of a ``{"$": text, "@attr": …}`` object (up to three levels); anything else as
    it is."""
    for _ in range(3):
        if not isinstance(value, Mapping) or "$" not in value:
            break
        value = value["$"]
    return value


def _is_error_entry(entry: Any) -> bool:
    return isinstance(entry, Mapping) and "error" in entry and "eid" not in entry


def _text(value: Any) -> str | None:
    text = _unwrap(value)
    return clean_text(text) if isinstance(text, str) else None


def _title(value: Any) -> str | None:
    text = _unwrap(value)
    return clean_text(_INF_TAG.sub("", text)) if isinstance(text, str) else None


def _block(value: Any) -> str | None:
    text = _unwrap(value)
    return clean_block(_INF_TAG.sub("", text)) if isinstance(text, str) else None


def _scalar_text(value: Any) -> str | None:
    """A string field, cleaned; an integer (a volume sent as a number) as its digits."""
    value = _unwrap(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 <= value < 10**15 else None
    return _text(value)


def _code(value: Any) -> str | None:
    text = _unwrap(value)
    if not isinstance(text, str):
        return None
    return text.strip().lower() or None


def _id_text(value: Any) -> str | None:
    """A numeric Scopus id (afid, authid): digits, given as a string, a number or ``{"$"}``."""
    value = _unwrap(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if 0 <= value < 10**15 else None
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return value.strip()
    return None


def _seq(value: Any) -> int | None:
    text = _id_text(value)
    return int(text) if text is not None else None
