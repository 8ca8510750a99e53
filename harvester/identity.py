"""Work identity beyond the DOI: which work each source record belongs to, and why.

The store keeps every live source record in exactly one work. This module decides which,
as a pure function of the set of live records (:func:`link`, :func:`partition`); the store
(:meth:`storage.store.Store.commit_page`) applies it incrementally, page by page.

The rule
--------
1. **DOI.** A record with a DOI belongs to the work of that DOI, always. Two records with
   different DOIs are never put together, whatever else they share (a DOI wins every
   conflict); when they share a secondary identifier the store records the conflict.
2. **Edges.** Two records are *linked* by

   * a shared **secondary identifier**: ``scopus_eid``, ``pmid``, ``arxiv``, or ``oai``
     (an OAI identifier names a record of one repository, so it only links records of
     the same source);
   * a **title match** (only with ``merge.match_without_doi: true``): equal title keys
     (:func:`title_key`), the same numbers in both titles (digits and roman numerals,
     :func:`title_numbers`), years both known and at most one apart, and author
     surnames that overlap (both lists non-empty; shared surnames are at least 60% of
     the smaller list). Short keys (under :data:`MIN_KEY_LENGTH` characters) and
     generic titles (:data:`GENERIC_TITLES`, :data:`GENERIC_PREFIXES`) never match.

   No edge joins two records that both carry a DOI. An identifier value held by more
   than :data:`MAX_ID_HOLDERS` live records, or a title key held by more than
   :data:`MAX_TITLE_HOLDERS`, identifies nothing and makes no edge (a placeholder PMID
   pasted everywhere, "Annual report of the institute" every year): this keeps a bad
   value from gluing hundreds of records together, and keeps every lookup bounded.
3. **Units.** DOI-less records linked by secondary identifiers form *units* (connected
   components): records that share an EID or PMID describe one publication.
4. **Anchoring.** A unit linked to records with a DOI joins ONE DOI work: the candidate
   DOI first by tier (an identifier edge beats a title edge), then by strength (more
   shared identifiers; for titles a higher author overlap, then equal years, then more
   shared surnames), then the smallest DOI. Every choice is a total order on values of
   the records, never on arrival order or database ids.
5. **DOI-less works.** The remaining ("free") units are joined by title edges between
   them; each connected component is one DOI-less work.

A DOI record that shares an identifier with a record of another DOI stays with its DOI;
the store lists it as a conflict with the identifier's *owner* (the smallest DOI holding
it), one row per record and identifier.

Each record gets a *reason*: ``doi``; ``identifier:pmid=123`` (it shares that identifier
with a record of its work); ``title:<key> year= authors 2/2`` or ``year±1`` (the title
match with a record of its work, best first); or ``own`` (a DOI-less record alone).

Why this is order independent
-----------------------------
The rule only reads the set of live records: DOI groups are fixed, units and free
components are connected components (they do not depend on the order edges are found),
and every choice between candidates is a total order on DOIs and record values. The
store keeps the invariant "stored links == the rule applied to all live records" by
re-deciding, for each page, every DOI-less record whose decision can have changed: the
records of the page, the DOI-less records linked to their old or new versions, and,
closed transitively, every DOI-less record linked to those and every member of a
DOI-less work touched (a work can split). Records outside that region have no edge to a
changed record, so their decision is unchanged. Work *ids* still depend on history (the
survivor of a merge is the DOI work, else the lowest existing id); membership and merged
data do not.

Limits
------
* Title keys must be equal: no fuzzy similarity, so a typo, a dropped subtitle, a
  transliteration or accents present in one source and absent in another defeat the
  match. Keys are compared after NFKC and casefold only (no accent folding).
* Anchoring looks one edge away: a DOI-less record joins a DOI work through its own
  edges or its unit's (shared identifiers), not through a title match with another
  DOI-less record that is itself anchored. Two free records that only match through an
  anchored record stay apart from it.
* Title edges chain inside a free component (A matches B, B matches C, so A, B and C
  are one work even if A and C do not match); years can drift by one per link.
* Initials-only author lists ("K. Xu") overlap on surnames only; corporate authors count
  as surnames.
* The blocklist is English; generic titles in other languages rely on the key length
  and on :data:`MAX_TITLE_HOLDERS`.
* The holder caps count records, not works: a work harvested from more than 20 records
  that all carry its PMID would lose that PMID as a link (not its DOI).
"""

