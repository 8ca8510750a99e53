"""The DOI policy, checked against the real-world table and as properties.

``tests/data/doi_cases.tsv`` is a byte-exact copy of the shared fixture (raw strings keep
their trailing spaces and invisible characters): column 2 is the expected key or
``INVALID``, column 3 starts with ``mode=strict`` or ``mode=extract``.
"""

from __future__ import annotations

import html
import unicodedata
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harvester import doi as doi_module
from harvester.doi import extract_doi, extract_dois, strict_doi

CASES_FILE = Path(__file__).parent / "data" / "doi_cases.tsv"


class Case(NamedTuple):
    raw: str
    expected: str | None
    citation: str

    @property
    def mode(self) -> str:
        return self.citation.split(";", 1)[0].removeprefix("mode=")


def _load_cases() -> list[Case]:
    # newline="" and no strip(): the raw column's whitespace is part of the case.
    lines = CASES_FILE.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "raw\tnormalized_or_INVALID\tsource-citation"
    cases = []
    for line in lines[1:]:
        if not line:
            continue
        raw, expected, citation = line.split("\t")
        cases.append(Case(raw, None if expected == "INVALID" else expected, citation))
    return cases


CASES = _load_cases()
VALID_KEYS = sorted({c.expected for c in CASES if c.expected is not None})


def test_table_is_complete() -> None:
    assert len(CASES) == 60
    assert sum(c.expected is None for c in CASES) == 22
    assert {c.mode for c in CASES} == {"strict", "extract"}


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}-{c.mode}" for i, c in enumerate(CASES, 2)])
def test_table_row(case: Case) -> None:
    normalize = strict_doi if case.mode == "strict" else extract_doi
    assert normalize(case.raw) == case.expected


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.mode == "extract" and "strict mode: INVALID" in c.citation],
    ids=lambda c: c.raw[:40],
)
def test_extract_only_rows_are_invalid_in_strict_mode(case: Case) -> None:
    assert strict_doi(case.raw) is None


@pytest.mark.parametrize("key", VALID_KEYS)
def test_normalized_values_are_fixed_points(key: str) -> None:
    assert strict_doi(key) == key
    assert extract_doi(key) == key
    assert extract_doi(f"See {key}.") == key


SICI_FORMS = [
    "10.1175/1520-0442(2000)013<4358:TSORSL>2.0.CO;2",
    "10.1175/1520-0442(2000)013&lt;4358:TSORSL&gt;2.0.CO;2",
    "10.1175/1520-0442(2000)013&amp;lt;4358:TSORSL&amp;gt;2.0.CO;2",
    "10.1175/1520-0442%282000%29013%3C4358%3ATSORSL%3E2.0.CO%3B2",
    "https://doi.org/10.1175/1520-0442%282000%29013&lt;4358%3ATSORSL&gt;2.0.CO%3B2",
    "https://doi.org/" + quote("10.1175/1520-0442(2000)013<4358:TSORSL>2.0.CO;2", safe=""),
    "doi:" + html.escape("10.1175/1520-0442(2000)013<4358:TSORSL>2.0.CO;2"),
]


@pytest.mark.parametrize("raw", SICI_FORMS)
def test_sici_spellings_give_one_key(raw: str) -> None:
    assert strict_doi(raw) == "10.1175/1520-0442(2000)013<4358:tsorsl>2.0.co;2"


