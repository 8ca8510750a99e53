"""Exports of the live deduplicated works: JSON lines, CSV, BibTeX, RIS and CSL-JSON.

All stream: works come from :meth:`storage.store.Store.iter_works` in id order,
batch by batch, and each is written as soon as it is read, so memory stays flat over
a million works and the order is stable between runs.

JSON lines carry the exported work exactly as the contract fixes it. CSV flattens it
into :data:`CSV_COLUMNS` (documented in the README): lists are joined with ``"; "``,
authors as ``Family, Given`` (or the name as written), subjects as
``scheme:code label``, identifiers as ``scheme:value``.

BibTeX, RIS and CSL-JSON are the citation exports of :mod:`harvester.exports`
(:func:`~harvester.exports.bibtex.write_bibtex`, :func:`~harvester.exports.ris.write_ris`,
:func:`~harvester.exports.csl.write_csl_json`); :data:`FORMATS` maps each ``--format``
name to its writer, ``writer(works, out) -> count``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from harvester.exports import write_bibtex, write_csl_json, write_ris

__all__ = [
    "CSV_COLUMNS",
    "FORMATS",
    "write_bibtex",
    "write_csl_json",
    "write_csv",
    "write_jsonl",
    "write_ris",
]

CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "doi",
    "title",
    "subtitle",
    "authors",
    "orcids",
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
    "citation_source",
    "citation_as_of",
    "license",
    "url",
    "identifiers",
    "sources",
    "retracted",
    "deleted",
)


def write_jsonl(works: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for work in works:
        out.write(json.dumps(work, ensure_ascii=False, separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


def _author(author: dict[str, Any]) -> str:
    if author.get("family"):
        return f"{author['family']}, {author['given']}" if author.get("given") else str(author["family"])
    return str(author.get("name") or "")


def _csv_row(work: dict[str, Any]) -> list[str]:
    cc = work.get("citation_count") or {}
    join = "; ".join
    values: dict[str, Any] = {
        **work,
        "authors": join(_author(a) for a in work.get("authors") or []),
        "orcids": join(a.get("orcid") or "" for a in work.get("authors") or [])
        if any(a.get("orcid") for a in work.get("authors") or [])
        else "",
        "issn": join(work.get("issn") or []),
        "isbn": join(work.get("isbn") or []),
        "keywords": join(work.get("keywords") or []),
        "subjects": join(
            " ".join(
                p for p in (f"{s['scheme']}:{s.get('code') or ''}".rstrip(":"), s.get("label") or "") if p
            )
            for s in work.get("subjects") or []
        ),
        "citation_count": cc.get("value"),
        "citation_source": cc.get("source"),
        "citation_as_of": cc.get("as_of"),
        "identifiers": join(f"{k}:{v}" for k, vs in (work.get("identifiers") or {}).items() for v in vs),
        "sources": join(work.get("sources") or []),
        "retracted": "true" if work.get("retracted") else "false",
        "deleted": "true" if work.get("deleted") else "false",
    }
    return ["" if values.get(c) is None else str(values[c]) for c in CSV_COLUMNS]


def write_csv(works: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    for work in works:
        writer.writerow(_csv_row(work))
        count += 1
    return count


FORMATS: dict[str, Callable[[Iterable[dict[str, Any]], TextIO], int]] = {
    "jsonl": write_jsonl,
    "csv": write_csv,
    "bibtex": write_bibtex,
    "ris": write_ris,
    "csl-json": write_csl_json,
}
