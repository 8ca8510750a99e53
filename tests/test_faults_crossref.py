"""The fault catalogue against the Crossref source: one test per fault, on SQLite and PostgreSQL.

Every test harvests the same 45 works indexed over the last ten days (one multi-day window:
request 0 is the ``rows=0`` size probe, requests 1-5 the cursor pages of 10) from a local
`FakeCrossref` that misbehaves in one way, and proves: the store ends EXACTLY as a fault-free
harvest leaves it (a second run is allowed for faults that end a run), the checkpoint
(``through``: the last complete day) never claims a work that is not stored and does not move
when a window failed (:class:`~tests.faults_helpers.CheckpointGuard`), and the log events
name what happened.

A Crossref cursor is a server-side scroll: a response cut short (truncated, reset, dripped)
still advanced it, so the retry gets the NEXT page; the source must notice the short count
(``crossref.window_incomplete``) and fetch the window again.

fault (issue 8 / catalogue) → test → what it proves

* 503 + Retry-After in seconds / as a date → ``test_503_with_retry_after[seconds|date]`` →
  waits what the server asks; a canned 503 does not move the scroll (no window redone).
* 429 + Retry-After in seconds / as a date → ``test_429_with_retry_after[seconds|date]`` →
  the rate limiter's 429 with "0" / a past date: retried at once, ``retry_after`` 0.0.
* 429 without headers → ``test_429_without_headers`` → the proxy's bare HTML 429: backoff.
* 500 on a later page → ``test_500_on_a_later_page_ends_the_run_and_the_rerun_completes`` →
  Crossref's exception JSON four times: the run fails, ``through`` unchanged, page 1 kept;
  ``harvest.failed`` says HTTP 500; the rerun redoes the window and completes.
* truncated body → ``test_truncated_body_redoes_the_window`` → the skipped page is caught
  (``crossref.window_incomplete`` 35 of 45) and the window fetched again.
* connection reset → ``test_connection_reset_redoes_the_window`` → the same.
* HTML error page with status 200 → ``test_html_error_page_with_status_200`` → retried.
* wrong charset → ``test_body_not_in_utf8_is_retried`` → JSON is UTF-8 (RFC 8259): a latin-1
  body is invalid, retried, never stored as mojibake (not repaired: an always-latin-1 server
  would fail every run).
* invalid control characters → ``test_control_characters_are_removed`` → U+000B U+0001 in a
  title (JSON-escaped): the raw payload is kept as sent, the work's title is clean.
* gzip without a header → ``test_gzip_without_header_is_repaired`` → ``http.repaired``.
* gzip bomb (with / without Content-Encoding) → ``test_gzip_bomb_is_refused`` → refused at
  the cap, ``through`` unchanged, the rerun completes.
* slow drip, 1 byte/s → ``test_slow_drip_hits_the_total_deadline`` (an identity body) and
  ``test_slow_drip_of_a_gzip_body_hits_the_total_deadline`` (gzip, what Crossref sends): caught
  by the 1 s deadline, window redone. (Until da7b10e the deadline was checked only when a
  DECODED chunk came out: a dripped gzip body took ~70 s per page, empty deflate blocks forever.)
* huge record (a 50 MB abstract) → ``test_huge_record_is_skipped_and_counted`` → quarantined
  with a reason naming its size, the rest stored. (Until da7b10e: stored whole, ~600 MB RSS.)
* OAI errors with HTTP 422 → n/a: OAI-only. Crossref's 4xx answers are JSON validation
  failures, fatal by design (``test_crossref_harvest.py``: a filter the server rejects).
* badResumptionToken → ``test_expired_cursor_redoes_the_window`` → Crossref's equivalent, the
  404 ``cursor-invalid``: ``crossref.cursor_expired``, the window fetched again.
* repeated token → ``test_a_scroll_that_never_ends_is_stopped`` → Crossref sends the same
  cursor on every page by design, so the loop to catch is a scroll that keeps serving full
  pages: stopped within a few pages past total-results, checkpoint unchanged; the rerun
  completes. (Until da7b10e it was followed for as long as the server kept serving.)
* server ignores ``from`` → ``test_server_ignoring_filters_stores_the_same`` → ``filter=``
  ignored on the incremental run: the same store; NOT detected or logged (a gap).
* duplicates across pages → ``test_duplicates_across_pages_are_stored_once`` → same store.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harvester.sources.crossref_format import SELECT_FIELDS
from storage.store import Store
from tests.crossref_server import CrossrefWork, FakeCrossref, Fault, work_item
from tests.faults_helpers import (
    Harvest,
    Snapshot,
    Within,
    assert_same,
    block,
    events,
    reference_snapshot,
)

SOURCE = "crossref"
TODAY = dt.datetime.now(dt.UTC).date()
MIDNIGHT = dt.datetime.combine(TODAY, dt.time(), tzinfo=dt.UTC)
START = MIDNIGHT - dt.timedelta(days=9)
SINCE = (TODAY - dt.timedelta(days=10)).isoformat()
ROWS = 10


def _works(title: Mapping[int, str] | None = None) -> list[CrossrefWork]:
    titles = title or {}
    return [
        CrossrefWork(
            work_item(
                f"10.5555/cr.{i}",
                titles.get(i, f"Crossref work {i} — “Ærø”"),
                is_referenced_by_count=i % 7,
            ),
            indexed=START + dt.timedelta(hours=5 * i),
        )
        for i in range(45)
    ]


WORKS = _works()


def new_server(works: list[CrossrefWork] | None = None) -> FakeCrossref:
    # A generous advertised limit: the source paces itself to it (tests stay fast).
    return FakeCrossref(WORKS if works is None else works, rate_limit=1000, concurrency=3)


def sources(url: str, **options: Any) -> str:
    options.setdefault("since", SINCE)
    options.setdefault("rows", ROWS)
    return block(SOURCE, "crossref", url, mailto="tests@example.org", **options)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    with new_server() as server:
        return reference_snapshot(tmp_path_factory.mktemp("crossref-ref"), sources, server.url, (SOURCE,))


@pytest.fixture
def server() -> Iterator[FakeCrossref]:
    with new_server() as s:
        yield s
        assert not s.internal_errors


def claimed(state: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """A Crossref checkpoint says: every work indexed on a day up to ``through`` is stored."""
    through = dt.date.fromisoformat(state["through"]) if state and state.get("through") else None
    if through is None:
        return set()
    return {(SOURCE, w.doi.lower()) for w in WORKS if w.indexed.date() <= through}


@pytest.fixture
def harvest(tmp_path: Path, db_url: str, server: FakeCrossref, store: Store, reference: Snapshot) -> Harvest:
    return Harvest(
        tmp_path=tmp_path,
        db_url=db_url,
        server=server,
        store=store,
        reference=reference,
        source=SOURCE,
        sources=sources,
        claimed=claimed,
    )


def work_list(
    items: list[dict[str, Any]], total: int, cursor: str | None, *, ascii_only: bool = True
) -> bytes:
    message: dict[str, Any] = {"facets": {}, "total-results": total, "items": items, "items-per-page": ROWS}
    if cursor is not None:
        message["next-cursor"] = cursor
    body = {"status": "ok", "message-type": "work-list", "message-version": "1.0.0", "message": message}
    return json.dumps(body, ensure_ascii=ascii_only).encode()


def selected(work: CrossrefWork) -> dict[str, Any]:
    """The item as the fake serves it under the source's ``select=``."""
    return {k: v for k, v in work.item.items() if k in SELECT_FIELDS}