def test_sharp_s_is_not_folded() -> None:
    # casefold() would give "10.1234/ss", a different (and real-looking) DOI.
    assert strict_doi("10.1234/ß") is None
    assert strict_doi("10.1234/ẞ") is None
    assert extract_doi("see 10.1234/ß") is None
    assert strict_doi("10.1234/SS") == "10.1234/ss"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("doi:", None),
        ("DOI: 10.1234/X ", "10.1234/x"),
        ("HTTPS://DX.DOI.ORG/10.1234/A", "10.1234/a"),
        ("https://www.doi.org/10.1234/a", "10.1234/a"),
        ("info:doi/doi:10.1234/a", "10.1234/a"),
        ("https://doi.org/10.1234%2Fabc", "10.1234/abc"),
        ("10.1234/abc%", None),  # a stray percent sign is not guessed at
        ("10.1234/%FF", None),  # escapes that are not UTF-8
        ("10.1234/abc\x00", None),  # control characters are not part of a DOI
        ("10.1234/abc\u00a0", "10.1234/abc"),  # NBSP is a space after NFKC
        ("\ufeff10.1234/abc", "10.1234/abc"),  # byte order mark (Cf)
        ("10.1234/a\u00adb", "10.1234/ab"),  # soft hyphen (Cf)
        ("１０.１２３４/ABC", "10.1234/abc"),  # fullwidth digits
        ("10.1037///abc", "10.1037/abc"),
        ("10.10370//abc", "10.10370//abc"),  # only the exact 10.1037 prefix
        ("10.123456789/a", "10.123456789/a"),
        ("10.1234567890/a", None),  # registrant over 9 digits
        ("10.123/a", None),
        ("10.1234/abc..", "10.1234/abc"),  # see the module docstring: a fixed point
        ("10.1234/abc,", "10.1234/abc"),
        ("10.1234/abc.,", "10.1234/abc"),
        ("10.1234/a.b.c", "10.1234/a.b.c"),
        ("10.1234/abc#frag", "10.1234/abc#frag"),  # strict mode does not guess at URLs
    ],
)
def test_strict_edge_cases(raw: str | None, expected: str | None) -> None:
    assert strict_doi(raw) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        ("", None),
        ("no DOI here, only 10.12/abc and 10.1234", None),
        ('<a href="https://doi.org/10.1234/x">10.1234/x</a>', "10.1234/x"),
        ("(doi:10.1234/abc).", "10.1234/abc"),
        ("«10.1234/abc»", "10.1234/abc"),
        ("ends with a colon 10.1234/abc:", "10.1234/abc"),
        (
            "the DOI (10.1002/(SICI)1521-3978(199806)46:4/5<493::AID-PROP493>3.0.CO;2-P).",
            "10.1002/(sici)1521-3978(199806)46:4/5<493::aid-prop493>3.0.co;2-p",
        ),
        ("“10.1234/abc”", "10.1234/abc"),
        ("url https://example.org/resolve?id=10.1234%2FABC", "10.1234/abc"),
        ("first bad 10.1234/abc% then 10.5678/ok", "10.5678/ok"),
        ("pdf text 10.1016/j.jﬁneco.2012.05.017", "10.1016/j.jfineco.2012.05.017"),
    ],
)
def test_extract_edge_cases(text: str | None, expected: str | None) -> None:
    assert extract_doi(text) == expected


def test_extract_dois_all_distinct_in_order() -> None:
    text = (
        "See doi:10.1234/A and (https://doi.org/10.5678/b). Also 10.1234/a, [10.9999/c] and 10.5678/B again."
    )
    assert extract_dois(text) == ["10.1234/a", "10.5678/b", "10.9999/c"]
    assert extract_dois(None) == []
    assert extract_dois("nothing") == []


# --- properties ---------------------------------------------------------------------------

_SUFFIX_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._;()/:<>[]"
_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


@st.composite
def valid_dois(draw: st.DrawFn, suffix_chars: str = _SUFFIX_CHARS) -> str:
    """DOIs that are valid as written: the key is just their ASCII lower case."""
    registrant = draw(st.from_regex(r"[0-9]{4,9}(\.[0-9]{1,3}){0,2}", fullmatch=True))
    first = draw(st.sampled_from(_ALNUM))
    middle = draw(st.text(alphabet=suffix_chars, max_size=30))
    last = draw(st.sampled_from(_ALNUM))
    return f"10.{registrant}/{first}{middle}{last}"


@given(valid_dois())
def test_valid_dois_normalize_to_their_lower_case(doi: str) -> None:
    assert strict_doi(doi) == doi.lower()


@given(valid_dois(), st.sampled_from(["", "doi:", "DOI: ", "https://doi.org/", "http://dx.doi.org/"]))
def test_decorated_spellings_give_one_key(doi: str, prefix: str) -> None:
    key = strict_doi(doi)
    assert strict_doi(f" {prefix}{doi.upper()}. ") == key
    assert strict_doi(prefix + quote(doi, safe="/")) == key
    assert strict_doi(prefix + html.escape(doi)) == key
    assert extract_doi(f"As shown in {prefix}{doi}, a study.") == key or "<" in doi


@given(valid_dois(suffix_chars=_ALNUM + "-._;:/"))
def test_extract_finds_a_bracketed_doi(doi: str) -> None:
    # Brackets and "<" inside the DOI itself make free-text extraction ambiguous ("a(b"
    # in "(10.1/a(b)" may or may not own the last ")"); the table covers real SICI DOIs.
    key = strict_doi(doi)
    for text in (f"As shown in ({doi}).", f"see [doi:{doi}]; and", f"“{doi}”", f"<{doi}>"):
        assert extract_doi(text) == key