from __future__ import annotations

import functools
import html
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass

from harvester.record import Author, Record

__all__ = [
    "GENERIC_PREFIXES",
    "GENERIC_TITLES",
    "MATCH_SCHEMES",
    "MAX_ID_HOLDERS",
    "MAX_TITLE_HOLDERS",
    "MIN_KEY_LENGTH",
    "SOURCE_SCOPED",
    "IdKey",
    "Link",
    "Profile",
    "Ref",
    "TitleMatch",
    "junk",
    "link",
    "match_title",
    "partition",
    "profile",
    "shared_identifiers",
    "surname",
    "title_key",
    "title_numbers",
]

Ref = tuple[str, str]  # (source, key): a source record
IdKey = tuple[str, str, str]  # (scheme, value, scope): scope is the source for "oai", else ""

#: Identifier schemes that make two records one publication.
MATCH_SCHEMES: tuple[str, ...] = ("arxiv", "oai", "pmid", "scopus_eid")
#: Schemes whose values only mean something inside one source (repository).
SOURCE_SCOPED: frozenset[str] = frozenset({"oai"})
#: Title keys shorter than this never match (fuzzycat: short titles are ambiguous).
MIN_KEY_LENGTH = 10
#: Longest stored key (longer keys are cut; the numbers check still sees whole titles).
MAX_KEY_LENGTH = 255
#: Least share of the smaller author list whose surnames must appear in the other.
MIN_AUTHOR_OVERLAP = 0.6
#: Largest difference of publication years in a title match.
MAX_YEAR_DELTA = 1
#: An identifier value held by more live records than this identifies nothing.
MAX_ID_HOLDERS = 20
#: A title key held by more live records than this is generic.
MAX_TITLE_HOLDERS = 50

_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_DIGITS = re.compile(r"[0-9]+")
_ROMAN = re.compile(r"m{0,4}(?:cm|cd|d?c{0,3})(?:xc|xl|l?x{0,3})(?:ix|iv|v?i{0,3})")
_ROMAN_VALUES = {"i": 1, "v": 5, "x": 10, "l": 50, "c": 100, "d": 500, "m": 1000}


_NOT_ASCII_ALNUM = re.compile(r"[^a-z0-9]+")


def _plain(text: str) -> str:
    """Unescape (twice, for doubly escaped text), strip tags, NFKC, casefold."""
    if "&" in text:
        text = html.unescape(text)
        if "&" in text:
            text = html.unescape(text)
    if "<" in text:
        text = _TAG.sub(" ", text)
    if text.isascii():
        return text.lower()  # NFKC and casefold change nothing else in ASCII
    return unicodedata.normalize("NFKC", text).casefold()


def _letters_digits(text: str) -> str:
    if text.isascii():
        return _NOT_ASCII_ALNUM.sub("", text)
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


@functools.lru_cache(maxsize=8192)
def _raw_key(title: str) -> str:
    return _letters_digits(_plain(title))


