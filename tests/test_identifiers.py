"""ISSN, ORCID, ISBN, language, PMID and arXiv normalizers: tables and properties."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from harvester import identifiers as identifiers_module
from harvester.identifiers import (
    normalize_arxiv,
    normalize_isbn,
    normalize_issn,
    normalize_language,
    normalize_orcid,
    normalize_pmid,
)

CHECK_CHARS = "0123456789X"

# --- ISSN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0951-3558", "0951-3558"),
        ("09513558", "0951-3558"),
        ("ISSN 0951-3558", "0951-3558"),
        ("issn:0951-3558", "0951-3558"),
        ("eISSN: 0951-3558", "0951-3558"),
        ("0951 3558", "0951-3558"),
        (" 0951\u20133558 ", "0951-3558"),  # en dash between the fixed groups is harmless
        ("1050-124x", "1050-124X"),  # lower-case check character
        ("1050124X", "1050-124X"),
        ("2049-3630", "2049-3630"),
        ("0000-006X", "0000-006X"),
        # the brief's example spelling "1234-567x": the format is accepted, but its check
        # digit is 9 (8*1+7*2+6*3+5*4+4*5+3*6+2*7 = 112, 112 % 11 = 2, 11 - 2 = 9)
        ("1234-567x", None),
        ("1234-5679", "1234-5679"),
        ("1234-456X", None),  # fatcat accepts it; the check digit is 7
        ("1234-4567", "1234-4567"),
        ("0951-3559", None),
        ("0951-355", None),
        ("0951-35588", None),
        ("0951--3558", None),
        ("ABCD-EFGH", None),
        ("", None),
        (None, None),
    ],
)
def test_issn(raw: str | None, expected: str | None) -> None:
    assert normalize_issn(raw) == expected


@given(st.text(alphabet="0123456789", min_size=7, max_size=7))
def test_issn_exactly_one_check_character(first7: str) -> None:
    valid = [c for c in CHECK_CHARS if normalize_issn(f"{first7[:4]}-{first7[4:]}{c}")]
    assert len(valid) == 1


@given(st.text(alphabet="0123456789", min_size=7, max_size=7), st.data())
def test_issn_spellings_give_one_value(first7: str, data: st.DataObject) -> None:
    check = next(c for c in CHECK_CHARS if normalize_issn(f"{first7[:4]}-{first7[4:]}{c}"))
    canonical = f"{first7[:4]}-{first7[4:]}{check}"
    head, tail = first7[:4], first7[4:] + check
    spelling = data.draw(
        st.sampled_from(
            [
                f"{head}-{tail}",
                f"{head}{tail}",
                f"{head} {tail}",
                f"ISSN {head}-{tail}",
                f"ISSN: {head}{tail}",
                f"  {head}-{tail.lower()}  ",
            ]
        )
    )
    assert normalize_issn(spelling) == canonical
    assert normalize_issn(canonical) == canonical


# --- ORCID --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("0000000218250097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("http://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-0097/", "0000-0002-1825-0097"),
        ("orcid.org/0000000218250097", "0000-0002-1825-0097"),
        ("ORCID: 0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("0000-0001-5109-3700", "0000-0001-5109-3700"),
        ("0000-0002-1694-233x", "0000-0002-1694-233X"),
        ("0000-0001-5000-0007", "0000-0001-5000-0007"),  # first id of the first block
        ("0000-0003-5000-0001", "0000-0003-5000-0001"),  # last id of the first block
        ("0009-0000-0000-0000", None),  # first id of the second block needs check digit 9
        ("0009-0000-0000-0009", "0009-0000-0000-0009"),
        ("0000-0002-1825-0098", None),  # check digit
        ("0123-4567-3456-6789", None),  # fatcat accepts it: checksum fails
        ("0000-0000-0000-0001", None),  # checksum valid, but an ISNI outside ORCID's blocks
        ("0000-0001-4999-9992", None),  # just below the first block, checksum valid
        ("0000-0003-5000-0028", None),  # just above the first block, checksum valid
        ("0009-0010-0000-0011", None),  # just above the second block, checksum valid
        ("0000-0002-1825-009", None),
        ("https://example.org/0000-0002-1825-0097", None),
        ("", None),
        (None, None),
    ],
)
def test_orcid(raw: str | None, expected: str | None) -> None:
    assert normalize_orcid(raw) == expected


@given(
    st.one_of(
        st.integers(min_value=15_000_000, max_value=35_000_000),
        st.integers(min_value=900_000_000_000, max_value=900_100_000_000),
    ),
    st.sampled_from(["{}", "https://orcid.org/{}", "http://orcid.org/{}", "orcid.org/{}", "{compact}"]),
)
def test_orcid_in_blocks_has_exactly_one_check_character(base: int, template: str) -> None:
    digits = f"{base:015d}"
    grouped = f"{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"
    valid = [c for c in CHECK_CHARS if normalize_orcid(grouped + c)]
    assert len(valid) == 1
    canonical = grouped + valid[0]
    spelled = template.format(canonical, compact=canonical.replace("-", ""))
    assert normalize_orcid(spelled) == canonical


@given(st.integers(min_value=0, max_value=10**15 - 1).filter(lambda n: not 15_000_000 <= n <= 35_000_000))
def test_orcid_outside_blocks_is_rejected(base: int) -> None:
    digits = f"{base:015d}"
    if 900_000_000_000 <= base <= 900_100_000_000:
        return
    assert all(normalize_orcid(digits + c) is None for c in CHECK_CHARS)


# --- ISBN ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("978-0-306-40615-7", "9780306406157"),
        ("9780306406157", "9780306406157"),
        ("ISBN 978-0-306-40615-7", "9780306406157"),
        ("ISBN-13: 978 0 306 40615 7", "9780306406157"),
        ("0-306-40615-2", "9780306406157"),
        ("ISBN-10: 0306406152", "9780306406157"),
        ("isbn 0 306 40615 2", "9780306406157"),
        ("0-8044-2957-X", "9780804429573"),
        ("080442957x", "9780804429573"),
        ("979-10-90636-07-1", "9791090636071"),
        ("978-0-306-40615-6", None),  # check digit
        ("0-306-40615-3", None),  # check digit
        ("123-4-567-89012-8", None),  # valid EAN-13 check digit, but not a 978/979 ISBN
        ("978030640615", None),
        ("97803064061577", None),
        ("", None),
        (None, None),
    ],
)
def test_isbn(raw: str | None, expected: str | None) -> None:
    assert normalize_isbn(raw) == expected


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_isbn10_and_isbn13_spellings_agree(first9: str) -> None:
    valid = [c for c in CHECK_CHARS if normalize_isbn(first9 + c)]
    assert len(valid) == 1
    isbn13 = normalize_isbn(first9 + valid[0])
    assert isbn13 is not None
    assert isbn13.startswith("978" + first9)
    assert normalize_isbn(isbn13) == isbn13
    assert normalize_isbn(f"ISBN {isbn13[:3]}-{isbn13[3:]}") == isbn13


# --- language -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("en", "en"),
        ("EN", "en"),
        (" de ", "de"),
        ("en-US", "en"),
        ("en_GB", "en"),
        ("pt-BR", "pt"),
        ("zh-Hans-CN", "zh"),
        ("sr-Latn", "sr"),
        ("eng", "en"),
        ("ENG", "en"),
        ("ger", "de"),
        ("deu", "de"),
        ("fre", "fr"),
        ("fra", "fr"),
        ("por", "pt"),
        ("spa", "es"),
        ("rus", "ru"),
        ("kaz", "kk"),
        ("chi", "zh"),
        ("zho", "zh"),
        ("dut", "nl"),
        ("nld", "nl"),
        ("cze", "cs"),
        ("gre", "el"),
        ("per", "fa"),
        ("cmn", "zh"),
        ("iw", "he"),  # withdrawn code still found in old records
        ("English", "en"),
        ("ENGLISH", "en"),
        ("german", "de"),
        ("Portuguese", "pt"),
        ("Spanish; Castilian", None),  # two names: not one language name
        ("Castilian", "es"),
        ("Greek, Modern (1453-)", "el"),
        ("Modern Greek", "el"),
        ("Norwegian Bokmål", "nb"),
        ("norwegian bokmal", "nb"),
        ("Farsi", "fa"),
        ("Deutsch", "de"),
        ("Español", "es"),
        ("Русский", "ru"),
        ("http://id.loc.gov/vocabulary/iso639-2/ger", "de"),
        ("http://lexvo.org/id/iso639-3/eng", "en"),
        ("und", None),
        ("mul", None),
        ("zxx", None),
        ("mis", None),
        ("xx", None),
        ("x-klingon", None),
        ("qaa", None),
        ("Klingon", None),
        ("en; fr", None),
        ("", None),
        (None, None),
    ],
)
def test_language(raw: str | None, expected: str | None) -> None:
    assert normalize_language(raw) == expected


_ALL_639_1_TEXT = (
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da "
    "de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz "
    "ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln "
    "lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi "
    "pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti "
    "tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
_ALL_639_1 = _ALL_639_1_TEXT.split()


def test_every_639_1_code_is_accepted() -> None:
    assert len(_ALL_639_1) == 184
    for code in _ALL_639_1:
        assert normalize_language(code) == code
        assert normalize_language(code.upper() + "-XX") == code


# --- PMID ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("31452104", "31452104"),
        ("PMID: 31452104", "31452104"),
        ("pmid:31452104", "31452104"),
        ("PMID 31452104", "31452104"),
        ("https://pubmed.ncbi.nlm.nih.gov/31452104/", "31452104"),
        ("http://www.ncbi.nlm.nih.gov/pubmed/31452104", "31452104"),
        ("https://pubmed.ncbi.nlm.nih.gov/31452104/?from_term=x", "31452104"),
        ("info:pmid/31452104", "31452104"),
        ("0031452104", "31452104"),
        ("0", None),
        ("PMC6712345", None),
        ("31452104a", None),
        ("12345678901", None),
        ("", None),
        (None, None),
    ],
)
def test_pmid(raw: str | None, expected: str | None) -> None:
    assert normalize_pmid(raw) == expected


# --- arXiv --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2101.00001", "2101.00001"),
        ("2101.00001v2", "2101.00001"),
        ("arXiv:2101.00001v2", "2101.00001"),
        ("ARXIV: 2101.00001", "2101.00001"),
        ("https://arxiv.org/abs/2101.00001v3", "2101.00001"),
        ("http://arxiv.org/abs/2101.00001", "2101.00001"),
        ("arxiv.org/abs/2101.00001", "2101.00001"),
        ("https://arxiv.org/pdf/2101.00001v1.pdf", "2101.00001"),
        ("https://doi.org/10.48550/arXiv.2101.00001", "2101.00001"),
        ("0704.0001", "0704.0001"),
        ("1412.9999v5", "1412.9999"),
        ("1501.00001", "1501.00001"),
        ("hep-th/9901001", "hep-th/9901001"),
        ("hep-th/9901001v2", "hep-th/9901001"),
        ("arXiv:hep-th/9901001", "hep-th/9901001"),
        ("https://arxiv.org/abs/hep-th/9901001v1", "hep-th/9901001"),
        ("math.GT/0309136", "math/0309136"),
        ("cond-mat/0703001", "cond-mat/0703001"),
        ("hep-th/1601.07616", "1601.07616"),  # a new id dressed as an old one
        ("2101.0001", None),  # 4-digit numbers ended in 2014
        ("0703.00001", None),
        ("2113.00001", None),  # month 13
        ("cond-mat/0704001", None),  # the old scheme ended in 2007-03
        ("foo-bar/9901001", None),  # no such archive
        ("hep-th/99010011", None),
        ("10.1234/2101.00001", None),
        ("", None),
        (None, None),
    ],
)
def test_arxiv(raw: str | None, expected: str | None) -> None:
    assert normalize_arxiv(raw) == expected


@given(
    st.integers(min_value=15, max_value=40),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=99999),
    st.integers(min_value=1, max_value=20),
)
def test_arxiv_new_ids_round_trip(year: int, month: int, number: int, version: int) -> None:
    arxiv_id = f"{year:02d}{month:02d}.{number:05d}"
    for spelling in (
        arxiv_id,
        f"{arxiv_id}v{version}",
        f"arXiv:{arxiv_id}",
        f"https://arxiv.org/abs/{arxiv_id}",
    ):
        assert normalize_arxiv(spelling) == arxiv_id


# --- fast paths: the same answers as the full preparation --------------------------------


def _reference_prepare(value: str) -> str | None:
    text = unicodedata.normalize("NFKC", value).translate(identifiers_module._DASHES)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()
    return text or None


_ID_PIECES = st.sampled_from(
    [
        "0951-3558", "ISSN ", "0000-0002-1825-0097", "orcid.org/", "978-0-306-40615-7", "PMID: 1",
        "arXiv:2101.00001", "en", "eng", "pt_BR", "English", "Español", "Bokmål", " ", "\t", "\u00a0",
        "\u2010", "\u2013", "\u2212", "\uff0d", "１", "\u200b", "\u200e", "\ufeff", "\u00ad", "ﬁ", "-", "X",
    ]
)  # fmt: skip


@given(st.one_of(st.text(), st.lists(st.one_of(_ID_PIECES, st.text(max_size=2)), max_size=8).map("".join)))
@example("  0951-3558 ")
@example("0951\u20133558\u200e")
def test_prepare_matches_the_full_preparation(value: str) -> None:
    # ASCII values are only stripped: they have no NFKC change, dash look-alike or Cf.
    assert identifiers_module._prepare(value) == _reference_prepare(value)


@given(st.one_of(st.text(), st.sampled_from(["eng", "EN", "pt_BR", "English", "Deutsch", "und", ""])))
def test_language_cache_changes_nothing(value: str) -> None:
    uncached = identifiers_module._language.__wrapped__(value)
    assert normalize_language(value) == uncached
    assert normalize_language(value) == uncached  # a second time, from the cache