@given(st.one_of(valid_dois(), st.text(), st.text(alphabet="10./%&;#ltgampDOI:x ,.()<>ß\u200e")))
@example("10.1234/&Amp;lt;x")
@example("10.1234/%2541")
@example("10.1234/abc..")
def test_strict_is_idempotent(value: str) -> None:
    key = strict_doi(value)
    if key is not None:
        assert strict_doi(key) == key
        assert key.isascii()
        assert key == key.lower()


@given(st.text())
def test_extract_returns_strict_keys(text: str) -> None:
    keys = extract_dois(text)
    for key in keys:
        assert strict_doi(key) == key
    assert extract_doi(text) == (keys[0] if keys else None)


# --- fast paths: the same answers as the policy applied step by step ----------------------


def _reference_nfkc_without_cf(text: str) -> str:
    normalized = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in normalized if unicodedata.category(ch) != "Cf")


def _reference_round(value: str) -> str | None:
    """One round of the policy, every step on every value (no shortcut)."""
    text = html.unescape(_reference_nfkc_without_cf(value))
    decoded = doi_module._percent_decode(text)
    if decoded is None:
        return None
    text = _reference_nfkc_without_cf(decoded)
    previous = None
    while previous != text:
        previous = text
        text = doi_module._PREFIX.sub("", text.strip())
    if text[-1:] in (".", ","):
        text = text[:-1].rstrip()
    if not text.isascii():
        return None
    text = doi_module._APA_DOUBLE_SLASH.sub("10.1037/", text.lower())
    return text if doi_module._VALID.match(text) else None


def _reference_strict_doi(value: str) -> str | None:
    """Rounds until nothing changes, each one complete (no cache, no early stop)."""
    current = value
    for _ in range(doi_module._MAX_ROUNDS):
        result = _reference_round(current)
        if result is None or result == current:
            return result
        current = result
    return None


# Pieces that reach every branch: prefixes, entities, percent escapes (good, bad, non-UTF-8,
# encoded format characters), format characters, ligatures, fullwidth digits, APA slashes,
# trailing punctuation, spaces and non-ASCII letters.
_DOI_PIECES = st.sampled_from(
    [
        "10.", "10.1037//", "10.1234/", "1234", "/", "doi:", "DOI: ", "info:doi/", "https://doi.org/",
        "http://dx.doi.org/", "www.doi.org/", "&amp;", "&lt;", "&#49;", "&#x30;", "&gt", "&", "%2F",
        "%31", "%30", "%E2%80%8E", "%C3%9F", "%FF", "%", "%2", "\u200e", "\u200b", "\ufeff", "\u00ad",
        "ﬁ", "１", "０", "ß", "é", "\u2010", " ", "\u00a0", "\t", ".", ",", "..", "ABC", "x", ";", "<",
    ]
)  # fmt: skip
_DOI_LIKE = st.one_of(
    st.text(), st.lists(st.one_of(_DOI_PIECES, st.text(max_size=2)), max_size=10).map("".join)
)


@given(_DOI_LIKE)
@example("https://doi.org/10.1234/abc..")
@example("10.1234/a&amp;amp;b")
@example("info:doi/ 10.1037//ABC,")
def test_strict_doi_matches_the_step_by_step_policy(value: str) -> None:
    # Covers the ASCII shortcut of a round, the settled-result shortcut and the cache.
    assert strict_doi(value) == _reference_strict_doi(value)
    assert strict_doi(value) == _reference_strict_doi(value)  # a second time, from the cache


@given(_DOI_LIKE)
def test_one_round_matches_the_step_by_step_policy(value: str) -> None:
    assert doi_module._normalize_once(value) == _reference_round(value)


@given(_DOI_LIKE)
@example("10.1234/a&amp;b")
@example("10.1234/a%2541")
@example("10.1234/abc.,")
def test_a_settled_result_is_a_fixed_point(value: str) -> None:
    result = doi_module._normalize_once(value)
    if result is not None and doi_module._is_settled(result):
        assert doi_module._normalize_once(result) == result


@given(st.one_of(st.text(), st.lists(_DOI_PIECES, max_size=8).map("".join)))
@example("a\u200eb\u200e\u2060c\U000e0001")
@example("Latin-1 compatibility forms: \u00a0\u00bd\u00aa\u00ad")
@example("plain ASCII")
def test_format_characters_go_as_with_a_per_character_filter(text: str) -> None:
    assert doi_module._nfkc_without_format_chars(text) == _reference_nfkc_without_cf(text)
    expected = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    assert doi_module._strip_format_chars(text) == expected