#: Titles that name a kind of item rather than one work ("Editorial", "Index", ...),
#: as keys. OpenAlex BAD_TITLES, fuzzycat data.py and OpenAIRE's blacklist inspired it.
GENERIC_TITLES: frozenset[str] = frozenset(
    _raw_key(t)
    for t in (
        "Abstract", "Abstracts", "Acknowledgement", "Acknowledgements", "Acknowledgment",
        "Acknowledgments", "Acknowledgement of reviewers", "About the authors", "Afterword",
        "Announcement", "Announcements", "Annual report", "Appendix", "Article", "Author index",
        "Author and subject index", "Author's reply", "Authors' reply", "Back cover", "Back matter",
        "Bibliography", "Book", "Book review", "Book reviews", "Books received", "Calendar",
        "Call for papers", "Chapter", "Closing remarks", "Comment", "Comments", "Commentary",
        "Conclusion", "Conclusions", "Conference abstracts", "Conference report", "Contents",
        "Contributors", "Correction", "Corrections", "Correspondence", "Corrigendum", "Cover",
        "Cumulative index", "Data", "Dataset", "Discussion", "Dissertation", "Editorial",
        "Editorial board", "Editorial comment", "Editorial note", "Editorials", "Editor's note",
        "Editors' note", "Epilogue", "Errata", "Erratum", "Events", "Expression of concern",
        "Figure", "Foreword", "From the editor", "From the editors", "Front cover", "Front matter",
        "Frontmatter", "Glossary", "Guest editorial", "Guide for authors", "Highlights", "Image",
        "In memoriam", "In this issue", "Index", "Index to volume", "Information for authors",
        "Instructions for authors", "Introduction", "Issue information", "Keynote", "Letter",
        "Letter from the editor", "Letter to the editor", "Letters", "Letters to the editor",
        "List of reviewers", "Masthead", "Meeting abstracts", "Miscellany", "News", "No title",
        "Note", "Notes", "Notes on contributors", "Notice of retraction", "Obituary",
        "Opening remarks", "Overview", "Panel discussion", "Paper", "Photograph", "Poster",
        "Poster abstracts", "Preface", "Preprint", "Presentation", "Proceedings", "Prologue",
        "References", "Reply", "Reply to the authors", "Report", "Research data", "Response",
        "Response to letter", "Retraction", "Retraction notice", "Review", "Reviewers", "Reviews",
        "Software", "Subject index", "Summary", "Supplement", "Supplementary material",
        "Technical report", "Thanks to reviewers", "This issue", "Title", "Title page", "Unknown",
        "Untitled", "Volume", "Welcome", "Working paper",
    )
)  # fmt: skip

#: Key prefixes of items that repeat the title of another work (notices, replies, reviews).
GENERIC_PREFIXES: tuple[str, ...] = tuple(
    _raw_key(t)
    for t in (
        "Book review", "Correction to", "Erratum", "Corrigendum", "Retraction note",
        "Retraction notice", "Retraction of", "Notice of retraction", "Expression of concern",
        "Authors' reply", "Author's reply", "Reply to", "Response to", "In response to",
    )
)  # fmt: skip


def title_key(title: str | None, subtitle: str | None = None) -> str | None:
    """The blocking key of a title (and subtitle): None when it cannot identify a work.

    Unescape HTML entities, strip tags, NFKC, casefold, keep letters and digits (of every
    script, so CJK titles keep a key). A key under :data:`MIN_KEY_LENGTH` characters, a
    generic title ("Editorial", "Index 2019") or a notice ("Erratum to ...") gives None.
    """
    if not title:
        return None
    key = _raw_key(f"{title} {subtitle}" if subtitle else title)
    if len(key) < MIN_KEY_LENGTH:
        return None
    if key in GENERIC_TITLES or _DIGITS.sub("", key) in GENERIC_TITLES or key.startswith(GENERIC_PREFIXES):
        return None
    return key[:MAX_KEY_LENGTH]


def title_numbers(title: str | None, subtitle: str | None = None) -> tuple[int, ...]:
    """The numbers a title names, sorted: digit runs and roman-numeral words.

    "Part 1" and "Part 2", "Volume II" and "Volume III" must never be one work, even when
    the rest of the title is the same (OpenAIRE titleVersionMatch, fuzzycat NUM_DIFF).
    """
    if not title:
        return ()
    text = _plain(f"{title} {subtitle}" if subtitle else title)
    numbers = [int(d) for d in _DIGITS.findall(text)]
    for word in re.split(r"[^\w]+|_", text):
        if word and _ROMAN.fullmatch(word):
            numbers.append(_roman_value(word))
    return tuple(sorted(numbers))


