"""Plain text from titles, abstracts and keyword lists."""

from __future__ import annotations

import pytest
from hypothesis import given
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