JSON = {"Content-Type": "application/json;charset=utf-8"}


# -- retried faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_503_with_retry_after(server: FakeCrossref, harvest: Harvest, form: str) -> None:
    value = (
        "1"
        if form == "seconds"
        else email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.2), usegmt=True)
    )
    server.faults.on_request(2, status=503, headers={"Retry-After": value})
    started = time.monotonic()
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert retry["status"] == 503 and retry["retry_after"] is not None and retry["retry_after"] <= 1.2
    assert retry["delay"] == round(retry["retry_after"], 3)
    if form == "seconds":
        assert time.monotonic() - started >= 1.0
    assert not events(harvest.logs, "crossref.window_incomplete")  # a canned 503 does not move the scroll


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_429_with_retry_after(server: FakeCrossref, harvest: Harvest, form: str) -> None:
    server.faults.retry_after = 0 if form == "seconds" else dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    server.faults.on_request(3, Fault.too_many_requests())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert (retry["status"], retry["retry_after"], retry["delay"]) == (429, 0.0, 0.0)


def test_429_without_headers(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.bare_429 = True  # the proxy's HTML 429: no rate-limit headers, Connection: close
    server.faults.on_request(1, Fault.too_many_requests())
    server.faults.on_request(2, Fault.too_many_requests())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    retries = events(harvest.logs, "http.retry")
    assert [(r["status"], r["retry_after"]) for r in retries] == [(429, None), (429, None)]
    assert server.faults.served["bare_429"] == 2 and not server.violations


def test_truncated_body_redoes_the_window(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.on_request(2, Fault.truncate(0.5))  # the scroll moved on: the retry gets page 3
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]
    [incomplete] = events(harvest.logs, "crossref.window_incomplete")
    assert (incomplete["received"], incomplete["total"], incomplete["attempt"]) == (35, 45, 1)


def test_connection_reset_redoes_the_window(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.on_request(3, Fault.reset(0.3))
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "RemoteProtocolError" in retry["error"]
    assert events(harvest.logs, "crossref.window_incomplete")


def test_html_error_page_with_status_200(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.on_request(2, Fault.html())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]
    assert not events(harvest.logs, "crossref.window_incomplete")


def test_body_not_in_utf8_is_retried(server: FakeCrossref, harvest: Harvest) -> None:
    """JSON is UTF-8 by definition (RFC 8259); a latin-1 body is not repaired but refused and
    retried, so no mojibake is ever stored. (A server that ALWAYS did this would fail every run.)"""
    latin1 = (
        work_list([{**selected(WORKS[10]), "title": ["Café"]}], 45, "X", ascii_only=False)
        .decode()
        .encode("latin-1")
    )
    assert b"Caf\xe9" in latin1
    server.faults.on_request(2, status=200, headers=JSON, body=latin1)
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]


def test_control_characters_are_removed(harvest: Harvest) -> None:
    with new_server(_works({7: "Crossref work 7\x0b\x01 — “Ærø”"})) as server:
        harvest.use(server)
        result = harvest()
        got = harvest.snapshot()
    assert result.outcome == "succeeded", result.error
    assert got["works"] == harvest.reference["works"]  # the work's title is clean
    # the raw payload is kept as sent (it is the source's record), so only its hash differs
    differ = [a[1] for a, b in zip(got["records"], harvest.reference["records"], strict=True) if a != b]
    assert differ == ["10.5555/cr.7"]
    work = harvest.store.work_by_doi("10.5555/cr.7")
    assert work is not None and work["title"] == "Crossref work 7 — “Ærø”"


def test_gzip_without_header_is_repaired(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.gzip_without_header = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    repaired = events(harvest.logs, "http.repaired")
    assert len(repaired) == server.faults.served["gzip_without_header"] == 6


_BOMB: list[bytes] = []


def bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(gzip.compress(b" " * 50_000_000, compresslevel=9, mtime=0))
    return _BOMB[0]


@pytest.mark.parametrize("header", [True, False], ids=["content-encoding", "no-header"])
def test_gzip_bomb_is_refused(server: FakeCrossref, harvest: Harvest, header: bool) -> None:
    headers = dict(JSON, **({"Content-Encoding": "gzip"} if header else {}))
    server.faults.on_request(2, status=200, headers=headers, body=bomb())
    cap = {"max_response_bytes": 2_000_000}
    failed = harvest(http=cap)
    assert failed.outcome == "failed" and "ResponseTooLarge" in (failed.error or "")
    assert harvest.store.load_checkpoint(SOURCE) is None  # the window did not complete: through unchanged
    assert "ResponseTooLarge" in events(harvest.logs, "harvest.failed")[0]["error"]
    again = harvest(http=cap)
    assert again.outcome == "succeeded", again.error
    harvest.assert_complete()


def test_slow_drip_hits_the_total_deadline(server: FakeCrossref, harvest: Harvest) -> None:
    server.compress = False  # an identity body dripped at 1 byte/s (see the gzip variant below)
    server.faults.on_request(2, Fault.slow_drip(bytes_per_second=1))
    run_ = Within(8, lambda: harvest(http={"total_timeout": 1}))
    try:
        assert run_.done, "the harvest hung on a dripping response"
    finally:
        server.stop()
        run_.join()
    result = run_.get()
    assert result.outcome == "succeeded", result.error
    assert run_.seconds < 6
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "took longer than 1s" in retry["error"]
    assert events(harvest.logs, "crossref.window_incomplete")  # the dripped page had moved the scroll


def test_slow_drip_of_a_gzip_body_hits_the_total_deadline(server: FakeCrossref, harvest: Harvest) -> None:
    """What Crossref sends: gzip. The deadline must hold while nothing decodes yet."""
    server.faults.on_request(2, Fault.slow_drip(bytes_per_second=1))  # gzipped: httpx accepts gzip
    run_ = Within(8, lambda: harvest(http={"total_timeout": 1}))
    try:
        assert run_.done, f"still waiting on a gzip body dripped at 1 byte/s after {run_.seconds:.0f}s"
    finally:
        server.stop()  # ends the drip, so the harvest thread finishes
        run_.join()
    result = run_.get()
    assert result.outcome == "succeeded", result.error
    assert run_.seconds < 6
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "took longer than 1s" in retry["error"]


# -- faults that end a run ----------------------------------------------------------------------


def test_500_on_a_later_page_ends_the_run_and_the_rerun_completes(
    server: FakeCrossref, harvest: Harvest
) -> None:
    for k in range(2, 2 + 4):  # page 2 and its three retries: Crossref's exception JSON
        server.faults.on_request(k, Fault.exception_500())
    failed = harvest()
    assert failed.outcome == "failed" and "HTTP 500" in (failed.error or "")
    assert failed.stats.fetched == ROWS  # page 1 is stored...
    assert harvest.store.load_checkpoint(SOURCE) is None  # ...but the window is not done
    assert [r["status"] for r in events(harvest.logs, "http.retry")] == [500, 500, 500]
    [failure] = events(harvest.logs, "harvest.failed")
    assert "HTTP 500" in failure["error"]

    resumed = harvest()
    assert resumed.outcome == "succeeded", resumed.error
    assert resumed.stats.unchanged == ROWS  # the window again, page 1 a no-op
    harvest.assert_complete()


def test_expired_cursor_redoes_the_window(server: FakeCrossref, harvest: Harvest) -> None:
    expired = {
        "status": "failed",
        "message-type": "resource-failure",
        "message": [
            {"type": "cursor-invalid", "value": "x", "message": "Cursor specified but it is invalid"}
        ],
    }
    server.faults.on_request(3, status=404, headers=JSON, body=json.dumps(expired).encode())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [event] = events(harvest.logs, "crossref.cursor_expired")
    assert event["action"] == "harvesting the window again"
    assert result.stats.unchanged == 20  # the two pages before the expiry, again, written never


def test_a_scroll_that_never_ends_is_stopped(server: FakeCrossref, harvest: Harvest) -> None:
    stuck = work_list([selected(w) for w in WORKS[:ROWS]], len(WORKS), "STUCKSCROLL")
    for k in range(1, 31):  # the first page, then the same full page whatever the cursor
        server.faults.on_request(k, status=200, headers=JSON, body=stuck)
    first = harvest()
    served_stuck = server.faults.served["canned"]
    assert served_stuck <= -(-len(WORKS) // ROWS) + 3, f"{served_stuck} pages of a stuck scroll followed"
    if first.outcome != "succeeded":
        assert harvest.store.load_checkpoint(SOURCE) is None  # the window was not declared done
        assert events(harvest.logs, "harvest.failed")
    server.faults.reset()  # the server is fixed; a second run is allowed
    result = harvest() if first.outcome != "succeeded" else first
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()


def test_server_ignoring_filters_stores_the_same(server: FakeCrossref, harvest: Harvest) -> None:
    """The incremental run asks for today's window; the server sends everything.

    Dedup by key makes the old works no-ops; nothing detects that the server ignored the
    window (a gap, reported).
    """
    assert harvest().outcome == "succeeded"
    server.faults.ignore_filters = True
    again = harvest()
    assert again.outcome == "succeeded", again.error
    assert server.faults.served["ignore_filters"] == 1
    assert again.stats.fetched == 45 and again.stats.unchanged == 45 and again.stats.inserted == 0
    harvest.assert_complete()


def test_duplicates_across_pages_are_stored_once(server: FakeCrossref, harvest: Harvest) -> None:
    server.faults.duplicate_across_pages = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    assert result.stats.fetched == 45 + 4 and result.stats.unchanged == 4


def test_huge_record_is_skipped_and_counted(harvest: Harvest) -> None:
    huge = CrossrefWork(
        work_item("10.5555/huge", "A huge record", abstract="<jats:p>" + "x" * 50_000_000 + "</jats:p>"),
        indexed=START + dt.timedelta(hours=12),
    )
    with new_server([*WORKS, huge]) as server:
        server.compress = False
        harvest.use(server)
        result = harvest(http={"retries": 1})
        if result.outcome != "succeeded":
            result = harvest(http={"retries": 1})
        got = harvest.snapshot()
    assert result.outcome == "succeeded", result.error
    assert ("crossref", "10.5555/huge") not in {(r[0], r[1]) for r in got["records"]}, "stored whole"
    assert result.stats.quarantined == 1
    [item] = harvest.store.quarantine_items()
    assert item["key"] == "10.5555/huge" and "large" in item["reason"].lower(), item
    assert_same(got, harvest.reference)
    harvest.guard.assert_clean()