def _roman_value(word: str) -> int:
    total = 0
    for ch, nxt in zip(word, [*word[1:], ""], strict=True):
        value = _ROMAN_VALUES[ch]
        total += -value if nxt and _ROMAN_VALUES[nxt] > value else value
    return total


def surname(author: Author) -> str | None:
    """The family name (or the last word of the name as written), ASCII-folded, casefolded."""
    return _surname(author.family, author.name)


@functools.lru_cache(maxsize=65536)
def _surname(family: str | None, written_name: str) -> str | None:
    name = family
    if not name:
        written = written_name.strip()
        if "," in written:
            name = written.split(",", 1)[0]
        else:
            parts = written.split()
            name = parts[-1] if parts else ""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    key = "".join(ch for ch in folded.casefold() if unicodedata.category(ch)[0] == "L")
    return key or None


@dataclass(frozen=True, slots=True)
class Profile:
    """What identity needs of one live source record."""

    source: str
    key: str
    doi: str | None
    title_key: str | None
    numbers: tuple[int, ...]
    year: int | None
    surnames: frozenset[str]
    identifiers: frozenset[tuple[str, str]]  # (scheme, value), MATCH_SCHEMES only

    @property
    def ref(self) -> Ref:
        return (self.source, self.key)

    def id_keys(self) -> Iterator[IdKey]:
        for scheme, value in sorted(self.identifiers):
            yield (scheme, value, self.source if scheme in SOURCE_SCOPED else "")


def profile(source: str, record: Record, *, titles: bool = True) -> Profile:
    """The identity profile of a (live) record of ``source``.

    ``titles=False`` leaves out what only title matching reads (numbers, year, surnames);
    the title key is always there (the store keeps it, so matching can be turned on).
    """
    if not titles:
        return Profile(
            source, record.key, record.doi, title_key(record.title, record.subtitle), (), None, frozenset(),
            frozenset((s, v) for s, v in record.identifiers if s in MATCH_SCHEMES and v),
        )  # fmt: skip
    return Profile(
        source=source,
        key=record.key,
        doi=record.doi,
        title_key=title_key(record.title, record.subtitle),
        numbers=title_numbers(record.title, record.subtitle),
        year=record.date.year if record.date else None,
        surnames=frozenset(s for s in (surname(a) for a in record.authors) if s),
        identifiers=frozenset((s, v) for s, v in record.identifiers if s in MATCH_SCHEMES and v),
    )


def shared_identifiers(a: Profile, b: Profile) -> list[IdKey]:
    """The matching identifiers two records share (an OAI identifier only within one source)."""
    return sorted(set(a.id_keys()) & set(b.id_keys()))


@dataclass(frozen=True, slots=True, order=True)
class TitleMatch:
    """Why two titles are one work; compares by strength (greater is stronger)."""

    overlap: float  # shared surnames / the smaller author list
    same_year: bool
    shared: int
    smaller: int
    key: str

    @property
    def reason(self) -> str:
        year = "year=" if self.same_year else "year±1"
        return f"title:{self.key} {year} authors {self.shared}/{self.smaller}"


def match_title(a: Profile, b: Profile) -> TitleMatch | None:
    """The title match of two records, or None (see the module docstring for the rule)."""
    if a.doi and b.doi:
        return None  # never between two DOIs (equal ones are one work already)
    if a.title_key is None or a.title_key != b.title_key or a.numbers != b.numbers:
        return None
    if a.year is None or b.year is None or abs(a.year - b.year) > MAX_YEAR_DELTA:
        return None
    if not a.surnames or not b.surnames:
        return None
    shared = len(a.surnames & b.surnames)
    smaller = min(len(a.surnames), len(b.surnames))
    if shared < MIN_AUTHOR_OVERLAP * smaller:
        return None
    return TitleMatch(round(shared / smaller, 6), a.year == b.year, shared, smaller, a.title_key)


