"""The HTTP layer: the one error table, Retry-After, limits, redirects, redaction."""

from __future__ import annotations

import datetime as dt
import gzip
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from structlog.testing import capture_logs

from harvester.errors import FatalError, Interrupted, InvalidResponse, ResponseTooLarge, RetryableError
from harvester.http import (
    Action,
    FetchedResponse,
    HttpClient,
    HttpPolicy,
    RateLimiter,
    classify_exception,
    classify_status,
    parse_retry_after,
    redact_url,
)
from harvester.logs import register_secrets

FAST = HttpPolicy(retries=2, backoff=0.001, backoff_max=0.002, timeout=2, total_timeout=3, max_retry_after=2)


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, Action.OK),
        (204, Action.OK),
        (408, Action.RETRY),
        (429, Action.RETRY),
        (500, Action.RETRY),
        (502, Action.RETRY),
        (503, Action.RETRY),
        (504, Action.RETRY),
        (599, Action.RETRY),
        (501, Action.FATAL),
        (400, Action.FATAL),
        (401, Action.FATAL),
        (403, Action.FATAL),
        (404, Action.FATAL),
        (422, Action.FATAL),
    ],
)
def test_status_table(status: int, action: Action) -> None:
    assert classify_status(status) is action


def test_transport_errors_are_retried() -> None:
    request = httpx.Request("GET", "http://x")
    assert classify_exception(httpx.ConnectError("no", request=request)) is Action.RETRY
    assert classify_exception(httpx.ReadTimeout("slow", request=request)) is Action.RETRY
    assert classify_exception(httpx.RemoteProtocolError("cut", request=request)) is Action.RETRY
    assert classify_exception(httpx.UnsupportedProtocol("ftp", request=request)) is Action.FATAL


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Sat, 28 Nov 2026 12:01:30 GMT", now) == 90
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0  # in the past: at once
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_redaction_of_urls() -> None:
    register_secrets(["s3cr3t-key-123"])
    assert (
        redact_url("https://api.example.org/x?apiKey=abc&q=1") == "https://api.example.org/x?apiKey=***&q=1"
    )
    assert "s3cr3t-key-123" not in redact_url("https://api.example.org/x?q=s3cr3t-key-123")


def test_rate_limiter_spaces_requests_and_server_limits_only_lower() -> None:
    limiter = RateLimiter(ceiling=50)
    limiter.lower(1000)
    assert limiter.rate == 50
    limiter.lower(20)
    assert limiter.rate == 20
    started = time.monotonic()
    for _ in range(6):
        limiter.wait()
    assert time.monotonic() - started >= 5 / 20 * 0.9
    stop = threading.Event()
    stop.set()
    slow = RateLimiter(ceiling=0.1)
    slow.wait(stop)  # first request: no wait
    with pytest.raises(Interrupted):
        slow.wait(stop)


# -- against a real local server -------------------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler], None]


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(handle: Handler) -> str:
        class H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                handle(self)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def respond(
    handler: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str] | None = None
) -> None:
    handler.send_response(status)
    for k, v in (headers or {}).items():
        handler.send_header(k, v)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def raw(response: FetchedResponse) -> bytes:
    return response.content


def test_retries_then_succeeds_and_logs_each_retry(serve: Callable[[Handler], str]) -> None:
    calls = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        calls.append(h.path)
        if len(calls) == 1:
            respond(h, 503, b"busy", {"Retry-After": "0"})
        elif len(calls) == 2:
            respond(h, 429, b"<html>slow down</html>")  # a bare HTML 429 without headers (Crossref)
        else:
            respond(h, 200, b"ok")

    url = serve(handle)
    with capture_logs() as logs, HttpClient(FAST) as client:
        assert client.request("GET", url, parse=raw) == b"ok"
    assert [e["status"] for e in logs if e["event"] == "http.retry"] == [503, 429]


def test_gives_up_after_the_configured_retries(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 500, b""))
    with HttpClient(FAST) as client, pytest.raises(RetryableError, match="HTTP 500"):
        client.request("GET", url, parse=raw)


