"""CSL-JSON export: the works as one JSON array of CSL items (citeproc-js, Zotero, pandoc).

Valid against the CSL data schema (``csl-data.json`` of the citation-style-language
schema repository, v1.0): an item has only the schema's variables and never a
``null``; a variable the work has no value for is left out. The array is streamed:
``[`` then one item per line, ``,`` between them, then ``]``.

Item variables: ``id`` (the BibTeX key, :func:`harvester.exports.common.citation_key`),
``type`` (:data:`CSL_TYPES`, ``document`` for the rest), ``title`` ("Title: Subtitle"),
``author`` (``{"family", "given"}``, or ``{"literal"}`` for a name kept whole),
``issued`` (``{"date-parts": [[2019, 5, 13]]}`` at the precision the sources give),
``container-title``, ``publisher``, ``volume``, ``issue``, ``page``, ``DOI`` (lower
case, as stored), ``ISSN`` and ``ISBN`` (joined with ``", "``), ``URL``, ``abstract``
(paragraphs kept), ``keyword`` (keywords joined with ``", "``, as CSL has it),
``language`` (the ISO 639-1 code), and ``status`` "retracted" for a retracted work.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TextIO

from harvester.exports.common import author_name_parts, citation_key, date_parts, full_title

__all__ = ["CSL_TYPES", "csl_item", "csl_type", "write_csl_json"]

#: Canonical type -> CSL item type; every other type (grant, component, other...) is ``document``.
CSL_TYPES: dict[str, str] = {
    "journal-article": "article-journal",
    "proceedings-article": "paper-conference",
    "book-chapter": "chapter",
    "book-part": "chapter",
    "book-section": "chapter",
    "book-track": "chapter",
    "book": "book",
    "monograph": "book",
    "edited-book": "book",
    "reference-book": "book",
    "book-set": "book",
    "book-series": "book",
    "proceedings": "book",
    "proceedings-series": "book",
    "dissertation": "thesis",
    "report": "report",
    "report-component": "report",
    "report-series": "report",
    "dataset": "dataset",
    "database": "dataset",
    "posted-content": "article",
    "peer-review": "review",
    "reference-entry": "entry-encyclopedia",
    "standard": "standard",
    "journal": "periodical",
    "journal-issue": "periodical",
    "journal-volume": "periodical",
}


def csl_type(work_type: str | None) -> str:
    """The CSL type of a canonical type: ``article-journal`` for ``journal-article``."""
    return CSL_TYPES.get(work_type or "", "document")


def _name(author: dict[str, Any]) -> dict[str, str] | None:
    family, given, whole = author_name_parts(author)
    if family:
        return {"family": family, "given": given} if given else {"family": family}
    return {"literal": whole} if whole else None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def csl_item(work: dict[str, Any]) -> dict[str, Any]:
    """The CSL-JSON item of one work (only variables with a value)."""
    authors = [n for n in map(_name, work.get("authors") or []) if n]
    parts = date_parts(work)
    keywords = [k for k in work.get("keywords") or [] if k and k.strip()]
    candidates: dict[str, Any] = {
        "id": citation_key(work),
        "type": csl_type(work.get("type")),
        "title": _text(full_title(work)),
        "author": authors or None,
        "issued": {"date-parts": [list(parts)]} if parts else None,
        "container-title": _text(work.get("container_title")),
        "publisher": _text(work.get("publisher")),
        "volume": _text(work.get("volume")),
        "issue": _text(work.get("issue")),
        "page": _text(work.get("pages")),
        "DOI": _text(work.get("doi")),
        "ISSN": _text(", ".join(work.get("issn") or [])),
        "ISBN": _text(", ".join(work.get("isbn") or [])),
        "URL": _text(work.get("url")),
        "abstract": _text(work.get("abstract")),
        "keyword": _text(", ".join(keywords)),
        "language": _text(work.get("language")),
        "status": "retracted" if work.get("retracted") else None,
    }
    return {key: value for key, value in candidates.items() if value is not None}


def write_csl_json(works: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write the works as one CSL-JSON array, each item as it comes; the count."""
    count = 0
    out.write("[")
    for work in works:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(csl_item(work), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
