"""A real, local OAI-PMH 2.0 server for tests, which can misbehave on demand.

`FakeOaiServer` is a `http.server.ThreadingHTTPServer` running in a daemon thread on
127.0.0.1 (a free port). It speaks the protocol the way DSpace, EPrints and Zenodo do
(see /work/shared/notes/oai-pmh.md section 3), and its `faults` attribute (a `FaultPlan`)
reproduces the fault catalogue at the end of /work/shared/notes/dedup-reliability.md.

Usage::

    records = [OaiRecord(f"oai:repo.example.org:{i}", ts, dc_metadata(f"Title {i}")) for i, ts in ...]
    with FakeOaiServer(records, page_size=100) as server:
        httpx.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "oai_dc"})
        server.faults.next_responses(1, status=503, headers={"Retry-After": "1"})
        server.requests[-1]  # {"verb": "ListRecords", "metadataPrefix": "oai_dc"}

Protocol behaviour, in short:

* Six verbs over GET and POST (form-encoded); OAI errors as ``<error code="...">`` with
  HTTP status `error_status` (200 by default, Zenodo uses 422).
* List requests are snapshotted: the selection is computed once, when the first request of a
  list arrives, and stored under a server-side list id. Opaque random tokens map to
  (list id, offset), so `put`/`delete` between pages never shifts pages. Tokens stay valid
  (and re-requesting one gives the same page and the same next token) until `expire_tokens`.
* Records are sorted by (datestamp at the server's granularity, identifier); from/until are
  inclusive and compared at the granularity of the argument (``until=2024-05-01`` includes
  the whole day, on either kind of server).
* A list that fits in its first response carries no resumptionToken; the last page of a list
  that took several requests carries an empty ``<resumptionToken completeListSize=".." cursor=".."/>``.
  ``cursor`` counts records (the spec), not pages (DSpace).
* Every record's XML fragment is rendered once, when it is put, so a page is a string join.
* Deleted records: ``deleted_record="persistent"`` or ``"transient"`` serve them as headers with
  ``status="deleted"``; ``"no"`` (Zenodo) makes them vanish instead, so the harvester never
  hears of the deletion.
* Every non-deleted record is disseminated in every prefix of `metadata_prefixes`, with
  the same metadata string.

Only the standard library is used.
"""

from __future__ import annotations

import gzip
import re
import secrets
import socket
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import attrgetter
from typing import Literal, NamedTuple
from urllib.parse import parse_qsl, urlsplit

from tests.fake_http import KeepAliveHandler, LocalHTTPServer, Served

__all__ = [
    "GRANULARITY_DAY",
    "GRANULARITY_SECONDS",
    "HTML_ERROR_PAGE",
    "OAI_NS",
    "FakeOaiServer",
    "Fault",
    "FaultPlan",
    "OaiRecord",
    "RequestLogEntry",
    "dc_metadata",
]

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
OAI_DC_NS = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC_NS = "http://purl.org/dc/elements/1.1/"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
GRANULARITY_DAY = "YYYY-MM-DD"
GRANULARITY_SECONDS = "YYYY-MM-DDThh:mm:ssZ"
DELETED_RECORD_POLICIES = ("no", "transient", "persistent")

#: The body `FaultPlan.html_next` serves: a proxy/maintenance page, as in
#: research-software-directory#420. Not well-formed XML (unclosed ``<meta>`` and ``<br>``).
HTML_ERROR_PAGE = (
    b'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
    b"<title>Service temporarily unavailable</title></head>\n"
    b"<body><h1>Service temporarily unavailable</h1>"
    b"<p>The repository is under maintenance.<br>Please try again later.</p></body></html>\n"
)

_XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_OAI_OPEN = (
    f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="{XSI_NS}" '
    f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">'
)
_DC_OPEN = (
    f'<oai_dc:dc xmlns:oai_dc="{OAI_DC_NS}" xmlns:dc="{DC_NS}" xmlns:xsi="{XSI_NS}" '
    f'xsi:schemaLocation="{OAI_DC_NS} http://www.openarchives.org/OAI/2.0/oai_dc.xsd">'
)
# (schema, metadataNamespace) for ListMetadataFormats; unknown prefixes get example.org URLs.
_KNOWN_FORMATS: dict[str, tuple[str, str]] = {
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC_NS),
    "marcxml": (
        "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd",
        "http://www.loc.gov/MARC21/slim",
    ),
    "marc21": (
        "http://www.loc.gov/standards/marcxml/schema/MARC21slim.xsd",
        "http://www.loc.gov/MARC21/slim",
    ),
    "datacite": (
        "http://schema.datacite.org/meta/kernel-4/metadata.xsd",
        "http://datacite.org/schema/kernel-4",
    ),
    "oai_datacite": (
        "http://schema.datacite.org/oai/oai-1.1/oai.xsd",
        "http://schema.datacite.org/oai/oai-1.1/",
    ),
    "mods": ("http://www.loc.gov/standards/mods/v3/mods-3-7.xsd", "http://www.loc.gov/mods/v3"),
}