@dataclass(frozen=True, slots=True)
class Link:
    """Where a DOI-less record belongs: the work of ``doi``, or the DOI-less ``group``."""

    doi: str | None
    group: tuple[Ref, ...]  # for a DOI-less work: its members, sorted; () for a DOI work
    reason: str


class _Sets:
    """Union-find over hashable items (connected components, order independent)."""

    def __init__(self) -> None:
        self.parent: dict[Ref, Ref] = {}

    def find(self, x: Ref) -> Ref:
        parent = self.parent.setdefault(x, x)
        while parent != x:
            grand = self.parent[parent]
            self.parent[x] = grand
            x, parent = parent, grand
        return x

    def union(self, a: Ref, b: Ref) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def link(
    members: Iterable[Profile],
    anchors: Iterable[Profile],
    *,
    match_without_doi: bool,
    junk_ids: Collection[IdKey] = (),
    junk_titles: Collection[str] = (),
) -> dict[Ref, Link]:
    """Decide the work of each DOI-less record in ``members``.

    ``anchors`` are records with a DOI (at least all those linked to a member); members
    must be closed under edges between DOI-less records (see the module docstring), so
    that the result for them equals the rule applied to the whole store. ``junk_ids``
    and ``junk_titles`` are the values held by too many records (:func:`junk`).
    """
    nodes = {p.ref: p for p in members if not p.doi}
    if not nodes:
        return {}
    dois = {p.ref: p for p in anchors if p.doi}
    by_id: dict[IdKey, list[Profile]] = defaultdict(list)
    by_title: dict[str, list[Profile]] = defaultdict(list)
    for p in [*nodes.values(), *dois.values()]:
        for ident in p.id_keys():
            if ident not in junk_ids:
                by_id[ident].append(p)
        if match_without_doi and p.title_key and p.title_key not in junk_titles:
            by_title[p.title_key].append(p)

    # edges of each member: to other members and to DOI records
    id_edges: dict[Ref, dict[Ref, list[IdKey]]] = {r: defaultdict(list) for r in nodes}
    title_edges: dict[Ref, dict[Ref, TitleMatch]] = {r: {} for r in nodes}
    for ident, holders in by_id.items():
        for p in holders:
            if p.doi:
                continue
            for q in holders:
                if q.ref != p.ref:
                    id_edges[p.ref][q.ref].append(ident)
    for holders in by_title.values():
        for p in holders:
            if p.doi:
                continue
            for q in holders:
                if q.ref != p.ref:
                    found = match_title(p, q)
                    if found is not None:
                        title_edges[p.ref][q.ref] = found

    units = _Sets()
    for r in sorted(nodes):
        units.find(r)
        for other in id_edges[r]:
            if other in nodes:
                units.union(r, other)
    unit_members: dict[Ref, list[Ref]] = defaultdict(list)
    for r in sorted(nodes):
        unit_members[units.find(r)].append(r)

    out: dict[Ref, Link] = {}
    free: list[Ref] = []
    for root, refs in sorted(unit_members.items()):
        chosen = _anchor(refs, id_edges, title_edges, dois)
        if chosen is None:
            free.append(root)
            continue
        for r in refs:
            out[r] = Link(chosen, (), _reason_for_doi(r, chosen, id_edges, title_edges, dois, set(refs)))

    groups = _Sets()
    free_set = set(free)
    for root in free:
        groups.find(root)
        for r in unit_members[root]:
            for other in title_edges[r]:
                if other in nodes and units.find(other) in free_set:
                    groups.union(root, units.find(other))
    components: dict[Ref, list[Ref]] = defaultdict(list)
    for root in free:
        components[groups.find(root)].extend(unit_members[root])
    for refs in components.values():
        group = tuple(sorted(refs))
        inside = set(group)
        for r in group:
            out[r] = Link(None, group, _reason_in_group(r, id_edges, title_edges, inside))
    return out


