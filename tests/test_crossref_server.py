"""Tests of the fake Crossref REST API (tests/crossref_server.py), with plain httpx.

They prove the server answers like api.crossref.org's ``/works`` (paging, filters, select,
errors, pools and limits, shapes taken from the real cassettes in
/work/shared/real-world/crossref/) and that each fault of its FaultPlan does what it says,
so harvester tests can rely on it.
"""

from __future__ import annotations

import email.utils
import gc
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.crossref_server import (
    EXCEPTION_BODY,
    HTML_401,
    HTML_429,
    HTML_ERROR_PAGE,
    WORK_FILTERS,
    WORK_TYPES,
    CrossrefWork,
    FakeCrossref,
    Fault,
    RequestLogEntry,
    work_item,
)

T0 = datetime(2024, 5, 1, tzinfo=UTC)
POLITE_UA = "harvester-tests/1.0 (https://example.org; mailto:tests@example.org)"
# The 2026 cassette test_cursor_fails_cursor_value, byte for byte.
CURSOR_THING_BODY = (
    '{"status":"failed","message-type":"resource-failure","message":[{"type":"cursor-invalid",'
    '"value":"thing","message":"Cursor specified but it is invalid"}]}'
)

ServerFactory = Callable[..., FakeCrossref]


def doi(i: int) -> str:
    return f"10.5555/w{i:05d}"


def make_works(
    n: int, *, start: datetime = T0, step: timedelta = timedelta(minutes=1), **work_kwargs: Any
) -> list[CrossrefWork]:
    """n works, DOIs 10.5555/w00000.., indexed `step` apart from `start` (so DOI order = index order)."""
    return [
        CrossrefWork(work_item(doi(i), f"Work {i}"), indexed=start + i * step, **work_kwargs)
        for i in range(n)
    ]


def stored(server: FakeCrossref, doi_: str) -> CrossrefWork:
    work = server.get(doi_)
    assert work is not None
    return work


