"""Citation exports of the works: BibTeX, RIS and CSL-JSON.

Each writer takes the exported works (contract: "The exported work") as an iterable
and a text stream, writes each work as soon as it comes (memory stays flat over a
million works) and returns how many it wrote. :data:`harvester.export.FORMATS`
registers them for ``harvester export --format bibtex|ris|csl-json``. The formats and
how they differ from the university portal's "Cite this" exports are described in
:mod:`harvester.exports.bibtex`, :mod:`harvester.exports.ris` and
:mod:`harvester.exports.csl`; the citation key in
:func:`harvester.exports.common.citation_key`.
"""

from __future__ import annotations

from harvester.exports.bibtex import write_bibtex
from harvester.exports.common import citation_key
from harvester.exports.csl import write_csl_json
from harvester.exports.ris import write_ris

__all__ = ["citation_key", "write_bibtex", "write_csl_json", "write_ris"]
