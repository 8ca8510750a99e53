"""Scopus source: the Scopus Search API by load-date windows, keys with weekly quotas.

Plan of one run (``pages``):

* Windows of ``window`` days on the load date, ANDed to the operator's query:
  ``(QUERY) AND LOAD-DATE AFT <a-1> AND LOAD-DATE BEF <b+1>`` (``AFT``/``BEF`` are
  exclusive; ``date_field: orig-load`` uses ``ORIG-LOAD-DATE``, the first accession).
  As for Crossref, today is fetched too but the checkpoint (``through``, the last
  complete day) never passes yesterday; it moves only with a window's last page.
* Paging: ``cursor=*`` and ``cursor.@next`` (sent URL-encoded), until the entries run
  out; ``count`` is the view's maximum (COMPLETE 25, STANDARD 200), since every request
  costs quota. A key without cursor entitlement gets a 403: the source falls back to
  ``start`` offset paging, which Scopus caps at 5,000 results, so a larger window is
  halved (a single day above 5,000 fails the run rather than losing records). A key not
  entitled to the COMPLETE view falls back to STANDARD (first author only, no keywords).
* Keys: only in the ``X-ELS-APIKey``/``X-ELS-Insttoken`` headers, never in a URL, a log
  line or an error message (quota rows store a fingerprint). Every response's
  ``X-RateLimit-Limit/-Remaining/-Reset`` is recorded per key and API; the runner keeps
  it in the store. A 429 with ``X-ELS-Status: QUOTA_EXCEEDED`` marks the key exhausted
  until its reset and the next key is tried (``api_keys``); with every key exhausted the
  source pauses until the earliest reset without sending a request. A plain (throttling)
  429 is retried with backoff by the HTTP layer, and the source never goes above
  9 requests a second.
* 401/403 ``service-error`` bodies end the run with a message about entitlement that
  names the source.
* Enrichment (opt-in ``enrich: [subject_areas]``): for stored records without it, the
  Abstract Retrieval API (``view=FULL``) gives the ASJC subject areas; each answer is a
  source record of its own (key ``<EID>#abstract``) that joins the same work, within the
  Abstract Retrieval API's own weekly quota.

The Search API has no change date per entry: a record's ``datestamp`` is the day it was
harvested (the window's last day), which also dates its citation count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import structlog

from harvester.errors import FatalError, InvalidResponse, QuotaExhausted
from harvester.http import FetchedResponse, HttpClient, parse_reset
from harvester.record import Record
from harvester.sources.base import NormalizationError, Page, QuotaState, RawItem
from harvester.sources.scopus_format import scopus_datestamp, scopus_fields, scopus_key, subject_areas

__all__ = ["MAX_RATE", "ScopusSource", "from_settings", "key_fingerprint", "normalize_scopus_item"]

log = structlog.get_logger()
DAY = dt.timedelta(days=1)
#: Elsevier allows 9 requests a second per key; stay a little under it.
MAX_RATE = 8.5
OFFSET_CAP = 5000
COUNT = {"STANDARD": 200, "COMPLETE": 25}
SEARCH, ABSTRACT = "search", "abstract"
SUFFIX = "#abstract"


def key_fingerprint(key: str) -> str:
    """A short, stable, non-reversible name for an API key (for the store and the logs)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class _CursorRefused(Exception):
    pass


class _ViewRefused(Exception):
    pass


class _NotFound(Exception):
    pass


class _CursorInvalid(Exception):
    pass