# Characters XML 1.0 forbids; escaped text replaces them with U+FFFD so responses stay well-formed.
_INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_DAY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_SECONDS_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
# End of the first non-empty text node: "</" preceded by something other than ">".
_TEXT_END_RE = re.compile(r"(?<=[^>])</")
_CONTROL_CHARS = "\x0b\x01"
_REPEATED_TOKEN = "SAME"


def _esc(text: str) -> str:
    """Escape `text` for XML character data or a double-quoted attribute value.

    Characters that XML 1.0 forbids (e.g. ``\\x0b``) become U+FFFD, so whatever a client sends
    (echoed in ``<request>``) or a test puts in a field, the response stays well-formed.
    """
    text = _INVALID_XML_CHARS.sub("\ufffd", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value!r}")
    return value.astimezone(UTC)


def _fmt_seconds(value: datetime) -> str:
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}Z"


def _fmt_day(value: date) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _parse_utc_datetime(value: str) -> tuple[datetime, bool] | None:
    """Parse an OAI-PMH UTCdatetime argument; returns (instant, is_day) or None if invalid."""
    try:
        if _DAY_RE.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC), True
        if _SECONDS_RE.fullmatch(value):
            return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC), False
    except ValueError:  # e.g. month 13
        return None
    return None


# --------------------------------------------------------------------------------------------
# Records and metadata
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OaiRecord:
    """One item of the repository, as the server stores it.

    `datestamp` must be timezone-aware; it is normalised to UTC. `metadata` is the XML of the
    element inside ``<metadata>`` (e.g. from `dc_metadata`) and is inserted verbatim, so a test
    can plant any content, even broken XML, in one record. It is required unless `deleted`,
    and ignored when `deleted` (a deleted record is a header with ``status="deleted"``).
    `sets` are setSpecs; ``"a:b"`` makes the record a member of ``"a"`` too.
    """

    identifier: str
    datestamp: datetime
    metadata: str | None = None
    sets: tuple[str, ...] = ()
    deleted: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "datestamp", _utc(self.datestamp, "OaiRecord.datestamp"))
        object.__setattr__(self, "sets", tuple(self.sets))
        if not self.deleted and self.metadata is None:
            raise ValueError(f"record {self.identifier!r} is not deleted but has no metadata")


