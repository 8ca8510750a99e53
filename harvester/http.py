"""The HTTP layer: one place that talks to servers and decides what a failure means.

Every request of every source goes through :meth:`HttpClient.request`:

* **Classification, once.** :data:`STATUS_TABLE` and :func:`classify_exception` map every
  transport error and status code to RETRY or FATAL; a 429 that announces an exhausted
  quota (:func:`quota_exhausted`) is neither: it raises QuotaExhausted with the reset
  time. Nothing else in the code base decides whether to retry. A source only adds
  :class:`~harvester.errors.InvalidResponse` (retryable) when a body fails strict
  parsing, from inside the ``parse`` callback, so a truncated or HTML body is retried
  exactly like a 503.
* **Backoff.** Capped exponential backoff with full jitter; ``Retry-After`` in seconds or
  as an HTTP date wins when the server sends it. A wait longer than
  ``http.max_retry_after`` fails the run instead of sleeping for hours; the next run
  retries. Waits end early when the operator stops the daemon.
* **Limits.** A per-source request-rate ceiling (``rate_limit``) that the server's own
  rate headers can only lower; a total deadline per request (httpx timeouts are per read,
  so a server dripping one byte a second would otherwise never time out); a cap on body
  size, applied to the decompressed bytes (gzip bombs), also for gzip sent without a
  Content-Encoding header (detected by magic number; the repair is logged).
* **Safety.** Redirects are followed only to http(s) URLs and never to link-local or
  cloud-metadata addresses. URLs are logged and stored with secret query parameters
  redacted; secret headers never leave this module.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import ipaddress
import random
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import structlog

from harvester import metrics
from harvester.errors import (
    FatalError,
    Interrupted,
    InvalidResponse,
    QuotaExhausted,
    ResponseTooLarge,
    RetryableError,
)
from harvester.logs import redact

__all__ = [
    "STATUS_TABLE",
    "Action",
    "FetchedResponse",
    "HttpClient",
    "HttpPolicy",
    "RateLimiter",
    "classify_exception",
    "classify_status",
    "parse_reset",
    "parse_retry_after",
    "quota_exhausted",
    "redact_url",
]

log = structlog.get_logger()
T = TypeVar("T")


class Action(enum.Enum):
    OK = "ok"
    RETRY = "retry"
    FATAL = "fatal"


#: Status codes with an explicit decision. Anything 2xx is OK, any other 5xx RETRY,
#: any other 4xx FATAL. 408/425/429 are retried because they mean "not now".
STATUS_TABLE: Mapping[int, Action] = {
    408: Action.RETRY,
    425: Action.RETRY,
    429: Action.RETRY,
    500: Action.RETRY,
    501: Action.FATAL,  # "not implemented" will not become implemented on retry
    502: Action.RETRY,
    503: Action.RETRY,
    504: Action.RETRY,
    505: Action.FATAL,
}


def classify_status(status: int) -> Action:
    """The one decision on a status code."""
    if status in STATUS_TABLE:
        return STATUS_TABLE[status]
    if 200 <= status < 300:
        return Action.OK
    if status >= 500:
        return Action.RETRY
    return Action.FATAL


def classify_exception(exc: Exception) -> Action:
    """The one decision on a transport error: network trouble and timeouts are transient."""
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return Action.RETRY
    if isinstance(exc, httpx.DecodingError):
        return Action.RETRY  # a body cut inside a gzip stream
    return Action.FATAL


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def parse_reset(value: str | None) -> dt.datetime | None:
    """A quota reset time as sent in ``X-RateLimit-Reset``: epoch seconds, epoch
    milliseconds, or a date string (all three have been seen from Elsevier)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        number = float(value)
        if number > 1e11:  # milliseconds: 1e11 seconds is the year 5138
            number /= 1000
        return dt.datetime.fromtimestamp(number, dt.UTC)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        when = None
    if when is None:
        for fmt in ("%a %b %d %H:%M:%S %Z %Y", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"):
            try:
                when = dt.datetime.strptime(value, fmt)  # noqa: DTZ007 - made UTC below
                break
            except ValueError:
                continue
    if when is None:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def quota_exhausted(response: FetchedResponse) -> QuotaExhausted | None:
    """A 429 that says the client's quota is used up (Elsevier: ``X-ELS-Status: QUOTA_EXCEEDED``).

    Unlike a throttling 429, retrying before the reset only burns requests: the error is
    not retryable and carries the reset time.
    """
    if response.status_code != 429:
        return None
    status = response.headers.get("x-els-status", "")
    if "QUOTA_EXCEEDED" not in status.upper():
        return None
    resume_at = parse_reset(response.headers.get("x-ratelimit-reset"))
    when = resume_at.strftime("%Y-%m-%dT%H:%M:%SZ") if resume_at else "an unknown time"
    return QuotaExhausted(f"quota exhausted at {response.url} until {when}", resume_at=resume_at)


_SECRET_PARAMS = frozenset({"apikey", "api_key", "insttoken", "access_token", "token", "key", "plus_token"})


def redact_url(url: str | httpx.URL) -> str:
    """The URL with secret query parameters replaced by ``***`` (for logs and the store)."""
    parts = urlsplit(str(url))
    if not parts.query:
        return redact(str(url))
    query = [
        (k, "***" if k.lower() in _SECRET_PARAMS else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return redact(urlunsplit(parts._replace(query=urlencode(query, safe=":/*,"))))


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts, retries and caps; built from the ``http`` config section."""

    user_agent: str = "scholarly-harvester"
    timeout: float = 30.0
    total_timeout: float = 300.0
    retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 900.0
    max_response_bytes: int = 100_000_000


@dataclass(frozen=True)
class FetchedResponse:
    """A complete response: status, headers and the whole (decompressed) body.

    Bodies are read fully, under the deadline and the size cap, before anyone parses
    them, so a parser never sees a half-read stream. ``url`` is already redacted.
    """

    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str
    elapsed: float
    encoding: str | None = None

    @property
    def text(self) -> str:
        return self.content.decode(self.encoding or "utf-8", errors="replace")

    def raise_for_status(self) -> None:  # sickle's OAIResponse interface
        if classify_status(self.status_code) is not Action.OK:
            raise FatalError(f"HTTP {self.status_code} from {self.url}", status=self.status_code)


class RateLimiter:
    """Spaces requests at least ``1/rate`` seconds apart (thread-safe).

    ``ceiling`` comes from the config; :meth:`lower` lets a source apply the server's
    advertised limit, which can only make us slower than the operator's ceiling.
    """

    def __init__(self, ceiling: float | None = None) -> None:
        self._ceiling = ceiling
        self._server: float | None = None
        self._lock = threading.Lock()
        self._next = 0.0

    @property
    def rate(self) -> float | None:
        rates = [r for r in (self._ceiling, self._server) if r]
        return min(rates) if rates else None

    def lower(self, rate: float | None) -> None:
        """Apply a server-advertised rate (requests per second)."""
        self._server = rate if rate and rate > 0 else None

    def wait(self, stop: threading.Event | None = None) -> None:
        rate = self.rate
        if not rate:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + 1.0 / rate
        delay = start - now
        if delay > 0:
            if stop is not None:
                if stop.wait(delay):
                    raise Interrupted("stop requested while rate limiting")
            else:
                time.sleep(delay)


_BLOCKED_NETS = (
    ipaddress.ip_network("169.254.0.0/16"),  # link-local, incl. 169.254.169.254 (cloud metadata)
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::/32"),  # AWS IMDS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba metadata
)
_BLOCKED_HOSTS = frozenset({"metadata.google.internal", "metadata", "instance-data"})


def _check_target(request: httpx.Request) -> None:
    """Refuse non-http(s) schemes and metadata/link-local targets (also after redirects)."""
    url = request.url
    if url.scheme not in ("http", "https"):
        raise FatalError(f"refusing to fetch a {url.scheme!r} URL")
    host = url.host.lower().strip("[]").rstrip(".")
    if host in _BLOCKED_HOSTS:
        raise FatalError(f"refusing to fetch from {host} (cloud metadata)")
    for found in _addresses(host, url.port or (443 if url.scheme == "https" else 80)):
        mapped = found.ipv4_mapped if isinstance(found, ipaddress.IPv6Address) else None
        address = mapped or found
        if any(address in net for net in _BLOCKED_NETS):
            raise FatalError(f"refusing to fetch from {host} ({address}: link-local or metadata address)")


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address ``host`` stands for: a literal in any spelling, or what DNS says.

    Checking the literal text alone is bypassed by ``2852039166``, ``0xa9fea9fe``,
    ``[::ffff:169.254.169.254]`` or a name that resolves to the metadata address. A name
    that does not resolve is left to the request itself to fail.
    """
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    out: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in infos:
        try:
            out.append(ipaddress.ip_address(str(info[4][0]).split("%")[0]))
        except ValueError:
            continue
    return out


@dataclass
class HttpClient:
    """One shared connection pool per source, with the retry loop and the limits.

    Args:
        policy: timeouts, retries and caps.
        rate_limit: requests-per-second ceiling for this source (None: unlimited).
        headers: extra headers for every request (API keys go here, never in URLs).
        stop: set by the daemon on SIGTERM; waits end early and raise Interrupted.
        transport: for unit tests of one function only (httpx.MockTransport).
    """

    policy: HttpPolicy
    rate_limit: float | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stop: threading.Event | None = None
    transport: httpx.BaseTransport | None = None
    on_response: Callable[[FetchedResponse], None] | None = None
    limiter: RateLimiter = field(init=False)
    requests_sent: int = field(init=False, default=0)
    _client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = RateLimiter(self.rate_limit)
        timeout = httpx.Timeout(self.policy.timeout)
        self._client = httpx.Client(
            headers={
                "User-Agent": self.policy.user_agent,
                "Accept-Encoding": "gzip, deflate",
                **self.headers,
            },
            timeout=timeout,
            follow_redirects=True,
            max_redirects=5,
            transport=self.transport,
            event_hooks={"request": [_check_target]},
        )

    @classmethod
    def from_settings(
        cls,
        http: Any,
        *,
        rate_limit: float | None,
        stop: threading.Event | None,
        headers: Mapping[str, str] | None = None,
        user_agent: str | None = None,
    ) -> HttpClient:
        """A client from the ``http`` config section (``harvester.settings.HttpSettings``)."""
        policy = HttpPolicy(
            user_agent=user_agent or http.user_agent,
            timeout=http.timeout,
            total_timeout=http.total_timeout,
            retries=http.retries,
            backoff=http.backoff,
            backoff_max=http.backoff_max,
            max_retry_after=http.max_retry_after,
            max_response_bytes=http.max_response_bytes,
        )
        return cls(policy, rate_limit=rate_limit, headers=dict(headers or {}), stop=stop)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        parse: Callable[[FetchedResponse], T],
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        body_statuses: Container[int] = (),
    ) -> T:
        """Send a request and return ``parse(response)``, retrying transient failures.

        ``parse`` is called for 2xx responses and for statuses in ``body_statuses`` (OAI
        servers put protocol errors in 4xx bodies; Zenodo answers 422). It may raise
        :class:`InvalidResponse` to have the request retried like a 503.
        """
        attempts = self.policy.retries + 1
        for attempt in range(1, attempts + 1):
            if self.stop is not None and self.stop.is_set():
                raise Interrupted("stop requested")
            self.limiter.wait(self.stop)
            try:
                response = self._fetch(method, url, params=params, data=data, headers=headers)
                if self.on_response is not None:
                    self.on_response(response)
                exhausted = quota_exhausted(response)
                if exhausted is not None:
                    raise exhausted
                action = classify_status(response.status_code)
                if action is Action.RETRY:
                    raise RetryableError(
                        f"HTTP {response.status_code} from {response.url}",
                        retry_after=parse_retry_after(response.headers.get("retry-after")),
                        status=response.status_code,
                    )
                if action is Action.FATAL and response.status_code not in body_statuses:
                    raise FatalError(
                        f"HTTP {response.status_code} from {response.url}: {_snippet(response)}",
                        status=response.status_code,
                    )
                return parse(response)
            except RetryableError as exc:
                if attempt >= attempts:
                    raise
                delay = self._delay(attempt, exc.retry_after)
                if delay > self.policy.max_retry_after:
                    raise FatalError(
                        f"{exc}; the server asks to wait {delay:.0f}s, more than http.max_retry_after",
                        status=exc.status,
                    ) from exc
                log.warning(
                    "http.retry",
                    error=str(exc),
                    status=exc.status,
                    attempt=attempt,
                    of=attempts,
                    delay=round(delay, 3),
                    retry_after=exc.retry_after,
                )
                if self.stop is not None:
                    if self.stop.wait(delay):
                        raise Interrupted("stop requested during backoff") from exc
                else:
                    time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        cap = min(self.policy.backoff_max, self.policy.backoff * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)  # noqa: S311 - jitter, not cryptography

    def _fetch(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        data: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
    ) -> FetchedResponse:
        started = time.monotonic()
        deadline = started + self.policy.total_timeout
        cap = self.policy.max_response_bytes
        shown_url = redact_url(_full_url(url, params))
        try:
            with self._client.stream(method, url, params=params, data=data, headers=headers) as response:
                self.requests_sent += 1
                body = _read_body(response, deadline, cap, shown_url, self.policy.total_timeout)
                status = response.status_code
                resp_headers = response.headers
                encoding = response.charset_encoding
        except httpx.HTTPError as exc:
            if classify_exception(exc) is Action.RETRY:
                raise RetryableError(f"{type(exc).__name__} from {shown_url}: {redact(str(exc))}") from None
            raise FatalError(f"{type(exc).__name__} from {shown_url}: {redact(str(exc))}") from None
        if body[:2] == b"\x1f\x8b" and "content-encoding" not in resp_headers:
            body = _gunzip(body, cap, shown_url)
            log.warning("http.repaired", repair="gzip body without Content-Encoding", url=shown_url)
        elapsed = time.monotonic() - started
        metrics.METRICS.http_response(structlog.contextvars.get_contextvars().get("source"), status)
        log.debug(
            "http.response",
            method=method,
            url=shown_url,
            status=status,
            bytes=len(body),
            seconds=round(elapsed, 3),
        )
        return FetchedResponse(status, resp_headers, body, shown_url, elapsed, encoding)


def _read_body(response: httpx.Response, deadline: float, cap: int, url: str, total: float) -> bytes:
    """The whole body, decompressed here (not by httpx) so that both limits hold per RAW chunk.

    A deadline checked on decoded chunks never fires for a gzip body dripping slowly (the
    decoder yields nothing until it has enough), and a cap on decoded output must stop a
    bomb while it inflates, not after. Only gzip and deflate are asked for.
    """
    coding = response.headers.get("content-encoding", "").strip().lower()
    decoder: Any = None
    if coding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(wbits=47)  # gzip or zlib header, auto-detected
    elif coding == "deflate":
        decoder = zlib.decompressobj(wbits=15)
    elif coding not in ("", "identity"):
        raise FatalError(f"{url} answered with an unsupported Content-Encoding {coding!r}")
    chunks: list[bytes] = []
    size = 0
    for raw in response.iter_raw():
        if time.monotonic() > deadline:
            raise RetryableError(f"response from {url} took longer than {total:.0f}s")
        if decoder is None:
            data = raw
        else:
            try:
                data = decoder.decompress(raw, cap + 1 - size)
                while decoder.eof and decoder.unused_data and coding != "deflate":  # next gzip member
                    rest = decoder.unused_data
                    decoder = zlib.decompressobj(wbits=47)
                    data += decoder.decompress(rest, cap + 1 - size - len(data))
            except zlib.error as exc:
                if coding == "deflate" and size == 0 and not chunks:  # raw deflate without zlib header
                    decoder = zlib.decompressobj(wbits=-15)
                    data = decoder.decompress(raw, cap + 1 - size)
                else:
                    raise InvalidResponse(f"broken {coding} body from {url}: {exc}") from None
            if decoder.unconsumed_tail:
                raise ResponseTooLarge(f"{coding} body from {url} inflates past {cap} bytes")
        size += len(data)
        if size > cap:
            raise ResponseTooLarge(f"response from {url} is larger than {cap} bytes")
        chunks.append(data)
    if decoder is not None:
        tail = decoder.flush()
        size += len(tail)
        if size > cap:
            raise ResponseTooLarge(f"response from {url} is larger than {cap} bytes")
        chunks.append(tail)
    return b"".join(chunks)


def _gunzip(body: bytes, cap: int, url: str) -> bytes:
    decompressor = zlib.decompressobj(wbits=31)
    try:
        out = decompressor.decompress(body, cap + 1)
    except zlib.error as exc:
        raise InvalidResponse(f"broken gzip body from {url}: {exc}") from None
    if len(out) > cap or decompressor.unconsumed_tail:
        raise ResponseTooLarge(f"gzip body from {url} inflates past {cap} bytes")
    return out


def _full_url(url: str, params: Mapping[str, Any] | None) -> str:
    if not params:
        return url
    return str(httpx.URL(url, params={k: v for k, v in params.items() if v is not None}))


def _snippet(response: FetchedResponse, limit: int = 200) -> str:
    text = response.content[:limit].decode("utf-8", errors="replace")
    return redact(" ".join(text.split()))