def _anchor(
    refs: Sequence[Ref],
    id_edges: dict[Ref, dict[Ref, list[IdKey]]],
    title_edges: dict[Ref, dict[Ref, TitleMatch]],
    dois: dict[Ref, Profile],
) -> str | None:
    """The DOI a unit joins: identifier tier first, then strength, then the smallest DOI."""
    by_ids: dict[str, set[IdKey]] = defaultdict(set)
    by_title: dict[str, TitleMatch] = {}
    for r in refs:
        for other, idents in id_edges[r].items():
            if other in dois:
                by_ids[dois[other].doi or ""].update(idents)
        for other, found in title_edges[r].items():
            if other in dois:
                doi = dois[other].doi or ""
                if doi not in by_title or found > by_title[doi]:
                    by_title[doi] = found
    if by_ids:
        return min(by_ids, key=lambda d: (-len(by_ids[d]), d))
    if by_title:
        return min(by_title, key=lambda d: (_neg(by_title[d]), d))
    return None


def _neg(found: TitleMatch) -> tuple[float, int, int]:
    return (-found.overlap, -int(found.same_year), -found.shared)


def _reason_for_doi(
    r: Ref,
    doi: str,
    id_edges: dict[Ref, dict[Ref, list[IdKey]]],
    title_edges: dict[Ref, dict[Ref, TitleMatch]],
    dois: dict[Ref, Profile],
    unit: set[Ref],
) -> str:
    direct_ids = sorted(i for o, ids in id_edges[r].items() if o in dois and dois[o].doi == doi for i in ids)
    if direct_ids:
        return _id_reason(direct_ids[0])
    titles = [(_neg(m), o) for o, m in title_edges[r].items() if o in dois and dois[o].doi == doi]
    if titles:
        return title_edges[r][min(titles)[1]].reason
    via_unit = sorted(i for o, ids in id_edges[r].items() if o in unit for i in ids)
    return _id_reason(via_unit[0]) if via_unit else "own"


def _reason_in_group(
    r: Ref,
    id_edges: dict[Ref, dict[Ref, list[IdKey]]],
    title_edges: dict[Ref, dict[Ref, TitleMatch]],
    group: set[Ref],
) -> str:
    ids = sorted(i for o, idents in id_edges[r].items() if o in group for i in idents)
    if ids:
        return _id_reason(ids[0])
    titles = [(_neg(m), o) for o, m in title_edges[r].items() if o in group]
    if titles:
        return title_edges[r][min(titles)[1]].reason
    return "own"


def _id_reason(ident: IdKey) -> str:
    return f"identifier:{ident[0]}={ident[1]}"


def junk(profiles: Iterable[Profile]) -> tuple[set[IdKey], set[str]]:
    """The identifier values and title keys held by too many of these (all live) records."""
    ids: Counter[IdKey] = Counter()
    titles: Counter[str] = Counter()
    for p in profiles:
        ids.update(p.id_keys())
        if p.title_key:
            titles[p.title_key] += 1
    return (
        {i for i, n in ids.items() if n > MAX_ID_HOLDERS},
        {t for t, n in titles.items() if n > MAX_TITLE_HOLDERS},
    )


def partition(profiles: Iterable[Profile], *, match_without_doi: bool) -> list[frozenset[Ref]]:
    """The works of a whole set of live records, as sets of records (the rule, from scratch)."""
    everything = list(profiles)
    works: dict[object, set[Ref]] = defaultdict(set)
    for p in everything:
        if p.doi:
            works[("doi", p.doi)].add(p.ref)
    junk_ids, junk_titles = junk(everything)
    decided = link(
        [p for p in everything if not p.doi],
        [p for p in everything if p.doi],
        match_without_doi=match_without_doi,
        junk_ids=junk_ids,
        junk_titles=junk_titles,
    )
    for ref, found in decided.items():
        works[("doi", found.doi) if found.doi else ("group", found.group)].add(ref)
    return sorted((frozenset(refs) for refs in works.values()), key=sorted)
