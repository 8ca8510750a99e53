"""Plain text from titles, abstracts and keyword lists."""

from __future__ import annotations

import html
import re
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harvester import text as text_module
from harvester.text import clean_block, clean_text, jats_to_text, split_keywords

EMERALD = (
    "<jats:sec><jats:title>Purpose</jats:title><jats:p>The purpose of this paper is to examine how "
    "public managers adopt performance information.</jats:p></jats:sec>"
    "<jats:sec><jats:title>Design/methodology/approach</jats:title><jats:p>A survey of 1,200 "
    "managers.</jats:p></jats:sec>"
    "<jats:sec><jats:title>Findings</jats:title><jats:p>Use depends on <jats:italic>routines</jats:italic>"
    "\n   and leadership.</jats:p></jats:sec>"
)
EMERALD_TEXT = (
    "Purpose: The purpose of this paper is to examine how public managers adopt performance "
    "information.\n\n"
    "Design/methodology/approach: A survey of 1,200 managers.\n\n"
    "Findings: Use depends on routines and leadership."
)

# --- clean_text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   \n\t ", None),
        ("<i></i>", None),
        ("  Public  management\n reform \t", "Public management reform"),
        ("The <i>Drosophila</i> genome", "The Drosophila genome"),
        ("H<sub>2</sub>O and E = mc<sup>2</sup>", "H2O and E = mc2"),
        ("<b>Bold <i>and <sup>nested</sup></i></b> tags", "Bold and nested tags"),
        ("<jats:italic>In vitro</jats:italic> study", "In vitro study"),
        ("<scp>Covid</scp>-19", "Covid-19"),
        ('<span class="x" style="color: red">styled</span>', "styled"),
        ("line<br/>break", "line break"),
        (
            "A <mml:math><mml:msub><mml:mi>x</mml:mi><mml:mn>1</mml:mn></mml:msub></mml:math> value",
            "A x1 value",
        ),
        (
            "<mml:math><mml:semantics><mml:mi>α</mml:mi>"
            '<mml:annotation encoding="application/x-tex">\\alpha</mml:annotation>'
            "</mml:semantics></mml:math>-decay",
            "α-decay",
        ),
        ("Tom &amp; Jerry", "Tom & Jerry"),
        ("a &lt; b", "a < b"),
        ("Caf&eacute; &#233;t&#xE9;", "Café été"),
        ("&lt;i&gt;Escaped&lt;/i&gt; markup", "Escaped markup"),
        ("double &amp;lt;i&amp;gt;escaped&amp;lt;/i&amp;gt;", "double escaped"),
        ("AT&amp;amp;T", "AT&T"),  # doubly escaped: decoded twice
        ("&amp;lt; stays", "< stays"),
        ("R&D and AT&T", "R&D and AT&T"),  # bare ampersands are text
        ("p<0.05 and q>0.1", "p<0.05 and q>0.1"),  # mathematics, not tags
        ("a<b and c>d", "a<b and c>d"),
        ("x<y>z", "x<y>z"),  # unknown element without attributes: kept
        ("vertical\x0btab\x00and\x1fcontrols\x7f\x85", "verticaltabandcontrols"),
        ("\ufeffBOM", "BOM"),
        ("e\u0301cole", "école"),  # NFC
        ("non\u00a0breaking\u2009thin", "non breaking thin"),
        ("<!-- comment -->Text<![CDATA[ more]]>", "Text more"),
    ],
)
def test_clean_text(raw: str | None, expected: str | None) -> None:
    assert clean_text(raw) == expected


@given(st.text())
def test_clean_text_output_is_clean(raw: str) -> None:
    cleaned = clean_text(raw)
    if cleaned is None:
        return
    assert cleaned == cleaned.strip()
    assert "  " not in cleaned
    assert "\n" not in cleaned
    assert not text_module._CONTROL.search(cleaned)
    assert cleaned  # never the empty string


