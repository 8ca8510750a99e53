"""Normalizers for the non-DOI identifiers and codes of a record: ISSN, ORCID, ISBN,
language, PubMed id and arXiv id.

Each function takes a value as a source spells it and returns one canonical spelling,
or None when the value is not a valid identifier. They are the only place where these
identifiers are cleaned (:mod:`harvester.record` stores what they return), so the
merge can compare values with ``==``. Returning None instead of a best guess is
deliberate: a wrong ISSN or ORCID with a bad check digit would attach a work to the
wrong journal or person, which is worse than leaving the field empty. Check digits are
verified wherever the scheme has one (fatcat checks only the format and so accepts
``1234-456X`` and ``0123-4567-3456-6789``, see ``shared/notes/dedup-reliability.md``).
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = [
    "normalize_arxiv",
    "normalize_isbn",
    "normalize_issn",
    "normalize_language",
    "normalize_orcid",
    "normalize_pmid",
]

# Hyphen and dash look-alikes. For structured identifiers (fixed digit groups) a look-
# alike between the groups is harmless, unlike in a DOI whose suffix is opaque.
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"), "-")


def _prepare(value: str | None) -> str | None:
    """NFKC (fullwidth digits, odd spaces), dashes to ``-``, Cf removed, stripped.

    An ASCII value is only stripped: ASCII is its own NFKC form and holds no dash look-
    alike and no format character.
    """
    if value is None:
        return None
    if value.isascii():
        return value.strip() or None
    text = unicodedata.normalize("NFKC", value).translate(_DASHES)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip()
    return text or None


# --- ISSN -------------------------------------------------------------------------------

_ISSN_PREFIX = re.compile(r"^(?:urn:issn:|(?:[ep]-?|print\s+|online\s+)?issn\s*:?\s*)", re.IGNORECASE)
_ISSN = re.compile(r"^([0-9]{4})[\s-]?([0-9]{3}[0-9X])$", re.ASCII)


def normalize_issn(value: str | None) -> str | None:
    """``0951-3558`` from "0951-3558", "09513558", "ISSN 0951-3558", "0951 3558", ...

    Returns the hyphenated form with an upper-case ``X``, or None when the format or the
    check digit (weights 8..2, sum divisible by 11, X = 10) is wrong.
    """
    text = _prepare(value)
    if text is None:
        return None
    match = _ISSN.match(_ISSN_PREFIX.sub("", text).upper())
    if match is None:
        return None
    digits = match.group(1) + match.group(2)
    if _issn_check(digits[:7]) != digits[7]:
        return None
    return f"{digits[:4]}-{digits[4:]}"


def _issn_check(first7: str) -> str:
    total = sum(int(d) * w for d, w in zip(first7, range(8, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "X" if check == 10 else str(check)


# --- ORCID ------------------------------------------------------------------------------

_ORCID_LABEL = re.compile(r"^orcid(?:\s*id)?\s*:\s*", re.IGNORECASE)
_ORCID_URL = re.compile(r"^(?:https?://)?(?:www\.)?orcid\.org/", re.IGNORECASE)
_ORCID = re.compile(r"^([0-9]{4})-?([0-9]{4})-?([0-9]{4})-?([0-9]{3}[0-9X])/?$", re.ASCII)

#: The blocks of the ISNI space that ORCID assigns from, as inclusive ranges of the first
#: 15 digits (the id without its check digit): 0000-0001-5000-000x .. 0000-0003-5000-000x
#: and 0009-0000-0000-000x .. 0009-0010-0000-000x. Source: ORCID's "Structure of the
#: ORCID Identifier" support page, as encoded in idutils' ``orcid_isni_ranges``. An id
#: outside them is an ISNI or a typo, never a person's ORCID.
ORCID_BLOCKS: tuple[tuple[int, int], ...] = (
    (15_000_000, 35_000_000),
    (900_000_000_000, 900_100_000_000),
)


def normalize_orcid(value: str | None) -> str | None:
    """``0000-0002-1825-0097`` from a bare id or an orcid.org URL, hyphens optional.

    None unless the ISO 7064 MOD 11-2 check character is right and the id lies in one
    of :data:`ORCID_BLOCKS`.
    """
    text = _prepare(value)
    if text is None:
        return None
    text = _ORCID_URL.sub("", _ORCID_LABEL.sub("", text))
    match = _ORCID.match(text.upper())
    if match is None:
        return None
    digits = "".join(match.groups())
    if _mod11_2(digits[:15]) != digits[15]:
        return None
    base = int(digits[:15])
    if not any(low <= base <= high for low, high in ORCID_BLOCKS):
        return None
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"


def _mod11_2(first15: str) -> str:
    total = 0
    for digit in first15:
        total = (total + int(digit)) * 2
    check = (12 - total % 11) % 11
    return "X" if check == 10 else str(check)


# --- ISBN -------------------------------------------------------------------------------

_ISBN_PREFIX = re.compile(r"^isbn(?:-1[03])?\s*:?\s*", re.IGNORECASE)


def normalize_isbn(value: str | None) -> str | None:
    """ISBN-13 digits (``9780306406157``) from an ISBN-10 or ISBN-13 in any spelling.

    Hyphens, spaces and an ``ISBN``/``ISBN-13:`` label are ignored. An ISBN-10 is
    converted to its 978 form so that the two spellings of one book compare equal. None
    when the check digit is wrong or a 13-digit value is not a Bookland (978/979) EAN.
    """
    text = _prepare(value)
    if text is None:
        return None
    compact = re.sub(r"[\s-]", "", _ISBN_PREFIX.sub("", text)).upper()
    if re.fullmatch(r"[0-9]{9}[0-9X]", compact, re.ASCII):
        total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(compact))
        if total % 11 != 0:
            return None
        body = "978" + compact[:9]
        return body + _ean_check(body)
    if re.fullmatch(r"97[89][0-9]{10}", compact, re.ASCII):
        if _ean_check(compact[:12]) != compact[12]:
            return None
        return compact
    return None


def _ean_check(first12: str) -> str:
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return str((10 - total % 10) % 10)


# --- PubMed -----------------------------------------------------------------------------

_PMID_PREFIX = re.compile(
    r"^(?:pmid\s*:?\s*|info:pmid/|(?:https?://)?(?:www\.)?ncbi\.nlm\.nih\.gov/pubmed/"
    r"|(?:https?://)?pubmed\.ncbi\.nlm\.nih\.gov/)",
    re.IGNORECASE,
)


def normalize_pmid(value: str | None) -> str | None:
    """The PubMed id as digits without leading zeros, from "123", "PMID: 123" or a URL.

    None for anything else (a PMCID such as ``PMC123`` is a different identifier).
    """
    text = _prepare(value)
    if text is None:
        return None
    text = _PMID_PREFIX.sub("", text)
    text = re.sub(r"[?#].*$", "", text).rstrip("/")
    if not re.fullmatch(r"[0-9]{1,10}", text, re.ASCII) or int(text) == 0:
        return None
    return str(int(text))


# --- arXiv ------------------------------------------------------------------------------

_ARXIV_PREFIX = re.compile(
    r"^(?:arxiv\s*:\s*|(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/"
    r"|(?:https?://)?(?:dx\.)?(?:doi\.org/)?10\.48550/arxiv\.)",
    re.IGNORECASE,
)
_ARXIV_NEW = re.compile(r"^([0-9]{2})([0-9]{2})\.([0-9]{4,5})(?:v[0-9]+)?$", re.ASCII)
_ARXIV_OLD = re.compile(
    r"^([a-z]+(?:-[a-z]+)?)(?:\.[a-z-]{1,})?/([0-9]{2})([0-9]{2})([0-9]{3})(?:v[0-9]+)?$",
    re.ASCII | re.IGNORECASE,
)
# A new id behind an archive name ("hep-th/1601.07616"): wrong, but found in citations.
_ARXIV_MIXED = re.compile(r"^[a-z]+(?:-[a-z]+)?(?:\.[a-z-]+)?/(?=[0-9]{4}\.)", re.ASCII | re.IGNORECASE)

#: The archives of the pre-2007 scheme, including those merged into others since.
ARXIV_OLD_ARCHIVES: frozenset[str] = frozenset(
    {
        "acc-phys", "adap-org", "alg-geom", "ao-sci", "astro-ph", "atom-ph", "bayes-an",
        "chao-dyn", "chem-ph", "cmp-lg", "comp-gas", "cond-mat", "cs", "dg-ga", "funct-an",
        "gr-qc", "hep-ex", "hep-lat", "hep-ph", "hep-th", "math", "math-ph", "mtrl-th",
        "nlin", "nucl-ex", "nucl-th", "patt-sol", "physics", "plasm-ph", "q-alg", "q-bio",
        "quant-ph", "solv-int", "supr-con",
    }
)  # fmt: skip


def normalize_arxiv(value: str | None) -> str | None:
    """The arXiv id without version: ``2101.00001`` or ``hep-th/9901001``.

    Accepts ``arXiv:`` labels, arxiv.org ``abs``/``pdf`` URLs and the ``10.48550/arXiv.``
    DOI. The version is dropped because all versions are one work. New-scheme ids are
    checked against their era: 4-digit numbers from 0704 to 1412, 5-digit numbers from
    1501 on. Old-scheme ids keep the archive and drop the subject class
    (``math.GT/0309136`` is ``math/0309136``: numbers are unique per archive).
    """
    text = _prepare(value)
    if text is None:
        return None
    text = _ARXIV_PREFIX.sub("", text)
    text = re.sub(r"[?#].*$", "", text).rstrip("/")
    if text.lower().endswith(".pdf"):
        text = text[:-4]
    text = _ARXIV_MIXED.sub("", text)

    new = _ARXIV_NEW.match(text)
    if new is not None:
        yymm = int(new.group(1) + new.group(2))
        month, number = int(new.group(2)), new.group(3)
        if not 1 <= month <= 12:
            return None
        if len(number) == 4 and not 704 <= yymm <= 1412:
            return None
        if len(number) == 5 and yymm < 1501:
            return None
        return f"{new.group(1)}{new.group(2)}.{number}"

    old = _ARXIV_OLD.match(text)
    if old is not None:
        archive = old.group(1).lower()
        year, month = int(old.group(2)), int(old.group(3))
        if archive not in ARXIV_OLD_ARCHIVES or not 1 <= month <= 12:
            return None
        # The old scheme ran from 1991-08 to 2007-03.
        if not (year >= 91 or year <= 6 or (year == 7 and month <= 3)):
            return None
        return f"{archive}/{old.group(2)}{old.group(3)}{old.group(4)}"
    return None


# --- Language ---------------------------------------------------------------------------

# ISO 639-1 code, ISO 639-2/T code, ISO 639-2/B code ("-" when equal to /T), English
# names separated by "; ". Every language that has a 639-1 code (the iso-codes package's
# iso_639-2.json, 184 entries), names lightly edited to the forms used in metadata
# ("Persian; Farsi", "Greek; Modern Greek" instead of "Greek, Modern (1453-)").
_ISO_639 = """
aa aar - Afar
ab abk - Abkhazian
af afr - Afrikaans
ak aka - Akan
am amh - Amharic
ar ara - Arabic
an arg - Aragonese
as asm - Assamese
av ava - Avaric
ae ave - Avestan
ay aym - Aymara
az aze - Azerbaijani
ba bak - Bashkir
bm bam - Bambara
be bel - Belarusian
bn ben - Bengali; Bangla
bh bih - Bihari; Bihari languages
bi bis - Bislama
bo bod tib Tibetan
bs bos - Bosnian
br bre - Breton
bg bul - Bulgarian
ca cat - Catalan; Valencian
cs ces cze Czech
ch cha - Chamorro
ce che - Chechen
cu chu - Church Slavonic; Church Slavic; Old Church Slavonic; Old Slavonic; Old Bulgarian
cv chv - Chuvash
kw cor - Cornish
co cos - Corsican
cr cre - Cree
cy cym wel Welsh
da dan - Danish
de deu ger German
dv div - Divehi; Dhivehi; Maldivian
dz dzo - Dzongkha
el ell gre Greek; Modern Greek
en eng - English
eo epo - Esperanto
et est - Estonian
eu eus baq Basque
ee ewe - Ewe
fo fao - Faroese
fa fas per Persian; Farsi
fj fij - Fijian
fi fin - Finnish
fr fra fre French
fy fry - Western Frisian; Frisian
ff ful - Fulah
gd gla - Scottish Gaelic; Gaelic
ga gle - Irish; Irish Gaelic
gl glg - Galician
gv glv - Manx
gn grn - Guarani
gu guj - Gujarati
ht hat - Haitian Creole; Haitian
ha hau - Hausa
he heb - Hebrew
hz her - Herero
hi hin - Hindi
ho hmo - Hiri Motu
hr hrv - Croatian
hu hun - Hungarian
hy hye arm Armenian
ig ibo - Igbo
io ido - Ido
ii iii - Sichuan Yi; Nuosu
iu iku - Inuktitut
ie ile - Interlingue; Occidental
ia ina - Interlingua
id ind - Indonesian
ik ipk - Inupiaq
is isl ice Icelandic
it ita - Italian
jv jav - Javanese
ja jpn - Japanese
kl kal - Kalaallisut; Greenlandic
kn kan - Kannada
ks kas - Kashmiri
ka kat geo Georgian
kr kau - Kanuri
kk kaz - Kazakh
km khm - Khmer; Central Khmer
ki kik - Kikuyu; Gikuyu
rw kin - Kinyarwanda
ky kir - Kyrgyz; Kirghiz
kv kom - Komi
kg kon - Kongo
ko kor - Korean
kj kua - Kuanyama; Kwanyama
ku kur - Kurdish
lo lao - Lao
la lat - Latin
lv lav - Latvian
li lim - Limburgan; Limburger; Limburgish
ln lin - Lingala
lt lit - Lithuanian
lb ltz - Luxembourgish; Letzeburgesch
lu lub - Luba-Katanga
lg lug - Ganda
mh mah - Marshallese
ml mal - Malayalam
mr mar - Marathi
mk mkd mac Macedonian
mg mlg - Malagasy
mt mlt - Maltese
mn mon - Mongolian
mi mri mao Maori
ms msa may Malay
my mya bur Burmese
na nau - Nauru
nv nav - Navajo; Navaho
nr nbl - South Ndebele
nd nde - North Ndebele
ng ndo - Ndonga
ne nep - Nepali
nl nld dut Dutch; Flemish
nn nno - Norwegian Nynorsk; Nynorsk
nb nob - Norwegian Bokmål; Bokmål
no nor - Norwegian
ny nya - Chichewa; Chewa; Nyanja
oc oci - Occitan; Provençal
oj oji - Ojibwa
or ori - Oriya
om orm - Oromo
os oss - Ossetian; Ossetic
pa pan - Punjabi; Panjabi
pi pli - Pali
pl pol - Polish
pt por - Portuguese
ps pus - Pashto; Pushto
qu que - Quechua
rm roh - Romansh
ro ron rum Romanian; Moldavian; Moldovan
rn run - Rundi
ru rus - Russian
sg sag - Sango
sa san - Sanskrit
si sin - Sinhala; Sinhalese
sk slk slo Slovak
sl slv - Slovenian; Slovene
se sme - Northern Sami
sm smo - Samoan
sn sna - Shona
sd snd - Sindhi
so som - Somali
st sot - Southern Sotho; Sotho; Sesotho
es spa - Spanish; Castilian
sq sqi alb Albanian
sc srd - Sardinian
sr srp - Serbian
ss ssw - Swati; Swazi
su sun - Sundanese
sw swa - Swahili
sv swe - Swedish
ty tah - Tahitian
ta tam - Tamil
tt tat - Tatar
te tel - Telugu
tg tgk - Tajik
tl tgl - Tagalog
th tha - Thai
ti tir - Tigrinya
to ton - Tongan; Tonga
tn tsn - Tswana; Setswana
ts tso - Tsonga
tk tuk - Turkmen
tr tur - Turkish
tw twi - Twi
ug uig - Uyghur; Uighur
uk ukr - Ukrainian
ur urd - Urdu
uz uzb - Uzbek
ve ven - Venda
vi vie - Vietnamese
vo vol - Volapük
wa wln - Walloon
wo wol - Wolof
xh xho - Xhosa
yi yid - Yiddish
yo yor - Yoruba
za zha - Zhuang; Chuang
zh zho chi Chinese; Mandarin
zu zul - Zulu
"""

# Withdrawn 639-1 codes still found in old records, and 639-3 codes of the individual
# language that most records mean by a macrolanguage code.
_EXTRA_CODES: dict[str, str] = {
    "iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro",
    "cmn": "zh", "arb": "ar", "pes": "fa", "zsm": "ms", "ekk": "et", "lvs": "lv", "swh": "sw",
    "uzn": "uz", "azj": "az", "khk": "mn", "plt": "mg", "ydd": "yi", "npi": "ne", "ory": "or",
}  # fmt: skip

# Names of major languages in themselves, as repositories write them in dc:language.
_ENDONYMS: dict[str, str] = {
    "deutsch": "de", "français": "fr", "español": "es", "castellano": "es", "português": "pt",
    "italiano": "it", "nederlands": "nl", "polski": "pl", "русский": "ru", "українська": "uk",
    "čeština": "cs", "slovenčina": "sk", "slovenščina": "sl", "hrvatski": "hr", "srpski": "sr",
    "српски": "sr", "svenska": "sv", "norsk": "no", "dansk": "da", "suomi": "fi", "magyar": "hu",
    "türkçe": "tr", "română": "ro", "български": "bg", "ελληνικά": "el", "lietuvių": "lt",
    "latviešu": "lv", "eesti": "et", "íslenska": "is", "euskara": "eu", "galego": "gl",
    "català": "ca", "bahasa indonesia": "id", "bahasa melayu": "ms", "中文": "zh", "汉语": "zh",
    "漢語": "zh", "日本語": "ja", "한국어": "ko", "العربية": "ar", "فارسی": "fa", "עברית": "he",
}  # fmt: skip


def _name_key(name: str) -> str:
    """Case-, accent- and spacing-insensitive key: "Bokmål" and "bokmal" meet."""
    decomposed = unicodedata.normalize("NFKD", name)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    bare = re.sub(r"\([^)]*\)", " ", bare.casefold())
    bare = " ".join(bare.split())
    return re.sub(r" languages?$", "", bare)


def _build_tables() -> tuple[dict[str, str], dict[str, str]]:
    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    for line in _ISO_639.strip().splitlines():
        alpha2, alpha3, biblio, rest = line.split(" ", 3)
        codes[alpha2] = alpha2
        codes[alpha3] = alpha2
        if biblio != "-":
            codes[biblio] = alpha2
        for name in rest.split("; "):
            names.setdefault(_name_key(name), alpha2)
    codes.update(_EXTRA_CODES)
    for name, alpha2 in _ENDONYMS.items():
        names.setdefault(_name_key(name), alpha2)
    return codes, names


_CODES, _NAMES = _build_tables()
_CODE_OR_LOCALE = re.compile(r"^([a-z]{2,3})(?:[-_][a-z0-9]{1,8})*$", re.ASCII)


def normalize_language(value: str | None) -> str | None:
    """The ISO 639-1 code (``en``) for a language code, locale or English name.

    Accepts 639-1 codes in any case ("EN"), locales ("en-US", "pt_BR", "zh-Hans-CN"),
    639-2/T and /B codes ("deu", "ger"), a few 639-3 codes of individual languages
    ("cmn"), id.loc.gov/lexvo URIs ending in a code, English names ("Portuguese",
    "modern greek") and the self-names of major languages ("Deutsch", "Español").
    None for a language without a 639-1 code and for the special codes "und", "mul",
    "zxx" and "mis": a wrong language is worse than none in a merged record.
    """
    if value is None:
        return None
    return _language(value)


@functools.lru_cache(maxsize=1024)
def _language(value: str) -> str | None:
    """:func:`normalize_language` of a string, memoized: a repository writes its few
    language values ("eng", "pt_BR", "English") on every record."""
    text = _prepare(value)
    if text is None:
        return None
    if "/" in text:  # http://id.loc.gov/vocabulary/iso639-2/eng
        text = text.rstrip("/").rsplit("/", 1)[-1]
    match = _CODE_OR_LOCALE.match(text.lower())
    if match is not None:
        code = _CODES.get(match.group(1))
        if code is not None or match.group(0) != match.group(1):
            return code
    key = _name_key(text)
    found = _NAMES.get(key)
    if found is None and ", " in key:  # "Greek, Modern" -> "modern greek"
        head, _, tail = key.partition(", ")
        found = _NAMES.get(f"{tail} {head}")
    return found
