"""A real, local Elsevier Scopus API (Scopus Search and Abstract Retrieval) for tests, which can
misbehave on demand.

`FakeScopus` is a `http.server.ThreadingHTTPServer` running in a daemon thread on 127.0.0.1 (a
free port). It answers the way api.elsevier.com does (see /work/shared/notes/crossref-scopus.md,
"Scopus Search" and "Abstract Retrieval"; shapes follow recorded responses: romulusFR's 2021
STANDARD page, a 2019 COMPLETE page), and its `faults` attribute (a `FaultPlan`) reproduces the
fault catalogue at the end of /work/shared/notes/dedup-reliability.md. Only the standard library
is used.

Usage::

    works = [ScopusWork(f"2-s2.0-{85000000000 + i}", f"Title {i}", load_date=date(2024, 1, 2)) ...]
    with FakeScopus(works, api_keys=["k"]) as server:
        httpx.get(f"{server.url}/content/search/scopus", headers={"X-ELS-APIKey": "k"},
                  params={"query": 'AFFILORG("Erasmus") AND LOAD-DATE AFT 20240101', "cursor": "*"})
        server.faults.quota_exceeded_next(1)
        server.requests[-1].params  # {"query": [...], "cursor": ["*"]}

Routes (GET): ``/content/search/scopus`` and ``/content/abstract/{scopus_id|eid|doi|pubmed_id}/{id}``.
Anything else is a 404 ``RESOURCE_NOT_FOUND`` service-error.

Errors are Elsevier's ``{"service-error":{"status":{"statusCode":..,"statusText":..}}}``.

**Credentials.** Only the ``X-ELS-APIKey`` header and the optional ``X-ELS-Insttoken`` header,
or, as the real API also allows, the ``apiKey``/``insttoken`` query parameters (any case; they
win over the headers). Every request that carries either in its URL is appended to `key_in_url`
(its path and query), so a test can assert a harvester never does that; such keys are also
echoed in the ``link`` hrefs, as api.elsevier.com does. Responses echo the key in an
``X-ELS-APIKey`` header (observed). A missing or unknown key is a 401 ``AUTHENTICATION_ERROR``
"Invalid API Key"; an unknown insttoken a 401 "Invalid InstToken". A valid insttoken grants the
cursor and COMPLETE entitlements.

**Order of checks** for a known route: credentials (401) -> throttling (bare 429) -> weekly
quota (429 ``QUOTA_EXCEEDED``) -> the request's fault, if any -> the API proper (quota
decremented; 200, or a 400/403/404 service-error). Only the last step carries
``X-RateLimit-*``. A request stopped before the fault step takes no fault (a queued one waits).

**Scopus Search.** Parameters: ``query`` (required; see below), ``view`` (STANDARD, the
default, or COMPLETE; any case), ``count`` (default 25; at most 200 in STANDARD and 25 in
COMPLETE, more is a 400 "Exceeds the maximum number allowed for the service level"),
``start`` (offset; ``start + count > 5000`` is a 400 "Exceeds the number of search results"),
``cursor`` (``*`` opens; not with ``start``), ``field`` (comma list: projects each entry),
``sort`` (up to three of ``[+|-]name``, ascending by default: ``orig-load-date``, ``coverDate``,
``citedby-count``, ``pubyear``, ``publicationName``, ``creator``, ``relevancy``), ``date``
(``2019`` or ``2018-2020``: publication years) and ``subj`` (an ASJC abbreviation). Other
parameters are ignored, as by the real API. Numbers in the body are strings.

* Order: without ``sort`` (or with ``relevancy``) EID ascending; sorts are stable, ties by EID.
* Offset paging evaluates the query on every request (a `put` between pages shifts them). Links:
  ``self``, ``first``, ``prev`` (start > 0), ``next`` (while ``start + count`` is below both the
  total and 5,000) and ``last`` at ``min(total, 5000) - count`` (``start=4999`` for count 1).
* Cursor paging works like Elasticsearch ``search_after``, which Scopus cursors are: ``@next``
  is an opaque base64 token (always containing ``+``, ``/`` and ``=``, so the client must
  URL-encode it) naming the position after the last entry served. Following it gives the next
  page of the query *as sent with it*, evaluated now; asking for the same cursor again gives
  the same page (idempotent). ``cursor.@next`` is always present, ``link[@ref=next]`` only
  while entries remain. An unknown cursor (e.g. a ``+`` that arrived as a space) is a 400.
* An empty page (no match at all, a start beyond the total, or the cursor page after the last)
  has ``opensearch:itemsPerPage`` "0" and, as the real API sends it, the single entry
  `EMPTY_RESULT_ENTRY` ``{"@_fa": "true", "error": "Result set was empty"}``; set
  `empty_result` to ``"no_entry_key"`` or ``"empty_list"`` for other shapes.
* COMPLETE shows at most 100 authors per entry (``author-count`` says how many there are).

**Query language** (Scopus advanced search, a realistic subset; field names and operators in
any case). Boolean ``AND``, ``OR``, ``AND NOT`` and parentheses, with Scopus' precedence: OR
binds tighter than AND, which binds tighter than AND NOT (``a AND b OR c`` is ``a AND (b OR
c)``); juxtaposed terms are ANDed. Text fields (case-insensitive substring match of each word;
``"loose phrase"`` ignores punctuation, ``{exact phrase}`` does not; ``*``/``?`` wildcards):
``ALL``, ``TITLE-ABS-KEY``, ``TITLE-ABS-KEY-AUTH``, ``TITLE``, ``ABS``, ``KEY``, ``AUTHKEY``,
``AUTH``, ``AUTHOR-NAME``, ``AUTHLASTNAME``, ``AFFIL`` (name, city, country), ``AFFILORG``,
``AFFILCITY``, ``AFFILCOUNTRY``, ``SRCTITLE``; a bare term is ``ALL``. Identifier fields (exact
values, combined with OR/AND): ``DOI``, ``AF-ID``, ``AU-ID``, ``EID``, ``PMID``, ``ISSN``,
``DOCTYPE``, ``SUBJAREA``, ``OPENACCESS``. Comparisons: ``PUBYEAR``, ``LOAD-DATE`` and
``ORIG-LOAD-DATE`` with ``>``/``AFT`` (strictly after), ``<``/``BEF`` (strictly before) or
``=``/``IS``; years as ``YYYY``, dates as ``YYYYMMDD``. Anything else is a 400
``INVALID_INPUT`` "Error translating query"; ``INDEXTERMS`` gets the real "Use of certain field
restrictions ..." 400, and real Scopus fields the fake does not implement (``LIMIT-TO``,
``REF``, ``LANGUAGE``, proximity ``W/n``...) a 400 saying so.

**Abstract Retrieval.** Views META, META_ABS (the default) and FULL; only FULL has
``subject-areas``, ``authors``, ``affiliation`` and ``authkeywords``. Unknown id: 404
``RESOURCE_NOT_FOUND``. ``coredata.link`` uses ``@rel`` (not ``@ref``), and ``prism:issn``
holds "print electronic" separated by a space, as the real API does.

**Quotas and throttling.** Each key has a weekly quota per API (`KeyPlan`: Search 20,000,
Abstract Retrieval 10,000 by default), reset every 7 days from `KeyPlan.reset_at` according to
`now`. Responses of the API proper carry ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``
(after this request) and ``X-RateLimit-Reset`` in `reset_style`: epoch seconds (documented),
epoch milliseconds (seen 2021) or an HTTP date (seen 2019). With nothing left: 429,
``X-ELS-Status: QUOTA_EXCEEDED - Quota Exceeded`` and ``X-RateLimit-Reset`` only. More than
`max_rate` requests per second from one key to one API (a token bucket of `max_rate` tokens
refilled at `max_rate` per second, so a client that paces itself never trips it): a bare 429
(no ``X-ELS-*`` or rate headers, empty body), recorded in `violations`.
"""

from __future__ import annotations

import base64
import bisect
import email.utils
import functools
import gzip
import json
import math
import random
import re
import socket
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from tests.fake_http import KeepAliveHandler, LocalHTTPServer, Served

__all__ = [
    "ABSTRACT_QUOTA",
    "EMPTY_RESULT_ENTRY",
    "HTML_ERROR_PAGE",
    "MAX_COUNT",
    "MAX_OFFSET",
    "QUOTA_PERIOD",
    "SEARCH_PATH",
    "SEARCH_QUOTA",
    "Api",
    "FakeScopus",
    "Fault",
    "FaultPlan",
    "KeyPlan",
    "QuotaState",
    "RequestLogEntry",
    "ScopusWork",
    "abstract_response",
    "scopus_affiliation",
    "scopus_author",
    "scopus_entry",
    "service_error",
]

Api = Literal["search", "abstract"]
View = Literal["STANDARD", "COMPLETE"]
ResetStyle = Literal["epoch", "epoch_ms", "date"]

SEARCH_PATH = "/content/search/scopus"
ABSTRACT_PATH = "/content/abstract/"
ELSEVIER_BASE = "https://api.elsevier.com"
#: Offset paging stops here: ``start + count`` may not exceed it (pybliometrics SEARCH_MAX_ENTRIES).
MAX_OFFSET = 5000
#: Largest ``count`` per view (pybliometrics ``COUNTS``).
MAX_COUNT: dict[str, int] = {"STANDARD": 200, "COMPLETE": 25}
DEFAULT_COUNT = 25
#: Weekly quotas per key (dev.elsevier.com/api_key_settings.html).
SEARCH_QUOTA = 20_000
ABSTRACT_QUOTA = 10_000
QUOTA_PERIOD = timedelta(days=7)
#: COMPLETE shows at most this many authors per entry (pybliometrics#194).
COMPLETE_AUTHOR_LIMIT = 100

JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
#: What Scopus sends as the only entry of an empty result page.
EMPTY_RESULT_ENTRY: dict[str, str] = {"@_fa": "true", "error": "Result set was empty"}
#: The body `FaultPlan.html_next` serves: a maintenance page with (by default) status 200.
HTML_ERROR_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>Elsevier Developer Portal - Service unavailable</title></head>\n"
    b"<body><h1>We are currently performing maintenance</h1>"
    b"<p>Please try again later.<br>Elsevier API team</p></body></html>\n"
)
#: A gateway error page, the body of `Fault.server_error` for 502/503/504.
_HTML_GATEWAY = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
    "</body>\r\n</html>\r\n"
)

