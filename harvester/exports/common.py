"""What the citation exports share: citation keys, titles, dates, pages, names, languages.

Every function takes the exported work dict (contract: "The exported work") or one of
its values and never fails on a missing or ``None`` value: a citation export writes
what a work has and leaves the rest out.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from harvester.record import PartialDate

__all__ = [
    "LANGUAGE_NAMES",
    "author_name_parts",
    "citation_key",
    "date_parts",
    "full_title",
    "language_name",
    "split_pages",
]

#: English names of the common ISO 639-1 codes, as reference managers and the
#: university portals write them ("English" for ``en``). A code not listed here is
#: written as the code itself.
LANGUAGE_NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "az": "Azerbaijani", "be": "Belarusian", "bg": "Bulgarian",
    "bn": "Bengali", "bs": "Bosnian", "ca": "Catalan", "cs": "Czech", "cy": "Welsh", "da": "Danish",
    "de": "German", "el": "Greek", "en": "English", "eo": "Esperanto", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French",
    "ga": "Irish", "gl": "Galician", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian",
    "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian",
    "ja": "Japanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "ky": "Kyrgyz",
    "la": "Latin", "lt": "Lithuanian", "lv": "Latvian", "mk": "Macedonian", "mn": "Mongolian",
    "ms": "Malay", "mt": "Maltese", "nb": "Norwegian Bokmål", "nl": "Dutch", "nn": "Norwegian Nynorsk",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian", "sv": "Swedish",
    "sw": "Swahili", "ta": "Tamil", "tg": "Tajik", "th": "Thai", "tk": "Turkmen", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "uz": "Uzbek", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def language_name(code: str | None) -> str | None:
    """The English name of an ISO 639-1 code ("English" for "en"); an unlisted code as it is."""
    if not code:
        return None
    return LANGUAGE_NAMES.get(code.lower(), code)


def full_title(work: dict[str, Any]) -> str | None:
    """The title with its subtitle, ``"Title: Subtitle"`` (how citations print both)."""
    title = work.get("title") or None
    subtitle = work.get("subtitle") or None
    if title and subtitle:
        return f"{title}: {subtitle}"
    return title or subtitle


def date_parts(work: dict[str, Any]) -> tuple[int, ...]:
    """``(2019,)``, ``(2019, 5)`` or ``(2019, 5, 13)``: the date at the precision it is known.

    From ``date`` (ISO 8601 at the sources' precision); ``year`` alone when the date is
    missing or unreadable; ``()`` when neither is known.
    """
    date = PartialDate.parse(work.get("date"))
    if date is not None:
        return tuple(p for p in (date.year, date.month, date.day) if p is not None)
    year = work.get("year")
    return (year,) if isinstance(year, int) and not isinstance(year, bool) else ()


# A hyphen, a dash look-alike or a run of them, with optional spaces: "362-382", "362 – 382".
_PAGE_RANGE = re.compile(r"\s*[-\u2010-\u2015\u2212]+\s*")


def split_pages(pages: str | None) -> tuple[str | None, str | None]:
    """``("362", "382")`` for "362-382" (or an en dash); ``("e1234", None)`` for one page."""
    if not pages or not pages.strip():
        return None, None
    parts = _PAGE_RANGE.split(pages.strip(), maxsplit=1)
    first = parts[0] or None
    last = parts[1] if len(parts) == 2 and parts[1] else None
    if first is None:
        return last, None
    return first, last


def author_name_parts(author: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """``(family, given, None)`` for a person, ``(None, None, name)`` for a name to keep whole.

    A name without a family part (an organisation, or a person whose name the source
    did not split) comes back whole as the third item; ``(None, None, None)`` when the
    author has no name at all.
    """
    family = (author.get("family") or "").strip() or None
    given = (author.get("given") or "").strip() or None
    if family:
        return family, given, None
    name = (author.get("name") or "").strip() or None
    if name is None and given:
        return None, None, given
    return None, None, name


# --- citation keys -----------------------------------------------------------------------

# Letters that NFKD does not decompose into an ASCII letter and a mark.
_FOLD = str.maketrans(
    {
        "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
        "ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "Th",
        "ı": "i", "ħ": "h", "Ħ": "H", "ŀ": "l", "Ŀ": "L",
    }
)  # fmt: skip
_NOT_LETTER = re.compile(r"[^a-z]+")
_KEY_PART_MAX = 24

#: Words that do not start a key's title part ("The e-government paradox" gives
#: "egovernment"): English function words and the articles of the commonest
#: European languages of scholarly titles.
_STOPWORDS: frozenset[str] = frozenset({
    "a", "an", "the", "of", "on", "in", "at", "to", "for", "from", "by", "with", "and", "or",
    "as", "is", "are", "be", "into", "about",
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einer", "eines", "zur", "zum", "und",
    "le", "la", "les", "l", "un", "une", "du", "de", "d", "et",
    "el", "los", "las", "lo", "una", "unos", "unas", "y", "del",
    "il", "gli", "i", "uno", "di", "e",
    "o", "os", "um", "uma", "do", "da", "dos",
})  # fmt: skip
# Title words are split at spaces and apostrophes ("L'économie" gives "l", "économie").
_WORD_SPLIT = re.compile(r"[\s'’]+")


def _ascii_letters(text: str) -> str:
    """Lower-case ASCII letters only: "Müller-Łukasz" gives "mullerlukasz"."""
    folded = unicodedata.normalize("NFKD", text.translate(_FOLD)).lower()
    return _NOT_LETTER.sub("", folded)


def _key_family(work: dict[str, Any]) -> str:
    for author in work.get("authors") or []:
        family, _, whole = author_name_parts(author)
        if family:
            return _ascii_letters(family)[:_KEY_PART_MAX]
        if whole:
            # "Knox, Colin" as written: the part before the comma is the family name.
            return _ascii_letters(whole.split(",", 1)[0])[:_KEY_PART_MAX]
        break
    return ""


def _key_title_word(work: dict[str, Any]) -> str:
    for token in _WORD_SPLIT.split(work.get("title") or ""):
        word = _ascii_letters(token)
        if word and word not in _STOPWORDS:
            return word[:_KEY_PART_MAX]
    return ""


def citation_key(work: dict[str, Any]) -> str:
    """The BibTeX key (and CSL-JSON ``id``) of a work: ``knox2019egovernment_42``.

    First author's family name + year + first significant title word, each folded to
    lower-case ASCII letters (accents dropped, "ł" as "l", letters only, at most 24
    each), then ``_`` and the store's work id. A part that is unknown (no author, no
    date, a title without Latin letters) is left out; ``work_42`` when all are. The id
    makes the key unique within an export and, since a work's id never changes, the key
    is stable across runs as long as its first author, year and title are.
    """
    year = date_parts(work)
    prefix = f"{_key_family(work)}{year[0] if year else ''}{_key_title_word(work)}"
    return f"{prefix or 'work'}_{work.get('id')}"
