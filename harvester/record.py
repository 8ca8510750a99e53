"""The canonical record: one model for every source.

A source's normalizer turns one raw record (an OAI ``<record>`` element, a Crossref or
Scopus JSON object) into a :class:`Record`. Every field is already clean when it gets
here: DOIs through :func:`harvester.doi.strict_doi`, ISSNs and ORCIDs checksum-valid,
text free of markup, dates with their true precision. The merge step
(:mod:`harvester.merge`) only chooses between clean values; it never cleans.

Records are frozen and hashable so that the merge is a pure function of its inputs and
tests can compare them with ``==``. ``to_json``/``from_json`` give the normalized form
that the store keeps beside the raw payload; changing a field name here changes what
the store holds, so add fields with defaults and never rename.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

__all__ = [
    "TYPES",
    "Author",
    "CitationCount",
    "Issn",
    "PartialDate",
    "Record",
    "Subject",
]

#: The one type vocabulary, Crossref's work types (api.crossref.org/types).
TYPES: frozenset[str] = frozenset(
    {
        "book",
        "book-chapter",
        "book-part",
        "book-section",
        "book-series",
        "book-set",
        "book-track",
        "component",
        "database",
        "dataset",
        "dissertation",
        "edited-book",
        "grant",
        "journal",
        "journal-article",
        "journal-issue",
        "journal-volume",
        "monograph",
        "other",
        "peer-review",
        "posted-content",
        "proceedings",
        "proceedings-article",
        "proceedings-series",
        "reference-book",
        "reference-entry",
        "report",
        "report-component",
        "report-series",
        "standard",
    }
)

Precision = Literal["year", "month", "day"]


@dataclass(frozen=True, slots=True, order=True)
class PartialDate:
    """A publication date at the precision the source gives: never invent ``-01-01``.

    ``PartialDate(2019)`` is "2019", ``PartialDate(2019, 5)`` is "2019-05". A day
    without a month is impossible, and so is 2019-02-30: the constructor raises
    ``ValueError`` so that a normalizer can fall back to a coarser precision.
    """

    year: int
    month: int | None = None
    day: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.year <= 9999:
            raise ValueError(f"year out of range: {self.year}")
        if self.day is not None and self.month is None:
            raise ValueError("a day without a month")
        if self.month is not None and not 1 <= self.month <= 12:
            raise ValueError(f"month out of range: {self.month}")
        if self.day is not None and self.month is not None:
            dt.date(self.year, self.month, self.day)  # raises ValueError when invalid

    @property
    def precision(self) -> Precision:
        if self.day is not None:
            return "day"
        if self.month is not None:
            return "month"
        return "year"

    def iso(self) -> str:
        if self.month is None:
            return f"{self.year:04d}"
        if self.day is None:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    def refines(self, other: PartialDate) -> bool:
        """True when ``self`` is ``other`` told more precisely (2019-05 refines 2019)."""
        if self.year != other.year:
            return False
        if other.month is None:
            return self.month is not None
        if self.month != other.month:
            return False
        return other.day is None and self.day is not None

    @classmethod
    def parse(cls, text: str | None) -> PartialDate | None:
        """Read "2019", "2019-05", "2019-05-13" or an ISO timestamp; None if unreadable.

        A value whose day or month is impossible keeps the part that is valid
        ("2019-02-30" gives 2019-02): the precision shrinks, it is never made up.
        """
        if not text:
            return None
        text = text.strip()
        parts = text[:10].split("-")
        try:
            nums = [int(p) for p in parts if p]
        except ValueError:
            return None
        if not nums or len(parts[0]) != 4:
            return None
        nums = nums[:3]
        while nums:
            try:
                return cls(*nums)
            except ValueError:
                nums = nums[:-1]
        return None

    @classmethod
    def from_parts(cls, parts: list[Any] | tuple[Any, ...] | None) -> PartialDate | None:
        """Read Crossref-style ``date-parts`` ``[y, m, d]`` where m and d are optional."""
        if not parts:
            return None
        nums: list[int] = []
        for value in parts[:3]:
            if value is None:
                break
            try:
                nums.append(int(value))
            except (TypeError, ValueError):
                break
        while nums:
            try:
                return cls(*nums)
            except ValueError:
                nums = nums[:-1]
        return None


@dataclass(frozen=True, slots=True)
class Author:
    """One contributor, in order. ``name`` is the name as the source wrote it."""

    name: str
    family: str | None = None
    given: str | None = None
    orcid: str | None = None  # bare 0000-0002-1825-0097, checksum-valid
    affiliations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Issn:
    """An ISSN, hyphenated and check-digit valid; ``kind`` is print, electronic or None."""

    value: str
    kind: Literal["print", "electronic"] | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """A subject heading: ``Subject("ASJC", "3321", "Public Administration")``."""

    scheme: str
    code: str | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class CitationCount:
    """A citation count as one source reported it on one day.

    The source name is not here: a normalizer does not know what the operator called
    the source. The merge adds it from the provenance.
    """

    value: int
    as_of: str  # ISO date, "2026-11-28"


@dataclass(frozen=True, slots=True)
class Record:
    """One source record, normalized.

    ``key`` is the source's own identifier (OAI identifier, Crossref DOI, Scopus EID)
    and ``datestamp`` the source's change date (UTC), which decides between two records
    of one source. A deleted record carries only ``key``, ``datestamp`` and
    ``deleted=True``. ``identifiers`` is a sorted tuple of (scheme, value) pairs;
    schemes are lower-case: ``doi``, ``oai``, ``scopus_eid``, ``scopus_id``, ``pmid``,
    ``pmcid``, ``arxiv``, ``handle``, ``isbn``, ``url``.
    """

    key: str
    datestamp: dt.datetime | None = None
    deleted: bool = False
    doi: str | None = None
    title: str | None = None
    subtitle: str | None = None
    authors: tuple[Author, ...] = ()
    abstract: str | None = None
    container_title: str | None = None
    issn: tuple[Issn, ...] = ()
    isbn: tuple[str, ...] = ()
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    publisher: str | None = None
    date: PartialDate | None = None
    type: str | None = None
    language: str | None = None
    keywords: tuple[str, ...] = ()
    subjects: tuple[Subject, ...] = ()
    citation_count: CitationCount | None = None
    license: str | None = None
    url: str | None = None
    identifiers: tuple[tuple[str, str], ...] = field(default=())
    retracted: bool = False
    #: Editorial notices this record IS, as (kind, target DOI) pairs: a retraction notice
    #: carries ``("retraction", "<doi of the retracted work>")``. Kinds: retraction,
    #: correction, expression_of_concern, withdrawal, addendum, other. The notice is a
    #: work of its own (its DOI differs); the store marks the target, never merges them.
    updates: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if self.type is not None and self.type not in TYPES:
            raise ValueError(f"type {self.type!r} is not in the canonical vocabulary")
        if self.datestamp is not None and self.datestamp.tzinfo is None:
            raise ValueError("datestamp must be timezone-aware (UTC)")

    def identifier_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for scheme, value in self.identifiers:
            out.setdefault(scheme, []).append(value)
        return out

    def to_json(self) -> dict[str, Any]:
        """The normalized form the store keeps (JSON-safe, stable keys)."""
        return {
            "key": self.key,
            "datestamp": _dt_to_str(self.datestamp),
            "deleted": self.deleted,
            "doi": self.doi,
            "title": self.title,
            "subtitle": self.subtitle,
            "authors": [
                {
                    "name": a.name,
                    "family": a.family,
                    "given": a.given,
                    "orcid": a.orcid,
                    "affiliations": list(a.affiliations),
                }
                for a in self.authors
            ],
            "abstract": self.abstract,
            "container_title": self.container_title,
            "issn": [{"value": i.value, "kind": i.kind} for i in self.issn],
            "isbn": list(self.isbn),
            "volume": self.volume,
            "issue": self.issue,
            "pages": self.pages,
            "publisher": self.publisher,
            "date": self.date.iso() if self.date else None,
            "type": self.type,
            "language": self.language,
            "keywords": list(self.keywords),
            "subjects": [{"scheme": s.scheme, "code": s.code, "label": s.label} for s in self.subjects],
            "citation_count": (
                {"value": self.citation_count.value, "as_of": self.citation_count.as_of}
                if self.citation_count
                else None
            ),
            "license": self.license,
            "url": self.url,
            "identifiers": [list(pair) for pair in self.identifiers],
            "retracted": self.retracted,
            "updates": [list(pair) for pair in self.updates],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Record:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown record fields: {sorted(unknown)}")
        cc = data.get("citation_count")
        return cls(
            key=data["key"],
            datestamp=_str_to_dt(data.get("datestamp")),
            deleted=bool(data.get("deleted", False)),
            doi=data.get("doi"),
            title=data.get("title"),
            subtitle=data.get("subtitle"),
            authors=tuple(
                Author(
                    name=a["name"],
                    family=a.get("family"),
                    given=a.get("given"),
                    orcid=a.get("orcid"),
                    affiliations=tuple(a.get("affiliations") or ()),
                )
                for a in data.get("authors") or ()
            ),
            abstract=data.get("abstract"),
            container_title=data.get("container_title"),
            issn=tuple(Issn(i["value"], i.get("kind")) for i in data.get("issn") or ()),
            isbn=tuple(data.get("isbn") or ()),
            volume=data.get("volume"),
            issue=data.get("issue"),
            pages=data.get("pages"),
            publisher=data.get("publisher"),
            date=PartialDate.parse(data.get("date")),
            type=data.get("type"),
            language=data.get("language"),
            keywords=tuple(data.get("keywords") or ()),
            subjects=tuple(
                Subject(s["scheme"], s.get("code"), s.get("label")) for s in data.get("subjects") or ()
            ),
            citation_count=CitationCount(int(cc["value"]), cc["as_of"]) if cc else None,
            license=data.get("license"),
            url=data.get("url"),
            identifiers=tuple((str(p[0]), str(p[1])) for p in data.get("identifiers") or ()),
            retracted=bool(data.get("retracted", False)),
            updates=tuple((str(p[0]), str(p[1])) for p in data.get("updates") or ()),
        )


def _dt_to_str(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _str_to_dt(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
