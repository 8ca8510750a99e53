"""RIS export: one tagged record per work, as the RIS format specification gives it.

Each line is ``TAG  - value`` (two upper-case characters, two spaces, a hyphen, a
space) and ends with CR LF, as the specification requires and EndNote and Zotero
write; a record starts with ``TY`` and ends with ``ER  - ``, and a blank line follows
each record. Tags, in the order of the university portal's "Cite this" RIS:

``TY`` type (:data:`RIS_TYPES`, ``GEN`` for the rest), ``T1`` title (with the subtitle
as "Title: Subtitle"), ``AU`` one per author ("Family, Given", or the name as written),
``PY`` year, ``Y1`` and ``DA`` the date as ``YYYY/MM/DD/`` with the parts the sources do
not give left empty (``2019///``, ``2019/05//``, ``2019/05/13/``), ``N2`` and ``AB`` the
abstract, ``KW`` one per keyword, ``UR`` the landing page, ``DO`` the DOI (stored lower
case), ``M3`` the type in words ("Article"), ``JO`` and ``JF`` the journal (``JOUR``
records) or ``T2`` the container of the other types (book of a chapter, proceedings of
a paper), ``SN`` one per ISSN then per ISBN, ``VL`` volume, ``IS`` issue, ``SP``/``EP``
first and last page, ``PB`` publisher, ``LA`` the language's English name, ``N1``
"Retracted" for a retracted work, ``ER``. A tag the work has no value for is left out.

One value per line: a value never holds a line break or another control character
(the specification allows characters from the space upwards), so every line break in
a value, with the spaces around it, becomes one space. The abstract's paragraphs are
therefore joined into one line ("Purpose: ... Design/methodology/approach: ..."):
RIS has no paragraph break, and a reader joins continuation lines with a space anyway
(rispy always, Zotero unless the line before was short). The labels of a structured
abstract stay, so its sections remain readable. Long lines are not wrapped.

The title is ``T1`` only, like the portal's (rispy reads it as ``primary_title``,
Zotero and EndNote as the title); ``TI`` would repeat it. rispy splits ``UR`` at ``;``
(a URL holding one comes back in two parts) and keeps only the first of several ``SN``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TextIO

from harvester.exports.common import (
    author_name_parts,
    date_parts,
    full_title,
    language_name,
    split_pages,
)

__all__ = ["EOL", "RIS_TYPES", "TYPE_LABELS", "one_line", "ris_record", "ris_type", "type_label", "write_ris"]

#: Canonical type -> RIS reference type; every other type is ``GEN``.
RIS_TYPES: dict[str, str] = {
    "journal-article": "JOUR",
    "proceedings-article": "CONF",
    "book-chapter": "CHAP",
    "book-part": "CHAP",
    "book-section": "CHAP",
    "book": "BOOK",
    "monograph": "BOOK",
    "edited-book": "BOOK",
    "reference-book": "BOOK",
    "dissertation": "THES",
    "report": "RPRT",
    "report-component": "RPRT",
    "dataset": "DATA",
}

#: ``M3`` (type of work) for the types whose words are not the type name's.
TYPE_LABELS: dict[str, str] = {
    "journal-article": "Article",
    "proceedings-article": "Conference paper",
    "posted-content": "Preprint",
    "dissertation": "Thesis",
}

EOL = "\r\n"
_BREAKS = re.compile(r"\s*[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]\s*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def ris_type(work_type: str | None) -> str:
    """The RIS ``TY`` of a canonical type: ``JOUR`` for ``journal-article``."""
    return RIS_TYPES.get(work_type or "", "GEN")


def type_label(work_type: str | None) -> str | None:
    """``M3``: "Article" for ``journal-article``, "Book chapter" for ``book-chapter``."""
    if not work_type:
        return None
    return TYPE_LABELS.get(work_type) or work_type.replace("-", " ").capitalize()


def one_line(value: Any) -> str:
    """A value on one line: line breaks (and the spaces around them) and controls become spaces."""
    return _CONTROL.sub(" ", _BREAKS.sub(" ", str(value))).strip()


def _date(parts: tuple[int, ...]) -> str:
    year, month, day = (*parts, None, None)[:3]
    return f"{year:04d}/{f'{month:02d}' if month else ''}/{f'{day:02d}' if day else ''}/"


def _author(author: dict[str, Any]) -> str | None:
    family, given, whole = author_name_parts(author)
    if family:
        return f"{family}, {given}" if given else family
    return whole


def _tags(work: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = ris_type(work.get("type"))
    tags: list[tuple[str, Any]] = [("TY", kind), ("T1", full_title(work))]
    tags += [("AU", _author(a)) for a in work.get("authors") or []]
    parts = date_parts(work)
    if parts:
        tags += [("PY", f"{parts[0]:04d}"), ("Y1", _date(parts)), ("DA", _date(parts))]
    tags += [("N2", work.get("abstract")), ("AB", work.get("abstract"))]
    tags += [("KW", k) for k in work.get("keywords") or []]
    tags += [("UR", work.get("url")), ("DO", work.get("doi")), ("M3", type_label(work.get("type")))]
    container = work.get("container_title")
    if kind == "JOUR":
        tags += [("JO", container), ("JF", container)]
    else:
        tags.append(("T2", container))
    tags += [("SN", v) for v in [*(work.get("issn") or []), *(work.get("isbn") or [])]]
    first, last = split_pages(work.get("pages"))
    tags += [("VL", work.get("volume")), ("IS", work.get("issue")), ("SP", first), ("EP", last)]
    tags += [("PB", work.get("publisher")), ("LA", language_name(work.get("language")))]
    if work.get("retracted"):
        tags.append(("N1", "Retracted"))
    return tags


def ris_record(work: dict[str, Any]) -> str:
    """One record: ``TY  - JOUR\\r\\n`` ... ``ER  - \\r\\n`` and the blank line after it."""
    lines = []
    for tag, value in _tags(work):
        text = one_line(value) if value is not None else ""
        if text:
            lines.append(f"{tag}  - {text}{EOL}")
    return "".join(lines) + f"ER  - {EOL}{EOL}"


def write_ris(works: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write each work as a RIS record as it comes; the count.

    ``out`` must not translate line endings (open it with ``newline=""``): the CR LF
    are written here.
    """
    count = 0
    for work in works:
        out.write(ris_record(work))
        count += 1
    return count