# --- clean_block --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("\n\n  \n", None),
        ("One paragraph\nwrapped  over\tlines.", "One paragraph wrapped over lines."),
        ("First.\n\nSecond.", "First.\n\nSecond."),
        ("First.\n  \n\n\n \t\nSecond.\r\n\r\nThird.", "First.\n\nSecond.\n\nThird."),
        ("  lead\n\n\n\ntrail  \n", "lead\n\ntrail"),
        ("<p>First <i>one</i>.</p><p>Second.</p>", "First one.\n\nSecond."),
        ("First.<br/><br/>Second.", "First.\n\nSecond."),
        ("Line<br>break", "Line break"),
        ("A &amp; B\n\nC\x0b D", "A & B\n\nC D"),
        ("Para\u2029Next", "Para\n\nNext"),
    ],
)
def test_clean_block(raw: str | None, expected: str | None) -> None:
    assert clean_block(raw) == expected


# --- jats_to_text -------------------------------------------------------------------------


def test_emerald_structured_abstract() -> None:
    assert jats_to_text(EMERALD) == EMERALD_TEXT


def test_emerald_with_namespace_declarations() -> None:
    declared = (
        '<jats:abstract xmlns:jats="http://www.ncbi.nlm.nih.gov/JATS1">'
        "<jats:title>Abstract</jats:title>" + EMERALD + "</jats:abstract>"
    )
    assert jats_to_text(declared) == EMERALD_TEXT


def test_structured_abstract_without_prefix() -> None:
    plain = EMERALD.replace("jats:", "")
    assert jats_to_text(plain) == EMERALD_TEXT


@pytest.mark.parametrize("title", ["Abstract", "ABSTRACT", "abstract:", " Abstract. "])
def test_top_level_abstract_title_is_dropped(title: str) -> None:
    raw = f"<jats:title>{title}</jats:title><jats:p>We study things.</jats:p>"
    assert jats_to_text(raw) == "We study things."


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("<jats:p></jats:p>", None),
        ("Plain text abstract\nwith a wrapped line.", "Plain text abstract with a wrapped line."),
        ("Plain first.\n\nPlain second.", "Plain first.\n\nPlain second."),
        ("<p>One.</p><p>Two.</p>", "One.\n\nTwo."),
        (
            "<jats:p>First paragraph.</jats:p>\n<jats:p>Second  paragraph\n spans lines.</jats:p>",
            "First paragraph.\n\nSecond paragraph spans lines.",
        ),
        (
            "<jats:p>Water is H<jats:sub>2</jats:sub>O and <jats:bold><jats:italic>very</jats:italic> "
            "wet</jats:bold>.</jats:p>",
            "Water is H2O and very wet.",
        ),
        (
            "<jats:p>The rate <jats:inline-formula><mml:math><mml:mrow><mml:msup><mml:mi>r</mml:mi>"
            "<mml:mn>2</mml:mn></mml:msup></mml:mrow></mml:math></jats:inline-formula> grows.</jats:p>",
            "The rate r2 grows.",
        ),
        (
            "<jats:p>See <jats:inline-formula><jats:alternatives><jats:tex-math>x^2</jats:tex-math>"
            "<mml:math><mml:msup><mml:mi>x</mml:mi><mml:mn>2</mml:mn></mml:msup></mml:math>"
            "</jats:alternatives></jats:inline-formula>.</jats:p>",
            "See x2.",
        ),
        ("<jats:p>Caf&eacute; &amp; bar&nbsp;&#8212; R&D</jats:p>", "Café & bar — R&D"),
        ("<jats:p>p &lt; 0.05</jats:p>", "p < 0.05"),
        ("<jats:p>Control\x0bchar</jats:p>", "Controlchar"),
        (
            # two <p> in one section stay one paragraph: a section is one labelled paragraph
            "<jats:sec><jats:title>Methods:</jats:title><jats:p>One.</jats:p><jats:p>Two.</jats:p></jats:sec>",
            "Methods: One. Two.",
        ),
        (
            "<jats:sec><jats:title>Results</jats:title><jats:sec><jats:title>Part A</jats:title>"
            "<jats:p>Alpha.</jats:p></jats:sec></jats:sec>",
            "Results\n\nPart A: Alpha.",
        ),
        (
            # Titles directly under the root, as some publishers send them
            "<jats:title>Background</jats:title><jats:p>Why.</jats:p><jats:title>Methods</jats:title>"
            "<jats:p>How.</jats:p>",
            "Background: Why.\n\nMethods: How.",
        ),
        ("Some text with <jats:italic>inline</jats:italic> markup only", "Some text with inline markup only"),
        (
            "&lt;jats:p&gt;Escaped once too often&lt;/jats:p&gt;&lt;jats:p&gt;Second&lt;/jats:p&gt;",
            "Escaped once too often\n\nSecond",
        ),
        ('<?xml version="1.0"?><p>With declaration</p>', "With declaration"),
    ],
)
def test_jats_to_text(raw: str | None, expected: str | None) -> None:
    assert jats_to_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # unclosed inline tag and a section that never ends
        (
            "<jats:sec><jats:title>Purpose</jats:title><jats:p>Broken <jats:italic>markup</jats:p></jats:sec>"
            "<jats:sec><jats:title>Findings</jats:title><jats:p>Still read",
            "Purpose: Broken markup\n\nFindings: Still read",
        ),
        # a prefix that the wrapper does not declare
        ("<jats:p>Text <foo:bar>inside</foo:bar>.</jats:p>", "Text inside."),
        # an HTML entity XML does not know and a stray closing tag
        ("<p>Na&iuml;ve &bogus; text</p></div><p>Next</p>", "Naïve &bogus; text\n\nNext"),
        # a title that is never closed is text, not a label
        ("<jats:title>Purpose<jats:p>Lost title", "Purpose Lost title"),
        # mismatched nesting
        ("<jats:p><jats:bold>a</jats:p></jats:bold><jats:p>b</jats:p>", "a\n\nb"),
    ],
)
def test_malformed_markup_falls_back(raw: str, expected: str) -> None:
    assert text_module._xml_tokens(raw) is None  # the strict parse refuses it ...
    assert jats_to_text(raw) == expected  # ... and the fallback still gives the text


