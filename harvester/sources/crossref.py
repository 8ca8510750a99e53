"""Crossref source: ``/works`` by UTC day windows of the index date, cursor paging inside.

Plan of one run (``pages``):

* The upper bound is today (UTC), fixed when the run starts. Windows are whole UTC days
  ``[a, b]`` filtered with ``from-index-date:a,until-index-date:b`` (or the update date,
  ``date_field: update``). Crossref's date filters have day granularity and records keep
  arriving all day, so today is harvested too but the checkpoint (``through``: the last
  COMPLETE day) never passes yesterday; the next run fetches today again, and unchanged
  records write nothing.
* Windows adapt to volume: a window spanning several days is first probed with
  ``rows=0`` (one cheap request that returns ``total-results``); above
  ``max_window_results`` it is halved, below a quarter of it the next window doubles.
  A first harvest from ``since`` over years costs a handful of probes per busy period,
  not one request per empty day, and a crash costs at most one window.
* Inside a window: ``cursor=*`` deep paging with ``rows`` up to 1000 and ``select=``
  limited to the fields the normalizer reads. The cursor is sent URL-encoded (it holds
  ``+``, ``/`` and ``=``). Paging stops on a page shorter than ``rows``: Crossref returns
  the SAME cursor string on every page, so a change of cursor says nothing. Cursors are
  never stored (they expire after about five idle minutes); pages inside a window carry
  no checkpoint, the window's last page carries ``through``.
* A Crossref cursor is a server-side scroll: a request that is retried after a failure
  may have advanced it, silently skipping a page. So each window is checked: fewer items
  than ``total-results`` means the window is fetched again (once), never checkpointed.
* Politeness: ``mailto`` in the query and in the User-Agent (the polite pool); the
  ``x-rate-limit-limit``/``x-rate-limit-interval`` headers lower the request rate. One
  request is in flight at a time, which stays under every pool's ``x-concurrency-limit``.
  429s (even bare HTML ones) and 5xx are retried by the HTTP layer.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

import orjson
import structlog

from harvester.errors import FatalError, InvalidResponse
from harvester.http import FetchedResponse, HttpClient
from harvester.record import Record
from harvester.sources.base import NormalizationError, Page, RawItem
from harvester.sources.crossref_format import SELECT_FIELDS, crossref_datestamp, crossref_fields

__all__ = ["CrossrefSource", "from_settings", "normalize_crossref_item"]

log = structlog.get_logger()
DAY = dt.timedelta(days=1)
EPOCH = dt.date(2000, 1, 1)  # nothing in Crossref was indexed before this
MAX_SPAN_DAYS = 3650


class _CursorExpired(Exception):
    """Crossref no longer knows the cursor (about five idle minutes): restart the window."""


def _interval_seconds(text: str | None) -> float | None:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text or "")
    if not match:
        return None
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2) or "s"]


class CrossrefSource:
    """Crossref ``/works`` (see the module docstring for the plan)."""

    def __init__(
        self,
        name: str,
        *,
        client: HttpClient,
        url: str = "https://api.crossref.org",
        mailto: str | None = None,
        filters: Mapping[str, Any] | None = None,
        since: dt.date | None = None,
        date_field: str = "index",
        rows: int = 1000,
        max_window_results: int = 20_000,
        today: Callable[[], dt.date] | None = None,
    ) -> None:
        self.name = name
        self.client = client
        self.base = url.rstrip("/")
        self.mailto = mailto
        self.filters = dict(filters or {})
        self.since = since
        self.date_field = date_field
        self.rows = rows
        self.max_window_results = max_window_results
        self._today = today or (lambda: dt.datetime.now(dt.UTC).date())
        client.on_response = self._observe_limits

    @property
    def scope(self) -> str:
        """What a checkpoint is valid for: the same filters and date field."""
        return orjson.dumps(
            {"date_field": self.date_field, "filter": self.filters}, option=orjson.OPT_SORT_KEYS
        ).decode()

    def close(self) -> None:
        self.client.close()

    # -- HTTP ----------------------------------------------------------------------------

    def _observe_limits(self, response: FetchedResponse) -> None:
        limit = response.headers.get("x-rate-limit-limit")
        interval = _interval_seconds(response.headers.get("x-rate-limit-interval"))
        if limit and interval:
            try:
                rate = float(limit) / interval
            except ValueError:
                return
            if rate != self.client.limiter.rate:
                self.client.limiter.lower(rate)
                log.debug(
                    "crossref.rate_limit",
                    limit=limit,
                    interval=response.headers.get("x-rate-limit-interval"),
                    pool=response.headers.get("x-api-pool"),
                    concurrency=response.headers.get("x-concurrency-limit"),
                    effective_rate=self.client.limiter.rate,
                )

    def _filter_param(self, a: dt.date | None, b: dt.date) -> str:
        parts: list[str] = []
        for key, value in self.filters.items():
            for item in value if isinstance(value, list) else [value]:
                text = str(item).lower() if isinstance(item, bool) else str(item)
                parts.append(f"{key}:{text}")
        field = "index" if self.date_field == "index" else "update"
        if a is not None:
            parts.append(f"from-{field}-date:{a.isoformat()}")
        parts.append(f"until-{field}-date:{b.isoformat()}")
        return ",".join(parts)

    def _get(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.mailto:
            params = {**params, "mailto": self.mailto}
        return self.client.request(
            "GET", f"{self.base}/works", params=params, parse=self._parse, body_statuses={400, 404}
        )

    def _parse(self, response: FetchedResponse) -> dict[str, Any]:
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.status_code >= 400:
                raise FatalError(
                    f"HTTP {response.status_code} from {response.url}: {response.text[:200]!r}"
                ) from None
            raise InvalidResponse(f"not JSON from {response.url} (truncated, or an HTML page?)") from None
        if not isinstance(body, dict):
            raise InvalidResponse(f"unexpected JSON from {response.url}")
        if response.status_code >= 400 or body.get("status") == "failed":
            raw_messages = body.get("message")
            messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
            types = {m.get("type") for m in messages if isinstance(m, dict)}
            if "cursor-invalid" in types:
                raise _CursorExpired
            detail = "; ".join(
                f"{m.get('type')} {m.get('value')!r}: {m.get('message')}"
                for m in messages
                if isinstance(m, dict)
            )
            bad_filters = [
                m.get("value") for m in messages if isinstance(m, dict) and "filter" in str(m.get("type"))
            ]
            if bad_filters:
                raise FatalError(f"Crossref rejected the filter {', '.join(map(str, bad_filters))}: {detail}")
            raise FatalError(
                f"Crossref answered HTTP {response.status_code} {body.get('message-type')}: {detail}"
            )
        message = body.get("message")
        if body.get("message-type") != "work-list" or not isinstance(message, dict):
            raise InvalidResponse(f"not a work list from {response.url}")
        if not isinstance(message.get("items"), list):
            raise InvalidResponse(f"work list without items from {response.url}")
        return message

    # -- plan ----------------------------------------------------------------------------

    def pages(self, state: Mapping[str, Any] | None) -> Iterator[Page]:
        today = self._today()
        if state and state.get("scope") != self.scope:
            log.warning("crossref.scope_changed", stored=state.get("scope"), now=self.scope)
            state = None
        through = dt.date.fromisoformat(state["through"]) if state and state.get("through") else None
        start = through + DAY if through else (self.since or EPOCH)
        log.info(
            "crossref.plan",
            start=start.isoformat(),
            today=today.isoformat(),
            through=through.isoformat() if through else None,
            date_field=self.date_field,
        )
        span = 1 if through else 32
        a = start
        while a <= today:
            b = min(a + dt.timedelta(days=span - 1), today)
            through = max(through or start - DAY, min(b, today - DAY))  # only complete days
            checkpoint = {"scope": self.scope, "through": through.isoformat()}
            if b > a:  # several days: ask for the size first (rows=0 costs one small request)
                total = int(
                    self._get({"filter": self._filter_param(a, b), "rows": 0}).get("total-results") or 0
                )
                if total > self.max_window_results:
                    span = max(1, ((b - a).days + 1) // 2)
                    log.debug(
                        "crossref.window_split", window=[a.isoformat(), b.isoformat()], total=total, span=span
                    )
                    continue
                count = (yield from self._window(a, b, checkpoint)) if total else 0
                if not total:
                    yield Page((), checkpoint)
            else:
                count = yield from self._window(a, b, checkpoint)
            if count < self.max_window_results // 4:
                span = min(MAX_SPAN_DAYS, span * 2)
            a = b + DAY

    def _window(self, a: dt.date, b: dt.date, checkpoint: dict[str, Any]) -> Generator[Page, None, int]:
        """All pages of one window; the last carries the checkpoint. Returns the item count."""
        window = [a.isoformat(), b.isoformat()]
        for attempt in (1, 2):
            params: dict[str, Any] = {
                "filter": self._filter_param(a, b),
                "rows": self.rows,
                "select": ",".join(SELECT_FIELDS),
                "cursor": "*",
            }
            received = 0
            total = 0
            seen: set[str] = set()
            sent = 0
            try:
                while True:
                    message = self._get(params)
                    items = message["items"]
                    total = int(message.get("total-results") or 0)
                    seen.update(str(i.get("DOI", "")).lower() for i in items if isinstance(i, dict))
                    received = len(seen)  # distinct DOIs: a page sent twice does not count twice
                    sent += len(items)
                    if len(items) == self.rows and sent > total + 2 * self.rows:
                        raise FatalError(
                            f"Crossref keeps sending full pages past total-results ({total}) for window "
                            f"{window[0]}..{window[1]}; stopping instead of looping"
                        )
                    raw_items = [_raw_item(item) for item in items]
                    if len(items) < self.rows:
                        if received >= total:
                            yield Page(raw_items, checkpoint)
                            log.debug("crossref.window_done", window=window, items=received, total=total)
                            return received
                        yield Page(raw_items, None)
                        break
                    yield Page(raw_items, None)
                    cursor = message.get("next-cursor")
                    if not isinstance(cursor, str) or not cursor:
                        raise InvalidResponse("a full page without next-cursor")
                    params["cursor"] = cursor
            except _CursorExpired:
                log.warning("crossref.cursor_expired", window=window, action="harvesting the window again")
                continue
            log.warning(
                "crossref.window_incomplete",
                window=window,
                received=received,
                total=total,
                attempt=attempt,
                action="harvesting the window again" if attempt == 1 else "giving up",
            )
        raise FatalError(
            f"Crossref window {window[0]}..{window[1]} came back incomplete twice; checkpoint not moved"
        )

    # -- normalization -----------------------------------------------------------------

    def load_raw(self, raw: str) -> RawItem:
        return _raw_item(orjson.loads(raw), raw)

    def normalize(self, item: RawItem) -> Record:
        return normalize_crossref_item(item.parsed)


def _raw_item(item: Any, raw: str | None = None) -> RawItem:
    key = item.get("DOI") if isinstance(item, dict) else None
    return RawItem(raw=raw if raw is not None else orjson.dumps(item).decode(), parsed=item, key=key)


def normalize_crossref_item(item: Any) -> Record:
    """One Crossref work object → canonical Record (pure).

    The citation count's ``as_of`` is the day Crossref indexed the item (the count is a
    property of that index state), so normalizing the same stored item again gives the
    same record.
    """
    if not isinstance(item, dict):
        raise NormalizationError("a Crossref item that is not an object")
    datestamp = crossref_datestamp(item)
    as_of = (datestamp or dt.datetime(1970, 1, 1, tzinfo=dt.UTC)).date().isoformat()
    fields = crossref_fields(item, as_of=as_of)
    doi = fields.get("doi")
    if not doi:
        raise NormalizationError("Crossref item without a valid DOI")
    return Record(key=doi, datestamp=datestamp, **fields)


def from_settings(settings: Any, http: Any, stop: Any) -> CrossrefSource:
    """Build the source from its ``type: crossref`` config block."""
    user_agent = http.user_agent
    if settings.mailto and "mailto:" not in user_agent:
        user_agent = f"{user_agent} (mailto:{settings.mailto})"
    headers = {"Accept": "application/json"}
    if settings.plus_token is not None:
        headers["Crossref-Plus-API-Token"] = f"Bearer {settings.plus_token.get_secret_value()}"
    return CrossrefSource(
        settings.name,
        client=HttpClient.from_settings(
            http, rate_limit=settings.rate_limit, stop=stop, headers=headers, user_agent=user_agent
        ),
        url=settings.url,
        mailto=settings.mailto,
        filters=settings.filter,
        since=settings.since,
        date_field=settings.date_field,
        rows=settings.rows,
        max_window_results=settings.max_window_results,
    )