_INVALID_KEY = "Invalid API Key"
_INVALID_TOKEN = "Invalid InstToken"
_CURSOR_RESTRICTED = "Use of the cursor parameter is restricted"
_VIEW_RESTRICTED = "The requestor is not authorized to access the requested view or fields of the resource"
_SERVICE_LEVEL = "Exceeds the maximum number allowed for the service level"
_TOO_DEEP = "Exceeds the number of search results"
_BAD_QUERY = "Error translating query"
_RESTRICTED_FIELD = "Use of certain field restrictions in the search query is not allowed for this requestor."
_NOT_FOUND = "The resource specified cannot be found."
_QUOTA_STATUS = "QUOTA_EXCEEDED - Quota Exceeded"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_EID_RE = re.compile(r"2-s2\.0-(\d+)")
_ISSN_RE = re.compile(r"(\d{4})-?(\d{3}[\dXx])")
_YEAR_RE = re.compile(r"\d{4}")
_DAY_RE = re.compile(r"\d{8}")
_LOOSE_RE = re.compile(r"[^\w\x00]+")
_CURSOR_MARK = b"\xfb\xff\xbf"  # base64 "+/+/": every cursor contains '+' and '/'
_SRCTYPES = {
    "Journal": "j",
    "Conference Proceeding": "p",
    "Book": "b",
    "Book Series": "k",
    "Trade Journal": "d",
}


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _as_date(value: date | str, what: str) -> date:
    if isinstance(value, datetime):
        return _utc(value, what).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(value)


def _loose(text: str) -> str:
    """Lower-cased, punctuation runs turned into single spaces (``\\x00`` separators survive)."""
    return _LOOSE_RE.sub(" ", text.lower()).strip()


def _normalize_doi(value: str) -> str:
    value = value.strip()
    for head in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if value.lower().startswith(head):
            value = value[len(head) :]
    return value.lower()


def _normalize_issn(value: str) -> str:
    match = _ISSN_RE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"not an ISSN: {value!r}")
    return f"{match.group(1)}{match.group(2).upper()}"


def _initials(given: str | None) -> str | None:
    if not given:
        return None
    parts = [p for p in re.split(r"[\s-]+", given) if p]
    return "".join(f"{p[0].upper()}." for p in parts) or None


def service_error(status_code: str, status_text: str) -> dict[str, Any]:
    """Elsevier's error body: ``{"service-error":{"status":{"statusCode":..,"statusText":..}}}``."""
    return {"service-error": {"status": {"statusCode": status_code, "statusText": status_text}}}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Works
# --------------------------------------------------------------------------------------------


def scopus_author(
    authid: str,
    surname: str,
    given_name: str | None = None,
    *afids: str,
    initials: str | None = None,
) -> dict[str, Any]:
    """An author for `ScopusWork.authors`: ``{"authid", "surname", "given-name", "initials",
    "afid": [...]}`` (initials derived from the given name unless passed)."""
    return {
        "authid": str(authid),
        "surname": surname,
        "given-name": given_name,
        "initials": initials if initials is not None else _initials(given_name),
        "afid": [str(a) for a in afids],
    }


def scopus_affiliation(
    afid: str, affilname: str, city: str | None = None, country: str | None = None
) -> dict[str, Any]:
    """An affiliation for `ScopusWork.affiliations`."""
    return {
        "afid": str(afid),
        "affilname": affilname,
        "affiliation-city": city,
        "affiliation-country": country,
    }


@dataclass
class ScopusWork:
    """One record of the fake Scopus index.

    `eid` is ``2-s2.0-<digits>`` (the Scopus id is the digits). `load_date` is LOAD-DATE (it
    changes when Elsevier reloads the record), `orig_load_date` ORIG-LOAD-DATE (first
    accession; defaults to `load_date`, must not be later). Dates may be given as `date`,
    aware `datetime` or ISO strings. `authors` are dicts as made by `scopus_author` (``authid``,
    ``surname``, ``given-name``, optional ``initials``, ``afid`` list); `affiliations` as made
    by `scopus_affiliation`. `issn`/`eissn` are stored as Scopus writes them (8 characters, no
    hyphen). `cover_date` defaults to `load_date`. `cited_by` and `openaccess` become strings.
    `authkeywords` is pipe-separated (``"A | B | C"``); `description` (the abstract) shows in
    COMPLETE and Abstract Retrieval only. `subject_areas` are (ASJC code, abbreviation, label).
    """

    eid: str
    title: str
    _: KW_ONLY
    load_date: date
    doi: str | None = None
    orig_load_date: date | None = None
    authors: list[dict[str, Any]] = field(default_factory=list)
    affiliations: list[dict[str, Any]] = field(default_factory=list)
    publication_name: str = "Journal of Examples"
    issn: str | None = None
    eissn: str | None = None
    volume: str | None = None
    issue: str | None = None
    page_range: str | None = None
    cover_date: str | None = None
    subtype: str = "ar"
    subtype_description: str = "Article"
    aggregation_type: str = "Journal"
    cited_by: str | int = "0"
    authkeywords: str | None = None
    description: str | None = None
    pubmed_id: str | None = None
    pii: str | None = None
    article_number: str | None = None
    source_id: str = "21100000001"
    openaccess: str | int = "0"
    fund_acr: str | None = None
    fund_no: str | None = None
    fund_sponsor: str | None = None
    subject_areas: list[tuple[str, str, str]] = field(default_factory=list)
    language: str = "eng"

    def __post_init__(self) -> None:
        if not _EID_RE.fullmatch(self.eid):
            raise ValueError(f"an EID looks like 2-s2.0-85061234567, got {self.eid!r}")
        self.load_date = _as_date(self.load_date, "load_date")
        self.orig_load_date = (
            self.load_date if self.orig_load_date is None else _as_date(self.orig_load_date, "orig")
        )
        if self.orig_load_date > self.load_date:
            raise ValueError("orig_load_date (first accession) cannot be after load_date")
        self.cover_date = _as_date(self.cover_date or self.load_date, "cover_date").isoformat()
        self.issn = _normalize_issn(self.issn) if self.issn else None
        self.eissn = _normalize_issn(self.eissn) if self.eissn else None
        self.cited_by = str(self.cited_by)
        self.openaccess = str(self.openaccess)
        authors = []
        for author in self.authors:
            a = dict(author)
            a["authid"] = str(a["authid"])
            a.setdefault("given-name", None)
            if not a.get("initials"):
                a["initials"] = _initials(a.get("given-name"))
            afids = a.get("afid") or []
            a["afid"] = [str(afids)] if isinstance(afids, str | int) else [str(x) for x in afids]
            authors.append(a)
        self.authors = authors
        self.affiliations = [{**aff, "afid": str(aff["afid"])} for aff in self.affiliations]
        self.subject_areas = [(str(c), str(a), str(label)) for c, a, label in self.subject_areas]

    @property
    def scopus_id(self) -> str:
        """The digits after the last ``-`` of the EID."""
        return self.eid.rsplit("-", 1)[1]

    @property
    def pubyear(self) -> int:
        return int(str(self.cover_date)[:4])

    @property
    def creator(self) -> str | None:
        """``dc:creator``: the first author as "Surname I."."""
        return _authname(self.authors[0]) if self.authors else None


def _authname(author: Mapping[str, Any]) -> str:
    initials = author.get("initials")
    return f"{author['surname']} {initials}" if initials else str(author["surname"])


def _cover_display(cover_date: str) -> str:
    day = date.fromisoformat(cover_date)
    return f"{day.day} {day.strftime('%B')} {day.year}"


