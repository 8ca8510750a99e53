"""Plain text from the markup-laden strings that sources send for titles, abstracts and
keywords.

Sources disagree on what a title is: Crossref sends ``<i>`` and MathML inside it, OAI
Dublin Core sends entity-escaped (sometimes doubly escaped) HTML, Scopus sends plain
text with stray control characters. The canonical record (:mod:`harvester.record`)
holds plain text only, so that the merge can compare and choose values and exports
(CSV, BibTeX, RIS) do not leak markup. Control characters that XML 1.0 forbids must go
too: one of them in a title makes every later XML export of the record fail.

Tags are removed conservatively. A ``<`` in a title is often mathematics ("p<0.05",
"x<y>z"), so only what is certainly markup is dropped: tags with a namespace prefix
(``jats:``, ``mml:``), tags whose name is a known HTML, JATS or MathML element, and
tags carrying ``name="value"`` attributes. Everything else stays as text.
"""

from __future__ import annotations

import html
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from typing import Literal

from lxml import etree

__all__ = ["clean_block", "clean_text", "jats_to_text", "split_keywords"]

# Known markup element names (local names, lower case): HTML inline and block elements,
# JATS inline and structural elements, and MathML presentation elements.
_HTML_TAGS = (
    "a abbr b bdi bdo big blockquote br caption center cite code dd del dfn div dl dt em font h1 h2 h3 "
    "h4 h5 h6 hr i img ins kbd li mark ol p pre q rp rt ruby s samp small span strike strong sub sup "
    "table tbody td tfoot th thead tr tt u ul var wbr"
)
_JATS_TAGS = (
    "abstract alternatives bold break chem-struct disp-formula disp-quote email ext-link fig fn "
    "graphic inline-formula inline-graphic italic label list list-item monospace named-content "
    "overline phrase preformat roman sans-serif sc scp sec statement strike styled-content "
    "tex-math title trans-abstract underline uri xref"
)
_MATHML_TAGS = (
    "annotation annotation-xml maction maligngroup malignmark math menclose merror mfenced mfrac "
    "mglyph mi mlabeledtr mmultiscripts mn mo mover mpadded mphantom mprescripts mroot mrow ms "
    "mspace msqrt mstyle msub msubsup msup mtable mtd mtext mtr munder munderover none semantics"
)
_KNOWN_TAGS = frozenset(f"{_HTML_TAGS} {_JATS_TAGS} {_MATHML_TAGS}".split())
# Elements whose boundary separates words ("a<br/>b" is "a b", "H<sub>2</sub>O" is "H2O").
_BREAKING_NAMES = (
    "blockquote br dd div dl dt h1 h2 h3 h4 h5 h6 hr li ol p pre table tbody td tfoot th thead tr ul "
    "abstract break disp-quote fig list list-item sec statement title trans-abstract mtable mtd mtr"
)
_BREAKING_TAGS = frozenset(_BREAKING_NAMES.split())
# Elements whose content is never text: the source of a formula that is shown elsewhere.
_DROPPED_TAGS = frozenset({"annotation", "annotation-xml"})
# Elements that are paragraphs of their own (outside a JATS section).
_PARAGRAPH_NAMES = (
    "blockquote div h1 h2 h3 h4 h5 h6 li ol p pre table ul abstract disp-quote fig list list-item sec "
    "statement title trans-abstract"
)
_PARAGRAPH_TAGS = frozenset(_PARAGRAPH_NAMES.split())
_SECTION_TAGS = frozenset({"sec"})
_CONTAINER_TAGS = frozenset({"abstract", "trans-abstract", "body"})

