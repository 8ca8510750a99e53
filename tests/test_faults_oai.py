"""The fault catalogue against an OAI-PMH source: one test per fault, on SQLite and PostgreSQL.

Every test harvests the same 61 records (60 articles with non-ASCII titles, pairs sharing a
DOI, one deleted record; 4 pages of 20) from a local `FakeOaiServer` that misbehaves in one
way, and proves: the store ends EXACTLY as a fault-free harvest leaves it (a second run is
allowed for faults that end a run), the checkpoint never claims a record that is not stored
(:class:`~tests.faults_helpers.CheckpointGuard`, checked after every committed page), and the
log events name what happened. Request numbers: 0 Identify, 1-4 the pages of the first
window, 5 the (empty) second window.

fault (issue 8 / catalogue) → test → what it proves

* 503 + Retry-After in seconds / as a date → ``test_503_with_retry_after[seconds|date]`` →
  waits exactly what the server asks (1 s; a date 1.2 s ahead); ``http.retry`` status 503.
* 429 + Retry-After in seconds / as a date → ``test_429_with_retry_after[seconds|date]`` →
  "0" and a past date: retried at once, ``retry_after`` 0.0 (parsed, not ignored).
* 429 without headers → ``test_429_without_headers`` → an HTML 429: our capped backoff.
* 500 on a later page → ``test_500_on_a_later_page_ends_the_run_and_the_rerun_completes`` →
  the run fails after the retries with page 2's token stored (``through`` not moved);
  ``harvest.failed`` says HTTP 500; the rerun resumes from the token and completes.
* truncated body → ``test_truncated_body_is_retried`` → never taken as a short page.
* connection reset → ``test_connection_reset_is_retried`` → RemoteProtocolError retried.
* HTML error page with status 200 → ``test_html_error_page_with_status_200`` → retried.
* wrong charset → ``test_wrong_charset_is_repaired_and_logged`` → ISO-8859-1 bytes labelled
  UTF-8 decoded as Windows-1252; ``oai.repaired``; the same bytes stored as from a good server.
* invalid control characters → ``test_control_characters_are_repaired_and_logged`` →
  removed; ``oai.repaired``.
* gzip without a header → ``test_gzip_without_header_is_repaired`` → ``http.repaired``.
* gzip bomb (with / without Content-Encoding) → ``test_gzip_bomb_is_refused`` → refused at
  ``http.max_response_bytes``, not retried, peak memory bounded; the rerun completes.
* slow drip, 1 byte/s → ``test_slow_drip_hits_the_total_deadline`` → ``total_timeout`` 1 s:
  retried within seconds, no hang (this fake never gzips; see the Crossref/Scopus modules).
* huge record (a 50 MB text node) → ``test_huge_record_is_skipped_and_counted`` → the record is
  quarantined with a reason naming its size and logged (``record.quarantined``); its page's
  other records are stored; the checkpoint moves on. (Until da7b10e libxml2's 10 MB text-node
  limit failed the whole page on every run: the page was lost and the checkpoint stalled.)
* OAI errors with HTTP 422 → ``test_oai_errors_with_http_422`` → noRecordsMatch and
  badResumptionToken read from 422 bodies (Zenodo), not retried as HTTP errors.
* badResumptionToken → ``test_bad_resumption_token_redoes_the_window`` → ``oai.token_expired``;
  only the current window is fetched again.
* repeated token → ``test_repeated_token_ends_the_run_and_the_rerun_completes`` → stops after
  one repeat (no loop), ``harvest.failed`` names the token; the rerun completes.
* server ignores ``from`` → ``test_server_ignoring_from_stores_the_same`` → the same store
  (re-fetched records are no-ops); NOT detected or logged by the harvester (a gap).
* duplicates across pages → ``test_duplicates_across_pages_are_stored_once`` → same store.

Also covered elsewhere: ``test_oai_harvest.py`` (a token on the last page, runs of empty pages,
tokens expired between runs), ``test_http.py`` (the status table, the HTTP client alone).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gzip
import time
import tracemalloc
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
from tests.helpers import T0, article
from tests.oai_server import OAI_NS, FakeOaiServer, Fault, OaiRecord, dc_metadata

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SOURCE = "repo"


def _records() -> list[OaiRecord]:
    records = [article(i, T0 + dt.timedelta(minutes=i), title=f"Ærticle {i} — “quoted” ½") for i in range(60)]
    for i in range(0, 60, 10):  # a preprint and its article: one work
        records[i + 1] = article(i + 1, T0 + dt.timedelta(minutes=i + 1), doi=f"doi:10.5555/test.{i}")
    records.append(
        OaiRecord("oai:repo.example.org:gone", T0 + dt.timedelta(minutes=30, seconds=30), deleted=True)
    )
    return records


RECORDS = _records()


def new_server(records: list[OaiRecord] | None = None, **kw: Any) -> FakeOaiServer:
    return FakeOaiServer(
        RECORDS if records is None else records, page_size=20, now=lambda: NOW, earliest_datestamp=T0, **kw
    )


def sources(url: str, **options: Any) -> str:
    return block(SOURCE, "oai-pmh", url, **options)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    with new_server() as server:
        return reference_snapshot(tmp_path_factory.mktemp("oai-ref"), sources, server.url, (SOURCE,))


@pytest.fixture
def server() -> Iterator[FakeOaiServer]:
    with new_server() as s:
        yield s
        assert not s.internal_errors


def _stamp(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def claimed(state: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """An OAI checkpoint says: every record with a datestamp up to ``through`` is stored."""
    through = _stamp(state.get("through")) if state else None
    if through is None:
        return set()
    return {(SOURCE, r.identifier) for r in RECORDS if r.datestamp <= through}


@pytest.fixture
def harvest(tmp_path: Path, db_url: str, server: FakeOaiServer, store: Store, reference: Snapshot) -> Harvest:
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


def oai_error(code: str, message: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OAI-PMH xmlns="{OAI_NS}"><responseDate>2024-06-01T12:00:00Z</responseDate>'
        f'<request verb="ListRecords">http://127.0.0.1/oai</request>'
        f'<error code="{code}">{message}</error></OAI-PMH>\n'
    ).encode()


def http_date(delta: float) -> str:
    return email.utils.format_datetime(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta), usegmt=True)


# -- retried faults: one run, nothing lost ---------------------------------------------------


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_503_with_retry_after(server: FakeOaiServer, harvest: Harvest, form: str) -> None:
    value = "1" if form == "seconds" else http_date(1.2)
    server.faults.on_request(2, status=503, headers={"Retry-After": value})
    started = time.monotonic()
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert retry["status"] == 503 and retry["retry_after"] is not None and 0 <= retry["retry_after"] <= 1.2
    assert retry["delay"] == round(retry["retry_after"], 3)  # the server's wish, not our backoff
    if form == "seconds":
        assert retry["retry_after"] == 1.0 and time.monotonic() - started >= 1.0


@pytest.mark.parametrize("form", ["seconds", "date"])
def test_429_with_retry_after(server: FakeOaiServer, harvest: Harvest, form: str) -> None:
    value = "0" if form == "seconds" else "Wed, 21 Oct 2015 07:28:00 GMT"  # a date in the past: at once
    server.faults.on_request(3, status=429, headers={"Retry-After": value}, body=b"<html>slow down</html>")
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert (retry["status"], retry["retry_after"], retry["delay"]) == (429, 0.0, 0.0)


def test_429_without_headers(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.next_responses(2, status=429, body=b"<html><body>429 Too Many Requests</body></html>")
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    retries = events(harvest.logs, "http.retry")
    assert [(r["status"], r["retry_after"]) for r in retries] == [(429, None), (429, None)]
    assert all(0 < r["delay"] <= 0.05 for r in retries)  # our own capped backoff


def test_truncated_body_is_retried(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.on_request(2, Fault.truncate(0.7))
    server.faults.on_request(4, Fault.truncate(0.95))  # the last page, cut just before its end
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    retries = events(harvest.logs, "http.retry")
    assert len(retries) == 2 and all("malformed XML" in r["error"] for r in retries)


def test_connection_reset_is_retried(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.on_request(1, Fault.reset())
    server.faults.on_request(4, Fault.reset(0.5))  # half the body, then the socket closes
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    retries = events(harvest.logs, "http.retry")
    assert len(retries) == 2 and all("RemoteProtocolError" in r["error"] for r in retries)


def test_html_error_page_with_status_200(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.on_request(3, Fault.html())
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "HTML page instead of OAI-PMH" in retry["error"] and retry["status"] is None


def test_wrong_charset_is_repaired_and_logged(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.wrong_charset = True  # ISO-8859-1 bytes, declared UTF-8
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()  # "Ærticle … ½" stored exactly as from a correct server
    repairs = events(harvest.logs, "oai.repaired")
    assert repairs and all(any("Windows-1252" in r for r in e["repairs"]) for e in repairs)
    assert server.faults.served["wrong_charset"] >= 5


def test_control_characters_are_repaired_and_logged(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.control_chars = True  # a raw U+000B U+0001 in the first record's title
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [repair] = events(harvest.logs, "oai.repaired")
    assert repair["repairs"] == ["removed 2 invalid control characters"]
    assert not events(harvest.logs, "http.retry")


def test_gzip_without_header_is_repaired(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.gzip_without_header = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    repaired = events(harvest.logs, "http.repaired")
    assert len(repaired) == server.faults.served["gzip_without_header"] == 6
    assert all(e["repair"] == "gzip body without Content-Encoding" for e in repaired)


_BOMB: list[bytes] = []


def bomb() -> bytes:
    """50 MB of zeros, about 50 KB gzipped."""
    if not _BOMB:
        _BOMB.append(gzip.compress(b"\0" * 50_000_000, compresslevel=9, mtime=0))
    return _BOMB[0]


@pytest.mark.parametrize("header", [True, False], ids=["content-encoding", "no-header"])
def test_gzip_bomb_is_refused(server: FakeOaiServer, harvest: Harvest, header: bool) -> None:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if header:
        headers["Content-Encoding"] = "gzip"
    server.faults.on_request(2, status=200, headers=headers, body=bomb())
    cap = {"max_response_bytes": 2_000_000}
    tracemalloc.start()
    try:
        failed = harvest(http=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert failed.outcome == "failed" and "ResponseTooLarge" in (failed.error or "")
    assert "2000000 bytes" in (failed.error or "")
    # bounded by one inflated network read (httpx inflates a whole read, up to ~1000 x 64 KiB),
    # whatever the size of the bomb; without the header it is inflated with a limit (cap + 1)
    assert peak < 150_000_000
    assert len(server.requests) == 3  # refused, not retried: the same bomb would come again
    state = harvest.store.load_checkpoint(SOURCE)
    assert state is not None and state["through"] is None and state["token"]  # after page 1 only
    [failure] = events(harvest.logs, "harvest.failed")
    assert "ResponseTooLarge" in failure["error"]

    again = harvest(http=cap)
    assert again.outcome == "succeeded", again.error
    harvest.assert_complete()


def test_slow_drip_hits_the_total_deadline(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.on_request(2, Fault.slow_drip(bytes_per_second=1))
    run_ = Within(8, lambda: harvest(http={"total_timeout": 1}))
    try:
        assert run_.done, "the harvest hung on a dripping response"
    finally:
        server.stop()  # ends any drip still going
        run_.join()
    result = run_.get()
    assert result.outcome == "succeeded", result.error
    assert run_.seconds < 6
    harvest.assert_complete()
    [retry] = events(harvest.logs, "http.retry")
    assert "took longer than 1s" in retry["error"]


# -- faults that end a run: the checkpoint stays behind, the next run completes -------------


def test_500_on_a_later_page_ends_the_run_and_the_rerun_completes(
    server: FakeOaiServer, harvest: Harvest
) -> None:
    for k in range(3, 3 + 4):  # page 3 and its three retries
        server.faults.on_request(k, status=500)
    failed = harvest()
    assert failed.outcome == "failed" and "HTTP 500" in (failed.error or "")
    assert failed.stats.fetched == 40
    state = harvest.store.load_checkpoint(SOURCE)
    assert state is not None and state["through"] is None and state["token"]
    retries = events(harvest.logs, "http.retry")
    assert [r["status"] for r in retries] == [500, 500, 500]
    [failure] = events(harvest.logs, "harvest.failed")
    assert "HTTP 500" in failure["error"] and failure["fetched"] == 40

    resumed = harvest()
    assert resumed.outcome == "succeeded", resumed.error
    assert resumed.stats.fetched == 21  # from the stored token on: pages 3 and 4
    harvest.assert_complete()


def test_repeated_token_ends_the_run_and_the_rerun_completes(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.repeat_token = True
    failed = harvest()
    assert failed.outcome == "failed" and "twice" in (failed.error or "")
    assert len(server.requests) == 3  # Identify, the first page, the repeat: no loop
    [failure] = events(harvest.logs, "harvest.failed")
    assert "SAME" in failure["error"]

    server.faults.reset()
    server.expire_tokens()  # the server was fixed (and restarted): "SAME" is unknown now
    again = harvest()
    assert again.outcome == "succeeded", again.error
    assert events(harvest.logs, "oai.token_expired")
    harvest.assert_complete()


# -- protocol faults --------------------------------------------------------------------------


def test_bad_resumption_token_redoes_the_window(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.on_request(
        3, status=200, headers={"Content-Type": "text/xml"}, body=oai_error("badResumptionToken")
    )
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    [expired] = events(harvest.logs, "oai.token_expired")
    assert expired["action"] == "harvesting the window again"
    assert result.stats.unchanged == 40  # pages 1-2 fetched again, written never


def test_oai_errors_with_http_422(harvest: Harvest) -> None:
    with new_server(error_status=422) as zenodo_like:  # Zenodo answers OAI errors with HTTP 422
        harvest.use(zenodo_like)
        zenodo_like.faults.on_request(
            2, status=422, headers={"Content-Type": "text/xml"}, body=oai_error("badResumptionToken")
        )
        result = harvest(window="7d")  # several windows: the empty ones answer noRecordsMatch (422)
        assert result.outcome == "succeeded", result.error
        harvest.assert_complete()
        assert sum(r.status == 422 for r in zenodo_like.request_log) >= 4
        assert events(harvest.logs, "oai.token_expired")
        assert not events(
            harvest.logs, "http.retry"
        )  # an OAI error in a 422 body is an answer, not a failure


def test_server_ignoring_from_stores_the_same(server: FakeOaiServer, harvest: Harvest) -> None:
    """Every window gets the whole repository: once the harvester sees records from before
    a window (``oai.window_ignored``), it asks for the rest of the range as ONE window
    (``oai.from_ignored``) instead of fetching everything once per window. The store is
    exactly a fault-free harvest's.
    """
    server.faults.ignore_from = True
    result = harvest(window="7d")
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    assert server.faults.served["ignore_from"] == 3  # window 1 cannot tell, window 2 tells, then one more
    assert result.stats.fetched == 3 * 61 and result.stats.inserted == 60 and result.stats.deleted == 1
    assert events(harvest.logs, "oai.window_ignored")
    assert events(harvest.logs, "oai.from_ignored")


def test_duplicates_across_pages_are_stored_once(server: FakeOaiServer, harvest: Harvest) -> None:
    server.faults.duplicate_across_pages = True
    result = harvest()
    assert result.outcome == "succeeded", result.error
    harvest.assert_complete()
    assert result.stats.fetched == 61 + 3 and result.stats.unchanged == 3


# -- huge records ----------------------------------------------------------------------------


def test_huge_record_is_skipped_and_counted(harvest: Harvest) -> None:
    huge = OaiRecord(
        "oai:repo.example.org:huge",
        T0 + dt.timedelta(minutes=25, seconds=30),  # on page 2
        dc_metadata("A huge record", description="x" * 50_000_000),
    )
    with new_server([*RECORDS, huge]) as server:
        harvest.use(server)
        for _ in range(2):  # a second run is allowed
            result = harvest(http={"retries": 0})
            if result.outcome == "succeeded":
                break
        assert result.outcome == "succeeded", result.error
    [item] = harvest.store.quarantine_items()
    assert item["key"] == huge.identifier and "large" in item["reason"].lower(), item
    assert any(e.get("key") == huge.identifier for e in events(harvest.logs, "record.quarantined"))
    records = [r for r in harvest.snapshot()["records"] if r[1] != huge.identifier]
    assert len(records) == len(harvest.snapshot()["records"]), "the huge record was stored"
    assert_same({"records": records, "works": harvest.snapshot()["works"]}, harvest.reference)
    harvest.guard.assert_clean()
