"""A real, local Crossref REST API (``/works``) for tests, which can misbehave on demand.

`FakeCrossref` is a `http.server.ThreadingHTTPServer` running in a daemon thread on 127.0.0.1
(a free port). It answers the way api.crossref.org did in 2026 (see
/work/shared/notes/crossref-scopus.md section 1 and the cassettes in
/work/shared/real-world/crossref/, whose shapes it reproduces without reading them), and its
`faults` attribute (a `FaultPlan`) reproduces the fault catalogue at the end of
/work/shared/notes/dedup-reliability.md. Only the standard library is used.

Usage::

    works = [CrossrefWork(work_item(f"10.5555/w{i}", f"Title {i}"), indexed=t0 + i * step) for i in ...]
    with FakeCrossref(works) as server:
        httpx.get(f"{server.url}/works", params={"cursor": "*", "rows": 1000, "mailto": "me@x.org"})
        server.faults.next_responses(1, status=503, headers={"Retry-After": "1"})
        server.requests[-1].params  # {"cursor": ["*"], "rows": ["1000"], "mailto": ["me@x.org"]}

Routes (GET only): ``/works``, ``/members/{id}/works``, ``/prefixes/{prefix}/works``,
``/journals/{issn}/works``, ``/types/{id}/works`` (each also under ``/v1``), ``/works/{doi}`` and
``/types``. Anything else is a 404 ``text/plain`` "Resource not found.", as is an unknown DOI.

Behaviour of the list routes, in short:

* Parameters are validated the way Crossref's cayenne does: every failure is collected and the
  answer is a 400 ``{"status":"failed","message-type":"validation-failure","message":[{type,
  value, message}, ...]}`` with cayenne's wording (``unknown-parameter``, ``integer-not-valid``,
  ``cursor-with-offset-or-sample``, ``filter-not-available`` listing the real 2025 filter names,
  ``select-not-available`` listing the selectable fields, ``date-not-valid``, ...).
* ``rows`` (default 20, at most `max_rows`), ``offset`` (at most 10,000, not with a cursor),
  ``sample`` (at most 100, alone), ``select``, ``sort``/``order``, ``query`` (all terms must occur
  in title, container title, author names or DOI; ``query.bibliographic``, ``query.author`` and
  ``query.container-title`` likewise), ``mailto`` and ``filter``. Repeated ``filter`` or
  ``select`` parameters are joined with commas; for the others the last value counts.
* Filters implemented: ``from-``/``until-index-date``, ``from-``/``until-update-date`` and their
  synonyms ``from-``/``until-deposit-date`` (both compare `CrossrefWork.deposited`), ``prefix``,
  ``member``, ``type``, ``issn``, ``has-abstract`` and ``doi``. Dates are ``YYYY``, ``YYYY-MM`` or
  ``YYYY-MM-DD``, compared by UTC day, inclusive (``until-index-date:2024-05`` includes May 31).
  The same name repeated is OR, different names AND. A filter that api.crossref.org knows but
  this fake does not implement is refused with a 400 whose entry has type
  ``not-implemented-by-fake`` (rather than being silently ignored); so are facets, the other
  field queries and sorts other than score, relevance, indexed, deposited, updated,
  is-referenced-by-count and references-count.
* Default order: (indexed, DOI) ascending, which is also what the cursor scroll uses. A ``sort``
  without ``order`` is descending, as in cayenne.
* Cursors behave like the Elasticsearch scrolls Crossref used in 2026: ``cursor=*`` snapshots the
  selection, sorted, and opens a scroll whose id is a ~1.5 KB base64 string containing ``+``,
  ``/`` and ``==`` padding. **The same id comes back as ``next-cursor`` on every page**, and the
  position lives on the server: each response sent for that id is the next page (so a client
  that retries a request skips a page; a response cut short by a `Fault.truncate`, `Fault.reset`
  or `Fault.slow_drip` still advances it, a canned/HTML/500 fault does not). After the last
  page every request returns empty ``items``. ``rows`` and ``select`` are those of the
  ``cursor=*`` request (a scroll's page size is fixed when it is opened). A scroll expires
  `cursor_ttl` seconds after its last use, or at `expire_cursors`; an unknown or expired id
  gives the 2026 404 ``resource-failure``/``cursor-invalid`` body (cassette
  ``test_cursor_fails_cursor_value``). A cursor with a character outside the base64 alphabet,
  typically a ``+`` that arrived as a space because the client did not URL-encode it, gives a
  500 ``message-type:"exception"`` (CrossRef/rest-api-doc#109/#270, the 2022 rcrossref
  cassette ``cr_works_with_cursor_fails_well``).
* JSON is rendered once per work when it is put (ASCII, ``/`` escaped as ``\\/`` as Crossref
  does); a page is a join of those strings. ``select`` projects the stored item (in item order).
  Bodies are gzipped (Content-Encoding) when the client accepts gzip and `compress` is true.

Pools and limits: a request is in the ``plus`` pool with a valid ``Crossref-Plus-API-Token:
Bearer <plus_token>`` header (any other token is a 401), ``polite`` with a ``mailto=`` parameter
or ``mailto:`` in its User-Agent, else ``public``. Each pool has `PoolLimits` (defaults: the
June 2026 cassettes' public 5/1s concurrency 1 and polite 10/1s concurrency 3; plus 150/1s,
concurrency 10, a guess); the constructor's `rate_limit`/`rate_interval`/`concurrency` set the
limits of the pool named by `pool`, and `set_limits` changes any pool. Every response except a
bare 429, a 401 and canned or HTML faults carries ``x-api-pool``, ``x-rate-limit-limit``,
``x-rate-limit-interval`` and ``x-concurrency-limit`` for the request's pool. The limits are
enforced: a token bucket per pool (capacity ``rate_limit``, refilled at ``rate_limit`` per
interval, so a client that sends at most N requests in any interval, or paces them evenly, never
trips it) and a count of in-flight requests per pool (from arrival until the last write of its
body starts, so a slow drip stays in flight). A request over either limit is recorded in
`violations` and, while `enforce_limits` is true, answered 429 without being processed. Set
`latency` (seconds per request, like Crossref's real response times) to make overlapping
requests, and so concurrency violations, observable.

Large indexes: 100,000 works render in about 1.5 s, and a 1000-row page is built in well under
a millisecond. Building the `CrossrefWork` objects themselves is dominated by Python's cyclic
garbage collector; build them with ``gc.disable()`` (or call ``gc.freeze()`` once the server
holds them) to keep a benchmark's numbers about the harvester.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import email.utils
import gc
import gzip
import json
import math
import random
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import attrgetter
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from tests.fake_http import KeepAliveHandler, LocalHTTPServer, Served

__all__ = [
    "DEFAULT_POOL_LIMITS",
    "EXCEPTION_BODY",
    "HTML_401",
    "HTML_429",
    "HTML_ERROR_PAGE",
    "SELECT_FIELDS",
    "WORK_FILTERS",
    "WORK_TYPES",
    "CrossrefWork",
    "FakeCrossref",
    "Fault",
    "FaultPlan",
    "Pool",
    "PoolLimits",
    "RequestLogEntry",
    "work_item",
]

Pool = Literal["public", "polite", "plus"]
POOLS: tuple[Pool, ...] = ("public", "polite", "plus")

#: Crossref's 2026 API in numbers (cayenne ``query.clj``: max-rows, max-offset, max-sample).
MAX_OFFSET = 10_000
MAX_SAMPLE = 100
DEFAULT_ROWS = 20

#: The body of a 429 as Crossref's proxy sends it (CrossRef/rest-api-doc#159, #237); when it is
#: "bare" (rest-api-doc#226) it comes with no rate-limit headers and ``Connection: close``.
HTML_429 = (
    b"<html><body><h1>429 Too Many Requests</h1>\n"
    b"You have sent too many requests in a given amount of time.\n</body></html>\n"
)
#: The body of a 401 from Crossref's front end (OpenRefine/OpenRefine#1669). What a bad Plus token
#: gets in 2026 is not documented; this is the closest observed 401.
HTML_401 = (
    b"<html><body><h1>401 Unauthorized</h1> You need a valid user and password to access this "
    b"content. </body></html>\n"
)
#: The body `FaultPlan.html_next` serves: a proxy/maintenance page (research-software-directory#420).
HTML_ERROR_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>Service temporarily unavailable</title></head>\n"
    b"<body><h1>Service temporarily unavailable</h1>"
    b"<p>The API is under maintenance.<br>Please try again later.</p></body></html>\n"
)

#: Crossref's answer to a malformed cursor: a 500 with a Clojure/Elasticsearch stack trace
#: (the shape of rcrossref's ``cr_works_with_cursor_fails_well`` cassette, frames abridged).
EXCEPTION_BODY: dict[str, Any] = {
    "status": "error",
    "message-type": "exception",
    "message-version": "1.0.0",
    "message": {
        "name": "class clojure.lang.ExceptionInfo",
        "description": "clojure.lang.ExceptionInfo: Response Exception qbits.spandex.Response@40533e24",
        "message": "Response Exception",
        "stack": [
            "clojure.core$ex_info.invokeStatic(core.clj:4617)",
            "clojure.core$ex_info.invoke(core.clj:4617)",
            "qbits.spandex$response_ex__GT_ex_info.invokeStatic(spandex.clj:218)",
            "qbits.spandex$response_ex__GT_ex_info.invoke(spandex.clj:215)",
            "qbits.spandex$response_listener$reify__12785.onFailure(spandex.clj:251)",
            "org.elasticsearch.client.RestClient$FailureTrackingResponseListener.onDefinitiveFailure"
            "(RestClient.java:605)",
            "org.elasticsearch.client.RestClient$1.completed(RestClient.java:362)",
            "java.base/java.lang.Thread.run(Thread.java:833)",
        ],
        "cause": None,
    },
}

#: ``/types`` (id, label): the work types of the 2024-2026 API; ``type`` filters must be one of these.
WORK_TYPES: tuple[tuple[str, str], ...] = (
    ("book-section", "Book Section"),
    ("monograph", "Monograph"),
    ("report-component", "Report Component"),
    ("report", "Report"),
    ("peer-review", "Peer Review"),
    ("book-track", "Book Track"),
    ("journal-article", "Journal Article"),
    ("book-part", "Part"),
    ("other", "Other"),
    ("book", "Book"),
    ("journal-volume", "Journal Volume"),
    ("book-set", "Book Set"),
    ("reference-entry", "Reference Entry"),
    ("proceedings-article", "Proceedings Article"),
    ("journal", "Journal"),
    ("component", "Component"),
    ("book-chapter", "Book Chapter"),
    ("proceedings-series", "Proceedings Series"),
    ("report-series", "Report Series"),
    ("proceedings", "Proceedings"),
    ("database", "Database"),
    ("standard", "Standard"),
    ("reference-book", "Reference Book"),
    ("posted-content", "Posted Content"),
    ("journal-issue", "Journal Issue"),
    ("dissertation", "Dissertation"),
    ("grant", "Grant"),
    ("dataset", "Dataset"),
    ("book-series", "Book Series"),
    ("edited-book", "Edited Book"),
)
_TYPE_IDS = tuple(type_id for type_id, _ in WORK_TYPES)

#: Every ``/works`` filter name, in the order api.crossref.org listed them in its
#: ``filter-not-available`` message (2025).
WORK_FILTERS: tuple[str, ...] = (
    "until-approved-date", "has-assertion", "from-print-pub-date", "until-deposit-date",
    "from-accepted-date", "has-authenticated-orcid", "from-created-date", "relation.object", "issn",
    "ror-id", "lte-award-amount", "until-online-pub-date", "group-title", "full-text.application",
    "until-created-date", "license.version", "from-deposit-date", "has-abstract", "from-awarded-date",
    "has-event", "from-approved-date", "funder", "assertion-group", "from-online-pub-date",
    "from-issued-date", "directory", "content-domain", "license.url", "reference-visibility",
    "from-index-date", "full-text.version", "full-text.type", "until-posted-date", "has-orcid",
    "has-archive", "type", "has-ror-id", "is-update", "until-event-start-date", "update-type",
    "from-pub-date", "has-license", "funder-doi-asserted-by", "isbn", "has-full-text", "doi", "orcid",
    "has-content-domain", "prefix", "until-event-end-date", "has-funder", "award.funder",
    "clinical-trial-number", "member", "has-domain-restriction", "until-accepted-date",
    "container-title", "license.delay", "from-posted-date", "has-affiliation", "from-update-date",
    "has-award", "until-print-pub-date", "from-event-start-date", "gte-award-amount", "has-funder-doi",
    "until-index-date", "has-update", "until-update-date", "until-issued-date", "until-pub-date",
    "award.number", "has-references", "type-name", "has-relation", "alternative-id", "archive",
    "relation.type", "updates", "relation.object-type", "category-name", "until-awarded-date",
    "has-clinical-trial-number", "assertion", "article-number", "has-update-policy",
    "from-event-end-date",
)  # fmt: skip

#: The ``select`` fields of ``/works`` (the list Crossref gave in rest-api-doc#289/#302, plus
#: ``published``, ``resource`` and ``contributor``, which later versions accept).
SELECT_FIELDS: tuple[str, ...] = (
    "abstract", "URL", "member", "posted", "score", "created", "degree", "update-policy",
    "short-title", "license", "ISSN", "container-title", "issued", "update-to", "issue", "prefix",
    "approved", "indexed", "article-number", "clinical-trial-number", "accepted", "author",
    "group-title", "DOI", "is-referenced-by-count", "updated-by", "event", "chair", "standards-body",
    "original-title", "funder", "translator", "archive", "published-print", "alternative-id",
    "subject", "subtitle", "published-online", "publisher-location", "content-domain", "reference",
    "title", "link", "type", "publisher", "volume", "references-count", "ISBN", "issn-type",
    "assertion", "deposited", "page", "content-created", "short-container-title", "relation",
    "editor", "published", "resource", "contributor",
)  # fmt: skip

#: Sort fields cayenne accepts, and the subset this fake implements (None = the default order).
SORT_FIELDS: tuple[str, ...] = (
    "score", "relevance", "updated", "deposited", "indexed", "created", "published-print",
    "published-online", "published", "issued", "is-referenced-by-count", "references-count",
)  # fmt: skip
SORT_ORDERS = ("asc", "desc", "1", "-1")
FIELD_QUERIES: tuple[str, ...] = (
    "affiliation", "author", "bibliographic", "chair", "container-title", "contributor", "degree",
    "description", "editor", "event-acronym", "event-location", "event-name", "event-sponsor",
    "event-theme", "funder-name", "publisher-location", "publisher-name", "standards-body-acronym",
    "standards-body-name", "translator",
)  # fmt: skip
_LIST_PARAMS = frozenset(
    {"query", "rows", "offset", "sample", "facet", "filter", "sort", "order", "cursor", "select", "mailto"}
)

_ACCESS_CONTROL_HEADERS = (
    (
        "access-control-allow-headers",
        "X-Requested-With, Accept, Accept-Encoding, Accept-Charset, Accept-Language, "
        "Accept-Ranges, Cache-Control",
    ),
    ("access-control-allow-origin", "*"),
    ("access-control-expose-headers", "Link"),
    ("permissions-policy", "interest-cohort=()"),
)
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
_NOT_FOUND = "Resource not found."
_ENCODER = json.JSONEncoder(separators=(",", ":"))  # ensure_ascii, like Crossref's output
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_CURSOR_ALPHABET = re.compile(r"[A-Za-z0-9+/=_-]*")
# ES scroll ids start with the base64 of "\x0equeryThenFetch$" ("DnF1ZXJ5VGhlbkZldGNo...").
_SCROLL_ID_HEAD = b"\x0equeryThenFetch\x24"
_SCROLL_ID_BYTES = 1129  # -> 1508 base64 characters ending in "==", like the 1512 observed
_DATE_RE = re.compile(r"(\d{4})|(\d{4}-\d{2})|(\d{4}-\d{2}-\d{2})")
_PREFIX_RE = re.compile(r"10\.\d{4,}")
_ISSN_RE = re.compile(r"(\d{4})-?(\d{3}[\dXx])")
_DOI_RE = re.compile(r"10\.\d{4,}(\.\d+)*/\S+")
_INTERVAL_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)s")


def _encode(value: Any) -> str:
    """JSON as Crossref writes it: compact, ASCII-only, with ``/`` escaped as ``\\/``."""
    return _ENCODER.encode(value).replace("/", "\\/")


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _date_object(value: datetime) -> dict[str, Any]:
    """A Crossref date with time: date-parts, date-time (UTC, seconds) and a millisecond timestamp."""
    v = value.astimezone(UTC)
    return {
        "date-parts": [[v.year, v.month, v.day]],
        "date-time": v.replace(microsecond=0, tzinfo=None).isoformat() + "Z",
        "timestamp": (v - _EPOCH) // _MILLISECOND,
    }


def _normalize_issn(value: str) -> str | None:
    """``1234-567x``, ``1234567X`` or an id.crossref.org ISSN URL -> ``1234-567X``; None if malformed."""
    value = value.strip().removeprefix("http://id.crossref.org/issn/")
    match = _ISSN_RE.fullmatch(value)
    return f"{match.group(1)}-{match.group(2).upper()}" if match else None


def _normalize_prefix(value: str) -> str:
    return (
        value.strip()
        .removeprefix("http://id.crossref.org/prefix/")
        .removeprefix("https://id.crossref.org/prefix/")
    )


def _normalize_doi(value: str) -> str:
    value = value.strip()
    for head in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        if value.lower().startswith(head):
            value = value[len(head) :]
    return value.lower()


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --------------------------------------------------------------------------------------------
# Works
# --------------------------------------------------------------------------------------------


@dataclass
class CrossrefWork:
    """One work of the fake index.

    `item` is the Crossref work JSON (it must contain ``"DOI"``); it is copied (shallowly), and
    the copy gets ``indexed`` (first key) and ``deposited`` written as Crossref date objects
    (date-parts, date-time, timestamp in ms), ``member`` and ``prefix`` (both strings), and
    ``type`` when `type` is given. `indexed` and `deposited` must be timezone-aware; they are
    normalised to UTC, and `deposited` defaults to `indexed`. `prefix` defaults to the DOI's
    prefix (lower-cased), `type` to ``item["type"]``. These fields, not the item's content,
    drive the filters and the order.
    """

    item: dict[str, Any]
    indexed: datetime
    deposited: datetime | None = None
    member: str = "1"
    prefix: str | None = None
    type: str | None = None

    def __post_init__(self) -> None:
        doi = self.item.get("DOI")
        if not isinstance(doi, str) or "/" not in doi:
            raise ValueError(f"a Crossref item needs a DOI string, got {doi!r}")
        self.indexed = _utc(self.indexed, "CrossrefWork.indexed")
        self.deposited = self.indexed if self.deposited is None else _utc(self.deposited, "deposited")
        self.member = str(self.member)
        if self.prefix is None:
            self.prefix = doi.split("/", 1)[0].lower()
        indexed = _date_object(self.indexed)
        item: dict[str, Any] = {"indexed": indexed, **self.item}  # "indexed" stays the first key
        item["indexed"] = indexed
        item["deposited"] = indexed if self.deposited == self.indexed else _date_object(self.deposited)
        item["member"] = self.member
        item["prefix"] = self.prefix
        if self.type is None:
            item_type = item.get("type")
            self.type = item_type if isinstance(item_type, str) else None
        else:
            item["type"] = self.type
        self.item = item

    @property
    def doi(self) -> str:
        """The DOI as the item spells it."""
        return str(self.item["DOI"])


def work_item(doi: str, title: str, **fields: Any) -> dict[str, Any]:
    """A realistic minimal Crossref journal-article item (the key order of 2026 records).

    It has DOI, a one-element ``title`` list, type ``journal-article``, one first author,
    container title, a valid print ISSN with ``issn-type``, ``published``/``issued``/``created``
    dates, publisher, counts, URL, resource, language, an empty ``subject`` (as in every 2026
    fixture) and no abstract. Keyword arguments set top-level fields, with ``_`` in the name
    meaning ``-`` (``container_title=["X"]``, ``is_referenced_by_count=3``,
    ``abstract="<jats:p>..</jats:p>"``); ``None`` removes a field. Passing ``ISSN`` without
    ``issn_type`` derives ``issn-type`` (first print, the others electronic).
    """
    item: dict[str, Any] = {
        "reference-count": 0,
        "publisher": "Example Press",
        "issue": "1",
        "content-domain": {"domain": [], "crossmark-restriction": False},
        "short-container-title": ["J Ex"],
        "published-print": {"date-parts": [[2024, 1, 15]]},
        "DOI": doi,
        "type": "journal-article",
        "created": {
            "date-parts": [[2024, 1, 15]],
            "date-time": "2024-01-15T09:30:00Z",
            "timestamp": 1705311000000,
        },
        "page": "1-10",
        "source": "Crossref",
        "is-referenced-by-count": 0,
        "title": [title],
        "volume": "1",
        "author": [{"given": "Ada", "family": "Lovelace", "sequence": "first", "affiliation": []}],
        "container-title": ["Journal of Examples"],
        "language": "en",
        "score": 1,
        "resource": {"primary": {"URL": f"https://example.org/article/{doi}"}},
        "issued": {"date-parts": [[2024, 1, 15]]},
        "references-count": 0,
        "URL": f"https://doi.org/{doi}",
        "ISSN": ["1234-5679"],
        "issn-type": [{"value": "1234-5679", "type": "print"}],
        "subject": [],
        "published": {"date-parts": [[2024, 1, 15]]},
    }
    for name, value in fields.items():
        key = name.replace("_", "-")
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    if "ISSN" in fields and "issn_type" not in fields:
        issns = item.get("ISSN") or []
        item["issn-type"] = [
            {"value": issn, "type": "print" if i == 0 else "electronic"} for i, issn in enumerate(issns)
        ]
        if not issns:
            item.pop("issn-type", None)
    return item


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored work with what filtering and sorting need, and its pre-rendered JSON."""

    work: CrossrefWork
    doi: str  # lower-cased
    sort_key: tuple[datetime, str]  # (indexed, doi)
    indexed_day: date
    deposited: datetime
    deposited_day: date
    issns: frozenset[str]
    has_abstract: bool
    json: str