def test_a_too_long_retry_after_fails_instead_of_sleeping(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 503, b"", {"Retry-After": "3600"}))
    with HttpClient(FAST) as client, pytest.raises(FatalError, match="max_retry_after"):
        client.request("GET", url, parse=raw)


def test_client_errors_are_fatal_unless_the_body_is_wanted(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 422, b"<error/>"))
    with HttpClient(FAST) as client:
        with pytest.raises(FatalError, match="HTTP 422"):
            client.request("GET", url, parse=raw)
        assert client.request("GET", url, parse=raw, body_statuses={422}) == b"<error/>"


def test_invalid_bodies_raised_by_the_parser_are_retried(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 200, b"<html>"))
    seen = []

    def parse(response: FetchedResponse) -> bytes:
        seen.append(response.content)
        raise InvalidResponse("not XML")

    with HttpClient(FAST) as client, pytest.raises(InvalidResponse):
        client.request("GET", url, parse=parse)
    assert len(seen) == 3


def test_gzip_without_header_is_repaired_and_capped(serve: Callable[[Handler], str]) -> None:
    payload = b"<OAI-PMH/>" * 100
    url = serve(lambda h: respond(h, 200, gzip.compress(payload)))
    with capture_logs() as logs, HttpClient(FAST) as client:
        assert client.request("GET", url, parse=raw) == payload
    assert any(e["event"] == "http.repaired" for e in logs)
    bomb = serve(lambda h: respond(h, 200, gzip.compress(b"\0" * 5_000_000)))
    small = HttpPolicy(**{**FAST.__dict__, "max_response_bytes": 1_000_000})
    with HttpClient(small) as client, pytest.raises(ResponseTooLarge):
        client.request("GET", bomb, parse=raw)


def test_responses_over_the_size_cap_are_refused(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 200, b"x" * 2_000_000))
    small = HttpPolicy(**{**FAST.__dict__, "max_response_bytes": 1_000_000})
    with HttpClient(small) as client, pytest.raises(ResponseTooLarge):
        client.request("GET", url, parse=raw)


def test_a_slow_drip_hits_the_total_deadline(serve: Callable[[Handler], str]) -> None:
    def drip(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", "100")
        h.end_headers()
        for _ in range(100):
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.1)

    url = serve(drip)
    policy = HttpPolicy(**{**FAST.__dict__, "retries": 0, "total_timeout": 1.0})
    started = time.monotonic()
    with HttpClient(policy) as client, pytest.raises(RetryableError, match="took longer"):
        client.request("GET", url, parse=raw)
    assert time.monotonic() - started < 3


def test_redirects_to_metadata_addresses_and_other_schemes_are_refused(
    serve: Callable[[Handler], str],
) -> None:
    to_metadata = serve(
        lambda h: respond(h, 302, b"", {"Location": "http://169.254.169.254/latest/meta-data/"})
    )
    to_file = serve(lambda h: respond(h, 302, b"", {"Location": "file:///etc/passwd"}))
    with HttpClient(FAST) as client:
        with pytest.raises(FatalError, match="metadata"):
            client.request("GET", to_metadata, parse=raw)
        with pytest.raises(FatalError):
            client.request("GET", to_file, parse=raw)


def test_stop_interrupts_a_backoff(serve: Callable[[Handler], str]) -> None:
    url = serve(lambda h: respond(h, 503, b"", {"Retry-After": "1"}))
    stop = threading.Event()
    policy = HttpPolicy(**{**FAST.__dict__, "max_retry_after": 60})
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with HttpClient(policy, stop=stop) as client, pytest.raises(Interrupted):
        client.request("GET", url, parse=raw)
    assert time.monotonic() - started < 1


def test_user_agent_is_sent(serve: Callable[[Handler], str]) -> None:
    agents = []

    def handle(h: BaseHTTPRequestHandler) -> None:
        agents.append(h.headers["User-Agent"])
        respond(h, 200, b"")

    url = serve(handle)
    with HttpClient(HttpPolicy(user_agent="acme-harvester/1.0 (mailto:ops@example.org)")) as client:
        client.request("GET", url, parse=raw)
    assert agents == ["acme-harvester/1.0 (mailto:ops@example.org)"]