def test_well_formed_markup_is_parsed_with_lxml() -> None:
    assert text_module._xml_tokens(EMERALD) is not None


def test_doctype_and_entities_are_never_resolved() -> None:
    hostile = '<!DOCTYPE p [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><jats:p>Before &xxe; after</jats:p>'
    assert text_module._xml_tokens(hostile) is None
    result = jats_to_text(hostile)
    assert result is not None
    assert "root:" not in result
    assert result.startswith("Before")
    assert result.endswith("after")


@given(st.text(alphabet="<>/&;ajtsp:itle \n#x0123"))
def test_jats_to_text_never_raises(raw: str) -> None:
    result = jats_to_text(raw)
    if result is not None:
        for paragraph in result.split("\n\n"):
            assert paragraph
            assert paragraph == paragraph.strip()
            assert "\n" not in paragraph


# --- split_keywords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], ()),
        (["Public management"], ("Public management",)),
        (["a; b;c", "d | e|f"], ("a", "b", "c", "d", "e", "f")),
        (["Innovation, organizational; Change"], ("Innovation, organizational", "Change")),
        (["R&amp;D; policy"], ("R&D", "policy")),
        (["Caf&eacute;; bar"], ("Café", "bar")),
        (["Public sector", "public SECTOR; Public Sector", "reform"], ("Public sector", "reform")),
        (["  ; ;| ", "", "<i></i>"], ()),
        (["<i>In vitro</i>;  spaced   out "], ("In vitro", "spaced out")),
        (["Straße", "STRASSE"], ("Straße",)),  # case-insensitive (casefold) duplicates
        ("single; string", ("single", "string")),
    ],
)
def test_split_keywords(values: list[str] | str, expected: tuple[str, ...]) -> None:
    assert split_keywords(values) == expected


# --- fast paths: the same answers as every step applied to every string ------------------


def _reference_unescape(text: str) -> str:
    once = html.unescape(text)
    if once != text and text_module._ENTITY.search(once):
        return html.unescape(once)
    return once


def _reference_tag(match: re.Match[str], keep_paragraphs: bool) -> str:
    if not text_module._is_markup(match):
        return match.group(0)
    name = match.group("name").lower()
    if keep_paragraphs and name in text_module._PARAGRAPH_TAGS:
        return "\n\n"
    if keep_paragraphs and name == "br":
        return "\n"
    return " " if name in text_module._BREAKING_TAGS else ""


