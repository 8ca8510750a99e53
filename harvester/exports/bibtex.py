"""BibTeX export: one ``@type{key, field = "value", ...}`` entry per work.

The entry follows the "Cite this" BibTeX of the university portals (Pure) field for
field, in their order: ``title``, ``abstract``, ``keywords``, ``author``, ``year``,
``month``, ``day``, ``doi``, ``language``, ``journal`` (or ``booktitle``,
``series``, ``howpublished``: see below), ``issn``, ``isbn``, ``publisher`` (and
``school`` or ``institution``), ``volume``, ``number``, ``pages``, ``url``, ``note``.
A field the work lacks is left out. Entries are separated by a blank line.

* **Entry type** from the canonical (Crossref) type, :data:`ENTRY_TYPES`; ``misc`` for
  the others and for works without a type.
* **Key**: :func:`harvester.exports.common.citation_key`, e.g. ``knox2019egovernment_42``
  (first author's family name, year, first significant title word, ``_`` work id):
  unique within an export, stable across runs.
* **Values** are in double quotes like the portal's. The LaTeX specials are escaped
  (``\\&``, ``\\%``, ``\\$``, ``\\#``, ``\\_``, ``\\{``, ``\\}``, ``\\textasciitilde{}``,
  ``\\textasciicircum{}``, ``\\textbackslash{}``), a ``"`` is written ``{"}`` so that it
  does not end the value, the TeX ligatures (``--``, two apostrophes, two back-quotes,
  ``!`` or ``?`` before a back-quote) are broken with ``{}`` so that they print as
  typed, and an ``@`` starting a line is written ``{@}`` so that no parser takes it for
  a new entry. Everything else, non-ASCII
  included, is written as it is, in UTF-8 (no TeX accent macros): use biber, or BibTeX
  with ``inputenc``/a Unicode engine.
* ``doi`` and ``url`` are verbatim fields (biblatex and hyperref read them verbatim), so
  they are written as stored, without LaTeX escapes; the characters a quoted BibTeX
  value cannot hold verbatim (``"``, ``{``, ``}``, ``\\``, line breaks) are
  percent-encoded (none occurs in a valid DOI or URL).
  The DOI is the stored lower-case form (DOIs are case-insensitive; the portal prints
  upper case).
* ``author``: ``Family, Given and Family, Given``; an author with only a name (an
  organisation, or a name the source did not split) is braced, ``{World Health
  Organization}``, so that BibTeX does not split it, and so is a family or given name
  holding a comma or the word "and". In names the specials are braced "special
  characters" (``{\\&}``, ``{\\textasciitilde}``), which BibTeX's name parsing treats
  as one letter.
* ``keywords`` joined with ``", "``; ``issn`` and ``isbn`` likewise.
* ``year``, then ``month`` and ``day`` only when the sources give them, as numbers
  without leading zeros (``month = "5"``), like the portal.
* ``language``: the English name ("English" for ``en``).
* The container title is ``journal`` for ``article``, ``booktitle`` for
  ``inproceedings`` and ``incollection``, ``howpublished`` for ``misc`` and ``series``
  for the other types. ``school`` (``phdthesis``) and ``institution`` (``techreport``)
  repeat the publisher, as those entry types require.
* ``number`` is the issue; ``pages`` are ``first--last``.
* The abstract keeps its paragraphs: a quoted value may span lines, and the blank line
  between two sections ("Purpose: ...", "Design/methodology/approach: ...") stays.
* ``note = "Retracted"`` for a retracted work.

Known limit: BibTeX (the program) counts braces even when they are escaped, so a title
with a lone ``{`` gives a \\{ that BibTeX itself reports as unbalanced; biber and the
BibTeX parsers of the reference managers read it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, TextIO

from harvester.exports.common import (
    author_name_parts,
    citation_key,
    date_parts,
    full_title,
    language_name,
    split_pages,
)

__all__ = ["ENTRY_TYPES", "ESCAPES", "bibtex_entry", "entry_type", "latex_escape", "write_bibtex"]

#: Canonical type -> BibTeX entry type; every other type is ``misc``.
ENTRY_TYPES: dict[str, str] = {
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

_CONTAINER_FIELD = {"article": "journal", "inproceedings": "booktitle", "incollection": "booktitle"}

#: The characters escaped in BibTeX values, and how.
ESCAPES: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    '"': '{"}',
}
_SPECIALS = str.maketrans(ESCAPES)
# In names an escaped character is a braced "special character" (``{\&}``), as BibTeX's
# name parsing wants it: one letter there, and name splitters keep it whole.
_NAME_SPECIALS = str.maketrans(
    {char: esc if esc.startswith("{") else f"{{{esc.removesuffix('{}')}}}" for char, esc in ESCAPES.items()}
)
# The first character of a TeX ligature (--, ``, '', !`, ?`): "{}" after it keeps it as typed.
_LIGATURE = re.compile(r"-(?=-)|`(?=`)|'(?=')|[!?](?=`)")
# An "@" at the start of a line (after spaces) looks like the start of an entry to parsers.
_LINE_START_AT = re.compile(r"^(\s*)@", re.MULTILINE)
_VERBATIM_UNSAFE = str.maketrans({'"': "%22", "{": "%7B", "}": "%7D", "\\": "%5C", "\n": "%0A", "\r": "%0D"})


def latex_escape(text: str, *, name: bool = False) -> str:
    """``text`` as the content of a double-quoted BibTeX value (see the module doc).

    ``name=True`` for a part of a person's name: specials become braced special
    characters (``{\\&}``, ``{\\textbackslash}``) that BibTeX's name parsing keeps whole.
    """
    escaped = _LIGATURE.sub(r"\g<0>{}", text.translate(_NAME_SPECIALS if name else _SPECIALS))
    return _LINE_START_AT.sub(r"\1{@}", escaped)


def _verbatim(text: str) -> str:
    return text.translate(_VERBATIM_UNSAFE)


def entry_type(work_type: str | None) -> str:
    """The BibTeX entry type of a canonical type: ``article`` for ``journal-article``."""
    return ENTRY_TYPES.get(work_type or "", "misc")


_AND = re.compile(r"\band\b", re.IGNORECASE)
_MACRO_SPECIALS = frozenset({"\\", "~", "^"})


def _name_part(text: str, *, keep_whole: bool = False) -> str:
    """A family or given name, braced when BibTeX would split it (a comma, the word "and")
    or when ``keep_whole``."""
    escaped = latex_escape(text, name=True)
    if text in _MACRO_SPECIALS:  # a part that is one braced macro alone is not decoded back by parsers
        return f"{{{ESCAPES[text]}}}"
    if keep_whole or _AND.search(text) or "," in text:
        return f"{{{escaped}}}"
    return escaped


def _author(author: dict[str, Any]) -> str | None:
    family, given, whole = author_name_parts(author)
    if family and given:
        return f"{_name_part(family)}, {_name_part(given)}"
    if family:  # alone, "Garcia Marquez" would read as given "Garcia", family "Marquez"
        return _name_part(family, keep_whole=len(family.split()) > 1)
    if whole:
        return _name_part(whole, keep_whole=True)
    return None


def _fields(work: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(name, value already written for BibTeX) in the portal's order."""
    fields: list[tuple[str, str]] = []

    def text(name: str, value: Any) -> None:
        if value is not None and str(value).strip():
            fields.append((name, latex_escape(str(value))))

    text("title", full_title(work))
    text("abstract", work.get("abstract"))
    keywords = [k for k in work.get("keywords") or [] if k and k.strip()]
    if keywords:
        text("keywords", ", ".join(keywords))
    authors = [a for a in map(_author, work.get("authors") or []) if a]
    if authors:
        fields.append(("author", " and ".join(authors)))
    for name, part in zip(("year", "month", "day"), date_parts(work), strict=False):
        fields.append((name, str(part)))
    if work.get("doi"):
        fields.append(("doi", _verbatim(str(work["doi"]))))
    text("language", language_name(work.get("language")))
    container_field = _CONTAINER_FIELD.get(kind, "howpublished" if kind == "misc" else "series")
    text(container_field, work.get("container_title"))
    text("issn", ", ".join(work.get("issn") or []))
    text("isbn", ", ".join(work.get("isbn") or []))
    text("publisher", work.get("publisher"))
    if kind == "phdthesis":
        text("school", work.get("publisher"))
    elif kind == "techreport":
        text("institution", work.get("publisher"))
    text("volume", work.get("volume"))
    text("number", work.get("issue"))
    first, last = split_pages(work.get("pages"))
    if first:
        fields.append(("pages", latex_escape(first) + (f"--{latex_escape(last)}" if last else "")))
    if work.get("url"):
        fields.append(("url", _verbatim(str(work["url"]))))
    if work.get("retracted"):
        fields.append(("note", "Retracted"))
    return fields


def bibtex_entry(work: dict[str, Any]) -> str:
    """One entry, ending with a newline: ``@article{key,\\n  title = "...",\\n}\\n``."""
    kind = entry_type(work.get("type"))
    lines = [f"@{kind}{{{citation_key(work)},"]
    lines += [f'  {name} = "{value}",' for name, value in _fields(work, kind)]
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_bibtex(works: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Write each work as a BibTeX entry as it comes (blank line between); the count."""
    count = 0
    for work in works:
        if count:
            out.write("\n")
        out.write(bibtex_entry(work))
        count += 1
    return count