def message(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    return dict(body["message"])


def dois_of(msg: dict[str, Any]) -> list[str]:
    return [item["DOI"] for item in msg["items"]]


def failures(response: httpx.Response) -> list[dict[str, str]]:
    """The entries of a 400 validation-failure body."""
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["status"] == "failed"
    assert body["message-type"] == "validation-failure"
    return list(body["message"])


def cursor_harvest(
    client: httpx.Client, url: str, params: dict[str, Any], max_pages: int = 200
) -> tuple[list[str], list[dict[str, Any]]]:
    """Crossref's documented loop: cursor=*, pass next-cursor back until a page is shorter than rows."""
    rows = int(params.get("rows", 20))
    pages: list[dict[str, Any]] = []
    cursor = "*"
    for _ in range(max_pages):
        msg = message(client.get(url, params={**params, "cursor": cursor}))
        pages.append(msg)
        cursor = msg["next-cursor"]
        if len(msg["items"]) < rows:
            return [d for page in pages for d in dois_of(page)], pages
    raise AssertionError(f"no short page after {max_pages} pages")


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Build and start FakeCrossrefs; all are stopped at teardown. Unless ``strict=True``, every
    pool gets limits no test reaches, so only the limit tests see 429s."""
    servers: list[FakeCrossref] = []

    def factory(works: Any = (), *, strict: bool = False, **kwargs: Any) -> FakeCrossref:
        server = FakeCrossref(works, **kwargs)
        if not strict:
            server.set_limits(rate_limit=100_000, concurrency=100)
        servers.append(server.start())
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.internal_errors == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A polite client (mailto in the User-Agent), as a harvester should be."""
    with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as c:
        yield c


# --------------------------------------------------------------------------------------------
# Works and items
# --------------------------------------------------------------------------------------------


def test_work_item_is_a_realistic_minimal_record() -> None:
    item = work_item("10.1234/ABC", "A title", container_title=["Other"], abstract="<jats:p>x</jats:p>")
    assert item["DOI"] == "10.1234/ABC"
    assert item["title"] == ["A title"]
    assert item["type"] == "journal-article"
    assert item["container-title"] == ["Other"]
    assert item["author"][0]["sequence"] == "first"
    assert item["issn-type"] == [{"value": "1234-5679", "type": "print"}]
    assert item["published"] == {"date-parts": [[2024, 1, 15]]}
    assert item["abstract"] == "<jats:p>x</jats:p>"
    assert item["subject"] == []
    derived = work_item("10.1234/x", "t", ISSN=["0000-0019", "2049-3630"], volume=None)
    assert derived["issn-type"] == [
        {"value": "0000-0019", "type": "print"},
        {"value": "2049-3630", "type": "electronic"},
    ]
    assert "volume" not in derived


def test_crossref_work_writes_dates_member_prefix_into_a_copy() -> None:
    source = work_item("10.1234/ABC", "t")
    indexed = datetime(2024, 5, 2, 1, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    work = CrossrefWork(source, indexed=indexed, member="98")
    assert "indexed" not in source  # the caller's dict is not touched
    assert next(iter(work.item)) == "indexed"
    assert work.item["indexed"] == {
        "date-parts": [[2024, 5, 1]],
        "date-time": "2024-05-01T23:30:15Z",
        "timestamp": 1714606215123,
    }
    assert work.item["deposited"] == work.item["indexed"]
    assert work.deposited == work.indexed == indexed.astimezone(UTC)
    assert (work.item["member"], work.item["prefix"], work.prefix, work.type) == (
        "98",
        "10.1234",
        "10.1234",
        "journal-article",
    )
    retyped = CrossrefWork(
        work_item("10.1/x", "t"), indexed=T0, type="dataset", deposited=T0 - timedelta(days=400)
    )
    assert retyped.item["type"] == "dataset"
    assert retyped.item["deposited"]["date-parts"] == [[2023, 3, 28]]
    with pytest.raises(ValueError, match="timezone-aware"):
        CrossrefWork(work_item("10.1/x", "t"), indexed=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="DOI"):
        CrossrefWork({"title": ["no doi"]}, indexed=T0)


# --------------------------------------------------------------------------------------------
# Cursor paging
# --------------------------------------------------------------------------------------------


def test_cursor_chain_over_2345_works(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(2345))
    url = f"{server.url}/works"
    dois, pages = cursor_harvest(client, url, {"rows": 1000})
    assert [len(p["items"]) for p in pages] == [1000, 1000, 345]  # the last page is short
    assert dois == [doi(i) for i in range(2345)]  # every DOI once, in (indexed, DOI) order
    cursors = {p["next-cursor"] for p in pages}
    assert len(cursors) == 1  # the same cursor on every page (habanero 2026 cassette)
    (cursor,) = cursors
    assert {"+", "/", "="} <= set(cursor)
    assert cursor.endswith("==")
    assert len(cursor) > 1000
    assert all(p["total-results"] == 2345 and p["items-per-page"] == 1000 for p in pages)
    after = message(client.get(url, params={"rows": 1000, "cursor": cursor}))
    assert after["items"] == []  # later calls return empty items
    assert after["next-cursor"] == cursor
    assert after["total-results"] == 2345
    assert [e.status for e in server.requests] == [200] * 4
    assert server.requests[0].params == {"rows": ["1000"], "cursor": ["*"]}
    assert server.violations == []


def test_work_list_shape_headers_and_encoding(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    response = client.get(
        f"{server.url}/works", params={"cursor": "*"}, headers={"Accept-Encoding": "identity"}
    )
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    assert response.headers["x-api-pool"] == "polite"
    assert response.headers["server"] == "Jetty(9.4.40.v20210413)"
    assert "content-encoding" not in response.headers
    raw = response.content
    assert raw.startswith(b'{"status":"ok","message-type":"work-list","message-version":"1.0.0","message":')
    assert all(byte < 128 for byte in raw)  # ASCII, as Crossref's output
    assert b'"DOI":"10.5555\\/w00000"' in raw  # slashes escaped like the real bodies
    msg = message(response)
    assert list(msg) == ["facets", "next-cursor", "total-results", "items", "items-per-page", "query"]
    assert msg["facets"] == {}
    assert msg["query"] == {"start-index": 0, "search-terms": None}
    assert msg["items-per-page"] == 20
    assert msg["items"][0] == stored(server, doi(0)).item
    assert msg["items"][0]["indexed"]["date-time"] == "2024-05-01T00:00:00Z"
    gzipped = client.get(f"{server.url}/works", params={"rows": 3})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.headers["vary"] == "Accept-Encoding"
    assert dois_of(message(gzipped)) == [doi(i) for i in range(3)]
    without_cursor = message(client.get(f"{server.url}/works"))
    assert "next-cursor" not in without_cursor


def test_cursor_must_be_url_encoded(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    url = f"{server.url}/works"
    first = message(client.get(url, params={"rows": 10, "cursor": "*"}))
    cursor = first["next-cursor"]
    raw = client.get(f"{url}?rows=10&cursor={cursor}")  # '+' arrives as a space
    assert raw.status_code == 500
    assert raw.json() == EXCEPTION_BODY
    assert raw.headers["exception-name"] == "class clojure.lang.ExceptionInfo"
    encoded = message(client.get(url, params={"rows": 10, "cursor": cursor}))
    assert dois_of(encoded) == [doi(i) for i in range(10, 20)]  # the 500 did not advance the scroll


def test_a_repeated_request_advances_the_scroll(make_server: ServerFactory, client: httpx.Client) -> None:
    """The position lives on the server: a retry of page 2 gets page 3, so page 2 is lost.
    This is what a 2026 Crossref scroll does; a harvester must not retry a cursor request."""
    server = make_server(make_works(40))
    url = f"{server.url}/works"
    cursor = message(client.get(url, params={"rows": 10, "cursor": "*"}))["next-cursor"]
    page2 = dois_of(message(client.get(url, params={"rows": 10, "cursor": cursor})))
    retry = dois_of(message(client.get(url, params={"rows": 10, "cursor": cursor})))
    assert page2 == [doi(i) for i in range(10, 20)]
    assert retry == [doi(i) for i in range(20, 30)]
    # The page size and projection were fixed by cursor=* (an Elasticsearch scroll).
    page4 = message(client.get(url, params={"rows": 500, "cursor": cursor, "select": "DOI"}))
    assert dois_of(page4) == [doi(i) for i in range(30, 40)]
    assert set(page4["items"][0]) > {"DOI", "title"}


def test_cut_responses_advance_the_scroll_canned_faults_do_not(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(50))
    url = f"{server.url}/works"
    cursor = message(client.get(url, params={"rows": 10, "cursor": "*"}))["next-cursor"]
    server.faults.next_responses(1, status=503)
    assert client.get(url, params={"rows": 10, "cursor": cursor}).status_code == 503
    assert dois_of(message(client.get(url, params={"rows": 10, "cursor": cursor})))[0] == doi(10)
    server.faults.reset_next()
    with pytest.raises(httpx.TransportError):
        client.get(url, params={"rows": 10, "cursor": cursor})
    assert dois_of(message(client.get(url, params={"rows": 10, "cursor": cursor})))[0] == doi(
        30
    )  # 20-29 lost
    server.faults.truncate_next()
    with pytest.raises(json.JSONDecodeError):
        client.get(url, params={"rows": 10, "cursor": cursor}).json()
    assert message(client.get(url, params={"rows": 10, "cursor": cursor}))["items"] == []  # 40-49 lost


def test_expired_and_unknown_cursors_are_404(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30), cursor_ttl=0.3)
    url = f"{server.url}/works"
    thing = client.get(url, params={"cursor": "thing"})
    assert thing.status_code == 404
    assert thing.text == CURSOR_THING_BODY
    assert thing.headers["content-type"] == "application/json;charset=utf-8"
    cursor = message(client.get(url, params={"rows": 10, "cursor": "*"}))["next-cursor"]
    server.expire_cursors()
    expired = client.get(url, params={"rows": 10, "cursor": cursor})
    assert expired.status_code == 404
    assert expired.json() == {
        "status": "failed",
        "message-type": "resource-failure",
        "message": [
            {"type": "cursor-invalid", "value": cursor, "message": "Cursor specified but it is invalid"}
        ],
    }
    # A cursor also expires cursor_ttl seconds after its last use; using it keeps it alive.
    cursor = message(client.get(url, params={"rows": 10, "cursor": "*"}))["next-cursor"]
    time.sleep(0.2)
    assert len(message(client.get(url, params={"rows": 10, "cursor": cursor}))["items"]) == 10
    time.sleep(0.2)
    assert len(message(client.get(url, params={"rows": 10, "cursor": cursor}))["items"]) == 10
    assert server.open_cursors == 1
    time.sleep(0.45)
    assert client.get(url, params={"rows": 10, "cursor": cursor}).status_code == 404
    assert server.open_cursors == 0


def test_selection_is_snapshotted_at_cursor_star(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(20))
    url = f"{server.url}/works"
    first = message(client.get(url, params={"rows": 10, "cursor": "*"}))
    server.put(CrossrefWork(work_item(doi(0), "Replaced"), indexed=T0 + timedelta(days=9)))
    server.put(CrossrefWork(work_item("10.5555/early", "New"), indexed=T0 - timedelta(days=1)))
    second = message(client.get(url, params={"rows": 10, "cursor": first["next-cursor"]}))
    assert dois_of(first) + dois_of(second) == [doi(i) for i in range(20)]
    assert second["total-results"] == 20
    fresh, _ = cursor_harvest(client, url, {"rows": 10})
    assert fresh == ["10.5555/early", *[doi(i) for i in range(1, 20)], doi(0)]
    assert len(server) == 21
    assert stored(server, "10.5555/W00000").item["title"] == ["Replaced"]


def test_concurrent_scrolls_are_independent(make_server: ServerFactory) -> None:
    server = make_server(make_works(2345))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as c:
                results.append(cursor_harvest(c, f"{server.url}/works", {"rows": 500})[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert results == [[doi(i) for i in range(2345)]] * 4


# --------------------------------------------------------------------------------------------
# Offset, rows, sample, sort, query
# --------------------------------------------------------------------------------------------


def test_offset_paging_and_its_limits(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    url = f"{server.url}/works"
    msg = message(client.get(url, params={"rows": 10, "offset": 25}))
    assert dois_of(msg) == [doi(i) for i in range(25, 30)]
    assert msg["query"]["start-index"] == 25
    assert "next-cursor" not in msg
    assert failures(client.get(url, params={"offset": 10_001})) == [
        {
            "type": "integer-not-valid",
            "value": "10001",
            "message": "Integer specified as 10001 but must be a positive integer less than or equal to "
            "10000.  Use the cursor parameter to page further into result sets.",
        }
    ]
    assert failures(client.get(url, params={"offset": 10, "cursor": "*"})) == [
        {
            "type": "cursor-with-offset-or-sample",
            "value": "cursor",
            "message": "Cursor cannot be combined with offset or sample",
        }
    ]


def test_rows_default_maximum_and_zero(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30), max_rows=25)
    url = f"{server.url}/works"
    assert len(message(client.get(url))["items"]) == 20
    assert len(message(client.get(url, params={"rows": 25}))["items"]) == 25
    counted = message(client.get(url, params={"rows": 0}))
    assert (counted["items"], counted["total-results"]) == ([], 30)
    for rows in ("26", "-1", "ten"):
        assert failures(client.get(url, params={"rows": rows})) == [
            {
                "type": "integer-not-valid",
                "value": rows,
                "message": f"Integer specified as {rows} but must be a positive integer "
                "less than or equal to 25. ",
            }
        ]


def test_rows_too_large_at_the_default_maximum(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(1))
    (failure,) = failures(client.get(f"{server.url}/works", params={"rows": 1001, "cursor": "*"}))
    assert failure["type"] == "integer-not-valid"
    assert failure["message"].endswith("less than or equal to 1000. ")
    assert server.open_cursors == 0  # nothing was opened


def test_sample(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(50))
    url = f"{server.url}/works"
    sampled = dois_of(message(client.get(url, params={"sample": 7})))
    assert len(set(sampled)) == 7
    assert set(sampled) <= {doi(i) for i in range(50)}
    assert [f["type"] for f in failures(client.get(url, params={"sample": 5, "rows": 5}))] == [
        "sample-with-rows-or-offset"
    ]
    assert failures(client.get(url, params={"sample": 101}))[0]["message"].endswith(
        "less than or equal to 100. "
    )


def test_sort_and_order(make_server: ServerFactory, client: httpx.Client) -> None:
    works = [
        CrossrefWork(
            work_item(doi(i), "t"), indexed=T0 + timedelta(hours=i), deposited=T0 - timedelta(hours=i)
        )
        for i in range(5)
    ]
    server = make_server(works)
    url = f"{server.url}/works"
    assert dois_of(message(client.get(url, params={"sort": "indexed"}))) == [doi(i) for i in (4, 3, 2, 1, 0)]
    assert dois_of(message(client.get(url, params={"sort": "indexed", "order": "asc"}))) == [
        doi(i) for i in range(5)
    ]
    assert dois_of(message(client.get(url, params={"sort": "deposited", "order": "desc"}))) == [
        doi(i) for i in range(5)
    ]
    assert dois_of(message(client.get(url, params={"sort": "score"}))) == [doi(i) for i in range(5)]
    assert failures(client.get(url, params={"sort": "title", "order": "up"})) == [
        {
            "type": "sort-order-not-valid",
            "value": "up",
            "message": "Sort order specified as up but must be one of: asc, desc, 1, -1",
        },
        {
            "type": "sort-field-not-valid",
            "value": "title",
            "message": "Sort field specified as title but must be one of: score, relevance, updated, "
            "deposited, indexed, created, published-print, published-online, published, issued, "
            "is-referenced-by-count, references-count",
        },
    ]
    assert failures(client.get(url, params={"sort": "published"}))[0]["type"] == "not-implemented-by-fake"


def test_query_terms(make_server: ServerFactory, client: httpx.Client) -> None:
    works = [
        CrossrefWork(work_item(doi(0), "Fire ecology of pines"), indexed=T0),
        CrossrefWork(work_item(doi(1), "Disease Ecology", author=[{"family": "Darwin"}]), indexed=T0),
        CrossrefWork(work_item(doi(2), "Widgets"), indexed=T0),
    ]
    server = make_server(works)
    url = f"{server.url}/works"
    msg = message(client.get(url, params={"query": "ecology"}))
    assert dois_of(msg) == [doi(0), doi(1)]
    assert msg["query"]["search-terms"] == "ecology"
    assert dois_of(message(client.get(url, params={"query.author": "darwin"}))) == [doi(1)]
    assert dois_of(message(client.get(url, params={"query.bibliographic": "FIRE pines"}))) == [doi(0)]
    assert failures(client.get(url, params={"query.editor": "x"}))[0]["type"] == "not-implemented-by-fake"
    assert failures(client.get(url, params={"query.nonsense": "x"}))[0]["type"] == "field-query-not-available"


# --------------------------------------------------------------------------------------------
# Filters
# --------------------------------------------------------------------------------------------


def test_index_date_windows_are_utc_days(make_server: ServerFactory, client: httpx.Client) -> None:
    plus2 = timezone(timedelta(hours=2))
    stamps = {
        "a": datetime(2024, 4, 30, 23, 59, 59, 999999, tzinfo=UTC),
        "b": datetime(2024, 5, 1, 0, 0, tzinfo=UTC),
        "c": datetime(2024, 5, 2, 1, 0, tzinfo=plus2),  # 2024-05-01T23:00Z: still May 1st in UTC
        "d": datetime(2024, 5, 2, 0, 0, tzinfo=UTC),
        "e": datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
        "f": datetime(2025, 1, 1, 0, 0, tzinfo=UTC),
    }
    server = make_server([CrossrefWork(work_item(f"10.5555/{k}", k), indexed=v) for k, v in stamps.items()])
    url = f"{server.url}/works"

    def window(filter_: str) -> set[str]:
        msg = message(client.get(url, params={"filter": filter_, "rows": 100}))
        assert msg["total-results"] == len(msg["items"])
        return {d.rsplit("/", 1)[1] for d in dois_of(msg)}

    assert window("from-index-date:2024-05-01,until-index-date:2024-05-01") == {"b", "c"}
    assert window("from-index-date:2024-05-02") == {"d", "e", "f"}
    assert window("until-index-date:2024-04-30") == {"a"}
    assert window("from-index-date:2024-05,until-index-date:2024-05") == {"b", "c", "d"}
    assert window("until-index-date:2024-05") == {"a", "b", "c", "d"}  # a month includes its last day
    assert window("from-index-date:2024,until-index-date:2024") == {"a", "b", "c", "d", "e"}
    assert window("from-index-date:2024-06-01,from-index-date:2024-05-02,until-index-date:2024-12-31") == {
        "d",
        "e",
    }  # the same name twice is OR
    # Cursor harvests of consecutive windows cover everything exactly once.
    seen: list[str] = []
    day = datetime(2024, 4, 29, tzinfo=UTC)
    while day.year < 2025 or day.month < 2:
        d = day.date().isoformat()
        seen += cursor_harvest(
            client, url, {"filter": f"from-index-date:{d},until-index-date:{d}", "rows": 2}
        )[0]
        day += timedelta(days=1)
    assert sorted(seen) == sorted(f"10.5555/{k}" for k in stamps)


def test_update_date_filters_use_deposited(make_server: ServerFactory, client: httpx.Client) -> None:
    works = [
        CrossrefWork(work_item(doi(0), "t"), indexed=T0, deposited=T0 - timedelta(days=30)),
        CrossrefWork(work_item(doi(1), "t"), indexed=T0 - timedelta(days=30), deposited=T0),
        CrossrefWork(work_item(doi(2), "t"), indexed=T0 + timedelta(days=5)),
    ]
    server = make_server(works)
    url = f"{server.url}/works"
    window = {"filter": "from-update-date:2024-05-01,until-update-date:2024-05-01"}
    assert dois_of(message(client.get(url, params=window))) == [doi(1)]
    deposit = {"filter": "from-deposit-date:2024-04-01,until-deposit-date:2024-04-30"}
    assert dois_of(message(client.get(url, params=deposit))) == [doi(0)]
    index = {"filter": "from-index-date:2024-05-01"}
    assert dois_of(message(client.get(url, params=index))) == [doi(0), doi(2)]
    assert stored(server, doi(1)).item["deposited"]["date-time"] == "2024-05-01T00:00:00Z"


def test_prefix_member_type_issn_abstract_and_doi_filters(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    works = [
        CrossrefWork(work_item("10.1111/a", "t"), indexed=T0, member="98"),
        CrossrefWork(work_item("10.1111/b", "t", type="book-chapter", ISSN=None), indexed=T0, member="98"),
        CrossrefWork(work_item("10.2222/c", "t", type="dataset", ISSN=["2049-3630"]), indexed=T0, member="7"),
        CrossrefWork(work_item("10.2222/d", "t", abstract="<jats:p>Hi</jats:p>"), indexed=T0, member="7"),
    ]
    server = make_server(works)
    url = f"{server.url}/works"

    def select(filter_: str, path: str = "/works") -> list[str]:
        return [
            d[-1] for d in dois_of(message(client.get(f"{server.url}{path}", params={"filter": filter_})))
        ]

    assert select("prefix:10.1111") == ["a", "b"]
    assert select("member:7") == ["c", "d"]
    assert select("type:book-chapter,type:dataset") == ["b", "c"]  # the same name repeated: OR
    assert select("type:journal-article,member:7") == ["d"]  # different names: AND
    assert select("issn:1234-5679") == ["a", "d"]
    assert select("issn:20493630") == ["c"]
    assert select("has-abstract:true") == ["d"]
    assert select("has-abstract:0") == ["a", "b", "c"]
    assert select("doi:10.1111/A") == ["a"]
    assert select("type:journal-article", "/members/98/works") == ["a"]
    assert select("", "/prefixes/10.2222/works") == ["c", "d"]
    assert select("", "/journals/2049-3630/works") == ["c"]
    assert select("", "/types/dataset/works") == ["c"]
    assert select("", "/v1/works") == ["a", "b", "c", "d"]
    assert message(client.get(url, params={"filter": "member:999"}))["total-results"] == 0


def test_unknown_filter_and_bad_values_give_cayenne_errors(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(3))
    url = f"{server.url}/works"
    response = client.get(url, params={"filter": "from-index-date:2024-05-01,foo:1"})
    assert response.headers["content-type"] == "application/json;charset=utf-8"
    (failure,) = failures(response)
    assert failure == {
        "type": "filter-not-available",
        "value": "foo",
        "message": "Filter foo specified but there is no such filter for this route. Valid filters for "
        f"this route are: {', '.join(WORK_FILTERS)}",
    }
    assert failure["message"].split(": ", 1)[1].startswith("until-approved-date, has-assertion, ")
    assert "from-index-date" in WORK_FILTERS
    assert len(WORK_FILTERS) == 87
    everything = failures(
        client.get(
            url,
            params={
                "rows": 5000,
                "filter": "from-index-date:2024-13-01,until-update-date:May,has-abstract:yes,type:article,"
                "has-orcid:true,bogus:x",
                "select": "DOI,doi",
                "frobnicate": "1",
            },
        )
    )
    assert [(f["type"], f["value"]) for f in everything] == [
        ("unknown-parameter", "frobnicate"),
        ("integer-not-valid", "5000"),
        ("filter-not-available", "bogus"),
        ("date-not-legitimate", "2024-13-01"),
        ("date-not-valid", "May"),
        ("boolean-not-valid", "yes"),
        ("type-not-valid", "article"),
        ("not-implemented-by-fake", "has-orcid"),
        ("select-not-available", "doi"),
    ]
    messages = {f["value"]: f["message"] for f in everything}
    assert messages["frobnicate"] == (
        "Parameter frobnicate specified but there is no such parameter available on any route"
    )
    assert messages["May"] == "Date specified as May but must be of the form: yyyy or yyyy-MM or yyyy-MM-dd"
    assert messages["yes"] == "Boolean specified as yes but must be one of: t, true, 1, f, false, 0"
    assert messages["article"].startswith("Type specified as article but must be one of: book-section, ")
    assert messages["has-orcid"].endswith("FakeCrossref does not implement it")


def test_select_projection_and_unknown_field(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(25))
    url = f"{server.url}/works"
    msg = message(client.get(url, params={"select": "title,DOI", "rows": 3}))
    assert msg["items"] == [{"DOI": doi(i), "title": [f"Work {i}"]} for i in range(3)]  # item order
    with_dates = message(client.get(url, params={"select": "DOI,indexed,deposited,author", "rows": 1}))
    assert set(with_dates["items"][0]) == {"DOI", "indexed", "deposited", "author"}
    dois, pages = cursor_harvest(client, url, {"select": "DOI", "rows": 10})
    assert dois == [doi(i) for i in range(25)]
    assert all(set(item) == {"DOI"} for page in pages for item in page["items"])
    (failure,) = failures(client.get(url, params={"select": "DOI,titel"}))
    assert failure["type"] == "select-not-available"
    assert failure["value"] == "titel"
    assert failure["message"].startswith(
        "Select titel specified but there is no such select for this route. Valid selects for this "
        "route are: abstract, URL, member, "
    )


# --------------------------------------------------------------------------------------------
# Other routes
# --------------------------------------------------------------------------------------------


def test_single_work_and_not_found(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    response = client.get(f"{server.url}/works/10.5555/W00001")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["message-type"], body["message-version"]) == ("ok", "work", "1.0.0")
    assert body["message"] == stored(server, doi(1)).item
    assert client.get(f"{server.url}/works/10.5555%2Fw00002").json()["message"]["DOI"] == doi(2)
    assert client.get(f"{server.url}/v1/works/{doi(0)}").status_code == 200
    missing = client.get(f"{server.url}/works/10.1371/notarealdoi")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "text/plain"
    assert missing.text == "Resource not found."
    assert missing.headers["x-rate-limit-limit"] == "100000"  # rate headers on errors too
    # The cassette test_works_query_filters_not_allowed_with_dois:
    field_query = client.get(f"{server.url}/works/{doi(0)}", params={"query.author": "carl boettiger"})
    assert field_query.status_code == 400
    assert field_query.text == (
        '{"status":"failed","message-type":"validation-failure","message":[{"type":"parameter-not-allowed",'
        '"value":"query.*","message":"This route does not support field query parameters"}]}'
    )
    assert failures(client.get(f"{server.url}/works/{doi(0)}", params={"rows": 5}))[0]["message"] == (
        "This route does not support rows"
    )
    unknown = client.get(f"{server.url}/funders")
    assert (unknown.status_code, unknown.text) == (404, "Resource not found.")


def test_types(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server()
    body = client.get(f"{server.url}/types").json()
    assert body["message-type"] == "type-list"
    assert body["message"]["total-results"] == len(WORK_TYPES) == len(body["message"]["items"])
    assert {"id": "journal-article", "label": "Journal Article"} in body["message"]["items"]


# --------------------------------------------------------------------------------------------
# Pools and limits
# --------------------------------------------------------------------------------------------


def test_pool_headers(make_server: ServerFactory) -> None:
    server = make_server(make_works(1), strict=True, plus_token="s3cret")
    url = f"{server.url}/works"

    def headers_of(response: httpx.Response) -> tuple[str, ...]:
        h = response.headers
        return (
            h["x-api-pool"],
            h["x-rate-limit-limit"],
            h["x-rate-limit-interval"],
            h["x-concurrency-limit"],
        )

    with httpx.Client(timeout=10, headers={"User-Agent": "python-httpx"}) as anonymous:
        assert headers_of(anonymous.get(url)) == ("public", "5", "1s", "1")  # June 2026 cassettes
        assert headers_of(anonymous.get(url, params={"mailto": "me@example.org"})) == (
            "polite",
            "10",
            "1s",
            "3",
        )
        plus = anonymous.get(url, headers={"Crossref-Plus-API-Token": "Bearer s3cret"})
        assert headers_of(plus) == ("plus", "150", "1s", "10")
        bad = anonymous.get(url, headers={"Crossref-Plus-API-Token": "Bearer guess"})
        assert bad.status_code == 401
        assert bad.content == HTML_401
        assert "x-api-pool" not in bad.headers
    with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as polite:
        assert headers_of(polite.get(url)) == ("polite", "10", "1s", "3")
    assert server.requests[0].headers["user-agent"] == "python-httpx"
    assert [e.status for e in server.requests] == [200, 200, 200, 401, 200]
    assert server.violations == []
    no_plus = make_server(strict=True)
    assert (
        httpx.get(f"{no_plus.url}/types", headers={"Crossref-Plus-API-Token": "Bearer s3cret"}).status_code
        == 401
    )


def test_constructor_limits_apply_to_the_named_pool(make_server: ServerFactory) -> None:
    server = make_server(strict=True, pool="public", rate_limit=2, rate_interval="2s", concurrency=1)
    response = httpx.get(f"{server.url}/types")
    assert (response.headers["x-rate-limit-limit"], response.headers["x-rate-limit-interval"]) == ("2", "2s")
    assert server.limits["polite"].rate_limit == 10


def test_rate_limit_violations_are_recorded_and_answered_429(make_server: ServerFactory) -> None:
    server = make_server(make_works(3), strict=True, rate_limit=5)
    url = f"{server.url}/works"
    with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as c:
        statuses = [c.get(url).status_code for _ in range(8)]
        assert statuses == [200] * 5 + [429] * 3  # a burst of 5, then the bucket is empty
        refused = c.get(url)
        assert refused.status_code == 429
        assert refused.content == HTML_429
        assert refused.headers["x-rate-limit-limit"] == "5"  # not bare: the headers are there
        assert "retry-after" not in refused.headers  # Crossref sends none
        time.sleep(0.25)  # 1.25 tokens back
        assert c.get(url).status_code == 200
    assert len(server.violations) == 4
    assert all(v.startswith("rate: request #") and "polite pool's 5 per 1s" in v for v in server.violations)


def test_a_client_that_paces_itself_is_never_refused(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(1500), strict=True, rate_limit=20, concurrency=1)
    url = f"{server.url}/works"
    assert all(client.get(url).status_code == 200 for _ in range(20))  # the burst
    for _ in range(10):
        time.sleep(0.05)  # 20 per second
        assert client.get(url).status_code == 200
    # A sequential client never looks concurrent, even with pages of 1000 items (~1 MB).
    server.set_limits("polite", rate_limit=1000, concurrency=1)
    for _ in range(30):
        assert client.get(url, params={"rows": 1000}).status_code == 200
    assert server.violations == []


def test_concurrency_violations(make_server: ServerFactory) -> None:
    server = make_server(make_works(3), strict=True, concurrency=2, rate_limit=100)
    server.latency = 0.4  # each request stays in flight long enough to overlap

    def burst(n: int) -> list[int]:
        barrier = threading.Barrier(n)
        statuses: list[int] = []

        def one() -> None:
            with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as c:
                barrier.wait()
                statuses.append(c.get(f"{server.url}/works").status_code)

        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        return sorted(statuses)

    assert burst(4) == [200, 200, 429, 429]
    assert len(server.violations) == 2
    assert all(v.startswith("concurrency: ") and "(limit 2)" in v for v in server.violations)
    assert server.peak_in_flight["polite"] == 2
    assert burst(2) == [200, 200]
    assert len(server.violations) == 2


def test_enforce_limits_false_only_records(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3), strict=True, rate_limit=2)
    server.enforce_limits = False
    assert [client.get(f"{server.url}/works").status_code for _ in range(4)] == [200] * 4
    assert len(server.violations) == 2


def test_bare_429_and_retry_after(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3), strict=True, rate_limit=1)
    url = f"{server.url}/works"
    server.faults.bare_429 = True
    assert client.get(url).status_code == 200
    bare = client.get(url)
    assert bare.status_code == 429
    assert bare.content == HTML_429
    assert bare.headers["content-type"] == "text/html"
    assert bare.headers["connection"] == "close"
    assert not any(name.startswith("x-") for name in bare.headers)  # rest-api-doc#226
    assert server.faults.served["bare_429"] == 1
    server.faults.bare_429 = False
    server.faults.retry_after = 2.5
    assert client.get(url).headers["retry-after"] == "3"
    when = datetime(2026, 6, 16, 20, 53, 18, tzinfo=UTC)
    server.faults.retry_after = when
    dated = client.get(url)
    assert dated.headers["retry-after"] == "Tue, 16 Jun 2026 20:53:18 GMT"
    assert email.utils.parsedate_to_datetime(dated.headers["retry-after"]) == when
    # The fault version: a 429 although nobody exceeded anything.
    fresh = make_server(make_works(3))
    fresh.faults.too_many_requests_next(2)
    fresh.faults.retry_after = "7"
    first = client.get(f"{fresh.url}/works")
    assert (first.status_code, first.headers["retry-after"], first.headers["x-api-pool"]) == (
        429,
        "7",
        "polite",
    )
    fresh.faults.bare_429 = True
    second = client.get(f"{fresh.url}/works")
    assert second.status_code == 429
    assert "x-api-pool" not in second.headers
    assert fresh.faults.served == {"too_many_requests": 2, "bare_429": 1}
    assert fresh.violations == []


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_next_responses_on_request_and_retry_after_on_canned(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(3))
    url = f"{server.url}/works"
    server.faults.next_responses(2, status=503, headers={"Retry-After": "1"}, body=b"busy")
    for _ in range(2):
        response = client.get(url)
        assert (response.status_code, response.headers["retry-after"], response.content) == (
            503,
            "1",
            b"busy",
        )
        assert "x-api-pool" not in response.headers  # canned: exactly what was asked for
    assert client.get(url).status_code == 200
    server.faults.on_request(4, status=500)
    server.faults.retry_after = 9
    server.faults.next_responses(1, status=503)
    assert client.get(url).headers["retry-after"] == "9"  # request 3: added to a canned 503
    empty_500 = client.get(url)  # request 4
    assert (empty_500.status_code, empty_500.content, "retry-after" in empty_500.headers) == (500, b"", False)
    assert server.faults.served["canned"] == 4
    assert server.faults.pending == 0
    assert [e.status for e in server.requests] == [503, 503, 200, 503, 500]
    assert isinstance(server.requests[0], RequestLogEntry)


def test_exception_500(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    url = f"{server.url}/works"
    cursor = message(client.get(url, params={"rows": 10, "cursor": "*"}))["next-cursor"]
    server.faults.exception_500_next()
    failed = client.get(url, params={"rows": 10, "cursor": cursor})
    assert failed.status_code == 500
    assert failed.headers["content-type"] == "application/json;charset=utf-8"
    assert failed.headers["x-api-pool"] == "polite"
    body = failed.json()
    assert (body["status"], body["message-type"], body["message"]["name"]) == (
        "error",
        "exception",
        "class clojure.lang.ExceptionInfo",
    )
    assert dois_of(message(client.get(url, params={"rows": 10, "cursor": cursor})))[0] == doi(10)
    assert server.faults.served["exception_500"] == 1


def test_truncated_body_has_matching_content_length(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(20))
    url = f"{server.url}/works"
    identity = {"Accept-Encoding": "identity"}
    full = client.get(url, headers=identity).content
    server.faults.truncate_next(fraction=0.5)
    cut = client.get(url, headers=identity)
    assert cut.status_code == 200
    assert cut.content == full[: len(full) // 2]
    assert cut.headers["content-length"] == str(len(cut.content))
    with pytest.raises(json.JSONDecodeError):
        cut.json()
    server.faults.truncate_next(fraction=0.5)
    cut_gzipped = client.get(url)  # cut, then gzipped: decodes cleanly to broken JSON
    assert cut_gzipped.headers["content-encoding"] == "gzip"
    assert cut_gzipped.content == cut.content
    assert client.get(url, headers=identity).content == full


def test_reset_raises_transport_error(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(20))
    url = f"{server.url}/works"
    server.faults.reset_next()
    with pytest.raises(httpx.TransportError):
        client.get(url)
    server.faults.reset_next(fraction=0.5)
    with pytest.raises(httpx.TransportError):
        client.get(url)
    assert client.get(url).status_code == 200
    assert server.faults.served["reset"] == 2


def test_html_error_page(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    server.faults.html_next()
    response = client.get(f"{server.url}/works")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content == HTML_ERROR_PAGE
    with pytest.raises(json.JSONDecodeError):
        response.json()
    server.faults.queue(Fault.html(status=502))
    assert client.get(f"{server.url}/works").status_code == 502


def test_slow_drip_times_out_and_completes(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server()
    url = f"{server.url}/types"
    normal = client.get(url).content
    server.faults.slow_drip_next(bytes_per_second=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get(url, timeout=httpx.Timeout(5, read=0.3))
    rate = 4000.0
    server.faults.slow_drip_next(bytes_per_second=rate)
    started = time.perf_counter()
    dripped = client.get(url)
    elapsed = time.perf_counter() - started
    assert dripped.content == normal
    wire = int(dripped.headers["content-length"])
    assert elapsed >= 0.8 * wire / rate
    assert server.faults.served["slow_drip"] == 2


def test_stop_interrupts_a_drip(make_server: ServerFactory) -> None:
    server = make_server()
    server.faults.slow_drip_next(bytes_per_second=1)
    outcome: list[BaseException | int] = []

    def fetch() -> None:
        try:
            outcome.append(httpx.get(f"{server.url}/types", timeout=30).status_code)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=fetch)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    server.stop()
    thread.join(10)
    assert time.perf_counter() - started < 3
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError)


def test_ignore_filters(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(5))
    server.faults.ignore_filters = True
    url = f"{server.url}/works"
    msg = message(client.get(url, params={"filter": "from-index-date:2030-01-01,type:dataset"}))
    assert msg["total-results"] == 5
    assert server.faults.served["ignore_filters"] == 1
    assert failures(client.get(url, params={"filter": "from-index-date:soon"}))[0]["type"] == "date-not-valid"


def test_duplicate_across_pages(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(2345))
    server.faults.duplicate_across_pages = True
    dois, pages = cursor_harvest(client, f"{server.url}/works", {"rows": 1000})
    assert [len(p["items"]) for p in pages] == [1000, 1001, 346]
    assert dois[1000] == dois[999] == doi(999)
    assert list(dict.fromkeys(dois)) == [doi(i) for i in range(2345)]  # upserts == unique works
    assert server.faults.served["duplicate_across_pages"] == 2
    offset_page = message(client.get(f"{server.url}/works", params={"rows": 10, "offset": 10}))
    assert dois_of(offset_page)[:2] == [doi(9), doi(10)]


def test_gzip_without_header(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    url = f"{server.url}/works"
    plain = client.get(url, headers={"Accept-Encoding": "identity"}).content
    server.faults.gzip_without_header = True
    response = client.get(url)
    assert "content-encoding" not in response.headers
    assert response.content[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.content) == plain
    assert server.faults.served["gzip_without_header"] == 1


def test_faults_reset_clears_everything(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    faults = server.faults
    faults.next_responses(3, status=503)
    faults.on_request(10, status=500)
    faults.bare_429 = faults.ignore_filters = faults.duplicate_across_pages = faults.gzip_without_header = (
        True
    )
    faults.retry_after = 5
    client.get(f"{server.url}/works")
    assert faults.served["canned"] == 1
    faults.reset()
    assert faults.pending == 0
    assert not faults.served
    assert faults.retry_after is None
    msg = message(client.get(f"{server.url}/works", params={"filter": "type:dataset"}))
    assert msg["total-results"] == 0
    assert not faults.served


def test_restart_keeps_url_and_state(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    url = server.url
    cursor = message(client.get(f"{url}/works", params={"rows": 10, "cursor": "*"}))["next-cursor"]
    server.stop()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/types", timeout=2)
    server.start()
    assert server.url == url
    with httpx.Client(timeout=10, headers={"User-Agent": POLITE_UA}) as fresh:
        page = message(fresh.get(f"{url}/works", params={"rows": 10, "cursor": cursor}))
    assert dois_of(page)[0] == doi(10)


# --------------------------------------------------------------------------------------------
# Throughput (printed, not asserted)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_throughput_100000_works(make_server: ServerFactory, client: httpx.Client) -> None:
    """100,000 works, harvested with rows=1000. The works are built with the garbage collector
    paused and frozen afterwards: otherwise Python's cyclic collector, scanning the millions of
    objects in the works, dominates both the build and the client's parsing."""
    started = time.perf_counter()
    gc.disable()
    try:
        works = make_works(100_000, step=timedelta(seconds=13))
        built = time.perf_counter() - started
        started = time.perf_counter()
        server = make_server(works)
        loaded = time.perf_counter() - started
        del works
        gc.freeze()
    finally:
        gc.enable()
    try:
        url = f"{server.url}/works"
        dois: list[str] = []
        requests = 0
        started = time.perf_counter()
        cursor = "*"
        while True:
            msg = message(client.get(url, params={"rows": 1000, "cursor": cursor}))
            requests += 1
            cursor = msg["next-cursor"]
            dois += dois_of(msg)
            if len(msg["items"]) < 1000:
                break
        elapsed = time.perf_counter() - started
    finally:
        gc.unfreeze()
    assert len(dois) == len(set(dois)) == 100_000
    assert requests == 101  # 100 full pages, then the empty one that ends it
    print(
        f"\nFakeCrossref: built 100,000 works in {built:.2f}s, loaded them in {loaded:.2f}s; "
        f"cursor-harvested them in {requests} requests in {elapsed:.2f}s = "
        f"{len(dois) / elapsed:,.0f} works/s (gzip, including httpx's JSON parsing)"
    )