def _render_entry(work: CrossrefWork) -> _Entry:
    doi = work.doi.lower()
    deposited = work.deposited or work.indexed
    issns = frozenset(
        n for n in (_normalize_issn(str(v)) for v in work.item.get("ISSN") or ()) if n is not None
    )
    return _Entry(
        work=work,
        doi=doi,
        sort_key=(work.indexed, doi),
        indexed_day=work.indexed.date(),
        deposited=deposited,
        deposited_day=deposited.date(),
        issns=issns,
        has_abstract=bool(work.item.get("abstract")),
        json=_encode(work.item),
    )


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

FaultKind = Literal["canned", "html", "truncate", "reset", "slow_drip", "exception_500", "too_many_requests"]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one request; build it with the class methods.

    The `kind` is also the key under which `FaultPlan.served` counts it. ``canned``, ``html``,
    ``exception_500`` and ``too_many_requests`` answer without processing the request (a cursor
    does not advance); ``truncate``, ``reset`` and ``slow_drip`` mangle the real response (it was
    processed: a cursor advances).
    """

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fraction: float = 0.0
    bytes_per_second: float = 1.0

    @classmethod
    def canned(cls, status: int = 503, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Fault:
        """Answer with exactly this status, headers and body (no rate-limit headers). A
        Content-Type of text/plain is added for a non-empty body unless `headers` sets one, and
        `FaultPlan.retry_after` is added to a 429 or 503 that has no Retry-After."""
        return cls("canned", status=status, headers=tuple((headers or {}).items()), body=body)

    @classmethod
    def html(cls, status: int = 200) -> Fault:
        """Answer with `HTML_ERROR_PAGE` as ``text/html`` (an error page with status 200,
        research-software-directory#420)."""
        return cls("html", status=status, headers=(("Content-Type", "text/html; charset=utf-8"),))

    @classmethod
    def truncate(cls, fraction: float = 0.6) -> Fault:
        """Serve the normal JSON cut at `fraction` of its (uncompressed) bytes, with a matching
        Content-Length (gzipped after the cut if the client accepts gzip): valid HTTP, broken
        JSON (eScholarship/jschol#898)."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("truncate", fraction=fraction)

    @classmethod
    def reset(cls, fraction: float = 0.0) -> Fault:
        """Send the headers (with the full Content-Length), then `fraction` of the body, then
        close the connection (fatcat's ChunkedEncodingError); httpx raises a TransportError."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("reset", fraction=fraction)

    @classmethod
    def slow_drip(cls, bytes_per_second: float = 1.0) -> Fault:
        """Send the headers at once, then the body at `bytes_per_second` (CrossRef/rest-api-doc#97).
        Every read makes progress, so only a total deadline catches it. `FakeCrossref.stop`
        interrupts a drip in progress."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        return cls("slow_drip", bytes_per_second=bytes_per_second)

    @classmethod
    def exception_500(cls) -> Fault:
        """A 500 with Crossref's ``message-type:"exception"`` JSON (`EXCEPTION_BODY`), the
        ``exception-name`` header and the usual rate-limit headers."""
        return cls("exception_500", status=500)

    @classmethod
    def too_many_requests(cls) -> Fault:
        """A 429 exactly like the rate limiter's (bare if `FaultPlan.bare_429` is set, with
        `FaultPlan.retry_after` if set), without anyone having exceeded anything."""
        return cls("too_many_requests", status=429)


@dataclass
class FaultPlan:
    """Misbehaviour on demand. Thread-safe, deterministic, and every fault served is counted in
    `served` (a Counter keyed by fault kind or flag name).

    Per-request faults (queued; each is used by exactly one request, then normal service
    resumes): `next_responses`, `on_request`, `truncate_next`, `reset_next`, `html_next`,
    `slow_drip_next`, `exception_500_next`, `too_many_requests_next`, or `queue` for any
    `Fault`. A fault scheduled with `on_request(k)` wins over the queue for request k; a queued
    fault goes to the next request that has no scheduled fault. Requests are counted from 0 over
    the server's whole life, any path. A request answered 401 (bad Plus token) or 429 by the rate
    limiter takes no fault: a queued one waits for the next request, a scheduled one is lost.

    Standing flags (set the attribute; they apply until `reset`):

    * `bare_429` (CrossRef/rest-api-doc#226, fault catalogue #9): 429s from the limiter and from
      `Fault.too_many_requests` are the proxy's bare HTML, with no ``x-rate-limit-*``,
      ``x-api-pool`` or ``x-concurrency-limit`` headers and ``Connection: close``. Counted as
      ``"bare_429"`` per such response.
    * `retry_after` (catalogue #8): seconds (int/float, rounded up) or an HTTP date (a
      `datetime`, or a string sent verbatim); added as ``Retry-After`` to every 429 the server
      makes and to canned 429/503 faults that have none. Crossref itself sends none.
    * `ignore_filters` (DOAJ via fatcat, catalogue #7): ``filter=`` is validated but does not
      filter. Counted as ``"ignore_filters"`` per list request that had filters.
    * `duplicate_across_pages` (DOAJ/doaj#712, catalogue #6): every page after the first (cursor
      or offset paging) starts with the last item of the previous page again. Counted per page.
    * `gzip_without_header` (metha, catalogue #11): bodies of normal responses are gzipped but
      sent without Content-Encoding. Counted per response.

    `reset()` clears the queue, the schedule, all flags and `served`.
    """

    bare_429: bool = False
    retry_after: int | float | str | datetime | None = None
    ignore_filters: bool = False
    duplicate_across_pages: bool = False
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
        """The next `n` requests get this canned response (`Fault.canned`), then normal service
        resumes. E.g. ``next_responses(2, status=503, headers={"Retry-After": "1"})``."""
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

    def exception_500_next(self, n: int = 1) -> None:
        """The next `n` requests get Crossref's 500 ``exception`` JSON."""
        self.queue(Fault.exception_500(), n)

    def too_many_requests_next(self, n: int = 1) -> None:
        """The next `n` requests get the rate limiter's 429 (bare while `bare_429` is set)."""
        self.queue(Fault.too_many_requests(), n)

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
            self.bare_429 = False
            self.retry_after = None
            self.ignore_filters = False
            self.duplicate_across_pages = False
            self.gzip_without_header = False

    def retry_after_header(self) -> str | None:
        """`retry_after` as a Retry-After value (delta-seconds or IMF-fixdate), or None."""
        value = self.retry_after
        if value is None:
            return None
        if isinstance(value, datetime):
            return email.utils.format_datetime(_utc(value, "retry_after"), usegmt=True)
        if isinstance(value, int | float):
            return str(max(0, math.ceil(value)))
        return value

    def _take(self, index: int) -> Fault | None:
        """The fault for request number `index`, if any (consumed and counted)."""
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
# Limits and logs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoolLimits:
    """What one pool advertises and the server enforces: `rate_limit` requests per
    `rate_interval` (``"1s"``; Crossref always uses seconds) and `concurrency` in flight."""

    rate_limit: int
    rate_interval: str = "1s"
    concurrency: int = 1

    def __post_init__(self) -> None:
        if self.rate_limit < 1 or self.concurrency < 1:
            raise ValueError("rate_limit and concurrency must be at least 1")
        if not _INTERVAL_RE.fullmatch(self.rate_interval) or self.seconds <= 0:
            raise ValueError(f"rate_interval must look like '1s', got {self.rate_interval!r}")

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return float(self.rate_interval[:-1])


#: Limits per pool when nothing else is said: public and polite as recorded in June 2026
#: (habanero cassettes); plus is a guess (the pre-2025 documentation said 150 per second).
DEFAULT_POOL_LIMITS: dict[Pool, PoolLimits] = {
    "public": PoolLimits(5, "1s", 1),
    "polite": PoolLimits(10, "1s", 3),
    "plus": PoolLimits(150, "1s", 10),
}


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


class _Slot:
    """A request's place among the in-flight requests of its pool; `release` is idempotent."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()


@dataclass
class _Scroll:
    """An open cursor: the snapshot, its page size and projection, and the server-side position."""

    cursor: str
    entries: list[_Entry]
    rows: int
    select: tuple[str, ...] | None
    search_terms: str | None
    position: int = 0
    last_used: float = 0.0


@dataclass
class _Query:
    """A validated list request."""

    rows: int = DEFAULT_ROWS
    offset: int = 0
    sample: int | None = None
    cursor: str | None = None
    select: tuple[str, ...] | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)
    sort: str | None = None
    descending: bool = True
    terms: dict[str, list[str]] = field(default_factory=dict)  # field query -> lower-cased terms
    search_terms: str | None = None


class _ApiError(Exception):
    """A finished error response raised from inside request handling."""

    def __init__(self, status: int, content_type: str, text: str) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.content_type = content_type
        self.text = text


def _failure(type_: str, value: str, message: str) -> dict[str, str]:
    return {"type": type_, "value": value, "message": message}


def _failures_body(message_type: str, failures: list[dict[str, str]]) -> str:
    return _encode({"status": "failed", "message-type": message_type, "message": failures})


def _not_implemented(value: str, what: str) -> dict[str, str]:
    return _failure(
        "not-implemented-by-fake",
        value,
        f"{what} {value} is valid on api.crossref.org but FakeCrossref does not implement it",
    )


def _integer_failure(value: str, maximum: int | None, message: str = "") -> dict[str, str] | None:
    """cayenne's integer-validator: digits only, at most `maximum`; its message verbatim."""
    if re.fullmatch(r"\d+", value) and (maximum is None or int(value) <= maximum):
        return None
    limit = f" less than or equal to {maximum}" if maximum is not None else ""
    return _failure(
        "integer-not-valid",
        value,
        f"Integer specified as {value} but must be a positive integer{limit}. {message}",
    )


def _date_bounds(value: str) -> tuple[date, date]:
    """``YYYY``/``YYYY-MM``/``YYYY-MM-DD`` -> (first day, last day) of that period; ValueError if bad."""
    parts = [int(p) for p in value.split("-")]
    if len(parts) == 1:
        return date(parts[0], 1, 1), date(parts[0], 12, 31)
    if len(parts) == 2:
        first = date(parts[0], parts[1], 1)
        following = date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
        return first, following - timedelta(days=1)
    day = date(parts[0], parts[1], parts[2])
    return day, day


def _enum_failure(type_: str, friendly: str, value: str, allowed: Iterable[str]) -> dict[str, str] | None:
    allowed = tuple(allowed)
    if value in allowed:
        return None
    return _failure(type_, value, f"{friendly} specified as {value} but must be one of: {', '.join(allowed)}")


def _validate_filter_value(name: str, value: str) -> dict[str, str] | None:
    """cayenne's per-filter validators for the filters this fake implements."""
    if name.endswith(("-index-date", "-update-date", "-deposit-date")):
        if not _DATE_RE.fullmatch(value):
            return _failure(
                "date-not-valid",
                value,
                f"Date specified as {value} but must be of the form: yyyy or yyyy-MM or yyyy-MM-dd",
            )
        try:
            _date_bounds(value)
        except ValueError:
            return _failure(
                "date-not-legitimate",
                value,
                f"Date {value} specified in the correct format but represents an illegitimate date.",
            )
        return None
    if name == "has-abstract":
        return _enum_failure("boolean-not-valid", "Boolean", value, ("t", "true", "1", "f", "false", "0"))
    if name == "type":
        return _enum_failure("type-not-valid", "Type", value, _TYPE_IDS)
    if name == "member":
        return _integer_failure(value, None)
    if name == "prefix" and not _PREFIX_RE.fullmatch(_normalize_prefix(value)):
        return _failure(
            "prefix-not-valid",
            value,
            f"Prefix specified as {value} but must be of the form: "
            "10.digits where digits is 4 or more digits",
        )
    if name == "issn" and _normalize_issn(value) is None:
        return _failure(
            "issn-not-valid",
            value,
            f"ISSN specified as {value} but must be of the form: aaaa-aaab where a is a digit, "
            "and b is a digit or 'X'",
        )
    if name == "doi" and not _DOI_RE.fullmatch(_normalize_doi(value)):
        return _failure(
            "doi-not-valid",
            value,
            f"DOI specified as {value} but must be of the form: 10.prefix/suffix where prefix is 4 or "
            "more digits and suffix  is a string",
        )
    return None


_IMPLEMENTED_FILTERS = frozenset(
    {
        "from-index-date", "until-index-date", "from-update-date", "until-update-date",
        "from-deposit-date", "until-deposit-date", "prefix", "member", "type", "issn",
        "has-abstract", "doi",
    }
)  # fmt: skip
_IMPLEMENTED_SORTS: dict[str, Callable[[_Entry], Any] | None] = {
    "score": None,
    "relevance": None,
    "indexed": attrgetter("work.indexed"),
    "deposited": attrgetter("deposited"),
    "updated": attrgetter("deposited"),
    "is-referenced-by-count": lambda e: e.work.item.get("is-referenced-by-count") or 0,
    "references-count": lambda e: e.work.item.get("references-count") or 0,
}
_IMPLEMENTED_FIELD_QUERIES = frozenset({"bibliographic", "author", "container-title"})


def _parse_filters(raw: str) -> list[tuple[str, str]]:
    """``a:1,b:2,c:x,y`` -> [(a, 1), (b, 2), (c, "x,y")]: like cayenne, a piece without a colon
    belongs to the previous value (commas inside values)."""
    pairs: list[tuple[str, str]] = []
    for piece in raw.split(","):
        if ":" in piece or not pairs:
            name, _, value = piece.partition(":")
            pairs.append((name, value))
        else:
            name, value = pairs[-1]
            pairs[-1] = (name, f"{value},{piece}")
    return pairs


def _compile_filter(name: str, value: str) -> Callable[[_Entry], bool]:
    """The predicate of one (validated) filter, compiled once per request."""
    if name.endswith(("-index-date", "-update-date", "-deposit-date")):
        first, last = _date_bounds(value)
        day = attrgetter("indexed_day" if name.endswith("-index-date") else "deposited_day")
        if name.startswith("from-"):
            return lambda e: day(e) >= first
        return lambda e: day(e) <= last
    if name == "prefix":
        prefix = _normalize_prefix(value).lower()
        return lambda e: e.work.prefix == prefix
    if name == "member":
        return lambda e: e.work.member == value
    if name == "type":
        return lambda e: e.work.type == value
    if name == "issn":
        issn = _normalize_issn(value)
        return lambda e: issn in e.issns
    if name == "has-abstract":
        wanted = value in ("t", "true", "1")
        return lambda e: e.has_abstract == wanted
    if name == "doi":
        doi = _normalize_doi(value)
        return lambda e: e.doi == doi
    raise AssertionError(f"unimplemented filter {name}")


def _search_text(entry: _Entry, field_query: str) -> str:
    item = entry.work.item
    authors = " ".join(
        " ".join(str(a.get(k, "")) for k in ("given", "family", "name"))
        for a in item.get("author") or ()
        if isinstance(a, dict)
    )
    containers = " ".join(str(t) for t in item.get("container-title") or ())
    if field_query == "author":
        return authors.lower()
    if field_query == "container-title":
        return containers.lower()
    titles = " ".join(str(t) for t in item.get("title") or ())
    return f"{titles} {containers} {authors} {entry.doi}".lower()


# --------------------------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------------------------


class FakeCrossref(Served):
    """A local Crossref REST API over real HTTP, with `faults` to misbehave on demand.

    Parameters:
        works: initial works (later ones replace earlier ones with the same DOI, case-insensitively).
        pool: the pool whose limits `rate_limit`, `rate_interval` and `concurrency` set; the
            other pools keep `DEFAULT_POOL_LIMITS` (change them with `set_limits`).
        plus_token: the one valid Plus token (``Crossref-Plus-API-Token: Bearer <token>``);
            None: every Plus token is refused with a 401.
        max_rows: the largest ``rows`` (Crossref: 1000); more is a 400 ``integer-not-valid``.
        cursor_ttl: seconds a cursor survives without being used (Crossref: about 5 minutes).

    Attributes:
        url: ``http://127.0.0.1:PORT`` (the API base), valid after `start`, stable across stop/start.
        requests: a `RequestLogEntry` per answered request, in order; written before the body is sent.
        faults: the `FaultPlan`.
        limits: `PoolLimits` per pool (see `set_limits`).
        enforce_limits: answer 429 to requests over a limit (default); False only records them.
        violations: one line per request that exceeded its pool's rate or concurrency limit.
        peak_in_flight: the most requests of each pool seen in flight at once.
        compress: gzip bodies for clients that accept gzip (default True).
        latency: seconds each admitted request waits before it is answered (default 0).
        rate_slack: seconds of arrival jitter forgiven by the rate check (default 0.01).
        internal_errors: exceptions raised while handling a request (answered 500); a test can
            assert it is empty.
    """

    def __init__(
        self,
        works: Iterable[CrossrefWork] = (),
        *,
        pool: Pool = "polite",
        rate_limit: int = 10,
        rate_interval: str = "1s",
        concurrency: int = 3,
        plus_token: str | None = None,
        max_rows: int = 1000,
        cursor_ttl: float = 300.0,
    ) -> None:
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}")
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.plus_token = plus_token
        self.max_rows = max_rows
        self.cursor_ttl = cursor_ttl
        self.limits: dict[Pool, PoolLimits] = dict(DEFAULT_POOL_LIMITS)
        self.limits[pool] = PoolLimits(rate_limit, rate_interval, concurrency)
        self.enforce_limits = True
        self.compress = True
        self.latency = 0.0
        self.rate_slack = 0.01
        self.faults = FaultPlan()
        self.requests: list[RequestLogEntry] = []
        self.violations: list[str] = []
        self.peak_in_flight: Counter[str] = Counter()
        self.internal_errors: list[BaseException] = []
        self.url = ""

        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._by_indexed: list[_Entry] | None = None
        self._by_deposited: list[_Entry] | None = None
        self._scrolls: dict[str, _Scroll] = {}
        self._random = random.Random(20260616)
        self._request_count = 0
        self._limits_lock = threading.Lock()
        self._tokens: dict[str, tuple[float, float]] = {}  # pool -> (tokens, monotonic stamp)
        self._in_flight: Counter[str] = Counter()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopping = threading.Event()
        with _gc_paused():  # a bulk load allocates millions of objects; collecting meanwhile is wasted
            for work in works:
                self._store(work)

    # ---- lifecycle ----------------------------------------------------------------------

    def _make_server(self, address: tuple[str, int]) -> _HttpServer:
        return _HttpServer(address, self)

    # ---- content and state --------------------------------------------------------------

    def put(self, work: CrossrefWork) -> None:
        """Add `work`, or replace the work with the same DOI (case-insensitive). Open cursors
        keep their snapshot."""
        with self._lock:
            self._store(work)

    def get(self, doi: str) -> CrossrefWork | None:
        """The stored work with this DOI (case-insensitive), or None."""
        with self._lock:
            entry = self._entries.get(doi.lower())
            return entry.work if entry is not None else None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def expire_cursors(self) -> None:
        """Every cursor issued so far becomes invalid (404 ``cursor-invalid``); new scrolls work."""
        with self._lock:
            self._scrolls.clear()

    @property
    def open_cursors(self) -> int:
        """Number of scrolls that have not expired."""
        with self._lock:
            self._prune_scrolls()
            return len(self._scrolls)

    def set_limits(
        self,
        pool: Pool | None = None,
        *,
        rate_limit: int,
        rate_interval: str = "1s",
        concurrency: int,
    ) -> None:
        """Set the limits of `pool`, or of every pool when `pool` is None; refills its bucket."""
        limits = PoolLimits(rate_limit, rate_interval, concurrency)
        with self._limits_lock:
            for name in POOLS if pool is None else (pool,):
                self.limits[name] = limits
                self._tokens.pop(name, None)

    # ---- internals: storage -------------------------------------------------------------

    def _store(self, work: CrossrefWork) -> None:
        entry = _render_entry(work)
        self._entries[entry.doi] = entry
        self._by_indexed = None
        self._by_deposited = None

    def _sorted_by_indexed(self) -> list[_Entry]:
        if self._by_indexed is None:
            self._by_indexed = sorted(self._entries.values(), key=attrgetter("sort_key"))
        return self._by_indexed

    def _sorted_by_deposited(self) -> list[_Entry]:
        if self._by_deposited is None:
            self._by_deposited = sorted(self._entries.values(), key=lambda e: (e.deposited_day, e.sort_key))
        return self._by_deposited

    def _select(self, query: _Query, route_filter: tuple[str, str] | None) -> list[_Entry]:
        """The entries a list request selects, in its order. Date windows are cut out of a
        sorted list with bisect, so day-by-day harvests of a large index stay fast."""
        filters: dict[str, list[str]] = {}
        if query.filters:
            if self.faults.ignore_filters:
                self.faults._count("ignore_filters")
            else:
                filters = dict(query.filters)
        if route_filter is not None:
            filters.setdefault(route_filter[0], []).append(route_filter[1])

        candidates = self._sorted_by_indexed()
        index_from = [_date_bounds(v)[0] for v in filters.get("from-index-date", ())]
        index_until = [_date_bounds(v)[1] for v in filters.get("until-index-date", ())]
        update_from = [
            _date_bounds(v)[0] for n in ("from-update-date", "from-deposit-date") for v in filters.get(n, ())
        ]
        update_until = [
            _date_bounds(v)[1]
            for n in ("until-update-date", "until-deposit-date")
            for v in filters.get(n, ())
        ]
        if index_from or index_until:
            day = attrgetter("indexed_day")
            lo = bisect.bisect_left(candidates, min(index_from), key=day) if index_from else 0
            hi = (
                bisect.bisect_right(candidates, max(index_until), key=day) if index_until else len(candidates)
            )
            candidates = candidates[lo:hi]
        elif update_from or update_until:
            by_deposit = self._sorted_by_deposited()
            day = attrgetter("deposited_day")
            lo = bisect.bisect_left(by_deposit, min(update_from), key=day) if update_from else 0
            hi = (
                bisect.bisect_right(by_deposit, max(update_until), key=day)
                if update_until
                else len(by_deposit)
            )
            candidates = sorted(by_deposit[lo:hi], key=attrgetter("sort_key"))

        if index_from or index_until:  # the slice is exact: OR within a name is min/max
            filters.pop("from-index-date", None)
            filters.pop("until-index-date", None)
        checks = [[_compile_filter(name, value) for value in values] for name, values in filters.items()]
        if checks:
            candidates = [e for e in candidates if all(any(p(e) for p in alts) for alts in checks)]
        for field_query, terms in query.terms.items():
            candidates = [e for e in candidates if all(t in _search_text(e, field_query) for t in terms)]
        sort_key = _IMPLEMENTED_SORTS.get(query.sort) if query.sort else None
        if sort_key is not None:
            # Stable sorts: by the field, ties in (indexed, DOI) ascending.
            candidates = sorted(candidates, key=sort_key, reverse=query.descending)
        # The cached sorted list may be returned as is: `put` replaces it, it never mutates it.
        return candidates

    def _project(self, entry: _Entry, select: tuple[str, ...] | None) -> str:
        if select is None:
            return entry.json
        wanted = set(select)
        return _encode({k: v for k, v in entry.work.item.items() if k in wanted})

    # ---- internals: scrolls -------------------------------------------------------------

    def _new_scroll_id(self) -> str:
        while True:
            raw = _SCROLL_ID_HEAD + secrets.token_bytes(_SCROLL_ID_BYTES - len(_SCROLL_ID_HEAD))
            cursor = base64.b64encode(raw).decode("ascii")
            if "+" in cursor and "/" in cursor and cursor not in self._scrolls:
                return cursor

    def _prune_scrolls(self) -> None:
        deadline = time.monotonic() - self.cursor_ttl
        for cursor in [c for c, s in self._scrolls.items() if s.last_used < deadline]:
            del self._scrolls[cursor]

    # ---- internals: requests ------------------------------------------------------------

    def _arrive(self) -> int:
        with self._lock:
            index = self._request_count
            self._request_count += 1
            return index

    def _log(self, entry: RequestLogEntry) -> None:
        with self._lock:
            self.requests.append(entry)

    def _classify(self, params: dict[str, list[str]], headers: dict[str, str]) -> Pool | None:
        """The request's pool, or None for a Plus token that is not `plus_token`."""
        token = headers.get("crossref-plus-api-token")
        if token is not None:
            if self.plus_token is not None and token.strip() == f"Bearer {self.plus_token}":
                return "plus"
            return None
        if (
            any(v.strip() for v in params.get("mailto", ()))
            or "mailto:" in headers.get("user-agent", "").lower()
        ):
            return "polite"
        return "public"

    def _admit(self, index: int, method: str, path: str, pool: Pool) -> tuple[_Slot | None, bool]:
        """Count the request against its pool's bucket and in-flight limit. Returns (a slot to
        release when the last write of the body starts, or None if refused; whether it violated)."""
        limits = self.limits[pool]
        now = time.monotonic()
        problems: list[str] = []
        with self._limits_lock:
            rate = limits.rate_limit / limits.seconds
            tokens, stamp = self._tokens.get(pool, (float(limits.rate_limit), now))
            tokens = min(float(limits.rate_limit), tokens + (now - stamp) * rate)
            if tokens + self.rate_slack * rate < 1.0:
                problems.append(
                    f"rate: request #{index} ({method} {path}) exceeded the {pool} pool's "
                    f"{limits.rate_limit} per {limits.rate_interval}"
                )
            in_flight = self._in_flight[pool]
            if in_flight >= limits.concurrency:
                problems.append(
                    f"concurrency: request #{index} ({method} {path}) arrived with {in_flight} "
                    f"{pool} requests in flight (limit {limits.concurrency})"
                )
            refused = bool(problems) and self.enforce_limits
            if not refused:
                tokens -= 1.0
                self._in_flight[pool] += 1
                self.peak_in_flight[pool] = max(self.peak_in_flight[pool], self._in_flight[pool])
            self._tokens[pool] = (tokens, now)
        if problems:
            with self._lock:
                self.violations.extend(problems)
        if refused:
            return None, True

        def release() -> None:
            with self._limits_lock:
                self._in_flight[pool] -= 1

        return _Slot(release), bool(problems)

    def _pool_headers(self, pool: Pool) -> list[tuple[str, str]]:
        limits = self.limits[pool]
        return [
            *_ACCESS_CONTROL_HEADERS,
            ("x-api-pool", pool),
            ("x-concurrency-limit", str(limits.concurrency)),
            ("x-rate-limit-interval", limits.rate_interval),
            ("x-rate-limit-limit", str(limits.rate_limit)),
        ]

    def _too_many(self, pool: Pool) -> _Reply:
        retry_after = self.faults.retry_after_header()
        if self.faults.bare_429:
            self.faults._count("bare_429")
            headers = [("Cache-Control", "no-cache"), ("Connection", "close"), ("Content-Type", "text/html")]
        else:
            headers = [*self._pool_headers(pool), ("Content-Type", "text/html")]
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))
        return _Reply(429, headers, HTML_429)

    def _dispatch(
        self, index: int, path: str, params: dict[str, list[str]], headers: dict[str, str]
    ) -> tuple[_Reply, _Slot | None]:
        """Answer one request: the reply, and its in-flight slot (None if it had none)."""
        pool = self._classify(params, headers)
        if pool is None:
            return _Reply(401, [("Content-Type", "text/html")], HTML_401), None
        slot, _ = self._admit(index, "GET", path, pool)
        if slot is None:
            return self._too_many(pool), None
        try:
            if self.latency > 0:
                self._stopping.wait(self.latency)
            fault = self.faults._take(index)
            return self._build(fault, path, params, headers, pool), slot
        except BaseException:
            slot.release()
            raise

    def _build(
        self,
        fault: Fault | None,
        path: str,
        params: dict[str, list[str]],
        headers: dict[str, str],
        pool: Pool,
    ) -> _Reply:
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
        if kind == "too_many_requests":
            return self._too_many(pool)._replace(fault=fault)
        if kind == "exception_500":
            reply_headers = [
                *self._pool_headers(pool),
                ("Content-Type", JSON_CONTENT_TYPE),
                ("exception-name", "class clojure.lang.ExceptionInfo"),
            ]
            return _Reply(500, reply_headers, _encode(EXCEPTION_BODY).encode(), fault)

        try:
            status, content_type, text = self._respond(path, params)
        except _ApiError as err:
            status, content_type, text = err.status, err.content_type, err.text
        body = text.encode("utf-8")
        if fault is not None and kind == "truncate":
            body = body[: int(len(body) * fault.fraction)]
        reply_headers = [*self._pool_headers(pool), ("Content-Type", content_type)]
        if self.faults.gzip_without_header:
            self.faults._count("gzip_without_header")
            body = gzip.compress(body, compresslevel=1, mtime=0)
        elif self.compress and "gzip" in headers.get("accept-encoding", "").lower():
            body = gzip.compress(body, compresslevel=1, mtime=0)
            reply_headers += [("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")]
        if status == 500 and content_type == JSON_CONTENT_TYPE:
            reply_headers.append(("exception-name", "class clojure.lang.ExceptionInfo"))
        return _Reply(status, reply_headers, body, fault)

    # ---- internals: the API proper ------------------------------------------------------

    def _respond(self, raw_path: str, params: dict[str, list[str]]) -> tuple[int, str, str]:
        """Route and answer a request: (status, content type, body text)."""
        path = unquote(raw_path)
        path = path.removeprefix("/v1") if path.startswith("/v1/") else path
        if len(path) > 1:
            path = path.rstrip("/")
        if path == "/works":
            return self._list(params, None)
        match = re.fullmatch(r"/(members|prefixes|journals|types)/([^/]+)/works", path)
        if match:
            name = {"members": "member", "prefixes": "prefix", "journals": "issn", "types": "type"}[match[1]]
            return self._list(params, (name, match[2]))
        if path.startswith("/works/"):
            return self._single(path.removeprefix("/works/"), params)
        if path == "/types":
            return self._types()
        return 404, "text/plain", _NOT_FOUND

    def _types(self) -> tuple[int, str, str]:
        items = [{"id": type_id, "label": label} for type_id, label in WORK_TYPES]
        message = {
            "items-per-page": len(items),
            "query": {"start-index": 0, "search-terms": None},
            "total-results": len(items),
            "items": items,
        }
        return (
            200,
            JSON_CONTENT_TYPE,
            _encode(
                {"status": "ok", "message-type": "type-list", "message-version": "1.0.0", "message": message}
            ),
        )

    def _single(self, doi: str, params: dict[str, list[str]]) -> tuple[int, str, str]:
        failures = []
        for name in ("rows", "sample", "offset", "cursor", "facet", "filter", "query", "select"):
            if name in params:
                failures.append(
                    _failure("parameter-not-allowed", name, f"This route does not support {name}")
                )
        if any(name.startswith("query.") for name in params):
            failures.append(
                _failure(
                    "parameter-not-allowed", "query.*", "This route does not support field query parameters"
                )
            )
        if failures:
            return 400, JSON_CONTENT_TYPE, _failures_body("validation-failure", failures)
        with self._lock:
            entry = self._entries.get(_normalize_doi(doi))
        if entry is None:
            return 404, "text/plain", _NOT_FOUND
        head = '{"status":"ok","message-type":"work","message-version":"1.0.0","message":'
        return 200, JSON_CONTENT_TYPE, f"{head}{entry.json}}}"

    def _validate(self, params: dict[str, list[str]]) -> _Query:
        """Check a list request the way cayenne's ``validate.clj`` does; raise a 400 with every
        failure, or return the parsed query."""
        last = {name: values[-1] for name, values in params.items() if values}
        failures: list[dict[str, str]] = []
        query = _Query()
        for name in params:
            if name not in _LIST_PARAMS and not name.startswith("query."):
                failures.append(
                    _failure(
                        "unknown-parameter",
                        name,
                        f"Parameter {name} specified but there is no such parameter available on any route",
                    )
                )
        sample, rows, offset = last.get("sample"), last.get("rows"), last.get("offset")
        if sample is not None and (rows is not None or offset is not None):
            failures.append(
                _failure(
                    "sample-with-rows-or-offset", "sample", "Sample cannot be combined with rows or offset"
                )
            )
        for value, maximum, message in (
            (rows, self.max_rows, ""),
            (sample, MAX_SAMPLE, ""),
            (offset, MAX_OFFSET, " Use the cursor parameter to page further into result sets."),
        ):
            if value is not None and (problem := _integer_failure(value, maximum, message)) is not None:
                failures.append(problem)
        cursor = last.get("cursor")
        if cursor is not None and (offset is not None or sample is not None):
            failures.append(
                _failure(
                    "cursor-with-offset-or-sample",
                    "cursor",
                    "Cursor cannot be combined with offset or sample",
                )
            )
        order, sort = last.get("order"), last.get("sort")
        if order is not None and (
            problem := _enum_failure("sort-order-not-valid", "Sort order", order, SORT_ORDERS)
        ):
            failures.append(problem)
        if sort is not None:
            problem = _enum_failure("sort-field-not-valid", "Sort field", sort, SORT_FIELDS)
            if problem is None and sort not in _IMPLEMENTED_SORTS:
                problem = _not_implemented(sort, "Sort field")
            if problem is not None:
                failures.append(problem)
        if "facet" in params:
            failures.append(_not_implemented(last.get("facet", ""), "Facet"))

        raw_filter = ",".join(v for v in params.get("filter", ()) if v)
        pairs = _parse_filters(raw_filter) if raw_filter else []
        unknown = list(dict.fromkeys(name for name, _ in pairs if name not in WORK_FILTERS))
        for name in unknown:
            failures.append(
                _failure(
                    "filter-not-available",
                    name,
                    f"Filter {name} specified but there is no such filter for this route. "
                    f"Valid filters for this route are: {', '.join(WORK_FILTERS)}",
                )
            )
        for name, value in pairs:
            if name in unknown:
                continue
            if name not in _IMPLEMENTED_FILTERS:
                failures.append(_not_implemented(name, "Filter"))
            elif (problem := _validate_filter_value(name, value)) is not None:
                failures.append(problem)
            else:
                query.filters.setdefault(name, []).append(value)

        for name, values in params.items():
            if not name.startswith("query."):
                continue
            field_query = name.removeprefix("query.")
            if field_query not in FIELD_QUERIES:
                failures.append(
                    _failure(
                        "field-query-not-available",
                        field_query,
                        f"Field query {field_query} specified byt there is no such field query for this "
                        f"route. Valid field queries for this route are: {', '.join(FIELD_QUERIES)}",
                    )
                )
            elif field_query not in _IMPLEMENTED_FIELD_QUERIES:
                failures.append(_not_implemented(name, "Field query"))
            else:
                query.terms[field_query] = " ".join(values).lower().split()
        if "query" in params:
            query.search_terms = last.get("query")
            query.terms.setdefault("bibliographic", []).extend(" ".join(params["query"]).lower().split())

        selected = [s for v in params.get("select", ()) for s in v.split(",") if s]
        for name in selected:
            if name not in SELECT_FIELDS:
                failures.append(
                    _failure(
                        "select-not-available",
                        name,
                        f"Select {name} specified but there is no such select for this route. "
                        f"Valid selects for this route are: {', '.join(SELECT_FIELDS)}",
                    )
                )
        if failures:
            raise _ApiError(400, JSON_CONTENT_TYPE, _failures_body("validation-failure", failures))

        query.rows = int(rows) if rows is not None else DEFAULT_ROWS
        query.offset = int(offset) if offset is not None else 0
        query.sample = int(sample) if sample is not None else None
        query.cursor = cursor
        query.select = tuple(dict.fromkeys(selected)) if selected else None
        query.sort = sort
        query.descending = order in (None, "desc", "-1")
        return query

    def _list(
        self, params: dict[str, list[str]], route_filter: tuple[str, str] | None
    ) -> tuple[int, str, str]:
        query = self._validate(params)
        if route_filter is not None and route_filter[0] == "issn":
            route_filter = ("issn", _normalize_issn(route_filter[1]) or route_filter[1])
        with self._lock:
            if query.cursor is None:
                entries = self._select(query, route_filter)
                if query.sample is not None:
                    page = self._random.sample(entries, min(query.sample, len(entries)))
                    return self._work_list(page, len(entries), len(page), None, None, query)
                page = self._page(entries, query.offset, query.rows)
                return self._work_list(page, len(entries), query.rows, query.offset, None, query)
            self._prune_scrolls()
            if query.cursor == "*":
                entries = self._select(query, route_filter)
                scroll = _Scroll(self._new_scroll_id(), entries, query.rows, query.select, query.search_terms)
                self._scrolls[scroll.cursor] = scroll
            elif not _CURSOR_ALPHABET.fullmatch(query.cursor):
                # What Elasticsearch makes of an id that is not base64 (e.g. '+' decoded as ' ').
                raise _ApiError(500, JSON_CONTENT_TYPE, _encode(EXCEPTION_BODY))
            else:
                found = self._scrolls.get(query.cursor)
                if found is None:
                    failure = _failure("cursor-invalid", query.cursor, "Cursor specified but it is invalid")
                    raise _ApiError(404, JSON_CONTENT_TYPE, _failures_body("resource-failure", [failure]))
                scroll = found
            page = self._page(scroll.entries, scroll.position, scroll.rows)
            scroll.position = min(len(scroll.entries), scroll.position + scroll.rows)
            scroll.last_used = time.monotonic()
            view = _Query(select=scroll.select, search_terms=scroll.search_terms)
            return self._work_list(page, len(scroll.entries), scroll.rows, 0, scroll.cursor, view)

    def _page(self, entries: list[_Entry], start: int, rows: int) -> list[_Entry]:
        end = min(start + rows, len(entries))
        if self.faults.duplicate_across_pages and 0 < start < len(entries) and rows > 0:
            self.faults._count("duplicate_across_pages")
            start -= 1
        return entries[start:end]

    def _work_list(
        self,
        page: list[_Entry],
        total: int,
        per_page: int,
        start_index: int | None,
        cursor: str | None,
        query: _Query,
    ) -> tuple[int, str, str]:
        items = ",".join(self._project(entry, query.select) for entry in page)
        next_cursor = f'"next-cursor":{_encode(cursor)},' if cursor is not None else ""
        text = "".join(
            (
                '{"status":"ok","message-type":"work-list","message-version":"1.0.0","message":{"facets":{},',
                next_cursor,
                f'"total-results":{total},"items":[',
                items,
                f'],"items-per-page":{per_page},"query":{{"start-index":{start_index or 0},',
                f'"search-terms":{_encode(query.search_terms)}}}}}}}',
            )
        )
        return 200, JSON_CONTENT_TYPE, text


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HttpServer(LocalHTTPServer):
    """The shared local server, knowing its FakeCrossref."""

    def __init__(self, address: tuple[str, int], crossref: FakeCrossref) -> None:
        self.crossref = crossref
        super().__init__(address, _Handler)


class _Handler(KeepAliveHandler):
    """Keep-alive HTTP/1.1 (see :mod:`tests.fake_http`)."""

    server_version = "Jetty(9.4.40.v20210413)"
    server: _HttpServer

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        crossref = self.server.crossref
        split = urlsplit(self.path)
        params = parse_qs(split.query, keep_blank_values=True)
        headers = {name.lower(): value for name, value in self.headers.items()}
        index = crossref._arrive()
        slot: _Slot | None = None
        try:
            reply, slot = crossref._dispatch(index, split.path, params, headers)
        except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test
            crossref.internal_errors.append(exc)
            body = f"internal error in FakeCrossref: {exc!r}\n".encode()
            reply = _Reply(500, [("Content-Type", "text/plain; charset=utf-8")], body)
        try:
            crossref._log(RequestLogEntry("GET", split.path, params, headers, reply.status))
            self._write(reply, slot)
        finally:
            if slot is not None:
                slot.release()

    def _write(self, reply: _Reply, slot: _Slot | None) -> None:
        """Send the reply. The in-flight `slot` is released just before the last write of the
        body: a client cannot have the whole response (and send its next request) before the
        server stops counting this one, so a sequential client never looks concurrent."""
        release = slot.release if slot is not None else lambda: None
        fault = reply.fault
        kind = fault.kind if fault is not None else None
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if fault is not None and kind == "reset":
            self.close_connection = True
            release()
            try:
                self.wfile.write(reply.body[: int(len(reply.body) * fault.fraction)])
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault is not None and kind == "slow_drip":
            self._drip(reply.body, fault.bytes_per_second, release)
        else:
            release()
            self.wfile.write(reply.body)

    def _drip(self, body: bytes, bytes_per_second: float, release: Callable[[], None]) -> None:
        stopping = self.server.crossref._stopping
        chunk = max(1, int(bytes_per_second / 10))
        interval = chunk / bytes_per_second
        for offset in range(0, len(body), chunk):
            if stopping.wait(interval):
                self.close_connection = True
                return
            if offset + chunk >= len(body):
                release()
            try:
                self.wfile.write(body[offset : offset + chunk])
            except OSError:
                self.close_connection = True
                return
