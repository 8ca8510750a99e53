"""The fault catalogue against the Scopus source: one test per fault, on SQLite and PostgreSQL.

Every test harvests the same 80 works loaded over the last eight days (one window, COMPLETE
view, cursor paging: requests 0-3 are the pages of 25, 25, 25 and 5) from a local
`FakeScopus` that misbehaves in one way, and proves: the store ends EXACTLY as a fault-free
harvest leaves it (a second run is allowed for faults that end a run), the checkpoint
(``through``: the last complete day) never claims a record that is not stored and does not
move when a window failed, and the log events name what happened. Scopus echoes its own URL
in every entry, so snapshots replace the server's URL by ``<server>``. The source never sends
more than 8.5 requests a second (Elsevier's limit), so these tests make few requests. No test
ever sees the API key in a URL (``FakeScopus.key_in_url`` is checked after each).

fault (issue 8 / catalogue) → test → what it proves

* 503 + Retry-After in seconds / as a date → ``test_503_with_retry_after[seconds|date]`` →
  the gateway's HTML 503: waits what it asks.
* 429 + Retry-After in seconds / as a date → ``test_429_with_retry_after[seconds|date]`` →
  a throttling 429 with "0" / a past date: retried at once, ``retry_after`` 0.0.
* 429 without headers → ``test_429_without_headers`` → Elsevier's bare throttling 429: backoff,
  not taken for an exhausted weekly quota (no ``scopus.key_exhausted``).
* 500 on a later page → ``test_500_on_a_later_page_ends_the_run_and_the_rerun_completes`` →
  GENERAL_SYSTEM_ERROR four times: the run fails, ``through`` unchanged; the rerun completes.
* truncated body → ``test_truncated_body_is_retried`` → retried (the cursor is idempotent).
* connection reset → ``test_connection_reset_is_retried`` → retried.
* HTML error page with status 200 → ``test_html_error_page_with_status_200`` → retried.
* wrong charset → ``test_body_not_in_utf8_is_retried`` → a latin-1 JSON body is invalid
  (RFC 8259), retried, never stored as mojibake.
* invalid control characters → ``test_control_characters_are_removed`` → kept in the raw
  payload, removed from the work's title.
* gzip without a header → ``test_gzip_without_header_is_repaired`` → ``http.repaired``.
* gzip bomb (with / without Content-Encoding) → ``test_gzip_bomb_is_refused`` → refused at
  the cap, ``through`` unchanged, the rerun completes.
* slow drip, 1 byte/s → ``test_slow_drip_hits_the_total_deadline`` (identity body) and
  ``test_slow_drip_of_a_gzip_body_hits_the_total_deadline`` (gzip, what Elsevier sends): caught
  by the 1 s deadline. (Until da7b10e a gzip body escaped the deadline.)
* huge record (a 50 MB abstract) → ``test_huge_record_is_skipped_and_counted`` → quarantined
  with a reason naming its size, the rest stored. (Until da7b10e: stored whole.)
* OAI errors with HTTP 422 → n/a: OAI-only (Scopus 4xx answers are service-errors: 401/403
  entitlement, 400 refused; see ``test_scopus_harvest.py``).
* badResumptionToken → ``test_expired_cursor_restarts_the_window`` and
  ``test_a_cursor_refused_twice_ends_the_run_and_the_rerun_completes`` → Scopus' equivalent, a
  400 "Invalid cursor value": the window is fetched again at once; refused twice, the run
  fails (``through`` unchanged) and the next run redoes the window.
* repeated token → ``test_a_stuck_cursor_never_moves_the_checkpoint_past_unstored_records`` →
  ``@next`` repeats the cursor sent: the run stops (``harvest.failed``), the checkpoint is not
  moved, the rerun completes. (Until da7b10e: DATA LOSS — the repeats counted toward
  totalResults, the window was declared complete after 4 pages and its checkpoint committed
  with 30 of 80 records never stored.)
* server ignores ``from`` → n/a: Scopus has no ``from`` parameter; the window is part of the
  query (``LOAD-DATE AFT .. BEF ..``), which a server cannot drop while honouring the rest, and
  FakeScopus has no such fault.
* duplicates across pages → ``test_duplicates_across_pages_are_stored_once`` → same store.

Also covered elsewhere: ``test_scopus_harvest.py`` (weekly quota exhausted, key rotation and the
pause until the reset; a key without cursor entitlement; a 401 naming the source).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from storage.store import Store
from tests.faults_helpers import (
    Harvest,
    Snapshot,
    Within,
    assert_same,
    block,
    events,
    reference_snapshot,
)
from tests.scopus_server import (
    FakeScopus,
    Fault,
    ScopusWork,
    scopus_affiliation,
    scopus_author,
    service_error,
)

SOURCE = "scopus"
KEY = "scopus-fault-key-0a1b2c3d"
TODAY = dt.datetime.now(dt.UTC).date()
SINCE = (TODAY - dt.timedelta(days=10)).isoformat()
JSON = {"Content-Type": "application/json;charset=UTF-8"}


def _works(titles: Mapping[int, str] | None = None) -> list[ScopusWork]:
    titles = titles or {}
    affiliation = scopus_affiliation("60000001", "Example University", "Tartu", "Estonia")
    return [
        ScopusWork(
            f"2-s2.0-850{i:08d}",
            titles.get(i, f"Scopus work number {i} — Ærø"),
            load_date=TODAY - dt.timedelta(days=i % 8),
            doi=f"10.5555/sc.{i}",
            authors=[scopus_author(f"5700{i:04d}", "Knox", "Colin", "60000001")],
            affiliations=[affiliation],
            cover_date="2019-05-13",
            cited_by=str(i % 9),
            authkeywords="E-government | Estonia",
        )
        for i in range(80)
    ]


WORKS = _works()


def new_server(works: list[ScopusWork] | None = None) -> FakeScopus:
    return FakeScopus(WORKS if works is None else works, api_keys=[KEY])


def sources(url: str, **options: Any) -> str:
    options.setdefault("since", SINCE)
    return block(SOURCE, "scopus", url, api_key=KEY, query="'AFFILORG(\"Example University\")'", **options)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    with new_server() as server:
        return reference_snapshot(tmp_path_factory.mktemp("scopus-ref"), sources, server.url, (SOURCE,))


@pytest.fixture
def server() -> Iterator[FakeScopus]:
    with new_server() as s:
        yield s
        assert not s.internal_errors
        assert not s.key_in_url


def claimed(state: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """A Scopus checkpoint says: every record loaded on a day up to ``through`` is stored."""
    through = dt.date.fromisoformat(state["through"]) if state and state.get("through") else None
    if through is None:
        return set()
    return {(SOURCE, w.eid) for w in WORKS if w.load_date <= through}


def new_harvest(
    tmp_path: Path, db_url: str, server: FakeScopus, store: Store, reference: Snapshot
) -> Harvest:
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


@pytest.fixture
def harvest(tmp_path: Path, db_url: str, server: FakeScopus, store: Store, reference: Snapshot) -> Harvest:
    return new_harvest(tmp_path, db_url, server, store, reference)


# -- retried faults ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_503_with_retry_after(server: FakeScopus, harvest: Harvest, form: str) -> None:
    when: int | dt.datetime = 1 if form == "seconds" else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.2)
    server.faults.on_request(1, Fault.server_error(503, retry_after=when))  # the gateway's HTML page
    started = time.monotonic()
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert retry["status"] == 503 and retry["retry_after"] is not None and retry["retry_after"] <= 1.2
    assert retry["delay"] == round(retry["retry_after"], 3)
    if form == "seconds":
        assert time.monotonic() - started >= 1.0


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_429_with_retry_after(server: FakeScopus, harvest: Harvest, form: str) -> None:
    server.faults.retry_after = 0 if form == "seconds" else dt.datetime(2015, 10, 21, 7, 28, tzinfo=dt.UTC)
    server.faults.on_request(2, Fault.throttle())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert (retry["status"], retry["retry_after"], retry["delay"]) == (429, 0.0, 0.0)


def test_429_without_headers(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.throttle_next(2)  # Elsevier's throttling 429: no headers, no body
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    retries = events(harvest.logs, "http.retry")
    assert [(r["status"], r["retry_after"]) for r in retries] == [(429, None), (429, None)]
    assert not events(harvest.logs, "scopus.key_exhausted")  # throttling is not the weekly quota


def test_truncated_body_is_retried(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.on_request(1, Fault.truncate(0.5))  # counted against the quota, cursor unchanged
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]


def test_connection_reset_is_retried(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.on_request(2, Fault.reset(0.2))
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "RemoteProtocolError" in retry["error"]


def test_html_error_page_with_status_200(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.on_request(1, Fault.html())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]


def test_body_not_in_utf8_is_retried(server: FakeScopus, harvest: Harvest) -> None:
    """JSON is UTF-8 (RFC 8259): a latin-1 body is refused and retried, never stored as mojibake."""
    body = {"search-results": {"opensearch:totalResults": "80", "entry": [{"dc:title": "Café"}]}}
    latin1 = json.dumps(body, ensure_ascii=False).encode("latin-1")
    server.faults.on_request(2, status=200, headers=JSON, body=latin1)
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "not JSON" in retry["error"]


def test_control_characters_are_removed(harvest: Harvest) -> None:
    with new_server(_works({7: "Scopus work number 7\x0b\x01 — Ærø"})) as server:
        harvest.use(server)
        result = harvest()
        got = harvest.snapshot()
    assert result.outcome == "succeeded", result.error
    assert got["works"] == harvest.reference["works"]  # the work's title is clean
    differ = [a[1] for a, b in zip(got["records"], harvest.reference["records"], strict=True) if a != b]
    assert differ == ["2-s2.0-85000000007"]  # the raw payload is kept as sent


def test_gzip_without_header_is_repaired(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.gzip_without_header = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    assert len(events(harvest.logs, "http.repaired")) == server.faults.served["gzip_without_header"] == 4


_BOMB: list[bytes] = []


def bomb() -> bytes:
    if not _BOMB:
        _BOMB.append(gzip.compress(b" " * 50_000_000, compresslevel=9, mtime=0))
    return _BOMB[0]


@pytest.mark.parametrize("header", [True, False], ids=["content-encoding", "no-header"])
def test_gzip_bomb_is_refused(server: FakeScopus, harvest: Harvest, header: bool) -> None:
    headers = dict(JSON, **({"Content-Encoding": "gzip"} if header else {}))
    server.faults.on_request(1, status=200, headers=headers, body=bomb())
    cap = {"max_response_bytes": 2_000_000}
    failed = harvest(http=cap)
    assert failed.outcome == "failed" and "ResponseTooLarge" in (failed.error or "")
    assert harvest.store.load_checkpoint(SOURCE) is None  # through unchanged: the window failed
    assert "ResponseTooLarge" in events(harvest.logs, "harvest.failed")[0]["error"]
    again = harvest(http=cap)
    assert again.outcome == "succeeded", again.error
    harvest.assert_complete()


def test_slow_drip_hits_the_total_deadline(server: FakeScopus, harvest: Harvest) -> None:
    server.compress = False  # an identity body dripped at 1 byte/s (gzip: see below)
    server.faults.on_request(1, Fault.slow_drip(bytes_per_second=1))
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


def test_slow_drip_of_a_gzip_body_hits_the_total_deadline(server: FakeScopus, harvest: Harvest) -> None:
    """What Elsevier sends: gzip. The deadline must hold while nothing decodes yet."""
    server.faults.on_request(1, Fault.slow_drip(bytes_per_second=1))  # gzipped: httpx accepts gzip
    run_ = Within(8, lambda: harvest(http={"total_timeout": 1}))
    try:
        assert run_.done, f"still waiting on a gzip body dripped at 1 byte/s after {run_.seconds:.0f}s"
    finally:
        server.stop()
        run_.join()
    result = run_.get()
    assert result.outcome == "succeeded", result.error
    assert run_.seconds < 6
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "took longer than 1s" in retry["error"]


# -- faults that end a run ----------------------------------------------------------------------


def test_500_on_a_later_page_ends_the_run_and_the_rerun_completes(
    server: FakeScopus, harvest: Harvest
) -> None:
    for k in range(2, 2 + 4):  # page 3 and its three retries: Elsevier's GENERAL_SYSTEM_ERROR
        server.faults.on_request(k, Fault.server_error(500))
    failed = harvest()
    assert failed.outcome == "failed" and "HTTP 500" in (failed.error or "")
    assert failed.stats.fetched == 50  # two pages stored...
    assert harvest.store.load_checkpoint(SOURCE) is None  # ...the window not done
    assert [r["status"] for r in events(harvest.logs, "http.retry")] == [500, 500, 500]
    [failure] = events(harvest.logs, "harvest.failed")
    assert "HTTP 500" in failure["error"]

    resumed = harvest()
    assert resumed.outcome == "succeeded", resumed.error
    assert resumed.stats.unchanged == 50
    harvest.assert_complete()


def test_expired_cursor_restarts_the_window(server: FakeScopus, harvest: Harvest) -> None:
    """Scopus' equivalent of badResumptionToken: the API answers an unknown cursor with a 400.

    The source fetches the window again at once (``scopus.cursor_invalid``), as Crossref
    does for an expired cursor; a second refusal in the same window ends the run with the
    checkpoint where it was, and the next run completes.
    """
    refused = json.dumps(service_error("INVALID_INPUT", "Invalid cursor value")).encode()
    server.faults.on_request(2, status=400, headers=JSON, body=refused)
    result = harvest()
    assert result.outcome == "succeeded", result.error
    assert events(harvest.logs, "scopus.cursor_invalid")
    harvest.assert_complete()


def test_a_cursor_refused_twice_ends_the_run_and_the_rerun_completes(
    server: FakeScopus, harvest: Harvest
) -> None:
    refused = json.dumps(service_error("INVALID_INPUT", "Invalid cursor value")).encode()
    for k in (2, 4):  # the second page of the window, and again after the restart
        server.faults.on_request(k, status=400, headers=JSON, body=refused)
    failed = harvest()
    assert failed.outcome == "failed" and "Invalid cursor value" in (failed.error or "")
    assert harvest.store.load_checkpoint(SOURCE) is None
    [failure] = events(harvest.logs, "harvest.failed")
    assert "cursor refused twice" in failure["error"]
    again = harvest()
    assert again.outcome == "succeeded", again.error
    harvest.assert_complete()


def test_a_stuck_cursor_never_moves_the_checkpoint_past_unstored_records(
    server: FakeScopus, harvest: Harvest
) -> None:
    server.faults.stuck_cursor = True  # @next repeats the cursor that was sent: the same page forever
    first = harvest()
    assert len(server.requests) <= 6, "followed a stuck cursor"
    if first.outcome != "succeeded":
        assert harvest.store.load_checkpoint(SOURCE) is None  # the window was not declared done
        assert events(harvest.logs, "harvest.failed")
    harvest.guard.assert_clean()  # checked after every page: never claimed the unseen records
    server.faults.reset()
    if first.outcome != "succeeded":
        assert harvest().outcome == "succeeded"  # a second run is allowed
    harvest.assert_complete()


def test_duplicates_across_pages_are_stored_once(server: FakeScopus, harvest: Harvest) -> None:
    server.faults.duplicate_across_pages = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    assert result.stats.unchanged == server.faults.served["duplicate_across_pages"] > 0


def test_huge_record_is_skipped_and_counted(harvest: Harvest) -> None:
    huge = ScopusWork(
        "2-s2.0-85099999999",
        "Scopus work number huge",
        load_date=TODAY - dt.timedelta(days=3),
        affiliations=[scopus_affiliation("60000001", "Example University")],
        description="x" * 50_000_000,
    )
    with new_server([*WORKS, huge]) as server:
        server.compress = False
        harvest.use(server)
        result = harvest(http={"retries": 1})
        if result.outcome != "succeeded":
            result = harvest(http={"retries": 1})
        got = harvest.snapshot()
    assert result.outcome == "succeeded", result.error
    assert (SOURCE, huge.eid) not in {(r[0], r[1]) for r in got["records"]}, "stored whole"
    assert result.stats.quarantined == 1
    [item] = harvest.store.quarantine_items()
    assert item["key"] == huge.eid and "large" in item["reason"].lower(), item
    assert_same(got, harvest.reference)
    harvest.guard.assert_clean()
