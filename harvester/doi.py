"""The one DOI canonicaliser: every DOI that becomes a key goes through here.

Deduplication joins records of different sources on their DOI, so two spellings of one
DOI that normalize differently make two works, and a junk string that normalizes to a
real DOI merges unrelated works. Every normalizer (OAI, Crossref, Scopus), the merge and
the command line therefore call :func:`strict_doi` for identifier fields and
:func:`extract_doi` for free text, and nothing else normalizes DOIs.

The policy (``shared/notes/dedup-reliability.md``, "DOIs") in the order it is applied:

1. NFKC and removal of Unicode format characters (category Cf): repairs ligatures that
   PDF extraction leaves (``jﬁneco``) and invisible marks such as a trailing U+200E.
2. HTML entities (``&lt;``) and percent escapes (``%3C``) are decoded, so that the
   encoded, entity-escaped and plain spellings of a SICI DOI give one key. A ``%`` that
   does not start a valid escape, or escapes that are not UTF-8, make the value invalid:
   guessing would mint keys that no registry knows.
3. ``doi:``, ``info:doi/`` and ``http(s)://(dx.|www.)doi.org/`` (also without the
   scheme) are stripped, repeatedly, with the surrounding whitespace; then one trailing
   ``.`` or ``,`` is dropped.
4. Only ASCII letters are lower-cased (DOIs ignore ASCII case only; ``casefold`` would
   turn ``ß`` into ``ss`` and so invent a different DOI). Anything still non-ASCII is
   invalid: dash look-alikes and Cyrillic homoglyphs are damaged DOIs, not new ones.
5. ``10.1037//`` loses its doubled slash (APA's registered DOIs have one, as fatcat
   does); every other ``//`` is kept, because ``10.1026//...`` is registered that way.
6. The value must match ``^10\\.\\d{4,9}(\\.\\d+)*/`` followed by a suffix of printable
   ASCII without spaces: shortDOIs (``10/aabbe``), CiteSeerX ids (``10.1.1.130.8504``),
   short registrants and empty suffixes are rejected.

The steps are repeated until the value no longer changes (a few rounds at most), so the
result is a fixed point: ``strict_doi(strict_doi(x)) == strict_doi(x)``. This matters
for stored keys: re-normalizing a stored DOI with the same code must never move it. A
consequence is that ``10.1234/x..`` loses both trailing dots, not just one.
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections.abc import Iterator
from urllib.parse import unquote_to_bytes

__all__ = ["extract_doi", "extract_dois", "strict_doi"]

# Prefixes that carry no part of the DOI. Stripped repeatedly, so that
# ``https://doi.org/doi:10.1.1.130.8504`` is seen as the (invalid) ``10.1.1.130.8504``.
_PREFIX = re.compile(
    r"^(?:doi:\s*|info:doi/|(?:https?://)?(?:dx\.|www\.)?doi\.org/)",
    re.IGNORECASE,
)
_VALID = re.compile(r"^10\.[0-9]{4,9}(?:\.[0-9]+)*/[\x21-\x7e]+$", re.ASCII)
_APA_DOUBLE_SLASH = re.compile(r"^10\.1037//+")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

# A candidate in free text: the DOI syntax up to the first space or double quote (a
# quote ends an HTML attribute; no registered DOI we match on contains one). The slash
# may be percent-encoded, as in URL query strings.
_CANDIDATE = re.compile(r"10\.[0-9]{4,9}(?:\.[0-9]+)*(?:/|%2[Ff])[^\s\"]+", re.ASCII)
# An HTML/XML tag glued to the end of a candidate (``10.1234/x</a>``). SICI DOIs
# contain ``<`` too, but always followed by a digit (``<493::AID-PROP493>``).
_GLUED_TAG = re.compile(r"</?[A-Za-z]")
_SENTENCE_END = ".,;:!?'"
_CLOSERS = {")": "(", "]": "[", "}": "{", ">": "<"}

# More rounds than any real value needs; a value still changing after them (layer upon
# layer of encoding) is rejected rather than keyed inconsistently.
_MAX_ROUNDS = 8


def strict_doi(value: str | None) -> str | None:
    """Normalize a DOI from an identifier field (dc:identifier, Crossref ``DOI``, prism:doi).

    Returns the bare, ASCII-lower-cased DOI (``10.1108/ijpsm-08-2018-0173``), or None when
    the value is not a DOI under the module's policy. The whole value must be the DOI
    (possibly with a ``doi:``/resolver prefix): text around it makes it invalid; use
    :func:`extract_doi` for citations and publisher URLs.
    """
    if value is None:
        return None
    return _strict_doi_cached(value)


@functools.lru_cache(maxsize=4096)
def _strict_doi_cached(value: str) -> str | None:
    """:func:`strict_doi` of a string, memoized: a normalizer often asks twice for one value
    (the DOI pass, then the classification of the same ``dc:identifier``)."""
    current = value
    for _ in range(_MAX_ROUNDS):
        result = _normalize_once(current)
        if result is None or result == current or _is_settled(result):
            return result
        current = result
    return None


def _is_settled(result: str) -> bool:
    """True when another round would give ``result`` back unchanged.

    A round's result is ASCII, lower-case, free of spaces and starts with ``10.``: NFKC,
    Cf removal, the prefixes, the case and the doubled APA slash leave it alone. Only an
    entity (``&``), a percent escape (``%``) or a trailing ``.``/``,`` can still change
    it, so only such a result needs the confirming round (which is most of the cost).
    """
    return "&" not in result and "%" not in result and result[-1] not in ".,"


def extract_doi(text: str | None) -> str | None:
    """Find the first DOI in free text (a citation, a publisher URL, GROBID output).

    The DOI is normalized as by :func:`strict_doi`. Unlike strict mode, sentence
    punctuation and unbalanced closing brackets at the end of the match are dropped, so
    ``(10.1088/1748-9326/11/4/048002).`` gives the DOI without ``).``, and text before
    the ``10.`` is ignored (``21924DOI10.1234/asdf`` gives ``10.1234/asdf``). None if the
    text holds no valid DOI.
    """
    for doi in _iter_dois(text):
        return doi
    return None


def extract_dois(text: str | None) -> list[str]:
    """All distinct DOIs in free text, normalized, in order of first appearance."""
    seen: dict[str, None] = {}
    for doi in _iter_dois(text):
        seen.setdefault(doi, None)
    return list(seen)


def _iter_dois(text: str | None) -> Iterator[str]:
    if not text:
        return
    prepared = _nfkc_without_format_chars(html.unescape(text))
    for match in _CANDIDATE.finditer(prepared):
        candidate = match.group(0)
        glued = _GLUED_TAG.search(candidate)
        if glued is not None:
            candidate = candidate[: glued.start()]
        decoded = _percent_decode(candidate)
        candidate = _trim_free_text_end(decoded if decoded is not None else candidate)
        doi = strict_doi(candidate)
        if doi is not None:
            yield doi


def _trim_free_text_end(candidate: str) -> str:
    """Drop sentence punctuation, quotes and unbalanced closing brackets from the end."""
    counts = {ch: candidate.count(ch) for ch in "()[]{}<>"}
    end = len(candidate)
    while end:
        last = candidate[end - 1]
        opener = _CLOSERS.get(last)
        unbalanced = opener is not None and counts[last] > counts[opener]
        # Typographic quotes and other non-ASCII punctuation (»): never part of a DOI.
        foreign = not last.isascii() and unicodedata.category(last).startswith("P")
        if last not in _SENTENCE_END and not unbalanced and not foreign:
            break
        if last in counts:
            counts[last] -= 1
        end -= 1
    return candidate[:end]


def _normalize_once(value: str) -> str | None:
    """One round of the policy; :func:`strict_doi` repeats it up to a fixed point."""
    if value.isascii() and "&" not in value and "%" not in value:
        # Steps 1 and 2 would change nothing, and the later steps only cut pieces off the
        # value and lower-case it: without a "10." in the value, no DOI can come out.
        if "10." not in value:
            return None
        text = value
    else:
        decoded = _decode(value)
        if decoded is None:
            return None
        text = decoded

    while True:  # step 3: prefixes and whitespace, as often as they occur
        text = text.strip()
        prefix = _PREFIX.match(text)
        if prefix is None:
            break
        text = text[prefix.end() :]
    if text[-1:] in (".", ","):
        text = text[:-1].rstrip()

    if not text.isascii():
        return None
    text = text.lower()
    if text.startswith("10.1037//"):
        text = _APA_DOUBLE_SLASH.sub("10.1037/", text)
    if _VALID.match(text) is None:
        return None
    return text


def _decode(value: str) -> str | None:
    """Steps 1 and 2: NFKC and Cf removal, entities and percent escapes decoded, then NFKC
    and Cf removal again; None for a stray ``%`` or escapes that are not UTF-8."""
    decoded = _percent_decode(html.unescape(_nfkc_without_format_chars(value)))
    if decoded is None:
        return None
    # Decoding can produce ligatures or format characters again (``%E2%80%8E``).
    return _nfkc_without_format_chars(decoded)


def _nfkc_without_format_chars(text: str) -> str:
    """NFKC, then every format character (category Cf) removed.

    ASCII text comes back as it is: every ASCII character is its own NFKC form and none
    is a format character (the common case, checked in constant time).
    """
    if text.isascii():
        return text
    return _strip_format_chars(unicodedata.normalize("NFKC", text))


def _strip_format_chars(text: str) -> str:
    """``text`` without its format characters (category Cf).

    The category is looked up once per distinct non-ASCII character, not once per
    character, and the text is copied only when it holds a format character.
    """
    if text.isascii():
        return text
    found = [ch for ch in set(text) if not ch.isascii() and unicodedata.category(ch) == "Cf"]
    if not found:
        return text
    return text.translate(dict.fromkeys(map(ord, found)))


def _percent_decode(text: str) -> str | None:
    """Decode ``%XX`` escapes as UTF-8; None for a stray ``%`` or non-UTF-8 bytes."""
    if "%" not in text:
        return text
    if _BAD_PERCENT.search(text):
        return None
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return None