def _singletons(value: Any, keys: frozenset[str]) -> Any:
    """The XML-to-JSON conversion's habit: a one-element list under one of `keys` becomes the
    element itself (recursively)."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            converted = _singletons(v, keys)
            single = k in keys and isinstance(converted, list) and len(converted) == 1
            out[k] = converted[0] if single else converted
        return out
    if isinstance(value, list):
        return [_singletons(v, keys) for v in value]
    return value


_SEARCH_SINGLETONS = frozenset({"author", "affiliation", "afid", "link"})
_ABSTRACT_SINGLETONS = frozenset({"author", "affiliation", "afid", "link", "subject-area", "author-keyword"})
#: Entry fields only the COMPLETE view has (a ``field=`` asking for one needs the entitlement).
COMPLETE_ONLY_FIELDS = frozenset(
    {
        "author", "author-count", "dc:description", "authkeywords", "fund-acr", "fund-no",
        "fund-sponsor", "afid", "affiliation-url",
    }
)  # fmt: skip
_AFFILIATION_FIELDS = ("afid", "affiliation-url", "affilname", "affiliation-city", "affiliation-country")


def scopus_entry(
    work: ScopusWork,
    view: str = "STANDARD",
    *,
    base_url: str = ELSEVIER_BASE,
    singletons_as_objects: bool = False,
) -> dict[str, Any]:
    """The Scopus Search entry of `work` in `view` (STANDARD or COMPLETE), key order as the
    API's. STANDARD has ``dc:creator`` (first author) and affiliation names; COMPLETE adds
    ``afid``/``affiliation-url``, ``author-count``, ``author[]`` (at most 100), ``dc:description``,
    ``authkeywords`` and ``fund-*``. API links use `base_url` (scopus.com links stay)."""
    view = view.upper()
    if view not in MAX_COUNT:
        raise ValueError(f"view must be STANDARD or COMPLETE, got {view!r}")
    complete = view == "COMPLETE"
    sid = work.scopus_id
    abstract_url = f"{base_url}/content/abstract/scopus_id/{sid}"
    links = [
        {"@_fa": "true", "@ref": "self", "@href": abstract_url},
        {"@_fa": "true", "@ref": "author-affiliation", "@href": f"{abstract_url}?field=author,affiliation"},
        {
            "@_fa": "true",
            "@ref": "scopus",
            "@href": f"https://www.scopus.com/inward/record.uri?partnerID=HzOxMe3b&scp={sid}&origin=inward",
        },
        {
            "@_fa": "true",
            "@ref": "scopus-citedby",
            "@href": f"https://www.scopus.com/inward/citedby.uri?partnerID=HzOxMe3b&scp={sid}&origin=inward",
        },
    ]
    if work.pii:
        links.append(
            {
                "@_fa": "true",
                "@ref": "full-text",
                "@href": f"{base_url}/content/article/eid/1-s2.0-{work.pii}",
            }
        )
    entry: dict[str, Any] = {"@_fa": "true", "link": links, "prism:url": abstract_url}
    entry["dc:identifier"] = f"SCOPUS_ID:{sid}"
    entry["eid"] = work.eid
    entry["dc:title"] = work.title
    if work.creator is not None:
        entry["dc:creator"] = work.creator
    entry["prism:publicationName"] = work.publication_name
    for key, value in (
        ("prism:issn", work.issn),
        ("prism:eIssn", work.eissn),
        ("prism:volume", work.volume),
        ("prism:issueIdentifier", work.issue),
    ):
        if value is not None:
            entry[key] = value
    entry["prism:pageRange"] = work.page_range
    entry["prism:coverDate"] = work.cover_date
    entry["prism:coverDisplayDate"] = _cover_display(str(work.cover_date))
    if work.doi is not None:
        entry["prism:doi"] = work.doi
    if work.pii is not None:
        entry["pii"] = work.pii
    if complete and work.description is not None:
        entry["dc:description"] = work.description
    entry["citedby-count"] = work.cited_by
    if work.affiliations:
        affiliations = []
        for aff in work.affiliations:
            item: dict[str, Any] = {"@_fa": "true"}
            if complete:
                item["affiliation-url"] = f"{base_url}/content/affiliation/affiliation_id/{aff['afid']}"
                item["afid"] = aff["afid"]
            item["affilname"] = aff.get("affilname")
            item["affiliation-city"] = aff.get("affiliation-city")
            item["affiliation-country"] = aff.get("affiliation-country")
            affiliations.append(item)
        entry["affiliation"] = affiliations
    if work.pubmed_id is not None:
        entry["pubmed-id"] = work.pubmed_id
    entry["prism:aggregationType"] = work.aggregation_type
    entry["subtype"] = work.subtype
    entry["subtypeDescription"] = work.subtype_description
    if complete and work.authors:
        total = str(len(work.authors))
        entry["author-count"] = {"@limit": str(COMPLETE_AUTHOR_LIMIT), "@total": total, "$": total}
        entry["author"] = [
            {
                "@_fa": "true",
                "@seq": str(seq),
                "author-url": f"{base_url}/content/author/author_id/{a['authid']}",
                "authid": a["authid"],
                "authname": _authname(a),
                "surname": a["surname"],
                "given-name": a.get("given-name"),
                "initials": a.get("initials"),
                "afid": [{"@_fa": "true", "$": afid} for afid in a["afid"]],
            }
            for seq, a in enumerate(work.authors[:COMPLETE_AUTHOR_LIMIT], start=1)
        ]
    if complete and work.authkeywords is not None:
        entry["authkeywords"] = work.authkeywords
    if work.article_number is not None:
        entry["article-number"] = work.article_number
    entry["source-id"] = work.source_id
    if complete:
        for key, value in (
            ("fund-acr", work.fund_acr),
            ("fund-no", work.fund_no),
            ("fund-sponsor", work.fund_sponsor),
        ):
            if value is not None:
                entry[key] = value
    entry["openaccess"] = work.openaccess
    entry["openaccessFlag"] = work.openaccess != "0"
    return _singletons(entry, _SEARCH_SINGLETONS) if singletons_as_objects else entry


def _abstract_author(author: Mapping[str, Any], seq: int, base_url: str) -> dict[str, Any]:
    names = {
        "ce:initials": author.get("initials"),
        "ce:indexed-name": _authname(author),
        "ce:surname": author["surname"],
        "ce:given-name": author.get("given-name"),
    }
    out: dict[str, Any] = {
        "@_fa": "true",
        "@seq": str(seq),
        "@auid": author["authid"],
        "author-url": f"{base_url}/content/author/author_id/{author['authid']}",
        **names,
        "preferred-name": dict(names),
    }
    if author["afid"]:
        out["affiliation"] = [
            {"@id": afid, "@href": f"{base_url}/content/affiliation/affiliation_id/{afid}"}
            for afid in author["afid"]
        ]
    return out


ABSTRACT_VIEWS = ("META", "META_ABS", "FULL")


def abstract_response(
    work: ScopusWork,
    view: str = "META_ABS",
    *,
    base_url: str = ELSEVIER_BASE,
    singletons_as_objects: bool = False,
) -> dict[str, Any]:
    """The Abstract Retrieval body of `work`: ``{"abstracts-retrieval-response": {...}}``.
    META has ``coredata``; META_ABS adds ``dc:description``; FULL adds ``affiliation``,
    ``authors``, ``authkeywords``, ``subject-areas`` and ``language``."""
    view = view.upper()
    if view not in ABSTRACT_VIEWS:
        raise ValueError(f"view must be one of {ABSTRACT_VIEWS}, got {view!r}")
    sid = work.scopus_id
    url = f"{base_url}/content/abstract/scopus_id/{sid}"
    issn = " ".join(x for x in (work.issn, work.eissn) if x) or None
    coredata: dict[str, Any] = {
        "srctype": _SRCTYPES.get(work.aggregation_type, "j"),
        "prism:issueIdentifier": work.issue,
        "eid": work.eid,
        "prism:pageRange": work.page_range,
        "prism:coverDate": work.cover_date,
        "prism:aggregationType": work.aggregation_type,
        "prism:url": url,
        "subtypeDescription": work.subtype_description,
        "dc:creator": (
            {"author": [_abstract_author(work.authors[0], 1, base_url)]} if work.authors else None
        ),
        "link": [
            {"@_fa": "true", "@rel": "self", "@href": url},
            {
                "@_fa": "true",
                "@rel": "scopus",
                "@href": f"https://www.scopus.com/inward/record.uri?partnerID=HzOxMe3b&scp={sid}&origin=inward",
            },
            {
                "@_fa": "true",
                "@rel": "scopus-citedby",
                "@href": f"https://www.scopus.com/inward/citedby.uri?partnerID=HzOxMe3b&scp={sid}&origin=inward",
            },
        ],
        "prism:publicationName": work.publication_name,
        "source-id": work.source_id,
        "citedby-count": work.cited_by,
        "prism:volume": work.volume,
        "subtype": work.subtype,
        "dc:title": work.title,
        "openaccess": work.openaccess,
        "openaccessFlag": work.openaccess != "0",
        "prism:issn": issn,
        "prism:doi": work.doi,
        "pubmed-id": work.pubmed_id,
        "dc:identifier": f"SCOPUS_ID:{sid}",
    }
    if view != "META":
        coredata["dc:description"] = work.description
    body: dict[str, Any] = {}
    if view == "FULL":
        body["affiliation"] = [
            {
                "@id": aff["afid"],
                "@href": f"{base_url}/content/affiliation/affiliation_id/{aff['afid']}",
                "affilname": aff.get("affilname"),
                "affiliation-city": aff.get("affiliation-city"),
                "affiliation-country": aff.get("affiliation-country"),
            }
            for aff in work.affiliations
        ] or None
    body["coredata"] = coredata
    if view == "FULL":
        keywords = [k.strip() for k in (work.authkeywords or "").split("|") if k.strip()]
        body["idxterms"] = None
        body["language"] = {"@xml:lang": work.language}
        body["authkeywords"] = (
            {"author-keyword": [{"@_fa": "true", "$": k} for k in keywords]} if keywords else None
        )
        body["subject-areas"] = {
            "subject-area": [
                {"@_fa": "true", "$": label, "@code": code, "@abbrev": abbrev}
                for code, abbrev, label in work.subject_areas
            ]
        }
        body["authors"] = (
            {"author": [_abstract_author(a, i, base_url) for i, a in enumerate(work.authors, start=1)]}
            if work.authors
            else None
        )
    response = {"abstracts-retrieval-response": body}
    return _singletons(response, _ABSTRACT_SINGLETONS) if singletons_as_objects else response


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored work with what the query language and sorting need, precomputed."""

    work: ScopusWork
    eid: str
    doi: str | None
    pubyear: int
    cover_ordinal: int
    load_day: date
    orig_load_day: date
    afids: frozenset[str]
    authids: frozenset[str]
    issns: frozenset[str]
    subject_abbrevs: frozenset[str]
    creator: str
    cited_by: int
    texts: dict[str, tuple[str, str]]  # part -> (lower-cased, loose)


def _make_entry(work: ScopusWork) -> _Entry:
    def part(*values: str | None) -> tuple[str, str]:
        text = "\x00".join(v for v in values if v)
        return text.lower(), _loose(text)

    affs = work.affiliations
    keywords = " \x00".join(k.strip() for k in (work.authkeywords or "").split("|"))
    texts = {
        "title": part(work.title),
        "abstract": part(work.description),
        "keywords": part(keywords),
        "authors": part(
            *(
                " ".join(str(x) for x in (a.get("given-name"), a["surname"], _authname(a)) if x)
                for a in work.authors
            )
        ),
        "surnames": part(*(a["surname"] for a in work.authors)),
        "affilorg": part(*(a.get("affilname") for a in affs)),
        "affilcity": part(*(a.get("affiliation-city") for a in affs)),
        "affilcountry": part(*(a.get("affiliation-country") for a in affs)),
        "affil": part(
            *(
                " ".join(
                    str(a.get(k))
                    for k in ("affilname", "affiliation-city", "affiliation-country")
                    if a.get(k)
                )
                for a in affs
            )
        ),
        "srctitle": part(work.publication_name),
        "doi": part(work.doi),
    }
    cover = date.fromisoformat(str(work.cover_date))
    assert work.orig_load_date is not None
    return _Entry(
        work=work,
        eid=work.eid.lower(),
        doi=_normalize_doi(work.doi) if work.doi else None,
        pubyear=cover.year,
        cover_ordinal=cover.toordinal(),
        load_day=work.load_date,
        orig_load_day=work.orig_load_date,
        afids=frozenset([a["afid"] for a in affs] + [x for a in work.authors for x in a["afid"]]),
        authids=frozenset(a["authid"] for a in work.authors),
        issns=frozenset(x for x in (work.issn, work.eissn) if x),
        subject_abbrevs=frozenset(abbrev.upper() for _, abbrev, _ in work.subject_areas),
        creator=(work.creator or "").lower(),
        cited_by=int(work.cited_by) if str(work.cited_by).isdigit() else 0,
        texts=texts,
    )


# --------------------------------------------------------------------------------------------
# The query language
# --------------------------------------------------------------------------------------------

Predicate = Callable[[_Entry], bool]


class _QueryError(Exception):
    """A query the API refuses: 400 INVALID_INPUT with `text`."""

    def __init__(self, text: str = _BAD_QUERY) -> None:
        super().__init__(text)
        self.text = text


_TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "ALL": ("title", "abstract", "keywords", "authors", "affil", "srctitle", "doi"),
    "TITLE-ABS-KEY": ("title", "abstract", "keywords"),
    "TITLE-ABS-KEY-AUTH": ("title", "abstract", "keywords", "authors"),
    "TITLE": ("title",),
    "ABS": ("abstract",),
    "KEY": ("keywords",),
    "AUTHKEY": ("keywords",),
    "AUTH": ("authors",),
    "AUTHOR-NAME": ("authors",),
    "AUTHLASTNAME": ("surnames",),
    "AFFIL": ("affil",),
    "AFFILORG": ("affilorg",),
    "AFFILCITY": ("affilcity",),
    "AFFILCOUNTRY": ("affilcountry",),
    "SRCTITLE": ("srctitle",),
}
_ID_FIELDS = frozenset({"DOI", "AF-ID", "AU-ID", "EID", "PMID", "ISSN", "DOCTYPE", "SUBJAREA", "OPENACCESS"})
_COMPARISON_FIELDS = frozenset({"PUBYEAR", "LOAD-DATE", "ORIG-LOAD-DATE"})
_RESTRICTED_FIELDS = frozenset({"INDEXTERMS"})
#: Real Scopus search fields (or functions) this fake refuses rather than silently ignores.
_UNIMPLEMENTED_FIELDS = frozenset(
    {
        "LIMIT-TO", "EXCLUDE", "REF", "REFTITLE", "REFAUTH", "REFSRCTITLE", "REFPUBYEAR", "REFEID",
        "LANGUAGE", "FUND-SPONSOR", "FUND-ACR", "FUND-NO", "FUND-ALL", "CHEM", "CHEMNAME",
        "CASREGNUMBER", "ISBN", "CODEN", "CONF", "CONFNAME", "CONFSPONSORS", "CONFLOC", "EDITOR",
        "PUBLISHER", "SRCTYPE", "SRCID", "EXACTSRCTITLE", "EXACTKEYWORD", "ARTNUM", "VOLUME",
        "ISSUE", "PAGES", "PAGEFIRST", "PAGELAST", "AUTHFIRST", "AUTHCOLLAB", "AU-ID-ORCID", "ORCID",
        "SEQBANK", "SEQNUMBER", "WEBSITE", "ACCESSTYPE", "PUBDATETXT", "PUBSTAGE", "DOCTITLE",
        "MESH", "TRADENAME", "MANUFACTURER", "KEYWORDS", "AFFIL-ID", "RECENT", "SUBJTERMS",
    }
)  # fmt: skip
_OPERATORS = frozenset({"AND", "OR", "NOT"})
_COMPARATORS = {">": ">", "<": "<", "=": "=", "AFT": ">", "BEF": "<", "IS": "="}
_FIELD_NAME_RE = re.compile(r"[A-Za-z][A-Za-z-]*")
_PROXIMITY_RE = re.compile(r"(?i)(W|PRE)/\d+")


class _Token(NamedTuple):
    kind: Literal["(", ")", "word", "phrase", "exact", "end"]
    text: str
    end: int  # position just after the token


class _Lexer:
    """Tokens of a Scopus query, with access to the raw text inside a field's parentheses."""

    _STOP = frozenset(' \t\r\n()"{}<>=')

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip(self, pos: int) -> int:
        while pos < len(self.text) and self.text[pos].isspace():
            pos += 1
        return pos

    def peek(self) -> _Token:
        text = self.text
        pos = self._skip(self.pos)
        if pos >= len(text):
            return _Token("end", "", pos)
        char = text[pos]
        if char in "()":
            return _Token(char, char, pos + 1)  # type: ignore[arg-type]
        if char in "<>=":
            return _Token("word", char, pos + 1)
        if char in '"{':
            close = text.find('"' if char == '"' else "}", pos + 1)
            if close < 0:
                raise _QueryError()
            return _Token("phrase" if char == '"' else "exact", text[pos + 1 : close], close + 1)
        if char == "}":
            raise _QueryError()
        end = pos
        while end < len(text) and text[end] not in self._STOP:
            end += 1
        return _Token("word", text[pos:end], end)

    def next(self) -> _Token:
        token = self.peek()
        self.pos = token.end
        return token

    def next_char(self) -> str:
        """The next non-blank character, without consuming it ("" at the end)."""
        pos = self._skip(self.pos)
        return self.text[pos] if pos < len(self.text) else ""

    def group(self) -> str:
        """Consume ``( ... )`` and return what is inside (parentheses balanced, quotes honoured)."""
        pos = self._skip(self.pos)
        if pos >= len(self.text) or self.text[pos] != "(":
            raise _QueryError()
        depth, i, quote = 0, pos, ""
        while i < len(self.text):
            char = self.text[i]
            if quote:
                if char == quote:
                    quote = ""
            elif char == '"':
                quote = '"'
            elif char == "{":
                quote = "}"
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    self.pos = i + 1
                    return self.text[pos + 1 : i]
            i += 1
        raise _QueryError()


class _Parser:
    """Recursive descent over Scopus' precedence: AND NOT < AND < OR (OR binds tightest).

    At the top level (`field` None) a word followed by ``(`` is a field function and a bare term
    searches ALL; inside a text field's parentheses every term searches that field.
    """

    def __init__(self, text: str, text_field: str | None = None) -> None:
        self.lexer = _Lexer(text)
        self.field = text_field

    def parse(self) -> Predicate:
        if self.lexer.peek().kind == "end":
            raise _QueryError()
        predicate = self._and_not()
        if self.lexer.peek().kind != "end":
            raise _QueryError()
        return predicate

    def _is_op(self, token: _Token, name: str) -> bool:
        return token.kind == "word" and token.text.upper() == name

    def _and_not(self) -> Predicate:
        left = self._and()
        excluded: list[Predicate] = []
        while True:
            saved = self.lexer.pos
            token = self.lexer.peek()
            if not self._is_op(token, "AND"):
                break
            self.lexer.next()
            if not self._is_op(self.lexer.peek(), "NOT"):
                self.lexer.pos = saved
                break
            self.lexer.next()
            excluded.append(self._and())
        if not excluded:
            return left
        return lambda e: left(e) and not any(p(e) for p in excluded)

    def _and(self) -> Predicate:
        parts = [self._or()]
        while True:
            saved = self.lexer.pos
            token = self.lexer.peek()
            if self._is_op(token, "AND"):
                self.lexer.next()
                if self._is_op(self.lexer.peek(), "NOT"):
                    self.lexer.pos = saved
                    break
                parts.append(self._or())
            elif token.kind in ("(", "phrase", "exact") or (
                token.kind == "word" and token.text.upper() not in _OPERATORS
            ):
                parts.append(self._or())  # juxtaposition: AND
            else:
                break
        if len(parts) == 1:
            return parts[0]
        return lambda e: all(p(e) for p in parts)

    def _or(self) -> Predicate:
        parts = [self._unary()]
        while self._is_op(self.lexer.peek(), "OR"):
            self.lexer.next()
            parts.append(self._unary())
        if len(parts) == 1:
            return parts[0]
        return lambda e: any(p(e) for p in parts)

    def _unary(self) -> Predicate:
        token = self.lexer.next()
        if token.kind == "(":
            inner = self._and_not()
            if self.lexer.next().kind != ")":
                raise _QueryError()
            return inner
        if token.kind in ("phrase", "exact"):
            return _term(self.field or "ALL", token.kind, token.text)
        if token.kind != "word":
            raise _QueryError()
        word, upper = token.text, token.text.upper()
        if upper in _OPERATORS or word in _COMPARATORS:
            raise _QueryError()
        if _PROXIMITY_RE.fullmatch(word):
            raise _QueryError(f"FakeScopus does not implement the proximity operator {word}")
        if self.field is None:
            if upper in _COMPARISON_FIELDS and self.lexer.next_char() != "(":
                return self._comparison(upper)
            if self.lexer.next_char() == "(" and _FIELD_NAME_RE.fullmatch(word):
                return self._field(upper)
        return _term(self.field or "ALL", "word", word)

    def _field(self, name: str) -> Predicate:
        if name in _RESTRICTED_FIELDS:
            raise _QueryError(_RESTRICTED_FIELD)
        if name in _UNIMPLEMENTED_FIELDS:
            raise _QueryError(f"{_BAD_QUERY}: FakeScopus does not implement the field {name}")
        content = self.lexer.group()
        if name in _TEXT_FIELDS:
            return _Parser(content, name).parse()
        if name in _ID_FIELDS:
            return _id_predicate(name, content)
        raise _QueryError()

    def _comparison(self, name: str) -> Predicate:
        op_token = self.lexer.next()
        op = _COMPARATORS.get(op_token.text.upper()) if op_token.kind == "word" else None
        value = self.lexer.next()
        if op is None or value.kind != "word":
            raise _QueryError()
        if name == "PUBYEAR":
            if not _YEAR_RE.fullmatch(value.text):
                raise _QueryError()
            year = int(value.text)
            return _compare(op, year, lambda e: e.pubyear)
        if not _DAY_RE.fullmatch(value.text):
            raise _QueryError()
        try:
            day = datetime.strptime(value.text, "%Y%m%d").date()
        except ValueError:
            raise _QueryError() from None
        if name == "LOAD-DATE":
            return _compare(op, day, lambda e: e.load_day)
        return _compare(op, day, lambda e: e.orig_load_day)


def _compare(op: str, bound: Any, get: Callable[[_Entry], Any]) -> Predicate:
    if op == ">":
        return lambda e: get(e) > bound
    if op == "<":
        return lambda e: get(e) < bound
    return lambda e: get(e) == bound


def _term(text_field: str, kind: str, text: str) -> Predicate:
    parts = _TEXT_FIELDS[text_field]
    if kind == "exact":
        needle = text.lower()
        if not needle.strip():
            raise _QueryError()
        return lambda e: any(needle in e.texts[p][0] for p in parts)
    if _PROXIMITY_RE.fullmatch(text):
        raise _QueryError(f"FakeScopus does not implement the proximity operator {text}")
    if "*" in text or "?" in text:
        if not _loose(re.sub(r"[*?]", "", text)):
            raise _QueryError()
        pattern = "".join(
            r"\w*" if piece == "*" else r"\w" if piece == "?" else re.escape(_loose(piece))
            for piece in re.split(r"([*?])", text)
        )
        regex = re.compile(pattern)
        return lambda e: any(regex.search(e.texts[p][1]) is not None for p in parts)
    needle = _loose(text)
    if not needle:
        raise _QueryError()
    return lambda e: any(needle in e.texts[p][1] for p in parts)


def _id_predicate(name: str, content: str) -> Predicate:
    """``DOI(a OR b)``, ``AF-ID(1 AND 2)``: exact values; OR binds tighter than AND."""
    tokens = re.findall(r'"[^"]*"|\{[^}]*\}|\S+', content)
    if not tokens:
        raise _QueryError()
    groups: list[list[str]] = [[]]
    expect_value = True
    for token in tokens:
        upper = token.upper()
        if upper in ("AND", "OR"):
            if expect_value:
                raise _QueryError()
            if upper == "AND":
                groups.append([])
            expect_value = True
            continue
        if not expect_value:  # juxtaposition: AND
            groups.append([])
        value = token[1:-1] if token[:1] in '"{' else token
        if not value.strip() or value.count("(") != value.count(")"):
            raise _QueryError()
        groups[-1].append(value.strip())
        expect_value = False
    if expect_value:
        raise _QueryError()
    matchers = [[_id_matcher(name, v) for v in group] for group in groups]
    return lambda e: all(any(m(e) for m in group) for group in matchers)