# Attributes must have values: "<b and c>" in "a<b and c>d" is mathematics, not a tag.
_ATTRS = r"""(?:\s+[A-Za-z_][\w:.-]*\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'<>=`]+))*"""
# A tag: optional "/", optional prefix, name, attributes, optional "/". Group "close" is
# "/" for an end tag, "prefix" the namespace prefix, "name" the local name, "attrs" the
# attribute text.
_TAG = re.compile(
    r"<(?P<close>/?)(?:(?P<prefix>[A-Za-z_][\w.-]*):)?(?P<name>[A-Za-z][\w.-]*)"
    rf"(?P<attrs>{_ATTRS})\s*/?>"
)
_DROPPED_BLOCK = re.compile(
    r"<(?:[\w.-]+:)?(annotation(?:-xml)?)\b[^>]*>.*?</(?:[\w.-]+:)?\1\s*>", re.DOTALL | re.IGNORECASE
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)
_DECLARATION = re.compile(r"<!DOCTYPE(?:[^\[>]|\[[^\]]*\])*>|<![A-Z][^>]*>|<\?.*?\?>", re.DOTALL)
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
# C0 controls other than tab, LF and CR (invalid in XML 1.0), DEL and C1 controls
# (legal in XML 1.0 but only ever mojibake in metadata), lone surrogates, U+FFFE/U+FFFF
# and the byte order mark.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
# What makes an ASCII string need more than whitespace handling: an entity, markup or a
# control character of _CONTROL.
_ASCII_TO_CLEAN = re.compile("[&<\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# An "&" that does not start one of the four entities _html_unescape decodes itself.
_OTHER_AMPERSAND = re.compile("&(?!amp;|lt;|gt;|quot;)")
_BLANK_LINE = re.compile(r"\n[^\S\n]*\n")
_PARAGRAPH_MARK = "\n\n"

_NAMESPACES = {
    "jats": "http://www.ncbi.nlm.nih.gov/JATS1",
    "mml": "http://www.w3.org/1998/Math/MathML",
    "xlink": "http://www.w3.org/1999/xlink",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "ali": "http://www.niso.org/schemas/ali/1.0/",
}
_WRAP_OPEN = "<root " + " ".join(f'xmlns:{p}="{uri}"' for p, uri in _NAMESPACES.items()) + ">"
_XML_PREDEFINED = frozenset({"lt", "gt", "amp", "quot", "apos"})


def clean_text(value: str | None) -> str | None:
    """Plain one-line text for a title or another short field; None when nothing is left.

    Entities are decoded (a second time only when the first pass leaves entities, as
    in doubly escaped ``&amp;lt;i&amp;gt;``), markup tags are removed, XML-invalid
    control characters dropped, the text NFC-normalized and every run of whitespace,
    line breaks included, collapsed to one space.
    """
    text = _to_plain(value, keep_paragraphs=False)
    if text is None:
        return None
    return " ".join(text.split()) or None


def clean_block(value: str | None) -> str | None:
    """Like :func:`clean_text`, but paragraphs survive: used for plain-text abstracts.

    A blank line (or a ``<p>``/``<div>``/``<br/><br/>`` boundary) separates paragraphs;
    the result joins the non-empty paragraphs with exactly one blank line (``"\\n\\n"``)
    and collapses all whitespace inside a paragraph to single spaces.
    """
    text = _to_plain(value, keep_paragraphs=True)
    if text is None:
        return None
    paragraphs = (" ".join(part.split()) for part in _BLANK_LINE.split(text))
    return _PARAGRAPH_MARK.join(p for p in paragraphs if p) or None


def jats_to_text(value: str | None) -> str | None:
    """Plain text from a Crossref JATS abstract; sections become labelled paragraphs.

    ``<jats:sec><jats:title>Purpose</jats:title><jats:p>The ...</jats:p></jats:sec>``
    becomes the paragraph ``"Purpose: The ..."``; paragraphs are joined by ``"\\n\\n"``.
    All text of one section (its ``<p>`` elements) forms one paragraph, a nested section
    starts a new one; outside sections each ``<p>`` is a paragraph. A title "Abstract"
    (any case) labels nothing and is dropped. The markup may use ``jats:`` prefixes with
    or without declarations, or no prefix; a string without markup is treated as plain
    text (:func:`clean_block`).

    The string is parsed with lxml without recovery, without DTDs, entity expansion or
    network access (Crossref abstracts come from publishers and are untrusted). Any
    parse failure (unbalanced tags, undeclared prefixes, a DOCTYPE) falls back to a
    regular-expression tokenizer that yields the same structure from the tags it can
    see, so a malformed abstract still gives text rather than an error or nothing.
    """
    if value is None:
        return None
    text = _CONTROL.sub("", value)  # before parsing: XML forbids them, so lxml would refuse
    if "<" not in text and re.search(r"&lt;/?[A-Za-z]", text):
        text = html.unescape(text)  # a whole abstract escaped once more than it should be
    if "<" not in text:
        return clean_block(text)
    tokens = _xml_tokens(text)
    if tokens is None:
        tokens = _regex_tokens(text)
    return _assemble(tokens)


def split_keywords(values: Iterable[str]) -> tuple[str, ...]:
    """Keywords from values that may each hold several, split on ``;`` and ``|``.

    Commas do not split: they occur inside keywords ("Innovation, organizational").
    A ``;`` that ends an entity (``R&amp;D``) does not split either. Each keyword goes
    through :func:`clean_text`; empty ones are dropped and repeats removed case-
    insensitively, keeping the first spelling and the order.
    """
    if isinstance(values, str):
        values = (values,)
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        for part in _split_outside_entities(value):
            keyword = clean_text(part)
            if keyword is None:
                continue
            key = keyword.casefold()
            if key not in seen:
                seen.add(key)
                out.append(keyword)
    return tuple(out)


# --- helpers: plain text ------------------------------------------------------------------


def _to_plain(value: str | None, *, keep_paragraphs: bool) -> str | None:
    if value is None:
        return None
    if value.isascii() and _ASCII_TO_CLEAN.search(value) is None:
        text = value  # nothing to decode, remove or normalize: the common case
    else:
        text = _unescape(value)
        if "<" in text:  # without a "<" there is no markup to remove
            text = _strip_markup(text, keep_paragraphs)
        text = _CONTROL.sub("", text)
        if not text.isascii():  # ASCII text is already in NFC
            text = unicodedata.normalize("NFC", text)
    if keep_paragraphs:
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\u2029" in text:
            text = text.replace("\u2029", _PARAGRAPH_MARK)
    return text


def _strip_markup(text: str, keep_paragraphs: bool) -> str:
    """CDATA unwrapped, comments, declarations and dropped blocks removed, markup tags
    replaced (see :func:`_tag_replacer`). Every pattern starts with ``<``, so a text
    without one comes back unchanged."""
    if "<!" in text or "<?" in text:  # where CDATA, comments and declarations start
        text = _CDATA.sub(_cdata_content, text)
        text = _COMMENT.sub(" ", text)
        text = _DECLARATION.sub(" ", text)
    text = _DROPPED_BLOCK.sub("", text)
    return _TAG.sub(_TAG_REPLACERS[keep_paragraphs], text)


def _cdata_content(match: re.Match[str]) -> str:
    return match.group(1)


def _unescape(text: str) -> str:
    """Decode entities; a second time only when the first pass left entities behind."""
    once = _html_unescape(text)
    if once != text and _ENTITY.search(once):
        return _html_unescape(once)
    return once


def _html_unescape(text: str) -> str:
    """:func:`html.unescape`, quicker for text whose entities are all ``&amp;``, ``&lt;``,
    ``&gt;`` or ``&quot;`` (escaped HTML, as Zenodo sends abstracts).

    In such text every ``&`` starts one of the four, so decoding them one kind after the
    other gives what html.unescape's single pass gives, as long as ``&amp;`` comes last
    (the ``&`` it leaves must not start another entity).
    """
    if "&" not in text:
        return text
    if _OTHER_AMPERSAND.search(text) is None:
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    return html.unescape(text)


def _is_markup(match: re.Match[str]) -> bool:
    if match.group("prefix"):
        return True
    if match.group("name").lower() in _KNOWN_TAGS:
        return True
    return "=" in match.group("attrs")


def _tag_replacer(keep_paragraphs: bool) -> Callable[[re.Match[str]], str]:
    """What a tag becomes: itself unless it is markup (:func:`_is_markup`); a paragraph mark
    for paragraph elements and a line break for ``<br>`` (with ``keep_paragraphs``), a
    space for other breaking elements, nothing for the rest."""
    replacements = dict.fromkeys(_BREAKING_TAGS, " ")
    if keep_paragraphs:
        replacements.update(dict.fromkeys(_PARAGRAPH_TAGS, _PARAGRAPH_MARK))
        replacements["br"] = "\n"  # two <br/> in a row make a blank line, hence a paragraph break

    def replace(match: re.Match[str]) -> str:
        prefix, name, attrs = match.group("prefix", "name", "attrs")
        name = name.lower()
        if not prefix and name not in _KNOWN_TAGS and "=" not in attrs:
            return match.group(0)  # not markup (the test of _is_markup)
        return replacements.get(name, "")

    return replace


_TAG_REPLACERS = {flag: _tag_replacer(flag) for flag in (False, True)}
_ENTITY_OR_SEPARATOR = re.compile(r"&#?[A-Za-z0-9]+;|[;|]")


def _split_outside_entities(value: str) -> Iterator[str]:
    if ";" not in value and "|" not in value:  # nothing to split on
        yield value
        return
    start = 0
    for match in _ENTITY_OR_SEPARATOR.finditer(value):
        if match.group(0) in (";", "|"):
            yield value[start : match.start()]
            start = match.end()
    yield value[start:]


# --- helpers: JATS --------------------------------------------------------------------------

# The structure of an abstract as a flat stream: ("break", "") ends a paragraph,
# ("label", text) is a section title, ("text", text) is running text.
_Token = tuple[Literal["break", "label", "text"], str]
_BREAK: _Token = ("break", "")


def _assemble(tokens: Iterable[_Token]) -> str | None:
    """Paragraphs from the token stream: a label prefixes the next paragraph."""
    paragraphs: list[str] = []
    label: str | None = None
    buffer: list[str] = []

    def flush() -> None:
        nonlocal label
        body = clean_text("".join(buffer))
        buffer.clear()
        if body is None:
            return
        if label is not None:
            separator = " " if label[-1] in ":.?!" else ": "
            body = label + separator + body
            label = None
        paragraphs.append(body)

    for kind, text in tokens:
        if kind == "text":
            buffer.append(text)
            continue
        flush()
        if kind == "label":
            title = clean_text(text)
            if title is None or re.fullmatch(r"abstract\W*", title, re.IGNORECASE):
                continue
            if label is not None:  # a title with nothing under it but another section
                paragraphs.append(label)
            label = title
    flush()
    if label is not None:
        paragraphs.append(label)
    return _PARAGRAPH_MARK.join(paragraphs) or None


def _xml_tokens(text: str) -> list[_Token] | None:
    """Tokens from a strict, safe lxml parse; None when the string is not well-formed."""
    if re.search(r"<!DOCTYPE|<!ENTITY", text, re.IGNORECASE):
        return None
    body = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    body = re.sub(r"&(?!#[0-9]+;|#[xX][0-9A-Fa-f]+;|[A-Za-z][A-Za-z0-9]*;)", "&amp;", body)
    body = re.sub(r"&([A-Za-z][A-Za-z0-9]*);", _entity_to_charref, body)
    try:
        root = etree.fromstring(f"{_WRAP_OPEN}{body}</root>", _jats_parser())
    except (etree.XMLSyntaxError, ValueError):  # ValueError: lxml refuses some strings outright
        return None
    tokens: list[_Token] = []
    _walk(root, tokens, in_section=False)
    return tokens


def _entity_to_charref(match: re.Match[str]) -> str:
    """HTML named entities as numeric references, which XML knows without a DTD."""
    if match.group(1) in _XML_PREDEFINED:
        return match.group(0)
    decoded = html.unescape(match.group(0))
    if decoded == match.group(0):
        return match.group(0)  # unknown: the parse fails and the fallback takes over
    return "".join(f"&#{ord(ch)};" for ch in decoded)


_PARSERS = threading.local()  # an lxml parser must not be shared between threads
_LOCAL_NAMES: dict[str, str] = {}


def _jats_parser() -> etree.XMLParser:
    parser = getattr(_PARSERS, "jats", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, recover=False
        )
        _PARSERS.jats = parser
    return parser


def _local_name(element: etree._Element) -> str | None:
    tag = element.tag
    if not isinstance(tag, str):
        return None  # comment or processing instruction
    name = _LOCAL_NAMES.get(tag)
    if name is None:
        name = tag.rpartition("}")[2].lower()
        if len(_LOCAL_NAMES) < 4096:
            _LOCAL_NAMES[tag] = name
    return name


def _walk(element: etree._Element, tokens: list[_Token], *, in_section: bool) -> None:
    name = _local_name(element)
    if name is None or name in _DROPPED_TAGS:
        return
    if name == "alternatives":
        # The same formula several times (TeX, MathML, an image): keep one.
        children = [child for child in element if _local_name(child) is not None]
        preferred = [child for child in children if _local_name(child) == "math"] or children[:1]
        for child in preferred:
            _walk(child, tokens, in_section=in_section)
        return
    if name == "title":
        tokens.append(("label", "".join(_texts(element))))
        return
    section = name in _SECTION_TAGS
    paragraph = name in _PARAGRAPH_TAGS and not section
    if section or (paragraph and not in_section) or name in _CONTAINER_TAGS:
        tokens.append(_BREAK)
    elif name in _BREAKING_TAGS:
        tokens.append(("text", " "))
    tokens.append(("text", element.text or ""))
    for child in element:
        _walk(child, tokens, in_section=in_section or section)
        tokens.append(("text", child.tail or ""))
    if section or (paragraph and not in_section) or name in _CONTAINER_TAGS:
        tokens.append(_BREAK)
    elif name in _BREAKING_TAGS:
        tokens.append(("text", " "))


def _texts(element: etree._Element) -> Iterator[str]:
    """The text of an element, without dropped elements, words kept apart at breaks."""
    yield element.text or ""
    for child in element:
        name = _local_name(child)
        if name is not None and name not in _DROPPED_TAGS:
            spaced = name in _BREAKING_TAGS
            if spaced:
                yield " "
            yield from _texts(child)
            if spaced:
                yield " "
        yield child.tail or ""


def _regex_tokens(text: str) -> list[_Token]:
    """Tokens from malformed markup: the same rules as :func:`_walk`, driven by tags."""
    text = _COMMENT.sub(" ", text)
    text = _CDATA.sub(lambda m: html.escape(m.group(1), quote=False), text)
    text = _DECLARATION.sub(" ", text)
    text = _DROPPED_BLOCK.sub("", text)
    tokens: list[_Token] = []
    section_depth = 0
    title: list[str] | None = None
    position = 0
    for match in _TAG.finditer(text):
        between = text[position : match.start()]
        position = match.end()
        if title is not None:
            title.append(between)
        else:
            tokens.append(("text", between))
        if not _is_markup(match):
            if title is not None:
                title.append(match.group(0))
            else:
                tokens.append(("text", match.group(0)))
            continue
        name = match.group("name").lower()
        closing = bool(match.group("close"))
        if name == "title":
            if not closing:
                title = []
            elif title is not None:
                tokens.append(("label", "".join(title)))
                title = None
            continue
        if title is not None:
            if name in _BREAKING_TAGS:
                title.append(" ")
            continue
        if name in _SECTION_TAGS:
            section_depth = max(0, section_depth + (-1 if closing else 1))
            tokens.append(_BREAK)
        elif name in _CONTAINER_TAGS or (name in _PARAGRAPH_TAGS and section_depth == 0):
            tokens.append(_BREAK)
        elif name in _BREAKING_TAGS:
            tokens.append(("text", " "))
    rest = text[position:]
    if title is not None:  # an unclosed title: keep its text as text, not as a label
        tokens.append(("text", "".join(title) + rest))
    else:
        tokens.append(("text", rest))
    return tokens