def _reference_plain(value: str, keep_paragraphs: bool) -> str:
    """Every step on every string: entities, CDATA, comments, declarations, dropped blocks,
    tags, controls, NFC, line ends."""
    text = _reference_unescape(value)
    text = text_module._CDATA.sub(lambda m: m.group(1), text)
    text = text_module._COMMENT.sub(" ", text)
    text = text_module._DECLARATION.sub(" ", text)
    text = text_module._DROPPED_BLOCK.sub("", text)
    text = text_module._TAG.sub(lambda m: _reference_tag(m, keep_paragraphs), text)
    text = text_module._CONTROL.sub("", text)
    text = unicodedata.normalize("NFC", text)
    if keep_paragraphs:
        text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2029", "\n\n")
    return text


def _reference_clean_text(value: str) -> str | None:
    return " ".join(_reference_plain(value, False).split()) or None


def _reference_clean_block(value: str) -> str | None:
    parts = (" ".join(p.split()) for p in text_module._BLANK_LINE.split(_reference_plain(value, True)))
    return "\n\n".join(p for p in parts if p) or None


# Markup (known, unknown, prefixed, with attributes, mathematics), entities (single, double,
# unknown, without semicolon), control characters, non-NFC and non-ASCII text, line ends.
_TEXT_PIECES = st.sampled_from(
    [
        "<i>", "</i>", "<p>", "</p>", "<br/>", "<BR>", "<jats:p>", "</jats:title>", "<mml:math>", "<x>",
        "<b class='x'>", "<unknown a=\"1\">", "p<0.05", "a<b and c>d", "<!-- note -->",
        "<![CDATA[<i>x</i>]]>",
        "<!DOCTYPE x>", "<?pi x?>", "<mml:annotation>tex</mml:annotation>", "&amp;", "&lt;", "&gt;", "&quot;",
        "&amp;lt;", "&amp;amp;", "&rsquo;", "&eacute;", "&#233;", "&#x41;", "&bogus;", "&amp", "&lt", "&",
        "\x00", "\x0b", "\x1f", "\x7f", "\x85", "\ufeff", "\u2029", "\r\n", "\r", "\n\n", "\n \n", "\t",
        "  ", "\u00a0", "e\u0301", "é", "ß", "Ж", "–", "Word", "x", " ", ";", "|",
    ]
)  # fmt: skip
_TEXTS = st.one_of(
    st.text(), st.lists(st.one_of(_TEXT_PIECES, st.text(max_size=3)), max_size=12).map("".join)
)


@given(_TEXTS)
@example("plain ASCII title")
@example("ASCII\x0bwith\x00control\x1fcharacters\x7f")
@example("AT&amp;amp;T &lt;i&gt;x&lt;/i&gt; &rsquo;")
@example("Caf\u00e9 e\u0301 \x85 \ufeff")
@example("a<p>b<br/><br/>c<jats:title>t</jats:title>")
def test_clean_text_and_block_match_every_step(raw: str) -> None:
    # Covers the plain-ASCII shortcut, the "<"-free shortcut, the quick unescape, the tag
    # table and the skipped NFC of ASCII text.
    assert clean_text(raw) == _reference_clean_text(raw)
    assert clean_block(raw) == _reference_clean_block(raw)


@given(_TEXTS)
@example("&lt;i&gt;a&quot;b&quot;&lt;/i&gt; &amp;lt; &amp;amp;")
@example("&amp;lt")
@example("&ampx &lt &gt;")
def test_quick_unescape_matches_html_unescape(raw: str) -> None:
    assert text_module._html_unescape(raw) == html.unescape(raw)


@given(_TEXTS)
def test_text_without_a_tag_opener_has_no_markup_to_strip(raw: str) -> None:
    text = raw.replace("<", "")
    assert text_module._strip_markup(text, False) == text
    assert text_module._strip_markup(text, True) == text


def _reference_split(value: str) -> list[str]:
    parts, start = [], 0
    for match in re.finditer(r"&#?[A-Za-z0-9]+;|[;|]", value):
        if match.group(0) in (";", "|"):
            parts.append(value[start : match.start()])
            start = match.end()
    return [*parts, value[start:]]


@given(_TEXTS)
@example("no separators")
@example("R&amp;D; a|b;")
def test_keyword_splitting_matches_the_entity_aware_scan(value: str) -> None:
    assert list(text_module._split_outside_entities(value)) == _reference_split(value)