class ScopusSource:
    """Scopus Search (see the module docstring)."""

    enrichment_suffix = SUFFIX

    def __init__(
        self,
        name: str,
        *,
        client: HttpClient,
        keys: Sequence[str],
        query: str,
        url: str = "https://api.elsevier.com",
        inst_token: str | None = None,
        view: str = "COMPLETE",
        date_field: str = "load",
        since: dt.date | None = None,
        window: dt.timedelta = dt.timedelta(days=30),
        enrich: Iterable[str] = (),
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        if not keys:
            raise ValueError("a Scopus source needs at least one API key")
        self.name = name
        self.client = client
        self.base = url.rstrip("/")
        self._keys = list(keys)
        self._inst_token = inst_token
        self.query = query
        self.view = view
        self.date_field = "ORIG-LOAD-DATE" if date_field == "orig-load" else "LOAD-DATE"
        self.since = since
        self.window_days = max(1, window.days)
        self.enrich_subjects = "subject_areas" in set(enrich)
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        self._quota: dict[tuple[str, str], QuotaState] = {}
        self._in_flight: tuple[str, str] | None = None
        self._cursor_ok = True
        client.on_response = self._observe

    # -- quota state (QuotaAware) ------------------------------------------------------

    def restore_quotas(self, states: Iterable[QuotaState]) -> None:
        known = {key_fingerprint(k) for k in self._keys}
        for state in states:
            if state.key_id in known:
                self._quota[(state.api, state.key_id)] = state

    def quota_states(self) -> list[QuotaState]:
        return [self._quota[k] for k in sorted(self._quota)]

    def _observe(self, response: FetchedResponse) -> None:
        if self._in_flight is None:
            return
        headers = response.headers
        limit, remaining = headers.get("x-ratelimit-limit"), headers.get("x-ratelimit-remaining")
        reset = parse_reset(headers.get("x-ratelimit-reset"))
        if limit is None and remaining is None and reset is None:
            return
        api, key_id = self._in_flight
        old = self._quota.get((api, key_id), QuotaState(api, key_id))
        self._quota[(api, key_id)] = QuotaState(
            api,
            key_id,
            limit=_int(limit) if limit is not None else old.limit,
            remaining=_int(remaining) if remaining is not None else old.remaining,
            reset_at=reset or old.reset_at,
            exhausted=old.exhausted and response.status_code == 429,
        )

    def _pick_key(self, api: str) -> str:
        now = dt.datetime.now(dt.UTC)
        resets: list[dt.datetime] = []
        for key in self._keys:
            state = self._quota.get((api, key_fingerprint(key)))
            if state is None or not state.exhausted:
                return key
            if state.reset_at is None or state.reset_at <= now:
                self._quota[(api, state.key_id)] = QuotaState(
                    api, state.key_id, state.limit, None, None, False
                )
                return key
            resets.append(state.reset_at)
        resume = min(resets) if resets else None
        raise QuotaExhausted(
            f"every API key of Scopus source {self.name!r} is out of {api} quota until "
            f"{resume.strftime('%Y-%m-%dT%H:%M:%SZ') if resume else 'an unknown time'}",
            resume_at=resume,
        )

    # -- HTTP ----------------------------------------------------------------------------

    def _request(self, api: str, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        while True:
            key = self._pick_key(api)
            key_id = key_fingerprint(key)
            headers = {"X-ELS-APIKey": key, "Accept": "application/json"}
            if self._inst_token:
                headers["X-ELS-Insttoken"] = self._inst_token
            self._in_flight = (api, key_id)
            try:
                return self.client.request(
                    "GET",
                    f"{self.base}{path}",
                    params=params,
                    headers=headers,
                    parse=self._parse,
                    body_statuses={400, 401, 403, 404},
                )
            except QuotaExhausted as exc:
                state = self._quota.get((api, key_id), QuotaState(api, key_id))
                self._quota[(api, key_id)] = QuotaState(api, key_id, state.limit, 0, exc.resume_at, True)
                log.warning(
                    "scopus.key_exhausted",
                    api=api,
                    key=key_id,
                    resume_at=exc.resume_at.strftime("%Y-%m-%dT%H:%M:%SZ") if exc.resume_at else None,
                    keys=len(self._keys),
                )
            finally:
                self._in_flight = None

    def _parse(self, response: FetchedResponse) -> dict[str, Any]:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.status_code >= 400:
                raise FatalError(f"Scopus answered HTTP {response.status_code} at {response.url}") from None
            raise InvalidResponse(f"not JSON from {response.url} (truncated, or an HTML page?)") from None
        if not isinstance(body, dict):
            raise InvalidResponse(f"unexpected JSON from {response.url}")
        if response.status_code >= 400:
            error = (
                body.get("service-error", {}).get("status", {})
                if isinstance(body.get("service-error"), dict)
                else {}
            )
            code = str(error.get("statusCode") or response.status_code)
            text = str(error.get("statusText") or "")
            if response.status_code == 403 and "cursor" in text.lower():
                raise _CursorRefused(text)
            if response.status_code == 403 and "view" in text.lower():
                raise _ViewRefused(text)
            if response.status_code == 404:
                raise _NotFound(text)
            if response.status_code == 400 and "cursor" in text.lower():
                raise _CursorInvalid(text)
            if response.status_code in (401, 403):
                raise FatalError(
                    f"Scopus source {self.name!r}: the API key is not entitled to this request "
                    f"({code}: {text}); check api_key/inst_token and the key's entitlements",
                    status=response.status_code,
                )
            raise FatalError(f"Scopus source {self.name!r}: request refused ({code}: {text})", status=400)
        return body

    # -- plan ----------------------------------------------------------------------------

    def _window_query(self, a: dt.date | None, b: dt.date) -> str:
        parts = [f"({self.query})"]
        if a is not None:
            parts.append(f"{self.date_field} AFT {(a - DAY):%Y%m%d}")
        parts.append(f"{self.date_field} BEF {(b + DAY):%Y%m%d}")
        return " AND ".join(parts)

    def pages(self, state: Mapping[str, Any] | None) -> Iterator[Page]:
        today = self._today()
        self._pick_key(SEARCH)  # all keys exhausted: pause without a request
        if state and state.get("scope") != self._scope():
            log.warning("scopus.scope_changed")
            state = None
        through = dt.date.fromisoformat(state["through"]) if state and state.get("through") else None
        start = through + DAY if through else self.since
        log.info(
            "scopus.plan",
            start=start.isoformat() if start else None,
            today=today.isoformat(),
            view=self.view,
            date_field=self.date_field,
        )
        a = start
        span = self.window_days
        while a is None or a <= today:
            b = today if a is None else min(a + dt.timedelta(days=span - 1), today)
            new_through = max(through or (a or today) - DAY, min(b, today - DAY))
            checkpoint = {"scope": self._scope(), "through": new_through.isoformat()}
            try:
                yield from self._window(a, b, checkpoint)
            except _TooManyForOffsets:
                if a is None or b <= a:
                    raise FatalError(
                        f"Scopus source {self.name!r}: more than {OFFSET_CAP} results on {b} and the key may "
                        "not use cursor paging; narrow the query"
                    ) from None
                span = max(1, ((b - a).days + 1) // 2)
                continue
            through = new_through
            if a is None:
                return
            a = b + DAY
            span = self.window_days

    def _scope(self) -> str:
        return f"{self.date_field}|{self.query}"

    def _window(
        self, a: dt.date | None, b: dt.date, checkpoint: dict[str, Any]
    ) -> Generator[Page, None, int]:
        query = self._window_query(a, b)
        harvested = b.isoformat()
        restarts = 0
        while True:
            try:
                if self._cursor_ok:
                    return (yield from self._cursor_pages(query, harvested, checkpoint))
                return (yield from self._offset_pages(query, harvested, checkpoint))
            except _CursorInvalid as exc:
                restarts += 1
                if restarts > 1:
                    raise FatalError(f"Scopus source {self.name!r}: cursor refused twice ({exc})") from None
                log.warning("scopus.cursor_invalid", reason=str(exc), action="harvesting the window again")
            except _CursorRefused as exc:
                log.warning(
                    "scopus.cursor_refused", reason=str(exc), action="offset paging (5,000 results at most)"
                )
                self._cursor_ok = False
            except _ViewRefused as exc:
                if self.view == "STANDARD":
                    raise FatalError(f"Scopus source {self.name!r}: view refused ({exc})") from None
                log.warning("scopus.view_fallback", reason=str(exc), view="STANDARD")
                self.view = "STANDARD"

    def _search(self, params: dict[str, Any]) -> dict[str, Any]:
        body = self._request(SEARCH, "/content/search/scopus", params)
        results = body.get("search-results")
        if not isinstance(results, dict):
            raise InvalidResponse("a Scopus answer without search-results")
        return results

    def _cursor_pages(
        self, query: str, harvested: str, checkpoint: dict[str, Any]
    ) -> Generator[Page, None, int]:
        params: dict[str, Any] = {"query": query, "view": self.view, "count": COUNT[self.view], "cursor": "*"}
        seen: set[str] = set()
        while True:
            results = self._search(params)
            entries = _entries(results)
            total = _int(results.get("opensearch:totalResults")) or 0
            seen.update(str(e.get("eid")) for e in entries)
            received = len(seen)  # distinct EIDs: a page sent twice does not count twice
            items = [_raw_item(e, harvested) for e in entries]
            next_cursor = (
                (results.get("cursor") or {}).get("@next")
                if isinstance(results.get("cursor"), dict)
                else None
            )
            if not entries or received >= total or not next_cursor or len(entries) < params["count"]:
                if received < total:
                    raise FatalError(
                        f"Scopus source {self.name!r}: {received} of {total} results came back "
                        f"for {query!r}; checkpoint not moved"
                    )
                yield Page(items, checkpoint)
                return received
            yield Page(items, None)
            if next_cursor == params["cursor"]:
                raise FatalError(
                    f"Scopus source {self.name!r}: the cursor did not advance; stopping instead of looping "
                    "(checkpoint not moved)"
                )
            params["cursor"] = next_cursor

    def _offset_pages(
        self, query: str, harvested: str, checkpoint: dict[str, Any]
    ) -> Generator[Page, None, int]:
        count = COUNT[self.view]
        start = 0
        seen: set[str] = set()
        while True:
            results = self._search({"query": query, "view": self.view, "count": count, "start": start})
            total = _int(results.get("opensearch:totalResults")) or 0
            if start == 0 and total > OFFSET_CAP:
                raise _TooManyForOffsets
            entries = _entries(results)
            seen.update(str(e.get("eid")) for e in entries)
            received = len(seen)  # distinct EIDs: a repeated entry does not hide a missing one
            items = [_raw_item(e, harvested) for e in entries]
            start += count
            if not entries or start >= total:
                if received < total:
                    raise FatalError(
                        f"Scopus source {self.name!r}: {received} of {total} results; checkpoint not moved"
                    )
                yield Page(items, checkpoint)
                return received
            yield Page(items, None)

    # -- enrichment (Enriching) ----------------------------------------------------------

    def wants_enrichment(self) -> bool:
        return self.enrich_subjects

    def enrich(self, keys: Sequence[str]) -> Iterator[Page]:
        harvested = self._today().isoformat()
        batch: list[RawItem] = []
        for key in keys:
            scopus_id = key.rsplit("-", 1)[-1]
            try:
                body = self._request(ABSTRACT, f"/content/abstract/scopus_id/{scopus_id}", {"view": "FULL"})
            except _NotFound:
                log.warning("scopus.abstract_missing", key=key)
                continue
            if not isinstance(body.get("abstracts-retrieval-response"), dict):
                log.warning("scopus.abstract_unexpected", key=key)
                continue
            raw = {**body, "harvested": harvested, "eid": key}
            batch.append(RawItem(orjson.dumps(raw).decode(), raw, key + SUFFIX))
            if len(batch) >= 25:
                yield Page(batch, None)
                batch = []
        if batch:
            yield Page(batch, None)

    # -- normalization -----------------------------------------------------------------

    def load_raw(self, raw: str) -> RawItem:
        parsed = orjson.loads(raw)
        key = parsed.get("eid") if isinstance(parsed, dict) else None
        if isinstance(parsed, dict) and isinstance(parsed.get("entry"), dict):
            key = parsed["entry"].get("eid")
        return RawItem(raw, parsed, key)

    def normalize(self, item: RawItem) -> Record:
        return normalize_scopus_item(item.parsed)

    def close(self) -> None:
        self.client.close()


class _TooManyForOffsets(Exception):
    pass


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _entries(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    entries = results.get("entry")
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, list):
        return []
    # "Result set was empty" comes as one entry with an error and no EID
    return [e for e in entries if isinstance(e, dict) and not (e.get("error") and not e.get("eid"))]


def _raw_item(entry: dict[str, Any], harvested: str) -> RawItem:
    wrapped = {"entry": entry, "harvested": harvested}
    return RawItem(orjson.dumps(wrapped).decode(), wrapped, entry.get("eid"))


def _harvested(parsed: Mapping[str, Any]) -> dt.datetime | None:
    try:
        day = dt.date.fromisoformat(str(parsed.get("harvested")))
    except ValueError:
        return None
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def normalize_scopus_item(parsed: Any) -> Record:
    """A stored Scopus payload (a Search entry or an Abstract Retrieval answer) → Record."""
    if not isinstance(parsed, dict):
        raise NormalizationError("a Scopus payload that is not an object")
    stamp = _harvested(parsed)
    as_of = (stamp or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).date().isoformat()
    if "abstracts-retrieval-response" in parsed:
        eid = str(parsed.get("eid") or "")
        if not eid:
            raise NormalizationError("an Abstract Retrieval answer without its EID")
        response = parsed["abstracts-retrieval-response"]
        coredata = response.get("coredata") if isinstance(response.get("coredata"), dict) else {}
        from harvester.doi import strict_doi  # noqa: PLC0415 - only this branch needs it

        return Record(
            key=eid + SUFFIX,
            datestamp=stamp,
            doi=strict_doi(coredata.get("prism:doi")) if isinstance(coredata.get("prism:doi"), str) else None,
            subjects=subject_areas(response),
            identifiers=(("scopus_eid", eid),),
        )
    entry = parsed.get("entry")
    if not isinstance(entry, dict):
        raise NormalizationError("a Scopus payload without an entry")
    return Record(
        key=scopus_key(entry),
        datestamp=scopus_datestamp(entry) or stamp,
        **scopus_fields(entry, as_of=as_of),
    )


def from_settings(settings: Any, http: Any, stop: Any) -> ScopusSource:
    """Build the source from its ``type: scopus`` config block."""
    rate = min(settings.rate_limit or MAX_RATE, MAX_RATE)
    return ScopusSource(
        settings.name,
        client=HttpClient.from_settings(http, rate_limit=rate, stop=stop),
        keys=settings.keys(),
        query=settings.query,
        url=settings.url,
        inst_token=settings.inst_token.get_secret_value() if settings.inst_token else None,
        view=settings.view,
        date_field=settings.date_field,
        since=settings.since,
        window=settings.window,
        enrich=settings.enrich,
    )