def _id_matcher(name: str, value: str) -> Predicate:
    if name == "DOI":
        doi = _normalize_doi(value)
        return lambda e: e.doi == doi
    if name == "AF-ID":
        return lambda e: value in e.afids
    if name == "AU-ID":
        return lambda e: value in e.authids
    if name == "EID":
        eid = value.lower()
        return lambda e: e.eid == eid
    if name == "PMID":
        return lambda e: e.work.pubmed_id == value
    if name == "ISSN":
        try:
            issn = _normalize_issn(value)
        except ValueError:
            raise _QueryError() from None
        return lambda e: issn in e.issns
    if name == "DOCTYPE":
        subtype = value.lower()
        return lambda e: e.work.subtype.lower() == subtype
    if name == "SUBJAREA":
        abbrev = value.upper()
        return lambda e: abbrev in e.subject_abbrevs
    if value not in ("0", "1"):  # OPENACCESS
        raise _QueryError()
    wanted = value == "1"
    return lambda e: (e.work.openaccess != "0") == wanted


def compile_query(query: str) -> Predicate:
    """Compile a Scopus advanced-search query into a predicate over stored entries; raises
    ValueError (with the API's statusText) when the API would answer 400."""
    try:
        return _Parser(query).parse()
    except _QueryError as err:
        raise ValueError(err.text) from None


# --------------------------------------------------------------------------------------------
# Sorting and cursors
# --------------------------------------------------------------------------------------------

#: Every sort field the Scopus Search API accepts, and the subset implemented (None = default order).
SORT_FIELDS: tuple[str, ...] = (
    "artnum", "citedby-count", "coverDate", "creator", "orig-load-date", "pagecount", "pagefirst",
    "pageRange", "publicationName", "pubyear", "relevancy", "volume",
)  # fmt: skip
_SORT_KEYS: dict[str, Callable[[_Entry], int | str] | None] = {
    "citedby-count": lambda e: e.cited_by,
    "coverDate": lambda e: e.cover_ordinal,
    "creator": lambda e: e.creator,
    "orig-load-date": lambda e: e.orig_load_day.toordinal(),
    "publicationName": lambda e: e.work.publication_name.lower(),
    "pubyear": lambda e: e.pubyear,
    "relevancy": None,
}
_SORT_NAMES = {name.lower(): name for name in SORT_FIELDS}


