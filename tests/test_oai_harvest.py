"""OAI-PMH end to end: a real local server, the real source, the real store (both databases)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from structlog.contextvars import merge_contextvars
from structlog.testing import capture_logs

from storage.models import SourceRecord, Work
from storage.store import Store
from tests.helpers import T0, article, harvest, settings_for
from tests.oai_server import GRANULARITY_DAY, FakeOaiServer, Fault, OaiRecord

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def server() -> Iterator[FakeOaiServer]:
    with FakeOaiServer(page_size=100, now=lambda: NOW, earliest_datestamp=T0) as s:
        yield s


def live_records(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return sorted(conn.execute(select(SourceRecord.key).where(SourceRecord.deleted.is_(False))).scalars())


def stamps(store: Store) -> tuple[object, object]:
    with store.engine.connect() as conn:
        return (
            conn.execute(select(func.max(Work.updated_at))).scalar_one(),
            conn.execute(select(func.max(SourceRecord.updated_at))).scalar_one(),
        )


def works(store: Store, deleted: bool = False) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(select(func.count()).select_from(Work).where(Work.deleted.is_(deleted))).scalar_one()
        )


def list_requests(server: FakeOaiServer) -> list[dict[str, str]]:
    return [r for r in server.requests if r.get("verb") == "ListRecords"]


def test_full_then_incremental_harvest_with_dedup_and_deletion(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    # 2,000 records; every 10th pair shares a DOI (a preprint and its article in one repository)
    records = [article(i, T0 + dt.timedelta(minutes=i)) for i in range(2000)]
    for i in range(0, 2000, 10):
        records[i + 1] = article(i + 1, T0 + dt.timedelta(minutes=i + 1), doi=f"doi:10.5555/test.{i}")
    for r in records:
        server.put(r)
    settings = settings_for(tmp_path, db_url, server.url, since="2024-01-01")

    first = harvest(settings, store)
    assert first.outcome == "succeeded", first.error
    assert (first.stats.fetched, first.stats.inserted, first.stats.quarantined) == (2000, 2000, 0)
    assert len(live_records(store)) == 2000
    assert works(store) == 1800  # 200 pairs merged by DOI
    pair = store.work_by_doi("10.5555/test.0")
    assert pair is not None and len(pair["records"]) == 2

    # Nothing changed at the source: a second harvest writes nothing.
    before = stamps(store)
    second = harvest(settings, store)
    assert second.outcome == "succeeded"
    assert (second.stats.inserted, second.stats.updated, second.stats.works_updated) == (0, 0, 0)
    assert stamps(store) == before
    # ... and it asked only from the checkpoint (minus one granule), not from the beginning
    incremental = list_requests(server)[-1]
    assert incremental["from"] == "2024-06-01T11:59:59Z"

    # A deletion and a change, later.
    later = NOW + dt.timedelta(hours=1)
    server.now = lambda: later + dt.timedelta(minutes=5)
    server.delete("oai:repo.example.org:5", later)
    server.put(article(7, later, title="Article number 7, corrected"))
    third = harvest(settings, store)
    assert third.outcome == "succeeded", third.error
    assert (third.stats.deleted, third.stats.updated) == (1, 1)
    assert works(store, deleted=True) == 1
    assert "oai:repo.example.org:5" not in live_records(store)
    assert store.work_by_doi("10.5555/test.7")["title"] == "Article number 7, corrected"  # type: ignore[index]
    exported = {w["doi"] for w in store.iter_works()}
    assert "10.5555/test.5" not in exported and len(exported) == 1799


def test_resumes_from_the_stored_token_after_a_failed_run(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(450):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    settings = settings_for(tmp_path, db_url, server.url)
    # requests: 0 Identify, 1 page 1, 2 page 2, then every retry of page 3 fails
    for k in range(3, 3 + 4):
        server.faults.on_request(k, status=500)
    failed = harvest(settings, store)
    assert failed.outcome == "failed" and "HTTP 500" in (failed.error or "")
    assert len(live_records(store)) == 200
    state = store.load_checkpoint("repo")
    assert state is not None and state["token"] and state["through"] is None

    already = len(server.requests)
    resumed = harvest(settings, store)
    assert resumed.outcome == "succeeded", resumed.error
    assert len(live_records(store)) == 450
    assert resumed.stats.fetched == 250  # only what was missing
    rerun = [r for r in server.requests[already:] if r.get("verb") == "ListRecords"]
    assert rerun[0] == {"verb": "ListRecords", "resumptionToken": state["token"]}
    assert store.load_checkpoint("repo")["token"] is None  # type: ignore[index]


def test_expired_token_redoes_only_the_current_window(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(300):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    settings = settings_for(tmp_path, db_url, server.url)
    for k in range(2, 2 + 4):
        server.faults.on_request(k, status=503)
    assert harvest(settings, store).outcome == "failed"
    server.expire_tokens()
    with capture_logs() as logs:
        result = harvest(settings, store)
    assert result.outcome == "succeeded", result.error
    assert any(e["event"] == "oai.token_expired" for e in logs)
    assert len(live_records(store)) == 300


def test_transient_faults_are_retried_and_lose_nothing(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(250):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    settings = settings_for(tmp_path, db_url, server.url)
    server.faults.on_request(1, status=503, headers={"Retry-After": "0"})
    server.faults.on_request(2, status=429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    server.faults.on_request(3, Fault.truncate(0.6))  # page 1, third try: cut mid-record
    server.faults.on_request(5, Fault.reset())  # page 2: connection closed after the headers
    with capture_logs() as logs:
        result = harvest(settings, store)
    assert result.outcome == "succeeded", result.error
    assert len(live_records(store)) == 250
    retries = [e for e in logs if e["event"] == "http.retry"]
    assert [e["status"] for e in retries] == [503, 429, None, None]
    assert "malformed XML" in retries[2]["error"]
    assert "RemoteProtocolError" in retries[3]["error"]


def test_html_with_status_200_is_retried(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(150):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    settings = settings_for(tmp_path, db_url, server.url)
    server.faults.on_request(0, Fault.html())  # Identify
    server.faults.on_request(2, Fault.html())  # page 1
    result = harvest(settings, store)
    assert result.outcome == "succeeded", result.error
    assert len(live_records(store)) == 150
    assert server.faults.served["html"] == 2


def test_repeated_token_stops_the_run_instead_of_looping(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(300):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    server.faults.repeat_token = True
    result = harvest(settings_for(tmp_path, db_url, server.url), store)
    assert result.outcome == "failed"
    assert "twice" in (result.error or "")
    assert len(list_requests(server)) < 5


def test_a_run_of_empty_pages_stops_the_run(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    server.put(article(1))
    server.faults.empty_pages_with_token = 50
    result = harvest(settings_for(tmp_path, db_url, server.url, max_empty_pages=3), store)
    assert result.outcome == "failed" and "without records" in (result.error or "")


def test_a_token_on_the_last_page_leading_to_an_empty_page_is_a_normal_end(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(200):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    server.faults.token_leads_to_empty_last_page = True
    result = harvest(settings_for(tmp_path, db_url, server.url), store)
    assert result.outcome == "succeeded", result.error
    assert len(live_records(store)) == 200


def test_oai_errors_are_read_whatever_the_http_status(store: Store, tmp_path: Path, db_url: str) -> None:
    with FakeOaiServer(error_status=422, now=lambda: NOW, earliest_datestamp=T0) as zenodo_like:
        result = harvest(settings_for(tmp_path, db_url, zenodo_like.url), store)
        assert result.outcome == "succeeded", result.error  # noRecordsMatch (HTTP 422) is an empty result
        result = harvest(settings_for(tmp_path, db_url, zenodo_like.url, metadata_prefix="marc21"), store)
        assert result.outcome == "failed" and "CannotDisseminateFormat" in (result.error or "")


def test_sets_and_day_granularity(store: Store, tmp_path: Path, db_url: str) -> None:
    day_now = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    with FakeOaiServer(granularity=GRANULARITY_DAY, now=lambda: day_now, earliest_datestamp=T0) as server:
        for i in range(60):
            server.put(article(i, T0 + dt.timedelta(days=i % 20), sets=("col:a",) if i % 2 else ("col:b",)))
        settings = settings_for(tmp_path, db_url, server.url, set="col:a", window="7d")
        result = harvest(settings, store)
        assert result.outcome == "succeeded", result.error
        assert len(live_records(store)) == 30
        lists = list_requests(server)
        assert all(r["set"] == "col:a" and len(r["from"]) == 10 for r in lists)
        assert lists[0]["from"] == "2024-05-01" and lists[0]["until"] == "2024-05-07"
        assert store.load_checkpoint("repo")["through"] == "2024-06-01T00:00:00Z"  # type: ignore[index]


def test_control_characters_and_wrong_charset_are_repaired_and_logged(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(20):
        server.put(article(i, T0 + dt.timedelta(seconds=i), title=f"Ærticle {i} — “quoted”"))
    server.faults.control_chars = True
    server.faults.wrong_charset = True
    with capture_logs() as logs:
        result = harvest(settings_for(tmp_path, db_url, server.url), store)
    assert result.outcome == "succeeded", result.error
    assert len(live_records(store)) == 20
    repairs = [e for e in logs if e["event"] == "oai.repaired"]
    assert repairs and any("control characters" in r for r in repairs[0]["repairs"])
    assert store.work_by_doi("10.5555/test.3")["title"].startswith("Ærticle 3")  # type: ignore[index]


def test_log_events_carry_run_id_source_and_counters(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(120):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    with capture_logs(processors=[merge_contextvars]) as logs:
        result = harvest(settings_for(tmp_path, db_url, server.url), store)
    events = [e["event"] for e in logs]
    assert events[0] == "harvest.started" and events[-1] == "harvest.finished"
    assert events.count("page.committed") == 3  # two pages, then the empty window up to now
    run_lines = [e for e in logs if e["event"] in ("harvest.started", "page.committed", "harvest.finished")]
    assert all(e["run_id"] == result.run_id and e["source"] == "repo" for e in run_lines)
    finished = logs[-1]
    for counter in ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "seconds"):
        assert counter in finished
    assert finished["fetched"] == 120


def test_unusable_records_are_quarantined_not_fatal(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    for i in range(10):
        server.put(article(i, T0 + dt.timedelta(seconds=i)))
    server.put(
        OaiRecord(
            "oai:repo.example.org:marc", T0, "<marc:record xmlns:marc='http://www.loc.gov/MARC21/slim'/>"
        )
    )
    result = harvest(settings_for(tmp_path, db_url, server.url), store)
    assert result.outcome == "succeeded"
    assert (result.stats.inserted, result.stats.quarantined) == (10, 1)
    [item] = store.quarantine_items()
    assert item["key"] == "oai:repo.example.org:marc" and "unsupported metadata format" in item["reason"]


def test_a_list_shorter_than_its_complete_list_size_is_reported(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    """A server that loses records between pages (its completeListSize says 4, 3 come) is
    not silent: ``oai.list_short`` names the window; what came is stored."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    def record(i: int) -> str:
        return (
            f"<record><header><identifier>oai:short:{i}</identifier><datestamp>2024-05-01T08:00:0{i}Z</datestamp>"
            f"</header><metadata><oai_dc:dc xmlns:oai_dc='http://www.openarchives.org/OAI/2.0/oai_dc/' "
            f"xmlns:dc='http://purl.org/dc/elements/1.1/'><dc:title>Short list record {i}</dc:title>"
            f"</oai_dc:dc></metadata></record>"
        )

    head = "<?xml version='1.0'?><OAI-PMH xmlns='http://www.openarchives.org/OAI/2.0/'><responseDate>2024-06-01T12:00:00Z</responseDate><request>x</request>"
    pages = {
        "Identify": head
        + "<Identify><repositoryName>x</repositoryName><baseURL>x</baseURL><protocolVersion>2.0"
        "</protocolVersion><adminEmail>a@b.c</adminEmail><earliestDatestamp>2024-05-01T00:00:00Z</earliestDatestamp>"
        "<deletedRecord>no</deletedRecord><granularity>YYYY-MM-DDThh:mm:ssZ</granularity></Identify></OAI-PMH>",
        "first": head
        + f"<ListRecords>{record(1)}{record(2)}<resumptionToken completeListSize='4' cursor='0'>t1"
        "</resumptionToken></ListRecords></OAI-PMH>",
        "t1": head + f"<ListRecords>{record(3)}<resumptionToken completeListSize='4' cursor='2'/>"
        "</ListRecords></OAI-PMH>",
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = self.path.split("?", 1)[-1]
            key = (
                "Identify"
                if "verb=Identify" in query
                else ("t1" if "resumptionToken=t1" in query else "first")
            )
            body = pages[key].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/oai"
        with capture_logs() as logs:
            result = harvest(settings_for(tmp_path, db_url, url, window="3650d"), store)
    finally:
        server.shutdown()
        server.server_close()
    assert result.outcome == "succeeded", result.error
    assert len(live_records(store)) == 3
    [short] = [e for e in logs if e["event"] == "oai.list_short"]
    assert (short["announced"], short["received"]) == (4, 3)
