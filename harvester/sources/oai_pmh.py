"""OAI-PMH source: sickle for the protocol, our HTTP layer underneath, strict parsing.

sickle (0.7) gives the verbs, the paging iterators and the mapping of OAI ``<error>``
codes to exceptions. Three things in it would lose data silently, so they are replaced:

* ``Sickle.harvest`` → every request goes through :class:`harvester.http.HttpClient`
  (one pooled httpx client, timeouts, the retry table, Retry-After as a date). sickle's
  own ``_request`` (module-level ``requests.get``) raises if anything calls it.
* ``OAIResponse.xml`` parsed each body up to three times with ``recover=True``, which
  turns a truncated body into a short page and ends the harvest early. Here each body is
  parsed ONCE, strictly, before sickle sees it; a body that is not a complete OAI-PMH
  document (truncated, HTML served with 200, empty) raises
  :class:`~harvester.errors.InvalidResponse` and is retried like a 503. Two known
  problems are repaired, and each repair is logged: XML-invalid control characters
  (PUC-Rio serves raw U+000B) and bytes that are not valid in the declared UTF-8
  (decoded as Windows-1252). A DOCTYPE is refused outright (XXE, entity bombs).
* OAI errors are read whatever the HTTP status: Zenodo answers ``noRecordsMatch`` and
  ``badResumptionToken`` with HTTP 422, which sickle turned into an HTTP error.

Harvest plan of one run (``pages``): Identify first (granularity, earliestDatestamp,
and the server's own clock in ``responseDate``, which becomes the run's fixed upper
bound). The range from the checkpoint (minus one granule of overlap) or from ``since``
/ earliestDatestamp up to that bound is cut into windows of ``window`` length. Every
page is committed with the state needed to resume right after it: the window and the
resumption token for the next page. A window's last page moves ``through`` to the
window's end. A restart resumes from the stored token; if the server no longer knows
it (badResumptionToken), only that window is fetched again. A token seen twice in one
window, or more than ``max_empty_pages`` pages in a row without records, ends the run
with an error instead of looping forever.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from lxml import etree
from sickle import Sickle, oaiexceptions
from sickle.iterator import OAIResponseIterator
from sickle.response import OAIResponse

from harvester.errors import FatalError, InvalidResponse
from harvester.http import FetchedResponse, HttpClient
from harvester.record import Record
from harvester.sources.base import NormalizationError, Page, RawItem
from harvester.sources.oai_formats import normalize_metadata

__all__ = ["OAI_NS", "Identity", "OaiPmhSource", "parse_oai_xml", "parse_record_xml"]

log = structlog.get_logger()

OAI_NS = "http://www.openarchives.org/OAI/2.0/"
_O = "{" + OAI_NS + "}"
DAY = "YYYY-MM-DD"
SECONDS = "YYYY-MM-DDThh:mm:ssZ"

_PARSERS = threading.local()  # lxml parser objects must not be shared between threads


def _parser(huge: bool = False) -> etree.XMLParser:
    """A strict, entity-free parser of this thread; ``huge`` lifts libxml2's 10 MB text-node limit."""
    attr = "huge" if huge else "strict"
    parser = getattr(_PARSERS, attr, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=huge,
            recover=False,
            remove_blank_text=False,
        )
        setattr(_PARSERS, attr, parser)
    return parser


_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_HTML = re.compile(
    rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!DOCTYPE\s+html|html)[\s>]", re.IGNORECASE | re.DOTALL
)