@functools.total_ordering
class _Desc:
    """Reverses the order of a string inside a sort key."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __hash__(self) -> int:
        return hash(self.value)


SortSpec = tuple[tuple[str, bool], ...]  # (field, descending)


def _parse_sort(raw: str | None) -> SortSpec:
    if raw is None or not raw.strip():
        return ()
    spec: list[tuple[str, bool]] = []
    pieces = raw.split(",")
    if len(pieces) > 3:
        raise _ApiError(400, service_error("INVALID_INPUT", "At most three sort fields may be specified"))
    for raw_piece in pieces:
        piece = raw_piece.strip()  # an unencoded '+' arrives as a space: ascending either way
        descending = piece.startswith("-")
        name = piece[1:] if piece[:1] in "+-" else piece
        canonical = _SORT_NAMES.get(name.lower())
        if canonical is None:
            raise _ApiError(400, service_error("INVALID_INPUT", f"Invalid sort field: {name}"))
        if canonical not in _SORT_KEYS:
            raise _ApiError(
                400,
                service_error(
                    "INVALID_INPUT",
                    f"Sort field {canonical} is valid on Scopus but FakeScopus does not implement it",
                ),
            )
        if _SORT_KEYS[canonical] is not None:
            spec.append((canonical, descending))
    return tuple(spec)


def _sort_key_function(spec: SortSpec) -> Callable[[_Entry], tuple[Any, ...]]:
    getters: list[Callable[[_Entry], Any]] = []
    for name, descending in spec:
        get = _SORT_KEYS[name]
        assert get is not None
        getters.append(_reversed(get, text=name in ("creator", "publicationName")) if descending else get)
    return lambda e: (*(g(e) for g in getters), e.eid)


def _reversed(get: Callable[[_Entry], int | str], *, text: bool) -> Callable[[_Entry], Any]:
    if text:
        return lambda e: _Desc(str(get(e)))
    return lambda e: -int(get(e))


@dataclass(frozen=True)
class _Selection:
    entries: list[_Entry]
    keys: list[tuple[Any, ...]]


@dataclass(frozen=True)
class _CursorState:
    sort: SortSpec
    after: tuple[Any, ...] | None  # sort key of the last entry served; None: from the start


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

FaultKind = Literal[
    "canned", "html", "truncate", "reset", "slow_drip", "server_error", "quota_exceeded", "throttle"
]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one request; build it with the class methods.

    The `kind` is also the key under which `FaultPlan.served` counts it. ``canned``, ``html``,
    ``server_error``, ``quota_exceeded`` and ``throttle`` answer without processing the request
    (no quota is used); ``truncate``, ``reset`` and ``slow_drip`` mangle the real response (the
    request was processed and counted against the quota).
    """

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fraction: float = 0.0
    bytes_per_second: float = 1.0
    retry_after: int | float | str | datetime | None = None

    @classmethod
    def canned(cls, status: int = 503, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Fault:
        """Answer with exactly this status, headers and body. A Content-Type of text/plain is
        added for a non-empty body unless `headers` sets one, and `FaultPlan.retry_after` is
        added to a 429 or 503 that has no Retry-After."""
        return cls("canned", status=status, headers=tuple((headers or {}).items()), body=body)

    @classmethod
    def html(cls, status: int = 200) -> Fault:
        """Answer with `HTML_ERROR_PAGE` as ``text/html`` (an error page with status 200,
        research-software-directory#420)."""
        return cls("html", status=status, headers=(("Content-Type", "text/html; charset=utf-8"),))

    @classmethod
    def truncate(cls, fraction: float = 0.6) -> Fault:
        """Serve the normal JSON cut at `fraction` of its bytes with a matching Content-Length
        (gzipped after the cut when the client accepts gzip): valid HTTP, broken JSON."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("truncate", fraction=fraction)

    @classmethod
    def reset(cls, fraction: float = 0.0) -> Fault:
        """Send the headers (full Content-Length), then `fraction` of the body, then close the
        connection; httpx raises a `httpx.RemoteProtocolError` (a TransportError)."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("reset", fraction=fraction)

    @classmethod
    def slow_drip(cls, bytes_per_second: float = 1.0) -> Fault:
        """Send the headers at once, then the body at `bytes_per_second`. Every read makes
        progress, so only a total deadline catches it. `FakeScopus.stop` interrupts a drip."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        return cls("slow_drip", bytes_per_second=bytes_per_second)

    @classmethod
    def server_error(
        cls, status: int = 503, retry_after: int | float | str | datetime | None = None
    ) -> Fault:
        """A 500 (Elsevier's ``GENERAL_SYSTEM_ERROR`` service-error JSON) or a 502/503/504
        (the gateway's HTML page), with ``Retry-After`` from `retry_after` (seconds, rounded up;
        an aware `datetime` as an HTTP date; a string verbatim) or else `FaultPlan.retry_after`."""
        if status not in (500, 502, 503, 504):
            raise ValueError("status must be 500, 502, 503 or 504")
        return cls("server_error", status=status, retry_after=retry_after)

    @classmethod
    def quota_exceeded(cls) -> Fault:
        """The weekly-quota 429 (``X-ELS-Status: QUOTA_EXCEEDED - Quota Exceeded`` and the key's
        real ``X-RateLimit-Reset``), whatever the quota says. The quota is not changed."""
        return cls("quota_exceeded", status=429)

    @classmethod
    def throttle(cls) -> Fault:
        """The throttling 429: bare (no ``X-ELS-*`` or rate headers, empty body). Not recorded
        in `FakeScopus.violations` (the client did nothing wrong)."""
        return cls("throttle", status=429)


@dataclass
class FaultPlan:
    """Misbehaviour on demand. Thread-safe, deterministic, and every fault served is counted in
    `served` (a Counter keyed by fault kind or flag name).

    Per-request faults (queued; each is used by exactly one request, then normal service
    resumes): `next_responses`, `on_request`, `truncate_next`, `reset_next`, `html_next`,
    `slow_drip_next`, `server_error_next`, `quota_exceeded_next`, `throttle_next`, or `queue`
    for any `Fault`. A fault scheduled with `on_request(k)` wins over the queue for request k;
    a queued fault goes to the next request that has no scheduled fault. Requests are counted
    from 0 over the server's whole life, any path. A request refused before the fault step (401,
    a real throttling or quota 429, an unknown path) takes no fault: a queued one waits for the
    next request, a scheduled one is lost.

    Standing flags (set the attribute; they apply until `reset`):

    * `retry_after` (catalogue #8): seconds (rounded up) or an HTTP date (an aware `datetime`,
      or a string sent verbatim), added as ``Retry-After`` to every throttling 429, to canned
      429/503 faults without one, and to server errors without their own.
    * `duplicate_across_pages` (DOAJ/doaj#712, catalogue #6): every page after the first
      (offset or cursor) starts with the last entry of the previous page again. Counted per page.
    * `stuck_cursor` (coneda/kor#55, catalogue #5): ``@next`` repeats the cursor that was sent,
      so following it serves the same page forever. Counted per page.
    * `gzip_without_header` (metha, catalogue #11): bodies of normal responses are gzipped but
      sent without Content-Encoding. Counted per response.

    `reset()` clears the queue, the schedule, all flags and `served`.
    """

    retry_after: int | float | str | datetime | None = None
    duplicate_across_pages: bool = False
    stuck_cursor: bool = False
    gzip_without_header: bool = False
    served: Counter[str] = field(default_factory=Counter)
    _queue: deque[Fault] = field(default_factory=deque, repr=False)
    _scheduled: dict[int, Fault] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def queue(self, fault: Fault, n: int = 1) -> None:
        """Give `fault` to each of the next `n` requests (after any already queued)."""
        with self._lock:
            self._queue.extend([fault] * n)

    def next_responses(
        self,
        n: int = 1,
        status: int = 503,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """The next `n` requests get this canned response (`Fault.canned`)."""
        self.queue(Fault.canned(status, headers, body), n)

    def on_request(
        self,
        k: int,
        fault: Fault | None = None,
        *,
        status: int = 503,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        """The k-th request (0-based, counting every request the server ever received) gets
        `fault`, or by default a canned response with `status`/`headers`/`body`."""
        with self._lock:
            self._scheduled[k] = fault if fault is not None else Fault.canned(status, headers, body)

    def truncate_next(self, n: int = 1, fraction: float = 0.6) -> None:
        """The next `n` responses are cut at `fraction` with a matching Content-Length."""
        self.queue(Fault.truncate(fraction), n)

    def reset_next(self, n: int = 1, fraction: float = 0.0) -> None:
        """The next `n` connections are closed after the headers (and `fraction` of the body)."""
        self.queue(Fault.reset(fraction), n)

    def html_next(self, n: int = 1, status: int = 200) -> None:
        """The next `n` requests get an HTML error page with `status`."""
        self.queue(Fault.html(status), n)

    def slow_drip_next(self, n: int = 1, bytes_per_second: float = 1.0) -> None:
        """The next `n` bodies are dripped at `bytes_per_second`."""
        self.queue(Fault.slow_drip(bytes_per_second), n)

    def server_error_next(
        self, n: int = 1, status: int = 503, retry_after: int | float | str | datetime | None = None
    ) -> None:
        """The next `n` requests get a 500/502/503/504 (`Fault.server_error`)."""
        self.queue(Fault.server_error(status, retry_after), n)

    def quota_exceeded_next(self, n: int = 1) -> None:
        """The next `n` requests get the weekly-quota 429 (`Fault.quota_exceeded`)."""
        self.queue(Fault.quota_exceeded(), n)

    def throttle_next(self, n: int = 1) -> None:
        """The next `n` requests get the bare throttling 429 (`Fault.throttle`)."""
        self.queue(Fault.throttle(), n)

    @property
    def pending(self) -> int:
        """Number of per-request faults not served yet (queued plus scheduled)."""
        with self._lock:
            return len(self._queue) + len(self._scheduled)

    def reset(self) -> None:
        """Clear everything: queued and scheduled faults, all flags, and the `served` counts."""
        with self._lock:
            self._queue.clear()
            self._scheduled.clear()
            self.served.clear()
            self.retry_after = None
            self.duplicate_across_pages = False
            self.stuck_cursor = False
            self.gzip_without_header = False

    def retry_after_header(self, value: int | float | str | datetime | None = None) -> str | None:
        """`value` (or else `retry_after`) as a Retry-After value (delta-seconds or IMF-fixdate)."""
        value = self.retry_after if value is None else value
        if value is None:
            return None
        if isinstance(value, datetime):
            return email.utils.format_datetime(_utc(value, "retry_after"), usegmt=True)
        if isinstance(value, int | float):
            return str(max(0, math.ceil(value)))
        return value

    def _take(self, index: int) -> Fault | None:
        with self._lock:
            fault = self._scheduled.pop(index, None)
            if fault is None and self._queue:
                fault = self._queue.popleft()
            if fault is not None:
                self.served[fault.kind] += 1
            return fault

    def _count(self, name: str) -> None:
        with self._lock:
            self.served[name] += 1


# --------------------------------------------------------------------------------------------
# Keys, quotas and logs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPlan:
    """What one API key may do. `limit`/`remaining`/`reset_at` are its weekly Scopus Search
    quota, `abstract_*` its Abstract Retrieval quota (`remaining` defaults to the limit,
    `reset_at` to 7 days after the server is built; `reset_at` must be timezone-aware).
    `cursor_entitled`/`complete_entitled`: None means the server's setting."""

    limit: int = SEARCH_QUOTA
    remaining: int | None = None
    reset_at: datetime | None = None
    abstract_limit: int = ABSTRACT_QUOTA
    abstract_remaining: int | None = None
    abstract_reset_at: datetime | None = None
    cursor_entitled: bool | None = None
    complete_entitled: bool | None = None


@dataclass
class QuotaState:
    """A key's live quota for one API (a copy when returned by `FakeScopus.quota`)."""

    limit: int
    remaining: int
    reset_at: datetime


class RequestLogEntry(NamedTuple):
    """One request as the server saw it: method, path (undecoded), query parameters (decoded,
    every value of a repeated key kept), request headers (names lower-cased) and the HTTP
    status it answered with (the status line sent, also for faults)."""

    method: str
    path: str
    params: dict[str, list[str]]
    headers: dict[str, str]
    status: int


class _Reply(NamedTuple):
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    fault: Fault | None = None


class _ApiError(Exception):
    """A finished error response (service-error JSON) raised from inside request handling."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class _Caller:
    key: str
    api: Api
    cursor_entitled: bool
    complete_entitled: bool
    key_params: tuple[tuple[str, str], ...]  # apiKey/insttoken as sent in the URL (echoed in links)


_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


class FakeScopus(Served):
    """A local Elsevier Scopus API over real HTTP, with `faults` to misbehave on demand.

    Parameters:
        works: initial works (a later one replaces an earlier one with the same EID).
        api_keys: the valid keys, each with the default `KeyPlan`, or a mapping key -> `KeyPlan`.
        inst_tokens: the valid institution tokens (``X-ELS-Insttoken``); one grants the cursor
            and COMPLETE entitlements.
        cursor_entitled: whether keys may use ``cursor`` (else 403 "Use of the cursor parameter
            is restricted", NLeSC/litstudy#100).
        complete_entitled: whether keys may use the COMPLETE view or ask ``field=`` for its
            fields (else 403 AUTHORIZATION_ERROR).
        max_rate: requests per second per key and API before a bare 429 (Elsevier: 9).
        singletons_as_objects: render one-element ``author``, ``affiliation``, ``afid``,
            ``link`` (and in Abstract Retrieval ``subject-area``, ``author-keyword``) lists as
            the object itself, as the real XML-to-JSON conversion does.
        reset_style: how ``X-RateLimit-Reset`` is written: ``"epoch"`` seconds, ``"epoch_ms"``
            or ``"date"`` (an HTTP date).
        now: the wall clock for quota resets (default: the real UTC time); must return aware
            datetimes. Throttling uses the monotonic clock.

    Attributes (besides the parameters, which can be changed while serving):
        url: ``http://127.0.0.1:PORT``, valid after `start`, stable across stop/start.
        requests: a `RequestLogEntry` per answered request, in order.
        faults: the `FaultPlan`.
        violations: one line per request over `max_rate` (answered with a bare 429 while
            `enforce_rate` is true, else only recorded).
        key_in_url: the path and query of every request that carried ``apiKey``/``insttoken``
            in its URL.
        empty_result: the shape of an empty page (see the module docstring).
        compress: gzip bodies for clients that accept gzip (default True).
        latency: seconds each processed request waits before it is answered (default 0).
        internal_errors: exceptions raised while handling a request (answered 500).
    """

    def __init__(
        self,
        works: Iterable[ScopusWork] = (),
        *,
        api_keys: Mapping[str, KeyPlan] | Iterable[str] = ("test-key",),
        inst_tokens: Iterable[str] = (),
        cursor_entitled: bool = True,
        complete_entitled: bool = True,
        max_rate: float = 9.0,
        singletons_as_objects: bool = False,
        reset_style: ResetStyle = "epoch",
        now: Callable[[], datetime] | None = None,
    ) -> None:
        if max_rate <= 0:
            raise ValueError("max_rate must be positive")
        if reset_style not in ("epoch", "epoch_ms", "date"):
            raise ValueError("reset_style must be 'epoch', 'epoch_ms' or 'date'")
        self._now = now or (lambda: datetime.now(UTC))
        plans = dict(api_keys) if isinstance(api_keys, Mapping) else {k: KeyPlan() for k in api_keys}
        self.key_plans: dict[str, KeyPlan] = plans
        self.inst_tokens: set[str] = set(inst_tokens)
        self.cursor_entitled = cursor_entitled
        self.complete_entitled = complete_entitled
        self.max_rate = max_rate
        self.enforce_rate = True
        self.rate_slack = 0.01
        self.singletons_as_objects = singletons_as_objects
        self.reset_style: ResetStyle = reset_style
        self.empty_result: Literal["error_entry", "no_entry_key", "empty_list"] = "error_entry"
        self.compress = True
        self.latency = 0.0
        self.faults = FaultPlan()
        self.requests: list[RequestLogEntry] = []
        self.violations: list[str] = []
        self.key_in_url: list[str] = []
        self.internal_errors: list[BaseException] = []
        self.url = ""

        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._by_doi: dict[str, str] = {}
        self._by_pmid: dict[str, str] = {}
        self._generation = 0
        self._selections: OrderedDict[tuple[Any, ...], _Selection] = OrderedDict()
        self._compiled: OrderedDict[str, Predicate] = OrderedDict()
        self._cursors: dict[str, _CursorState] = {}
        self._random = random.Random(20240601)
        self._request_count = 0
        self._limits_lock = threading.Lock()
        self._buckets: dict[tuple[str, Api], tuple[float, float]] = {}
        self._quotas: dict[tuple[str, Api], QuotaState] = {}
        for key, plan in plans.items():
            self._init_quotas(key, plan)
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopping = threading.Event()
        for work in works:
            self._store(work)

    # ---- lifecycle ----------------------------------------------------------------------

    def _make_server(self, address: tuple[str, int]) -> _HttpServer:
        return _HttpServer(address, self)

    # ---- content and state --------------------------------------------------------------

    def put(self, work: ScopusWork) -> None:
        """Add `work`, or replace the work with the same EID (e.g. a reload with a new
        `load_date`). Offset pages and cursors see the change from their next request."""
        with self._lock:
            self._store(work)

    def get(self, eid: str) -> ScopusWork | None:
        """The stored work with this EID, or None."""
        with self._lock:
            entry = self._entries.get(eid.lower())
            return entry.work if entry is not None else None

    @property
    def works(self) -> list[ScopusWork]:
        """All stored works, in EID order."""
        with self._lock:
            return [self._entries[k].work for k in sorted(self._entries)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def expire_cursors(self) -> None:
        """Every cursor issued so far becomes unknown (a 400); ``cursor=*`` still works."""
        with self._lock:
            self._cursors.clear()

    def add_key(self, key: str, plan: KeyPlan | None = None) -> None:
        """Make `key` valid (with `plan`, default `KeyPlan()`), resetting its quotas."""
        plan = plan or KeyPlan()
        with self._limits_lock:
            self.key_plans[key] = plan
            self._init_quotas(key, plan)

    def quota(self, key: str, api: Api = "search") -> QuotaState:
        """A copy of `key`'s current quota for `api` (after any weekly reset that is due)."""
        with self._limits_lock:
            return replace(self._quota_state(key, api))

    def set_quota(
        self,
        key: str,
        api: Api = "search",
        *,
        remaining: int | None = None,
        reset_at: datetime | None = None,
        limit: int | None = None,
    ) -> None:
        """Change `key`'s live quota for `api` (e.g. ``remaining=0`` for an exhausted key)."""
        with self._limits_lock:
            state = self._quotas[(key, api)]
            if limit is not None:
                state.limit = limit
            if remaining is not None:
                state.remaining = remaining
            if reset_at is not None:
                state.reset_at = _utc(reset_at, "reset_at")

    # ---- internals: storage -------------------------------------------------------------

    def _store(self, work: ScopusWork) -> None:
        entry = _make_entry(work)
        old = self._entries.get(entry.eid)
        if old is not None:
            if old.doi:
                self._by_doi.pop(old.doi, None)
            if old.work.pubmed_id:
                self._by_pmid.pop(old.work.pubmed_id, None)
        self._entries[entry.eid] = entry
        if entry.doi:
            self._by_doi[entry.doi] = entry.eid
        if work.pubmed_id:
            self._by_pmid[work.pubmed_id] = entry.eid
        self._generation += 1
        self._selections.clear()

    def _compile(self, query: str) -> Predicate:
        with self._lock:
            predicate = self._compiled.get(query)
            if predicate is not None:
                self._compiled.move_to_end(query)
                return predicate
        try:
            predicate = _Parser(query).parse()
        except _QueryError as err:
            raise _ApiError(400, service_error("INVALID_INPUT", err.text)) from None
        with self._lock:
            self._compiled[query] = predicate
            if len(self._compiled) > 256:
                self._compiled.popitem(last=False)
        return predicate

    def _select(
        self, query: str, sort: SortSpec, years: tuple[int, int] | None, subj: str | None
    ) -> _Selection:
        """The entries a search selects, sorted, with their sort keys (cached until a `put`)."""
        predicate = self._compile(query)
        with self._lock:
            cache_key = (query, sort, years, subj, self._generation)
            found = self._selections.get(cache_key)
            if found is not None:
                return found
            entries = [e for e in self._entries.values() if predicate(e)]
            if years is not None:
                entries = [e for e in entries if years[0] <= e.pubyear <= years[1]]
            if subj is not None:
                entries = [e for e in entries if subj in e.subject_abbrevs]
            key = _sort_key_function(sort)
            keyed = sorted(((key(e), e) for e in entries), key=lambda pair: pair[0])
            selection = _Selection([e for _, e in keyed], [k for k, _ in keyed])
            self._selections[cache_key] = selection
            if len(self._selections) > 16:
                self._selections.popitem(last=False)
            return selection

    # ---- internals: keys, quotas, throttling --------------------------------------------

    def _init_quotas(self, key: str, plan: KeyPlan) -> None:
        default_reset = _utc(self._now(), "now()") + QUOTA_PERIOD
        for api, limit, remaining, reset_at in (
            ("search", plan.limit, plan.remaining, plan.reset_at),
            ("abstract", plan.abstract_limit, plan.abstract_remaining, plan.abstract_reset_at),
        ):
            self._quotas[(key, api)] = QuotaState(  # type: ignore[index]
                limit=limit,
                remaining=limit if remaining is None else remaining,
                reset_at=default_reset if reset_at is None else _utc(reset_at, "reset_at"),
            )

    def _quota_state(self, key: str, api: Api) -> QuotaState:
        """The live state, after applying any weekly reset that is due. Hold `_limits_lock`."""
        state = self._quotas[(key, api)]
        now = _utc(self._now(), "now()")
        if now >= state.reset_at:
            periods = (now - state.reset_at) // QUOTA_PERIOD + 1
            state.reset_at += periods * QUOTA_PERIOD
            state.remaining = state.limit
        return state

    def _reset_header(self, reset_at: datetime) -> str:
        if self.reset_style == "epoch_ms":
            return str((reset_at - _EPOCH) // _MILLISECOND)
        if self.reset_style == "date":
            return email.utils.format_datetime(reset_at, usegmt=True)
        return str(int((reset_at - _EPOCH).total_seconds()))

    def _throttled(self, index: int, path: str, key: str, api: Api) -> bool:
        """Count the request in its (key, api) bucket; True if it must get a bare 429."""
        now = time.monotonic()
        rate = self.max_rate
        with self._limits_lock:
            tokens, stamp = self._buckets.get((key, api), (rate, now))
            tokens = min(rate, tokens + (now - stamp) * rate)
            over = tokens + self.rate_slack * rate < 1.0
            refused = over and self.enforce_rate
            if not refused:
                tokens -= 1.0
            self._buckets[(key, api)] = (tokens, now)
        if over:
            with self._lock:
                self.violations.append(
                    f"throttle: request #{index} (GET {path}) from key {key!r} exceeded "
                    f"{rate:g} requests per second to the {api} API"
                )
        return refused

    # ---- internals: requests ------------------------------------------------------------

    def _arrive(self) -> int:
        with self._lock:
            index = self._request_count
            self._request_count += 1
            return index

    def _log(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self.requests.append(entry)

    def _ids(self) -> list[tuple[str, str]]:
        with self._lock:
            req_id = f"{self._random.getrandbits(64):016x}"
            trans_id = f"{self._random.getrandbits(64):016x}"
        return [("X-ELS-ReqId", req_id), ("X-ELS-TransId", trans_id)]

    def _json_reply(
        self, status: int, body: Any, extra: Iterable[tuple[str, str]] = (), fault: Fault | None = None
    ) -> _Reply:
        headers = [("Content-Type", JSON_CONTENT_TYPE), *self._ids(), *extra]
        return _Reply(status, headers, _dumps(body).encode("utf-8"), fault)

    def _quota_reply(self, key: str, api: Api, fault: Fault | None = None) -> _Reply:
        with self._limits_lock:
            reset_at = self._quota_state(key, api).reset_at
        return self._json_reply(
            429,
            service_error("QUOTA_EXCEEDED", "Quota Exceeded"),
            [("X-ELS-Status", _QUOTA_STATUS), ("X-RateLimit-Reset", self._reset_header(reset_at))],
            fault,
        )

    def _bare_429(self, fault: Fault | None = None) -> _Reply:
        retry_after = self.faults.retry_after_header()
        headers = [("Retry-After", retry_after)] if retry_after is not None else []
        return _Reply(429, headers, b"", fault)

    def _credentials(
        self, params: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[str | None, str | None, tuple[tuple[str, str], ...]]:
        in_url: list[tuple[str, str]] = []
        url_key = url_token = None
        for name, values in params.items():
            if name.lower() == "apikey" and values:
                url_key = values[-1]
                in_url.append((name, values[-1]))
            elif name.lower() == "insttoken" and values:
                url_token = values[-1]
                in_url.append((name, values[-1]))
        key = url_key if url_key is not None else headers.get("x-els-apikey")
        token = url_token if url_token is not None else headers.get("x-els-insttoken")
        return key, token, tuple(in_url)

    def _dispatch(
        self, index: int, target: str, params: dict[str, list[str]], headers: dict[str, str]
    ) -> _Reply:
        split = urlsplit(target)
        path = unquote(split.path)
        route: tuple[Api, str, str] | None = None
        if path.rstrip("/") == SEARCH_PATH:
            route = ("search", "", "")
        elif path.startswith(ABSTRACT_PATH):
            id_type, _, ident = path[len(ABSTRACT_PATH) :].partition("/")
            if id_type in ("scopus_id", "eid", "doi", "pubmed_id") and ident:
                route = ("abstract", id_type, ident)
        key, token, key_params = self._credentials(params, headers)
        if key_params:
            with self._lock:
                self.key_in_url.append(target)
        if route is None:
            return self._json_reply(404, service_error("RESOURCE_NOT_FOUND", _NOT_FOUND))
        api = route[0]
        plan = self.key_plans.get(key) if key is not None else None
        if key is None or plan is None:
            return self._json_reply(401, service_error("AUTHENTICATION_ERROR", _INVALID_KEY))
        if token is not None and token not in self.inst_tokens:
            return self._json_reply(401, service_error("AUTHENTICATION_ERROR", _INVALID_TOKEN))
        if self._throttled(index, split.path, key, api):
            return self._bare_429()
        with self._limits_lock:
            exhausted = self._quota_state(key, api).remaining <= 0
        if exhausted:
            return self._quota_reply(key, api)

        fault = self.faults._take(index)
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "canned":
            reply_headers = list(fault.headers)
            names = {name.lower() for name, _ in reply_headers}
            if fault.body and "content-type" not in names:
                reply_headers.append(("Content-Type", "text/plain; charset=utf-8"))
            retry_after = self.faults.retry_after_header()
            if fault.status in (429, 503) and "retry-after" not in names and retry_after is not None:
                reply_headers.append(("Retry-After", retry_after))
            return _Reply(fault.status, reply_headers, fault.body, fault)
        if fault is not None and kind == "html":
            return _Reply(fault.status, list(fault.headers), HTML_ERROR_PAGE, fault)
        if fault is not None and kind == "server_error":
            return self._server_error(fault)
        if kind == "quota_exceeded":
            return self._quota_reply(key, api, fault)
        if kind == "throttle":
            return self._bare_429(fault)

        granted = token is not None
        caller = _Caller(
            key=key,
            api=api,
            cursor_entitled=granted
            or (plan.cursor_entitled if plan.cursor_entitled is not None else self.cursor_entitled),
            complete_entitled=granted
            or (plan.complete_entitled if plan.complete_entitled is not None else self.complete_entitled),
            key_params=key_params,
        )
        with self._limits_lock:
            state = self._quota_state(key, api)
            state.remaining -= 1
            rate_headers = [
                ("X-RateLimit-Limit", str(state.limit)),
                ("X-RateLimit-Remaining", str(max(0, state.remaining))),
                ("X-RateLimit-Reset", self._reset_header(state.reset_at)),
            ]
        if self.latency > 0:
            self._stopping.wait(self.latency)
        try:
            if api == "search":
                status, body = 200, self._search(params, caller)
            else:
                status, body = 200, self._abstract(route[1], route[2], params)
        except _ApiError as err:
            status, body = err.status, err.body
        extra = [
            ("X-ELS-APIKey", key),
            ("X-ELS-ResourceVersion", "default"),
            *([("X-ELS-Status", "OK")] if status == 200 else []),
            *rate_headers,
            ("allow", "GET"),
        ]
        reply = self._json_reply(status, body, extra, fault)
        payload = reply.body
        if fault is not None and kind == "truncate":
            payload = payload[: int(len(payload) * fault.fraction)]
        reply_headers = reply.headers
        if self.faults.gzip_without_header:
            self.faults._count("gzip_without_header")
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
        elif self.compress and "gzip" in headers.get("accept-encoding", "").lower():
            payload = gzip.compress(payload, compresslevel=1, mtime=0)
            reply_headers = [*reply_headers, ("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        return _Reply(status, reply_headers, payload, fault)

    def _server_error(self, fault: Fault) -> _Reply:
        retry_after = self.faults.retry_after_header(fault.retry_after)
        extra = [("Retry-After", retry_after)] if retry_after is not None else []
        if fault.status == 500:
            body = service_error("GENERAL_SYSTEM_ERROR", "An unexpected system error occurred")
            return self._json_reply(500, body, extra, fault)
        page = _HTML_GATEWAY.format(status=fault.status, reason=_REASONS[fault.status]).encode()
        return _Reply(fault.status, [("Content-Type", "text/html"), *extra], page, fault)

    # ---- internals: Scopus Search -------------------------------------------------------

    def _search(self, params: dict[str, list[str]], caller: _Caller) -> dict[str, Any]:
        last = {name: values[-1] for name, values in params.items() if values}
        query = last.get("query")
        if query is None or not query.strip():
            raise _ApiError(400, service_error("INVALID_INPUT", _BAD_QUERY))
        raw_view = last.get("view")
        view = (raw_view or "STANDARD").upper()
        if view not in MAX_COUNT:
            raise _ApiError(400, service_error("INVALID_INPUT", f"Invalid view parameter: {raw_view}"))
        fields = [f.strip() for v in params.get("field", ()) for f in v.split(",") if f.strip()]
        if not caller.complete_entitled and (
            view == "COMPLETE" or any(f in COMPLETE_ONLY_FIELDS for f in fields)
        ):
            raise _ApiError(403, service_error("AUTHORIZATION_ERROR", _VIEW_RESTRICTED))
        count = _integer(last.get("count"), DEFAULT_COUNT, "count")
        if count > MAX_COUNT[view]:
            raise _ApiError(400, service_error("INVALID_INPUT", _SERVICE_LEVEL))
        cursor = last.get("cursor")
        if cursor is not None:
            if not caller.cursor_entitled:
                raise _ApiError(403, service_error("AUTHORIZATION_ERROR", _CURSOR_RESTRICTED))
            if "start" in last:
                raise _ApiError(
                    400, service_error("INVALID_INPUT", "The cursor and start parameters cannot be combined")
                )
        start = _integer(last.get("start"), 0, "start")
        if cursor is None and start + count > MAX_OFFSET:
            raise _ApiError(400, service_error("INVALID_INPUT", _TOO_DEEP))
        sort = _parse_sort(last.get("sort"))
        years = _years(last.get("date"))
        subj = last["subj"].strip().upper() if last.get("subj", "").strip() else None
        selection = self._select(query, sort, years, subj)
        total = len(selection.entries)

        # Parameters echoed in links, in the API's order.
        extra: list[tuple[str, str]] = [
            (n, last[n]) for n in ("view", "field", "sort", "date", "subj") if n in last
        ]
        extra += list(caller.key_params)
        if cursor is None:
            page_start = start
            if self.faults.duplicate_across_pages and 0 < start < total and count > 0:
                self.faults._count("duplicate_across_pages")
                page_start -= 1
            page = selection.entries[page_start : page_start + count]

            def href(at: int) -> list[tuple[str, str]]:
                return [("start", str(at)), ("count", str(count)), ("query", query), *extra]

            links = [self._link("self", href(start)), self._link("first", href(0))]
            if start > 0:
                links.append(self._link("prev", href(max(0, start - count))))
            if start + count < min(total, MAX_OFFSET) and count > 0:
                links.append(self._link("next", href(start + count)))
            if total > 0:
                links.append(self._link("last", href(max(0, min(total, MAX_OFFSET) - max(count, 1)))))
            cursor_object = None
        else:
            page, next_cursor, start = self._cursor_page(cursor, sort, selection, count)

            def href_cursor(value: str) -> list[tuple[str, str]]:
                return [("cursor", value), ("count", str(count)), ("query", query), *extra]

            links = [self._link("self", href_cursor(cursor)), self._link("first", href_cursor("*"))]
            if start + len(page) < total:
                links.append(self._link("next", href_cursor(next_cursor)))
            cursor_object = {"@current": cursor, "@next": next_cursor}
        results: dict[str, Any] = {
            "opensearch:totalResults": str(total),
            "opensearch:startIndex": str(start),
            "opensearch:itemsPerPage": str(len(page)),
            "opensearch:Query": {
                "@role": "request",
                "@searchTerms": query,
                "@startPage": str(start // count if count else 0),
            },
        }
        if cursor_object is not None:
            results["cursor"] = cursor_object
        results["link"] = links
        if page:
            results["entry"] = [self._render(e.work, view, fields) for e in page]
        elif self.empty_result == "error_entry":
            results["entry"] = [dict(EMPTY_RESULT_ENTRY)]
        elif self.empty_result == "empty_list":
            results["entry"] = []
        return {"search-results": results}

    def _link(self, ref: str, params: list[tuple[str, str]]) -> dict[str, str]:
        return {
            "@_fa": "true",
            "@ref": ref,
            "@href": f"{self.url}{SEARCH_PATH}?{urlencode(params)}",
            "@type": "application/json",
        }

    def _render(self, work: ScopusWork, view: str, fields: list[str]) -> dict[str, Any]:
        if not fields:
            return scopus_entry(
                work, view, base_url=self.url, singletons_as_objects=self.singletons_as_objects
            )
        source_view = "COMPLETE" if any(f in COMPLETE_ONLY_FIELDS for f in fields) else view
        full = scopus_entry(work, source_view, base_url=self.url)
        wanted = set(fields)
        entry: dict[str, Any] = {"@_fa": "true"}
        for key, value in full.items():
            if key in wanted:
                entry[key] = value
            elif key == "affiliation" and wanted.intersection(_AFFILIATION_FIELDS):
                entry[key] = [{k: v for k, v in aff.items() if k == "@_fa" or k in wanted} for aff in value]
        return _singletons(entry, _SEARCH_SINGLETONS) if self.singletons_as_objects else entry

    def _cursor_page(
        self, cursor: str, sort: SortSpec, selection: _Selection, count: int
    ) -> tuple[list[_Entry], str, int]:
        """(page, @next, index of the page's first entry) for `cursor` (search_after)."""
        with self._lock:
            if cursor == "*":
                state = _CursorState(sort, None)
            else:
                found = self._cursors.get(cursor)
                if found is None or found.sort != sort:
                    raise _ApiError(400, service_error("INVALID_INPUT", "Invalid cursor value"))
                state = found
            position = 0 if state.after is None else bisect.bisect_right(selection.keys, state.after)
            if self.faults.duplicate_across_pages and 0 < position < len(selection.entries):
                self.faults._count("duplicate_across_pages")
                position -= 1
            page = selection.entries[position : position + count]
            after = selection.keys[position + len(page) - 1] if page else state.after
            if self.faults.stuck_cursor and cursor != "*":
                self.faults._count("stuck_cursor")
                return page, cursor, position
            token = self._new_cursor(page[-1].work.eid if page else "")
            self._cursors[token] = _CursorState(sort, after)
            return page, token, position

    def _new_cursor(self, eid: str) -> str:
        """An opaque token like Scopus' (base64 of search_after values), always with ``+``,
        ``/`` and ``=`` in it."""
        while True:
            raw = (
                b"\x02\x82"
                + bytes([0x78])
                + _CURSOR_MARK
                + self._random.randbytes(12)
                + f"(2s-{eid}".encode()
            )
            if len(raw) % 3 == 0:
                raw += b"\x00"
            token = base64.b64encode(raw).decode("ascii")
            if token not in self._cursors:
                return token

    # ---- internals: Abstract Retrieval --------------------------------------------------

    def _abstract(self, id_type: str, ident: str, params: dict[str, list[str]]) -> dict[str, Any]:
        raw_view = (params.get("view") or ["META_ABS"])[-1]
        view = raw_view.upper()
        if view in ("REF", "ENTITLED"):
            raise _ApiError(
                400,
                service_error(
                    "INVALID_INPUT", f"View {view} is valid on Scopus but FakeScopus does not implement it"
                ),
            )
        if view not in ABSTRACT_VIEWS:
            raise _ApiError(400, service_error("INVALID_INPUT", f"Invalid view parameter: {raw_view}"))
        with self._lock:
            if id_type == "scopus_id":
                eid = f"2-s2.0-{ident}".lower()
            elif id_type == "eid":
                eid = ident.lower()
            elif id_type == "doi":
                eid = self._by_doi.get(_normalize_doi(ident), "")
            else:
                eid = self._by_pmid.get(ident, "")
            entry = self._entries.get(eid)
        if entry is None:
            raise _ApiError(404, service_error("RESOURCE_NOT_FOUND", _NOT_FOUND))
        return abstract_response(
            entry.work, view, base_url=self.url, singletons_as_objects=self.singletons_as_objects
        )


def _integer(value: str | None, default: int, name: str) -> int:
    if value is None:
        return default
    if not value.strip().isdigit():
        raise _ApiError(400, service_error("INVALID_INPUT", f"Invalid {name} parameter: {value}"))
    return int(value)


def _years(value: str | None) -> tuple[int, int] | None:
    if value is None or not value.strip():
        return None
    match = re.fullmatch(r"\s*(\d{4})\s*(?:-\s*(\d{4})\s*)?", value)
    if match is None:
        raise _ApiError(400, service_error("INVALID_INPUT", f"Invalid date parameter: {value}"))
    first = int(match.group(1))
    return first, int(match.group(2) or first)


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HttpServer(LocalHTTPServer):
    """The shared local server, knowing its FakeScopus."""

    def __init__(self, address: tuple[str, int], scopus: FakeScopus) -> None:
        self.scopus = scopus
        super().__init__(address, _Handler)


class _Handler(KeepAliveHandler):
    """Keep-alive HTTP/1.1 (see :mod:`tests.fake_http`)."""

    server_version = "cloudflare"
    server: _HttpServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        scopus = self.server.scopus
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        index = scopus._arrive()
        try:
            reply = scopus._dispatch(index, self.path, params, headers)
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test
            scopus.internal_errors.append(exc)
            body = f"internal error in FakeScopus: {exc!r}\n".encode()
            reply = _Reply(500, [("Content-Type", "text/plain; charset=utf-8")], body)
        scopus._log(RequestLogEntry("GET", split.path, params, headers, reply.status))
        self._write(reply)

    def _write(self, reply: _Reply) -> None:
        fault = reply.fault
        kind = fault.kind if fault is not None else None
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if fault is not None and kind == "reset":
            self.close_connection = True
            try:
                self.wfile.write(reply.body[: int(len(reply.body) * fault.fraction)])
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault is not None and kind == "slow_drip":
            self._drip(reply.body, fault.bytes_per_second)
        else:
            self.wfile.write(reply.body)

    def _drip(self, body: bytes, bytes_per_second: float) -> None:
        stopping = self.server.scopus._stopping
        chunk = max(1, int(bytes_per_second / 10))
        interval = chunk / bytes_per_second
        for offset in range(0, len(body), chunk):
            if stopping.wait(interval):
                self.close_connection = True
                return
            try:
                self.wfile.write(body[offset : offset + chunk])
            except OSError:
                self.close_connection = True
                return