def dc_metadata(
    title: str,
    *,
    creators: Iterable[str] = (),
    identifiers: Iterable[str] = (),
    date: str | date | None = None,
    types: Iterable[str] = (),
    languages: Iterable[str] = (),
    subjects: Iterable[str] = (),
    description: str | None = None,
    publisher: str | None = None,
    relations: Iterable[str] = (),
    sources: Iterable[str] = (),
) -> str:
    """Render an ``<oai_dc:dc>`` element (oai_dc, dc and xsi namespaces declared on it).

    All values are XML-escaped (and characters XML forbids become U+FFFD), so the result is
    always well-formed. Elements come in the order title, creator, subject, description,
    publisher, date, type, identifier, source, language, relation.
    """
    parts = [_DC_OPEN, f"<dc:title>{_esc(title)}</dc:title>"]

    def add(name: str, values: Iterable[str]) -> None:
        parts.extend(f"<dc:{name}>{_esc(value)}</dc:{name}>" for value in values)

    add("creator", creators)
    add("subject", subjects)
    add("description", [description] if description is not None else [])
    add("publisher", [publisher] if publisher is not None else [])
    if date is not None:
        add("date", [date if isinstance(date, str) else date.isoformat()])
    add("type", types)
    add("identifier", identifiers)
    add("source", sources)
    add("language", languages)
    add("relation", relations)
    parts.append("</oai_dc:dc>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class _Entry:
    """A stored record with its pre-rendered XML fragments."""

    record: OaiRecord
    sort_key: tuple[datetime, str]  # (datestamp truncated to the server granularity, identifier)
    day: date
    second: datetime  # datestamp truncated to seconds
    header_xml: str
    record_xml: str


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------

FaultKind = Literal["canned", "html", "truncate", "reset", "slow_drip"]


@dataclass(frozen=True)
class Fault:
    """One misbehaviour for one request; build it with the class methods.

    The `kind` is also the key under which `FaultPlan.served` counts it.
    """

    kind: FaultKind
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    fraction: float = 0.0
    bytes_per_second: float = 1.0

    @classmethod
    def canned(cls, status: int = 503, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Fault:
        """Answer with exactly this status, headers and body; the request is not processed.

        Covers 503 + Retry-After (seconds or HTTP-date, fault catalogue #8), 429 (#9), a 500
        with an empty body (MIT DSpace GetRecord, mit-dspace/getrecord_http500_empty_body.xml),
        a 404 for an expired cursor (#4), a redirect to 169.254.169.254 (#15), or a hostile
        DOCTYPE body (#14). Content-Length is always the body's length; a Content-Type of
        text/plain is added for a non-empty body unless `headers` sets one.
        """
        return cls("canned", status=status, headers=tuple((headers or {}).items()), body=body)

    @classmethod
    def html(cls, status: int = 200) -> Fault:
        """Answer with `HTML_ERROR_PAGE` as ``text/html`` (an error page with status 200,
        research-software-directory#420; sickle then sees 0 records and no error)."""
        return cls("html", status=status, headers=(("Content-Type", "text/html; charset=utf-8"),))

    @classmethod
    def truncate(cls, fraction: float = 0.6) -> Fault:
        """Serve the normal body cut at `fraction` of its bytes, with a Content-Length equal to
        the cut length: valid HTTP, truncated XML (eScholarship/jschol#898; sickle's
        ``recover=True`` parse then silently loses the rest of the page and the token)."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("truncate", fraction=fraction)

    @classmethod
    def reset(cls, fraction: float = 0.0) -> Fault:
        """Send the status line and headers (with the full Content-Length), then `fraction` of
        the body, then close the connection (oaipmh-scythe#441, fatcat's ChunkedEncodingError).
        httpx raises `httpx.RemoteProtocolError`, a `httpx.TransportError`."""
        if not 0.0 <= fraction < 1.0:
            raise ValueError("fraction must be in [0, 1)")
        return cls("reset", fraction=fraction)

    @classmethod
    def slow_drip(cls, bytes_per_second: float = 1.0) -> Fault:
        """Send the headers at once, then the body at `bytes_per_second` (CrossRef/rest-api-doc#97).
        Every read makes progress, so only a total deadline catches it. `FakeOaiServer.stop`
        interrupts a drip in progress."""
        if bytes_per_second <= 0:
            raise ValueError("bytes_per_second must be positive")
        return cls("slow_drip", bytes_per_second=bytes_per_second)


@dataclass
class FaultPlan:
    """Misbehaviour on demand. Thread-safe, deterministic, and every fault served is counted
    in `served` (a Counter keyed by fault kind or flag name).

    Per-request faults (queued; each is used by exactly one request, then normal service resumes):
    `next_responses`, `on_request`, `truncate_next`, `reset_next`, `html_next`,
    `slow_drip_next`, or `queue` for any `Fault`. A fault scheduled with `on_request(k)` wins
    over the queue for request k; a queued fault goes to the next request that has no scheduled
    fault. Requests are counted from 0 over the server's whole life, any path or method.

    Standing flags (set the attribute; they apply to every response until `reset`):

    * `repeat_token` (coneda/kor#55, fault catalogue #5; sickle loops forever, metha stops):
      every ListRecords/ListIdentifiers page carries the token ``"SAME"``, and requesting
      ``"SAME"`` serves the first page of the most recent list again, with ``"SAME"`` again.
      Counted as ``"repeat_token"`` per page.
    * `empty_pages_with_token` = N (pyoai#8 looped on such pages; metha caps them): each new
      ListRecords/ListIdentifiers list first serves N pages with no records but a fresh token
      (cursor 0), then the real pages. Counted as ``"empty_pages_with_token"`` per empty page.
    * `ignore_from` (DOAJ, noted in fatcat's ``oaipmh.py``; catalogue #7): from/until are
      validated but do not filter. Counted as ``"ignore_from"`` per list request that had them.
    * `control_chars` (PUC-Rio's raw U+000B, scrapi-share/pucrio_control_char_vt.xml; metha's
      ``ControlCharReplacer``; catalogue #1): a raw ``\\x0b\\x01`` is inserted at the end of the
      first text node of the metadata of the first non-deleted record of the repository (in
      (datestamp, identifier) order), in every ListRecords page or GetRecord that contains it.
      Counted as ``"control_chars"`` per injected record.
    * `wrong_charset` (NCAR's ISO-8859-1 header on UTF-8 XML, inverted; metha retries other
      encodings; catalogue #1): the body is encoded in ISO-8859-1 (characters beyond it as
      ``&#N;``), while the XML declaration and the Content-Type both say UTF-8. Counted per response.
    * `gzip_without_header` (metha sniffs gzip; catalogue #11): OAI bodies are gzipped but sent
      without Content-Encoding. Counted per response.
    * `duplicate_across_pages` (DOAJ/doaj#712, artefactual/atom#1581; catalogue #6): the last
      record of each page is repeated as the first record of the next page. Counted per page.
    * `token_leads_to_empty_last_page` (inveniosoftware/invenio-app-rdm#2715; catalogue #5):
      the last real page still carries a token, which leads to a page with no records and an
      empty ``<resumptionToken/>``. Counted when that extra token is issued.
    * `awkward_tokens` (CrossRef/rest-api-doc#109/#270, catalogue #10; Zenodo's tokens are
      base64-like): new tokens contain ``+``, ``/`` and ``=``, so a client that does not
      URL-encode the token gets badResumptionToken. Counted per token issued.

    The list-paging flags apply to ListRecords and ListIdentifiers only (not ListSets).
    `reset()` clears the queue, the schedule, all flags and `served`.
    """

    repeat_token: bool = False
    empty_pages_with_token: int = 0
    ignore_from: bool = False
    control_chars: bool = False
    wrong_charset: bool = False
    gzip_without_header: bool = False
    duplicate_across_pages: bool = False
    token_leads_to_empty_last_page: bool = False
    awkward_tokens: bool = False
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
        """The next `n` requests get this canned response (see `Fault.canned`), then normal
        service resumes. E.g. ``next_responses(2, status=503, headers={"Retry-After": "1"})``."""
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
        """The k-th request (0-based, counting all requests the server ever received) gets
        `fault`, or by default a canned response with `status`/`headers`/`body` (e.g. a 500
        on page 3, datacite/datacite#1442)."""
        with self._lock:
            self._scheduled[k] = fault if fault is not None else Fault.canned(status, headers, body)

    def truncate_next(self, n: int = 1, fraction: float = 0.6) -> None:
        """The next `n` responses are cut at `fraction` with a matching Content-Length (`Fault.truncate`)."""
        self.queue(Fault.truncate(fraction), n)

    def reset_next(self, n: int = 1, fraction: float = 0.0) -> None:
        """The next `n` connections are closed after the headers (`Fault.reset`)."""
        self.queue(Fault.reset(fraction), n)

    def html_next(self, n: int = 1, status: int = 200) -> None:
        """The next `n` requests get an HTML error page with `status` (`Fault.html`)."""
        self.queue(Fault.html(status), n)

    def slow_drip_next(self, n: int = 1, bytes_per_second: float = 1.0) -> None:
        """The next `n` bodies are dripped at `bytes_per_second` (`Fault.slow_drip`)."""
        self.queue(Fault.slow_drip(bytes_per_second), n)

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
            self.repeat_token = False
            self.empty_pages_with_token = 0
            self.ignore_from = False
            self.control_chars = False
            self.wrong_charset = False
            self.gzip_without_header = False
            self.duplicate_across_pages = False
            self.token_leads_to_empty_last_page = False
            self.awkward_tokens = False

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
# The OAI-PMH repository
# --------------------------------------------------------------------------------------------


class RequestLogEntry(NamedTuple):
    """One request as the server saw it: method, path, params (last value wins for repeated
    keys), and the HTTP status it answered with (the status line sent, also for faults)."""

    method: str
    path: str
    params: dict[str, str]
    status: int


class _OaiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Cursor:
    """What a resumption token stands for."""

    list_id: int
    offset: int
    empties_left: int = 0
    repeat: bool = False


@dataclass
class _ListState:
    """A snapshotted list: the (key, XML fragment) items fixed when the list was requested."""

    list_id: int
    verb: str
    items: list[tuple[str, str]]
    empty_pages: int
    tokens: dict[tuple[int, int], str] = field(default_factory=dict)


# verb -> (required arguments, optional arguments, allows an exclusive resumptionToken)
_VERBS: dict[str, tuple[frozenset[str], frozenset[str], bool]] = {
    "Identify": (frozenset(), frozenset(), False),
    "ListMetadataFormats": (frozenset(), frozenset({"identifier"}), False),
    "ListSets": (frozenset(), frozenset(), True),
    "GetRecord": (frozenset({"identifier", "metadataPrefix"}), frozenset(), False),
    "ListIdentifiers": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"}), True),
    "ListRecords": (frozenset({"metadataPrefix"}), frozenset({"from", "until", "set"}), True),
}
_RECORD_LIST_VERBS = frozenset({"ListIdentifiers", "ListRecords"})


class FakeOaiServer(Served):
    """A local OAI-PMH 2.0 repository over real HTTP, with `faults` to misbehave on demand.

    Parameters:
        records: initial records (later ones replace earlier ones with the same identifier).
        granularity: ``"YYYY-MM-DDThh:mm:ssZ"`` (default) or ``"YYYY-MM-DD"``. A day server
            renders datestamps as days and rejects from/until with a time part (badArgument),
            as Dataverse does (IQSS/dataverse#11020).
        page_size: records (or headers, or sets) per list page.
        earliest_datestamp: for Identify; default the earliest record's datestamp (or now()).
        deleted_record: ``"persistent"``, ``"transient"`` (both serve deleted headers) or ``"no"``
            (deleted records vanish from lists and GetRecord, as Zenodo's ``deletedRecord=no``).
        error_status: HTTP status of OAI error responses (200; Zenodo uses 422).
        metadata_prefixes: the formats every record is disseminated in.
        now: clock for responseDate (and the default earliestDatestamp); aware datetimes.
        path: the URL path of the endpoint; other paths get 404.
        set_names: optional setSpec -> setName for ListSets (default: the setSpec itself).

    Attributes:
        url: ``http://127.0.0.1:PORT/oai``, valid after `start` (and stable across stop/start).
        requests: the query (or form) params of every request, in arrival order.
        request_log: a `RequestLogEntry` per answered request; written before the body is sent.
        faults: the `FaultPlan`.
        internal_errors: exceptions raised while handling a request (answered with HTTP 500);
            a test can assert it is empty.
    """

    def __init__(
        self,
        records: Iterable[OaiRecord] = (),
        *,
        granularity: str = GRANULARITY_SECONDS,
        page_size: int = 100,
        earliest_datestamp: datetime | None = None,
        deleted_record: str = "persistent",
        error_status: int = 200,
        metadata_prefixes: tuple[str, ...] = ("oai_dc",),
        now: Callable[[], datetime] | None = None,
        path: str = "/oai",
        set_names: Mapping[str, str] | None = None,
    ) -> None:
        if granularity not in (GRANULARITY_DAY, GRANULARITY_SECONDS):
            raise ValueError(f"granularity must be {GRANULARITY_DAY!r} or {GRANULARITY_SECONDS!r}")
        if deleted_record not in DELETED_RECORD_POLICIES:
            raise ValueError(f"deleted_record must be one of {DELETED_RECORD_POLICIES}")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if not path.startswith("/"):
            raise ValueError("path must start with '/'")
        self.granularity = granularity
        self.page_size = page_size
        self.earliest_datestamp = (
            _utc(earliest_datestamp, "earliest_datestamp") if earliest_datestamp is not None else None
        )
        self.deleted_record = deleted_record
        self.error_status = error_status
        self.metadata_prefixes = tuple(metadata_prefixes)
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.path = path
        self.set_names: dict[str, str] = dict(set_names or {})
        self.faults = FaultPlan()
        self.requests: list[dict[str, str]] = []
        self.request_log: list[RequestLogEntry] = []
        self.internal_errors: list[BaseException] = []
        self.url = ""

        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._sorted_cache: list[_Entry] | None = None
        self._set_specs_cache: list[str] | None = None
        self._lists: dict[int, _ListState] = {}
        self._tokens: dict[str, _Cursor] = {}
        self._next_list_id = 0
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._stopping = threading.Event()
        for record in records:
            self._store(record)

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def _url_path(self) -> str:
        return self.path

    def _make_server(self, address: tuple[str, int]) -> _HttpServer:
        return _HttpServer(address, self)

    # ---- repository content -------------------------------------------------------------

    def put(self, record: OaiRecord) -> None:
        """Add `record`, or replace the record with the same identifier. Lists already
        requested keep their snapshot."""
        with self._lock:
            self._store(record)

    def delete(self, identifier: str, datestamp: datetime) -> None:
        """Turn the record into a deleted record (header ``status="deleted"``, no metadata),
        keeping its sets, with the new `datestamp`. An unknown identifier becomes a new
        deleted record without sets."""
        with self._lock:
            old = self._entries.get(identifier)
            sets = old.record.sets if old is not None else ()
            self._store(OaiRecord(identifier, datestamp, None, sets, deleted=True))

    @property
    def records(self) -> list[OaiRecord]:
        """All stored records (deleted ones included), in (datestamp, identifier) order."""
        with self._lock:
            return [entry.record for entry in self._sorted()]

    def expire_tokens(self) -> None:
        """Invalidate every resumption token issued so far (they get badResumptionToken), as
        Zenodo's minutes-long signed tokens or a restarted DSpace do. New lists work normally."""
        with self._lock:
            self._tokens.clear()
            self._lists.clear()

    # ---- internals: storage -------------------------------------------------------------

    def _store(self, record: OaiRecord) -> None:
        self._entries[record.identifier] = self._render_entry(record)
        self._sorted_cache = None
        self._set_specs_cache = None

    def _render_entry(self, record: OaiRecord) -> _Entry:
        ds = record.datestamp
        second = ds.replace(microsecond=0)
        day = ds.date()
        if self.granularity == GRANULARITY_DAY:
            granular = datetime(day.year, day.month, day.day, tzinfo=UTC)
            stamp = _fmt_day(day)
        else:
            granular = second
            stamp = _fmt_seconds(second)
        set_specs = "".join(f"<setSpec>{_esc(spec)}</setSpec>" for spec in record.sets)
        status = ' status="deleted"' if record.deleted else ""
        header = (
            f"<header{status}><identifier>{_esc(record.identifier)}</identifier>"
            f"<datestamp>{stamp}</datestamp>{set_specs}</header>"
        )
        if record.deleted:
            body = f"<record>{header}</record>"
        else:
            body = f"<record>{header}<metadata>{record.metadata}</metadata></record>"
        return _Entry(record, (granular, record.identifier), day, second, header, body)

    def _sorted(self) -> list[_Entry]:
        if self._sorted_cache is None:
            self._sorted_cache = sorted(self._entries.values(), key=attrgetter("sort_key"))
        return self._sorted_cache

    def _set_specs(self) -> list[str]:
        """All setSpecs in use, with their ancestors (``a:b:c`` implies ``a`` and ``a:b``)."""
        if self._set_specs_cache is None:
            specs: set[str] = set()
            for entry in self._entries.values():
                for spec in entry.record.sets:
                    parts = spec.split(":")
                    specs.update(":".join(parts[: i + 1]) for i in range(len(parts)))
            self._set_specs_cache = sorted(specs)
        return self._set_specs_cache

    def _visible(self, entry: _Entry) -> bool:
        return not (entry.record.deleted and self.deleted_record == "no")

    # ---- internals: HTTP side -----------------------------------------------------------

    def _log_request(self, params: dict[str, str]) -> int:
        with self._lock:
            self.requests.append(params)
            return len(self.requests) - 1

    def _log_response(self, method: str, path: str, params: dict[str, str], status: int) -> None:
        with self._lock:
            self.request_log.append(RequestLogEntry(method, path, params, status))

    def _encode(self, text: str) -> bytes:
        """Encode a response, applying the wrong_charset and gzip_without_header flags."""
        if self.faults.wrong_charset:
            self.faults._count("wrong_charset")
            body = text.encode("iso-8859-1", errors="xmlcharrefreplace")
        else:
            body = text.encode("utf-8")
        if self.faults.gzip_without_header:
            self.faults._count("gzip_without_header")
            body = gzip.compress(body, mtime=0)
        return body

    # ---- internals: protocol ------------------------------------------------------------

    def _respond(self, pairs: list[tuple[str, str]]) -> tuple[int, str]:
        """Answer one OAI-PMH request: (HTTP status, XML text)."""
        with self._lock:
            try:
                verb, args = self._validate(pairs)
                body = self._handle(verb, args)
            except _OaiError as err:
                bare = err.code in ("badVerb", "badArgument")
                request = self._request_xml([] if bare else pairs)
                error = f'<error code="{err.code}">{_esc(err.message)}</error>'
                return self.error_status, self._envelope(request, error)
            return 200, self._envelope(self._request_xml(pairs), body)

    def _envelope(self, request_xml: str, body: str) -> str:
        response_date = _fmt_seconds(_utc(self.now(), "now()"))
        return "".join(
            (
                _XML_DECLARATION,
                _OAI_OPEN,
                f"<responseDate>{response_date}</responseDate>",
                request_xml,
                body,
                "</OAI-PMH>\n",
            )
        )

    def _request_xml(self, pairs: list[tuple[str, str]]) -> str:
        attrs = "".join(f' {key}="{_esc(value)}"' for key, value in pairs)
        return f"<request{attrs}>{_esc(self.url)}</request>"

    def _validate(self, pairs: list[tuple[str, str]]) -> tuple[str, dict[str, str]]:
        verbs = [value for key, value in pairs if key == "verb"]
        if not verbs:
            raise _OaiError("badVerb", "The verb argument is missing.")
        if len(verbs) > 1:
            raise _OaiError("badVerb", "The verb argument is repeated.")
        verb = verbs[0]
        if verb not in _VERBS:
            raise _OaiError("badVerb", f"Illegal OAI verb: {verb}")
        counts = Counter(key for key, _ in pairs)
        repeated = sorted(key for key, count in counts.items() if count > 1)
        if repeated:
            raise _OaiError("badArgument", f"Repeated argument(s): {', '.join(repeated)}")
        args = {key: value for key, value in pairs if key != "verb"}
        required, optional, resumable = _VERBS[verb]
        allowed = required | optional | ({"resumptionToken"} if resumable else set())
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise _OaiError("badArgument", f"Illegal argument(s) for {verb}: {', '.join(unknown)}")
        if "resumptionToken" in args:
            if len(args) > 1:
                raise _OaiError("badArgument", "resumptionToken is an exclusive argument.")
        else:
            missing = sorted(required - set(args))
            if missing:
                raise _OaiError("badArgument", f"Missing required argument(s): {', '.join(missing)}")
        return verb, args

    def _handle(self, verb: str, args: dict[str, str]) -> str:
        if verb == "Identify":
            return self._identify()
        if verb == "ListMetadataFormats":
            return self._list_metadata_formats(args.get("identifier"))
        if verb == "GetRecord":
            return self._get_record(args["identifier"], args["metadataPrefix"])
        return self._list(verb, args)

    def _fmt_granular(self, value: datetime) -> str:
        return _fmt_day(value.date()) if self.granularity == GRANULARITY_DAY else _fmt_seconds(value)

    def _identify(self) -> str:
        earliest = self.earliest_datestamp
        if earliest is None:
            entries = self._sorted()
            earliest = entries[0].record.datestamp if entries else _utc(self.now(), "now()")
        return (
            "<Identify><repositoryName>Fake OAI-PMH repository</repositoryName>"
            f"<baseURL>{_esc(self.url)}</baseURL><protocolVersion>2.0</protocolVersion>"
            "<adminEmail>admin@repo.example.org</adminEmail>"
            f"<earliestDatestamp>{self._fmt_granular(earliest)}</earliestDatestamp>"
            f"<deletedRecord>{self.deleted_record}</deletedRecord>"
            f"<granularity>{self.granularity}</granularity></Identify>"
        )

    def _list_metadata_formats(self, identifier: str | None) -> str:
        if identifier is not None:
            entry = self._entries.get(identifier)
            if entry is None or not self._visible(entry):
                raise _OaiError("idDoesNotExist", f"No item with identifier {identifier}")
        formats = []
        for prefix in self.metadata_prefixes:
            schema, namespace = _KNOWN_FORMATS.get(
                prefix, (f"http://example.org/schemas/{prefix}.xsd", f"http://example.org/ns/{prefix}")
            )
            formats.append(
                f"<metadataFormat><metadataPrefix>{_esc(prefix)}</metadataPrefix>"
                f"<schema>{_esc(schema)}</schema><metadataNamespace>{_esc(namespace)}</metadataNamespace>"
                "</metadataFormat>"
            )
        return f"<ListMetadataFormats>{''.join(formats)}</ListMetadataFormats>"

    def _check_prefix(self, prefix: str) -> None:
        if prefix not in self.metadata_prefixes:
            raise _OaiError("cannotDisseminateFormat", f"Unsupported metadataPrefix: {prefix}")

    def _get_record(self, identifier: str, prefix: str) -> str:
        self._check_prefix(prefix)
        entry = self._entries.get(identifier)
        if entry is None or not self._visible(entry):
            raise _OaiError("idDoesNotExist", f"No item with identifier {identifier}")
        fragment = entry.record_xml
        if self.faults.control_chars and identifier == self._control_char_target():
            self.faults._count("control_chars")
            fragment = _inject_control_chars(fragment)
        return f"<GetRecord>{fragment}</GetRecord>"

    def _control_char_target(self) -> str | None:
        return next((e.record.identifier for e in self._sorted() if not e.record.deleted), None)

    def _date_arg(self, args: dict[str, str], name: str) -> tuple[datetime, bool] | None:
        value = args.get(name)
        if value is None:
            return None
        parsed = _parse_utc_datetime(value)
        if parsed is None:
            raise _OaiError("badArgument", f"{name}={value} is not a valid UTCdatetime")
        if not parsed[1] and self.granularity == GRANULARITY_DAY:
            raise _OaiError("badArgument", f"{name}={value} is finer than the repository granularity")
        return parsed

    def _select(self, verb: str, args: dict[str, str]) -> list[_Entry]:
        start = self._date_arg(args, "from")
        end = self._date_arg(args, "until")
        if start is not None and end is not None:
            if start[1] != end[1]:
                raise _OaiError("badArgument", "from and until have different granularities")
            if start[0] > end[0]:
                raise _OaiError("badArgument", "from is later than until")
        set_spec = args.get("set")
        if set_spec is not None and not self._set_specs():
            raise _OaiError("noSetHierarchy", "This repository does not support sets.")
        if (start is not None or end is not None) and self.faults.ignore_from and verb in _RECORD_LIST_VERBS:
            self.faults._count("ignore_from")
            start = end = None
        selected = []
        set_prefix = f"{set_spec}:" if set_spec is not None else ""
        for entry in self._sorted():
            if not self._visible(entry):
                continue
            if start is not None and (entry.day < start[0].date() if start[1] else entry.second < start[0]):
                continue
            if end is not None and (entry.day > end[0].date() if end[1] else entry.second > end[0]):
                continue
            if set_spec is not None and not any(
                spec == set_spec or spec.startswith(set_prefix) for spec in entry.record.sets
            ):
                continue
            selected.append(entry)
        return selected

    def _list(self, verb: str, args: dict[str, str]) -> str:
        token = args.get("resumptionToken")
        if token is not None:
            cursor = self._tokens.get(token)
            state = self._lists.get(cursor.list_id) if cursor is not None else None
            if cursor is None or state is None or state.verb != verb:
                raise _OaiError("badResumptionToken", "The resumptionToken is invalid or expired.")
            return self._page(state, cursor, resumed=True)

        if verb == "ListSets":
            specs = self._set_specs()
            if not specs:
                raise _OaiError("noSetHierarchy", "This repository does not support sets.")
            items = [(spec, self._set_xml(spec)) for spec in specs]
            state = self._new_list(verb, items, empty_pages=0)
            return self._page(state, _Cursor(state.list_id, 0), resumed=False)

        self._check_prefix(args["metadataPrefix"])
        entries = self._select(verb, args)
        if not entries:
            raise _OaiError("noRecordsMatch", "The combination of the arguments results in an empty list.")
        if verb == "ListRecords":
            items = [(e.record.identifier, e.record_xml) for e in entries]
        else:
            items = [(e.record.identifier, e.header_xml) for e in entries]
        state = self._new_list(verb, items, empty_pages=max(0, self.faults.empty_pages_with_token))
        if self.faults.repeat_token:
            cursor = _Cursor(state.list_id, 0, repeat=True)
            self._tokens[_REPEATED_TOKEN] = cursor
            return self._page(state, cursor, resumed=False)
        return self._page(state, _Cursor(state.list_id, 0, empties_left=state.empty_pages), resumed=False)

    def _set_xml(self, spec: str) -> str:
        name = self.set_names.get(spec, spec)
        return f"<set><setSpec>{_esc(spec)}</setSpec><setName>{_esc(name)}</setName></set>"

    def _new_list(self, verb: str, items: list[tuple[str, str]], empty_pages: int) -> _ListState:
        list_id = self._next_list_id
        self._next_list_id += 1
        state = _ListState(list_id, verb, items, empty_pages)
        self._lists[list_id] = state
        return state

    def _issue_token(self, state: _ListState, offset: int, empties_left: int) -> str:
        """The token for (list, offset, empty pages left): the same token if asked again."""
        key = (offset, empties_left)
        token = state.tokens.get(key)
        if token is None:
            if self.faults.awkward_tokens:
                self.faults._count("awkward_tokens")
                token = f"{secrets.token_hex(6)}+{secrets.token_hex(3)}/{secrets.token_hex(3)}=="
            else:
                token = secrets.token_hex(12)
            state.tokens[key] = token
            self._tokens[token] = _Cursor(state.list_id, offset, empties_left)
        return token

    def _page(self, state: _ListState, cursor: _Cursor, *, resumed: bool) -> str:
        """Render the page `cursor` points at. A list that fits in the first response carries
        no token at all; the last page of a list that took several requests carries an empty
        ``<resumptionToken completeListSize=".." cursor=".."/>`` (both are what DSpace does)."""
        faults = self.faults
        total = len(state.items)
        record_list = state.verb in _RECORD_LIST_VERBS
        if cursor.repeat:
            faults._count("repeat_token")
            return self._page_xml(state, state.items[: self.page_size], _REPEATED_TOKEN, 0)
        if cursor.empties_left > 0:
            faults._count("empty_pages_with_token")
            token = self._issue_token(state, cursor.offset, cursor.empties_left - 1)
            return self._page_xml(state, [], token, cursor.offset)
        start = cursor.offset
        end = min(start + self.page_size, total)
        first = start
        if record_list and faults.duplicate_across_pages and 0 < start < total:
            faults._count("duplicate_across_pages")
            first = start - 1
        next_token: str | None = None
        if end < total:
            next_token = self._issue_token(state, end, 0)
        elif record_list and faults.token_leads_to_empty_last_page and start < total:
            faults._count("token_leads_to_empty_last_page")
            next_token = self._issue_token(state, total, 0)
        if next_token is None and not resumed:
            return self._page_xml(state, state.items[first:end], None, start, end_token=False)
        return self._page_xml(state, state.items[first:end], next_token, start)

    def _page_xml(
        self,
        state: _ListState,
        items: list[tuple[str, str]],
        token: str | None,
        cursor: int,
        *,
        end_token: bool = True,
    ) -> str:
        """The list element: the items' fragments joined, then the token (a non-empty one,
        an empty one if `token` is None, or none at all if also `end_token` is false)."""
        fragments = [fragment for _, fragment in items]
        if state.verb == "ListRecords" and self.faults.control_chars:
            target = self._control_char_target()
            for i, (key, fragment) in enumerate(items):
                if key == target:
                    self.faults._count("control_chars")
                    fragments[i] = _inject_control_chars(fragment)
        attrs = f'completeListSize="{len(state.items)}" cursor="{cursor}"'
        if token is not None:
            token_xml = f"<resumptionToken {attrs}>{_esc(token)}</resumptionToken>"
        elif end_token:
            token_xml = f"<resumptionToken {attrs}/>"
        else:
            token_xml = ""
        return f"<{state.verb}>{''.join(fragments)}{token_xml}</{state.verb}>"


def _inject_control_chars(fragment: str) -> str:
    """Insert a raw ``\\x0b\\x01`` at the end of the first text node inside ``<metadata>``."""
    start = fragment.find("<metadata>")
    if start < 0:
        return fragment
    start += len("<metadata>")
    match = _TEXT_END_RE.search(fragment, start)
    at = match.start() if match else fragment.find("</metadata>")
    return fragment[:at] + _CONTROL_CHARS + fragment[at:]


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _HttpServer(LocalHTTPServer):
    """The shared local server, knowing its FakeOaiServer."""

    def __init__(self, address: tuple[str, int], oai: FakeOaiServer) -> None:
        self.oai = oai
        super().__init__(address, _Handler)


class _Handler(KeepAliveHandler):
    """Keep-alive HTTP/1.1 (see :mod:`tests.fake_http`)."""

    server_version = "FakeOaiServer/1.0"
    server: _HttpServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        oai = self.server.oai
        split = urlsplit(self.path)
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", errors="replace") if length > 0 else ""
        else:
            raw = split.query
        pairs = parse_qsl(raw, keep_blank_values=True)
        params = dict(pairs)
        index = oai._log_request(params)
        fault = oai.faults._take(index)

        if fault is not None and fault.kind == "canned":
            status, headers, body = fault.status, list(fault.headers), fault.body
            if body and not any(name.lower() == "content-type" for name, _ in headers):
                headers.append(("Content-Type", "text/plain; charset=utf-8"))
        elif fault is not None and fault.kind == "html":
            status, headers, body = fault.status, list(fault.headers), HTML_ERROR_PAGE
        elif split.path != oai.path:
            status, body = 404, b"<html><body><h1>404 Not Found</h1></body></html>\n"
            headers = [("Content-Type", "text/html; charset=utf-8")]
        else:
            try:
                status, text = oai._respond(pairs)
                body = oai._encode(text)
                headers = [("Content-Type", "text/xml; charset=utf-8")]
            except Exception as exc:  # a bug in the fake: answer 500 and keep it for the test
                oai.internal_errors.append(exc)
                status, body = 500, f"internal error in FakeOaiServer: {exc!r}\n".encode()
                headers = [("Content-Type", "text/plain; charset=utf-8")]

        oai._log_response(method, split.path, params, status)
        self._write(status, headers, body, fault)

    def _write(self, status: int, headers: list[tuple[str, str]], body: bytes, fault: Fault | None) -> None:
        kind = fault.kind if fault is not None else None
        if fault is not None and kind == "truncate":
            body = body[: int(len(body) * fault.fraction)]
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault is not None and kind == "reset":
            self.close_connection = True
            try:
                self.wfile.write(body[: int(len(body) * fault.fraction)])
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault is not None and kind == "slow_drip":
            self._drip(body, fault.bytes_per_second)
        else:
            self.wfile.write(body)

    def _drip(self, body: bytes, bytes_per_second: float) -> None:
        stopping = self.server.oai._stopping
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
