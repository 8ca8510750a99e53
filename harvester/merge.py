"""Merging the live source records of one work into the work (a pure function).

Rule: for each field, the first non-empty value in precedence order wins, and the field
remembers the source it came from. Precedence order is ``merge.precedence`` (most
trusted first), then unlisted sources by name; within one source, the most recently
changed record first (then by key, so ties are still deterministic). Lists that
describe the work rather than one reading of it (keywords, subjects, identifiers,
ISSNs) are unioned without duplicates in that same order. A date can be refined by a
less trusted source when it tells the SAME date more precisely (2019 → 2019-05-13);
it is never replaced by a different one. ``retracted`` is true if any source says so.

Because the inputs are sorted before anything is chosen, the result depends only on
the set of records, never on the order they arrived in (tests/test_merge.py proves it
with hypothesis). The output is the exported work's JSON shape (the contract), minus
``id``, which is the store's.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from harvester.record import Author, PartialDate, Record

__all__ = ["EXPORT_KEYS", "MergedWork", "merge", "sort_contributions"]

#: The exported work's keys in output order (contract: "The exported work").
EXPORT_KEYS: tuple[str, ...] = (
    "id",
    "doi",
    "title",
    "subtitle",
    "authors",
    "abstract",
    "container_title",
    "issn",
    "isbn",
    "publisher",
    "volume",
    "issue",
    "pages",
    "date",
    "year",
    "type",
    "language",
    "keywords",
    "subjects",
    "citation_count",
    "license",
    "url",
    "identifiers",
    "sources",
    "retracted",
    "updates",
    "updated_by",
)

#: Notice kinds that withdraw the work they point at.
RETRACTING = frozenset({"retraction", "withdrawal"})

_SCALARS = (
    "title",
    "subtitle",
    "abstract",
    "container_title",
    "publisher",
    "volume",
    "issue",
    "pages",
    "type",
    "language",
    "license",
    "url",
)


@dataclass(frozen=True)
class MergedWork:
    """The merged fields (export shape without ``id``) and field → source provenance."""

    data: dict[str, Any]
    provenance: dict[str, str]


@functools.lru_cache(maxsize=64)
def _rank_key(precedence: tuple[str, ...]) -> Any:
    ranks = {name: i for i, name in enumerate(precedence)}
    far = len(ranks)

    def key(item: tuple[str, Record]) -> tuple[int, str, float, str]:
        source, record = item
        stamp = record.datestamp.timestamp() if record.datestamp else _OLDEST
        return (ranks.get(source, far), source, -stamp, record.key)

    return key


_OLDEST = float("-inf")


def sort_contributions(
    contributions: Iterable[tuple[str, Record]], precedence: Sequence[str]
) -> list[tuple[str, Record]]:
    """Most trusted first: by precedence, then source name, newest record, key."""
    return sorted(contributions, key=_rank_key(tuple(precedence)))


def _surname(author: Author) -> str:
    name = author.family or (author.name.split(",")[0] if "," in author.name else author.name.split(" ")[0])
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.casefold() if ch.isalnum())


def _given_weight(author: Author) -> int:
    return len((author.given or "").replace(".", "").replace(" ", ""))


def _fuller(candidate: tuple[Author, ...], chosen: tuple[Author, ...]) -> bool:
    """Whether a less trusted author list is the SAME list told more fully.

    Scopus's STANDARD view gives the first author only, as "Knox C."; a fuller source
    must not lose to it by precedence: full given names are never replaced by initials.
    The candidate wins only when it starts with the same surnames in the same order and
    is longer, or as long with longer given names — a different author list never
    replaces the trusted one.
    """
    if len(candidate) < len(chosen):
        return False
    if [_surname(a) for a in candidate[: len(chosen)]] != [_surname(a) for a in chosen]:
        return False
    if len(candidate) > len(chosen):
        return True
    return sum(map(_given_weight, candidate)) > sum(map(_given_weight, chosen))


def _author_json(author: Author) -> dict[str, Any]:
    return {
        "family": author.family,
        "given": author.given,
        "name": author.name,
        "orcid": author.orcid,
        "affiliations": list(author.affiliations),
    }


def merge(
    doi: str | None,
    contributions: Iterable[tuple[str, Record]],
    precedence: Sequence[str],
    notices: Iterable[tuple[str, str, str]] = (),
) -> MergedWork:
    """Merge the live records ``(source name, record)`` of the work with this DOI.

    ``notices`` are the editorial notices elsewhere in the store that point at this
    work, as (kind, notice DOI, source): they are listed in ``updated_by`` and a
    retraction or withdrawal marks the work retracted. A notice is never merged INTO
    the work it updates; the notice's own work lists its targets in ``updates``.
    """
    ordered = [(s, r) for s, r in sort_contributions(contributions, precedence) if not r.deleted]
    data: dict[str, Any] = {}
    provenance: dict[str, str] = {}

    for name in _SCALARS:
        data[name] = None
        for source, record in ordered:
            value = getattr(record, name)
            if value:
                data[name] = value
                provenance[name] = source
                break

    data["authors"] = []
    chosen: tuple[Author, ...] = ()
    for source, record in ordered:
        if record.authors and (not chosen or _fuller(record.authors, chosen)):
            chosen = record.authors
            data["authors"] = [_author_json(a) for a in record.authors]
            provenance["authors"] = source

    date: PartialDate | None = None
    for source, record in ordered:
        if record.date is None:
            continue
        if date is None or record.date.refines(date):
            date = record.date
            provenance["date"] = source
    data["date"] = date.iso() if date else None
    data["year"] = date.year if date else None
    if date:
        provenance["year"] = provenance["date"]

    keywords: list[str] = []
    seen_kw: set[str] = set()
    subjects: list[dict[str, Any]] = []
    seen_subj: set[tuple[str, str]] = set()
    issn_print: list[str] = []
    issn_electronic: list[str] = []
    issn_other: list[str] = []
    isbn: list[str] = []
    identifiers: dict[str, set[str]] = {}
    for source, record in ordered:
        for kw in record.keywords:
            if kw.casefold() not in seen_kw:
                seen_kw.add(kw.casefold())
                keywords.append(kw)
                provenance.setdefault("keywords", source)
        for subj in record.subjects:
            ident = (subj.scheme.casefold(), (subj.code or subj.label or "").casefold())
            if ident not in seen_subj:
                seen_subj.add(ident)
                subjects.append({"scheme": subj.scheme, "code": subj.code, "label": subj.label})
                provenance.setdefault("subjects", source)
        for issn in record.issn:
            bucket = {"print": issn_print, "electronic": issn_electronic}.get(issn.kind or "", issn_other)
            if issn.value not in bucket:
                bucket.append(issn.value)
                provenance.setdefault("issn", source)
        for value in record.isbn:
            if value not in isbn:
                isbn.append(value)
                provenance.setdefault("isbn", source)
        for scheme, value in record.identifiers:
            identifiers.setdefault(scheme, set()).add(value)
    issns = issn_print + [i for i in issn_electronic if i not in issn_print]
    issns += [i for i in issn_other if i not in issns]
    data["keywords"] = keywords
    data["subjects"] = subjects
    data["issn"] = issns
    data["isbn"] = isbn
    if doi:
        identifiers.setdefault("doi", set()).add(doi)
    data["identifiers"] = {scheme: sorted(values) for scheme, values in sorted(identifiers.items())}

    data["citation_count"] = None
    for source, record in ordered:
        if record.citation_count is not None:
            cc = record.citation_count
            data["citation_count"] = {"value": cc.value, "source": source, "as_of": cc.as_of}
            provenance["citation_count"] = source
            break

    data["retracted"] = False
    for source, record in ordered:
        if record.retracted:
            data["retracted"] = True
            provenance["retracted"] = source
            break
    notice_list = sorted(set(notices))
    if not data["retracted"]:
        for kind, _, source in notice_list:
            if kind in RETRACTING:
                data["retracted"] = True
                provenance["retracted"] = source
                break
    data["updated_by"] = [
        {"kind": kind, "doi": notice} for kind, notice in sorted({(k, d) for k, d, _ in notice_list})
    ]
    data["updates"] = [
        {"kind": kind, "doi": target} for kind, target in sorted({u for _, r in ordered for u in r.updates})
    ]
    data["doi"] = doi
    data["sources"] = sorted({s for s, _ in ordered})
    ordered_data = {key: data[key] for key in EXPORT_KEYS if key != "id"}
    return MergedWork(ordered_data, dict(sorted(provenance.items())))