def _cp1252_fallback(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    chunk = error.object[error.start : error.end]
    return chunk.decode("cp1252", errors="replace"), error.end


codecs.register_error("harvester-cp1252", _cp1252_fallback)


def _parse_strict(body: bytes) -> etree._Element:
    """Strict parse. A document with one enormous text node (a 50 MB abstract) is not
    malformed: it is parsed again without libxml2's size limit, so the page is not lost
    for ever; the oversized record is then quarantined by the runner's record cap. Entity
    expansion stays off (DOCTYPEs are refused), and the response size is capped by the
    HTTP layer."""
    try:
        return etree.fromstring(body, parser=_parser())
    except etree.XMLSyntaxError as exc:
        if "huge" not in str(exc).lower():
            raise
        log.warning("oai.huge_document", error=str(exc), bytes=len(body))
        return etree.fromstring(body, parser=_parser(huge=True))


def parse_oai_xml(body: bytes, where: str) -> etree._Element:
    """Parse an OAI-PMH response strictly; repair only known problems, and log them.

    Raises InvalidResponse (retryable) for truncated, empty or non-OAI bodies and
    FatalError for a DOCTYPE (never resolved, never retried).
    """
    if not body.strip():
        raise InvalidResponse(f"empty body from {where}")
    if _HTML.match(body[:4096]):
        raise InvalidResponse(f"an HTML page instead of OAI-PMH XML from {where}")
    if _DOCTYPE.search(body[:4096]):
        raise FatalError(f"refusing a document with a DOCTYPE from {where} (entities are not allowed)")
    try:
        root = _parse_strict(body)
    except etree.XMLSyntaxError as first:
        root = _repair(body, first, where)
    if root.getroottree().docinfo.doctype:  # type: ignore[attr-defined]  # anywhere, not only the first bytes
        raise FatalError(f"refusing a document with a DOCTYPE from {where} (entities are not allowed)")
    if root.tag != _O + "OAI-PMH":
        raise InvalidResponse(
            f"not an OAI-PMH response from {where}: root element <{etree.QName(root).localname}>"
        )
    return root


def _repair(body: bytes, error: etree.XMLSyntaxError, where: str) -> etree._Element:
    try:
        return _repair_known(body, error, where)
    except InvalidResponse as failure:
        salvaged = _salvage(_CONTROL.sub(b"", body), where)
        if salvaged is None:
            raise
        log.warning("oai.page_salvaged", url=where, error=str(failure))
        return salvaged


BROKEN_NS = "urn:scholarly-harvester:unparsable-record"
_END = re.compile(rb"</(?:[\w.-]+:)?OAI-PMH>\s*$")


def _salvage(body: bytes, where: str) -> etree._Element | None:
    """A complete page with one malformed record: keep the good records, flag the bad one.

    Without this, one record with (say) an unescaped ``&`` makes the whole page fail on
    every run, for ever, and its neighbours are never stored. Only a COMPLETE document
    (it ends with ``</OAI-PMH>``) is salvaged — a truncated body stays an error and is
    retried. The envelope (responseDate, request, resumption token) must parse on its
    own. Each ``<record>`` is then parsed alone; a record that does not parse becomes a
    placeholder record that carries its raw text, which normalization quarantines with
    the parser's reason. Returns None when the page cannot be salvaged.
    """
    if not _END.search(body[-200:]):
        return None
    head = re.search(rb"<((?:[\w.-]+:)?)OAI-PMH[\s>]", body)
    if head is None:
        return None
    prefix = re.escape(head.group(1))
    spans = list(
        re.finditer(rb"<" + prefix + rb"record[\s>].*?</" + prefix + rb"record\s*>", body, re.DOTALL)
    )
    if not spans:
        return None
    envelope = b"".join(body[a:b] for a, b in _gaps(spans, len(body)))
    try:
        root = etree.fromstring(envelope, parser=_parser())
    except etree.XMLSyntaxError:
        return None
    container = root.find(f"{_O}ListRecords")
    if container is None:
        return None
    token = container.find(f"{_O}resumptionToken")
    insert_at = 0 if token is None else list(container).index(token)
    start = spans[0].start()
    bad = 0
    for span in spans:
        fragment = body[:start] + span.group(0) + body[spans[-1].end() :]
        try:
            one = etree.fromstring(fragment, parser=_parser()).find(f"{_O}ListRecords/{_O}record")
        except etree.XMLSyntaxError as exc:
            one = _placeholder(span.group(0), str(exc))
            bad += 1
        if one is None:
            return None
        container.insert(insert_at, one)
        insert_at += 1
    log.warning("oai.records_unparsable", url=where, unparsable=bad, kept=len(spans) - bad)
    return root


def _gaps(spans: list[re.Match[bytes]], size: int) -> list[tuple[int, int]]:
    out, pos = [], 0
    for span in spans:
        out.append((pos, span.start()))
        pos = span.end()
    out.append((pos, size))
    return out


def _placeholder(raw: bytes, reason: str) -> etree._Element:
    """An OAI record that stands for one that could not be parsed (it will be quarantined)."""
    record = etree.Element(f"{_O}record")
    header = etree.SubElement(record, f"{_O}header")
    match = re.search(rb"<(?:[\w.-]+:)?identifier>\s*([^<]+?)\s*</", raw)
    etree.SubElement(header, f"{_O}identifier").text = (
        match.group(1).decode("utf-8", "replace") if match else "unknown"
    )
    stamp = re.search(rb"<(?:[\w.-]+:)?datestamp>\s*([^<]+?)\s*</", raw)
    etree.SubElement(header, f"{_O}datestamp").text = (
        stamp.group(1).decode("utf-8", "replace") if stamp else ""
    )
    metadata = etree.SubElement(record, f"{_O}metadata")
    broken = etree.SubElement(metadata, f"{{{BROKEN_NS}}}unparsable", reason=reason)
    broken.text = raw.decode("utf-8", "replace")
    return record


def _repair_known(body: bytes, error: etree.XMLSyntaxError, where: str) -> etree._Element:
    repaired = body
    repairs: list[str] = []
    if _CONTROL.search(repaired):
        count = len(_CONTROL.findall(repaired))
        repaired = _CONTROL.sub(b"", repaired)
        repairs.append(f"removed {count} invalid control characters")
    try:
        repaired.decode("utf-8")
    except UnicodeDecodeError:
        if _declared_utf8(repaired):
            repaired = repaired.decode("utf-8", errors="harvester-cp1252").encode("utf-8")
            repairs.append("decoded bytes invalid in the declared UTF-8 as Windows-1252")
    if not repairs:
        raise InvalidResponse(f"malformed XML from {where}: {error}") from None
    try:
        root = _parse_strict(repaired)
    except etree.XMLSyntaxError as exc:
        raise InvalidResponse(
            f"malformed XML from {where}: {exc} (after repair: {'; '.join(repairs)})"
        ) from None
    log.warning("oai.repaired", url=where, repairs=repairs)
    return root


def _declared_utf8(body: bytes) -> bool:
    head = body[:200].lower()
    if not head.startswith(b"<?xml"):
        return True
    match = re.search(rb"encoding\s*=\s*[\"']([a-z0-9_.-]+)[\"']", head)
    return match is None or match.group(1) in (b"utf-8", b"utf8")


def parse_record_xml(raw: str) -> etree._Element:
    """Parse one stored ``<record>`` (for reprocess)."""
    if "<!DOCTYPE" in raw[:4096].upper():
        raise NormalizationError("stored record has a DOCTYPE")
    return _parse_strict(raw.encode("utf-8"))


class _StrictResponse(OAIResponse):  # type: ignore[misc]
    """sickle's response with the tree we already parsed (sickle would re-parse it)."""

    def __init__(
        self, http_response: FetchedResponse, params: Mapping[str, Any], tree: etree._Element
    ) -> None:
        super().__init__(http_response, dict(params))
        self._tree = tree

    @property
    def xml(self) -> etree._Element:
        return self._tree

    @property
    def raw(self) -> str:
        return str(self.http_response.text)


class _HttpxSickle(Sickle):  # type: ignore[misc]
    """Sickle whose every request goes through our HttpClient."""

    def __init__(self, endpoint: str, client: HttpClient) -> None:
        super().__init__(endpoint, iterator=OAIResponseIterator, max_retries=0)
        self._client = client

    def harvest(self, **kwargs: Any) -> _StrictResponse:
        params = {k: v for k, v in kwargs.items() if v is not None}

        def parse(response: FetchedResponse) -> _StrictResponse:
            try:
                tree = parse_oai_xml(response.content, response.url)
            except InvalidResponse:
                if response.status_code >= 400:  # a 4xx that is not an OAI error document
                    raise FatalError(
                        f"HTTP {response.status_code} from {response.url}", status=response.status_code
                    ) from None
                raise
            if response.status_code >= 400 and tree.find(f".//{_O}error") is None:
                raise FatalError(
                    f"HTTP {response.status_code} from {response.url}", status=response.status_code
                )
            return _StrictResponse(response, params, tree)

        return self._client.request(
            "GET", self.endpoint, params=params, parse=parse, body_statuses=range(400, 500)
        )

    def _request(self, kwargs: Any) -> Any:
        raise RuntimeError("sickle must not make requests of its own")


@dataclass(frozen=True)
class Identity:
    """What Identify told us."""

    granularity: str
    earliest: dt.datetime | None
    response_date: dt.datetime
    deleted_record: str | None


def _parse_stamp(text: str | None) -> dt.datetime | None:
    """An OAI datestamp (day or seconds granularity) as an aware UTC datetime."""
    if not text:
        return None
    text = text.strip()
    try:
        if len(text) == 10:
            return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def granule_of(granularity: str) -> dt.timedelta:
    return dt.timedelta(days=1) if granularity == DAY else dt.timedelta(seconds=1)


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OaiPmhSource:
    """An OAI-PMH repository (see the module docstring for the harvest plan)."""

    def __init__(
        self,
        name: str,
        *,
        url: str,
        client: HttpClient,
        metadata_prefix: str = "oai_dc",
        set_spec: str | None = None,
        since: dt.date | None = None,
        window: dt.timedelta = dt.timedelta(days=30),
        max_empty_pages: int = 10,
    ) -> None:
        self.name = name
        self.url = url
        self.client = client
        self.metadata_prefix = metadata_prefix
        self.set_spec = set_spec
        self.since = since
        self.window = window
        self.max_empty_pages = max_empty_pages
        self._sickle = _HttpxSickle(url, client)
        self._ignores_from = False
        self._warned_window = False

    @property
    def scope(self) -> str:
        """What a checkpoint is valid for: the same prefix and set."""
        return f"{self.metadata_prefix}|{self.set_spec or ''}"

    def close(self) -> None:
        self.client.close()

    # -- protocol ------------------------------------------------------------------

    def identify(self) -> Identity:
        response = self._sickle.harvest(verb="Identify")
        tree = response.xml
        ident = tree.find(f"{_O}Identify")
        if ident is None:
            error = tree.find(f"{_O}error")
            detail = (error.get("code") if error is not None else None) or "no <Identify> element"
            raise FatalError(f"Identify failed at {self.url}: {detail}")
        granularity = (ident.findtext(f"{_O}granularity") or DAY).strip()
        if granularity not in (DAY, SECONDS):
            log.warning("oai.granularity_unknown", granularity=granularity, using=DAY)
            granularity = DAY
        earliest_text = ident.findtext(f"{_O}earliestDatestamp")
        earliest = _parse_stamp(earliest_text)
        if earliest_text and earliest is None:
            log.warning("oai.earliest_unreadable", earliest_datestamp=earliest_text)
        response_date = _parse_stamp(tree.findtext(f"{_O}responseDate")) or dt.datetime.now(dt.UTC)
        return Identity(granularity, earliest, response_date, ident.findtext(f"{_O}deletedRecord"))

    def _fmt(self, value: dt.datetime, granularity: str) -> str:
        return value.strftime("%Y-%m-%d") if granularity == DAY else _iso(value)

    def pages(self, state: Mapping[str, Any] | None) -> Iterator[Page]:
        identity = self.identify()
        granule = dt.timedelta(days=1) if identity.granularity == DAY else dt.timedelta(seconds=1)
        upper = identity.response_date
        if identity.granularity == DAY:
            upper = upper.replace(hour=0, minute=0, second=0, microsecond=0)
        if state and state.get("scope") != self.scope:
            log.warning("oai.scope_changed", stored=state.get("scope"), now=self.scope)
            state = None
        through = _parse_stamp(state.get("through")) if state else None
        log.info(
            "oai.plan",
            granularity=identity.granularity,
            upper=_iso(upper),
            through=_iso(through) if through else None,
            resume_token=bool(state and state.get("token")),
        )

        if state and state.get("token") and state.get("window"):
            window = state["window"]
            w_from = _parse_stamp(window.get("from"))
            w_until = _parse_stamp(window["until"])
            if w_until is None:
                raise FatalError(f"stored checkpoint of {self.name} is unreadable: {dict(state)}")
            yield from self._window(w_from, w_until, identity, through, token=state["token"])
            through = w_until

        if through is not None:
            start: dt.datetime | None = through - granule
        elif self.since is not None:
            start = dt.datetime(self.since.year, self.since.month, self.since.day, tzinfo=dt.UTC)
        else:
            start = identity.earliest
        if start is not None and identity.granularity == DAY:
            start = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if start is None:
            yield from self._window(None, upper, identity, through)
            return
        while start <= upper:
            end = min(start + self.window - granule, upper)
            if self._ignores_from:
                # The server sent records from before the window: it ignores ``from``, so
                # each window would bring the whole repository again. One last window up
                # to now is right whether or not it honours ``until``.
                end = upper
                log.warning(
                    "oai.from_ignored", action="one window for the rest of the range", until=_iso(upper)
                )
            yield from self._window(start, end, identity, through)
            through = end
            start = end + granule

    def _window(
        self,
        w_from: dt.datetime | None,
        w_until: dt.datetime,
        identity: Identity,
        through: dt.datetime | None,
        token: str | None = None,
    ) -> Iterator[Page]:
        """All pages of one window; the last one carries the window's end as ``through``."""
        g = identity.granularity
        window = {"from": _iso(w_from) if w_from else None, "until": _iso(w_until)}
        base = {"scope": self.scope, "through": _iso(through) if through else None}
        params: dict[str, Any] = {"verb": "ListRecords"}
        if token:
            params["resumptionToken"] = token
        else:
            params.update(
                {"metadataPrefix": self.metadata_prefix, "set": self.set_spec, "until": self._fmt(w_until, g)}
            )
            if w_from is not None:
                params["from"] = self._fmt(w_from, g)
        params = {k: v for k, v in params.items() if v is not None}
        done = {"scope": self.scope, "through": _iso(w_until), "window": None, "token": None}
        try:
            iterator = OAIResponseIterator(self._sickle, params)
        except oaiexceptions.NoRecordsMatch:
            log.debug("oai.window_empty", window=window)
            yield Page((), done)
            return
        except oaiexceptions.BadResumptionToken:
            if token is None:
                raise FatalError(
                    f"{self.url} rejected a fresh ListRecords request with badResumptionToken"
                ) from None
            log.warning("oai.token_expired", window=window, action="harvesting the window again")
            yield from self._window(w_from, w_until, identity, through)
            return
        except oaiexceptions.OAIError as exc:
            raise FatalError(f"OAI error from {self.url}: {type(exc).__name__}: {exc}") from None

        seen_tokens: set[str] = {token} if token else set()
        empty_run = 0
        listed: set[str] = set()  # identifiers received in this list, to compare with completeListSize
        announced: int | None = None
        while True:
            try:
                response = next(iterator)
            except StopIteration:
                return
            except oaiexceptions.NoRecordsMatch:
                yield Page((), done)
                return
            except oaiexceptions.BadResumptionToken:
                log.warning("oai.token_expired", window=window, action="harvesting the window again")
                yield from self._window(w_from, w_until, identity, through)
                return
            except oaiexceptions.OAIError as exc:
                raise FatalError(f"OAI error from {self.url}: {type(exc).__name__}: {exc}") from None
            items = self._items(response.xml)
            if w_from is not None:
                self._check_window(items, w_from, w_until, granule_of(g))
            listed.update(item.key for item in items if item.key)
            if announced is None and iterator.resumption_token is not None:
                announced = _int_or_none(iterator.resumption_token.complete_list_size)
            next_token = iterator.resumption_token.token if iterator.resumption_token else None
            next_token = next_token.strip() if next_token else None
            if not next_token:
                if token is None and announced is not None and len(listed) < announced:
                    # Not fatal (servers miscount, e.g. deleted records they then omit),
                    # but never silent: the operator sees which list came back short.
                    log.warning("oai.list_short", window=window, announced=announced, received=len(listed))
                yield Page(items, done)
                return
            if next_token in seen_tokens:
                raise FatalError(
                    f"{self.url} sent resumption token {next_token[:80]!r} twice in one list; "
                    "stopping instead of looping"
                )
            seen_tokens.add(next_token)
            empty_run = empty_run + 1 if not items else 0
            if empty_run > self.max_empty_pages:
                raise FatalError(f"{self.url} sent {empty_run} pages without records in a row; stopping")
            yield Page(items, {**base, "window": window, "token": next_token})

    def _check_window(
        self, items: list[RawItem], w_from: dt.datetime, w_until: dt.datetime, granule: dt.timedelta
    ) -> None:
        """Notice a server that ignores ``from``/``until`` (DOAJ does): records outside the window."""
        before = after = False
        for item in items:
            stamp = _parse_stamp(item.parsed.findtext(f"{_O}header/{_O}datestamp"))
            if stamp is None:
                continue
            before = before or stamp < w_from - granule
            after = after or stamp > w_until + granule
        self._ignores_from = self._ignores_from or before
        if (before or after) and not self._warned_window:
            self._warned_window = True
            log.warning(
                "oai.window_ignored",
                window={"from": _iso(w_from), "until": _iso(w_until)},
                records_before=before,
                records_after=after,
            )

    def _items(self, tree: etree._Element) -> list[RawItem]:
        container = tree.find(f"{_O}ListRecords")
        if container is None:
            raise InvalidResponse(f"ListRecords response from {self.url} has no <ListRecords> element")
        items = []
        for element in container.iterfind(f"{_O}record"):
            key = element.findtext(f"{_O}header/{_O}identifier")
            raw = etree.tostring(element, encoding="unicode")
            items.append(RawItem(raw=raw, parsed=element, key=key.strip() if key else None))
        return items

    # -- normalization ---------------------------------------------------------------

    def load_raw(self, raw: str) -> RawItem:
        element = parse_record_xml(raw)
        return RawItem(raw=raw, parsed=element, key=element.findtext(f"{_O}header/{_O}identifier"))

    def normalize(self, item: RawItem) -> Record:
        return normalize_oai_record(item.parsed)


def normalize_oai_record(element: etree._Element) -> Record:
    """One OAI ``<record>`` element → canonical Record (pure)."""
    header = element.find(f"{_O}header")
    if header is None:
        raise NormalizationError("record without <header>")
    key = (header.findtext(f"{_O}identifier") or "").strip()
    if not key:
        raise NormalizationError("record header without <identifier>")
    if len(key) > 2048:
        raise NormalizationError("identifier longer than 2048 characters")
    stamp_text = header.findtext(f"{_O}datestamp")
    datestamp = _parse_stamp(stamp_text)
    if datestamp is None:
        raise NormalizationError(f"unreadable datestamp {stamp_text!r}")
    if header.get("status") == "deleted":
        return Record(key=key, datestamp=datestamp, deleted=True, identifiers=(("oai", key),))
    metadata = element.find(f"{_O}metadata")
    payload = next(metadata.iterchildren(etree.Element), None) if metadata is not None else None
    if payload is None:
        raise NormalizationError("record without metadata and not marked deleted")
    if payload.tag == f"{{{BROKEN_NS}}}unparsable":
        raise NormalizationError(f"malformed XML in this record: {payload.get('reason')}")
    fields = normalize_metadata(payload)
    identifiers = tuple(sorted({("oai", key), *fields.pop("identifiers", ())}))
    return Record(key=key, datestamp=datestamp, identifiers=identifiers, **fields)


def from_settings(settings: Any, http: Any, stop: Any) -> OaiPmhSource:
    """Build the source from its ``type: oai-pmh`` config block."""
    return OaiPmhSource(
        settings.name,
        url=settings.url,
        client=HttpClient.from_settings(http, rate_limit=settings.rate_limit, stop=stop),
        metadata_prefix=settings.metadata_prefix,
        set_spec=settings.set,
        since=settings.since,
        window=settings.window,
        max_empty_pages=settings.max_empty_pages,
    )
