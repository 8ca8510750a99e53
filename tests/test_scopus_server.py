"""Tests of the fake Elsevier Scopus API (tests/scopus_server.py), with plain httpx.

They prove the server answers like api.elsevier.com's Scopus Search and Abstract Retrieval APIs
(cursor and offset paging, the 5,000 cap, the query language, views and entitlements, keys,
weekly quotas and throttling; shapes as in /work/shared/notes/crossref-scopus.md) and that each
fault of its FaultPlan does what it says, so harvester tests can rely on it.
"""

from __future__ import annotations

import email.utils
import gzip
import itertools
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.scopus_server import (
    EMPTY_RESULT_ENTRY,
    HTML_ERROR_PAGE,
    SEARCH_PATH,
    FakeScopus,
    Fault,
    KeyPlan,
    ScopusWork,
    abstract_response,
    scopus_affiliation,
    scopus_author,
    scopus_entry,
)

KEY = "test-key"
HEADERS = {"X-ELS-APIKey": KEY, "Accept": "application/json"}
ERASMUS = scopus_affiliation("60000001", "Erasmus University Rotterdam", "Rotterdam", "Netherlands")
LEIDEN = scopus_affiliation("60000002", "Leiden University", "Leiden", "Netherlands")
ERASMUS_MC = scopus_affiliation("60000003", "Erasmus MC", "Rotterdam", "Netherlands")
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")

ServerFactory = Callable[..., FakeScopus]


def eid(i: int) -> str:
    return f"2-s2.0-{85000000000 + i}"


def make_works(n: int, **kwargs: Any) -> list[ScopusWork]:
    """n works, EIDs in index order, one Erasmus author each, loaded on days of January 2024."""
    return [
        ScopusWork(
            eid(i),
            f"Work {i} on public governance",
            load_date=date(2024, 1, 1) + timedelta(days=i % 28),
            doi=f"10.5555/w{i:05d}",
            authors=[scopus_author(f"5719{i:07d}", f"Author{i}", "Ada Maria", "60000001")],
            affiliations=[ERASMUS],
            **kwargs,
        )
        for i in range(n)
    ]


class Clock:
    """A settable `now` for quota resets."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Build and start FakeScopus servers, stopped at teardown. Unless ``strict=True`` the rate
    limit is one no test reaches, so only the throttling tests see bare 429s."""
    servers: list[FakeScopus] = []

    def factory(works: Any = (), *, strict: bool = False, **kwargs: Any) -> FakeScopus:
        if not strict:
            kwargs.setdefault("max_rate", 100_000.0)
        server = FakeScopus(works, **kwargs)
        servers.append(server.start())
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.internal_errors == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, headers=HEADERS) as c:
        yield c


def search(client: httpx.Client, server: FakeScopus, **params: Any) -> httpx.Response:
    return client.get(f"{server.url}{SEARCH_PATH}", params=params)


def results(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json()["search-results"])


def entries(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The real entries of a page (not the "Result set was empty" marker)."""
    return [e for e in res.get("entry", []) if "error" not in e]


def eids(res: dict[str, Any]) -> list[str]:
    return [e["eid"] for e in entries(res)]


def links(res: dict[str, Any]) -> dict[str, str]:
    return {link["@ref"]: link["@href"] for link in res["link"]}


def service_error(response: httpx.Response, status: int) -> tuple[str, str]:
    assert response.status_code == status, response.text
    body = response.json()["service-error"]["status"]
    return body["statusCode"], body["statusText"]


def cursor_harvest(
    client: httpx.Client, server: FakeScopus, params: dict[str, Any], max_pages: int = 100
) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow ``cursor.@next`` (httpx URL-encodes it) until a page has no entries."""
    pages: list[dict[str, Any]] = []
    cursor = "*"
    for _ in range(max_pages):
        res = results(search(client, server, **params, cursor=cursor))
        pages.append(res)
        if not entries(res):
            return [e for page in pages for e in eids(page)], pages
        cursor = res["cursor"]["@next"]
    raise AssertionError(f"no empty page after {max_pages} pages")


# --------------------------------------------------------------------------------------------
# Works and entries
# --------------------------------------------------------------------------------------------


def full_work() -> ScopusWork:
    return ScopusWork(
        "2-s2.0-85061234567",
        "Public value and e-government",
        load_date=date(2024, 3, 1),
        orig_load_date=date(2019, 2, 11),
        doi="10.1108/IJPSM-08-2018-0173",
        authors=[
            scopus_author("57190000001", "de Vries", "Jan Willem", "60000001", "60000002"),
            scopus_author("57190000002", "Smith", None, "60000002"),
        ],
        affiliations=[ERASMUS, LEIDEN],
        publication_name="International Journal of Public Sector Management",
        issn="0951-3558",
        eissn="1758-6135",
        volume="32",
        issue="4",
        page_range="355-370",
        cover_date="2019-05-13",
        cited_by=41,
        authkeywords="E-government | Public value | Trust",
        description="We study public value.",
        pubmed_id="31000001",
        fund_sponsor="NWO",
        subject_areas=[
            ("3321", "SOCI", "Public Administration"),
            ("1408", "BUSI", "Strategy and Management"),
        ],
    )


def test_scopus_work_normalises_and_validates() -> None:
    work = full_work()
    assert work.scopus_id == "85061234567"
    assert work.issn == "09513558"
    assert work.eissn == "17586135"
    assert work.cited_by == "41"
    assert work.creator == "de Vries J.W."
    assert work.authors[1]["initials"] is None
    assert work.pubyear == 2019
    assert ScopusWork(eid(1), "t", load_date=date(2024, 1, 2)).orig_load_date == date(2024, 1, 2)
    with pytest.raises(ValueError, match="EID"):
        ScopusWork("85061234567", "t", load_date=date(2024, 1, 1))
    with pytest.raises(ValueError, match="first accession"):
        ScopusWork(eid(1), "t", load_date=date(2024, 1, 1), orig_load_date=date(2024, 2, 1))
    with pytest.raises(ValueError, match="ISSN"):
        ScopusWork(eid(1), "t", load_date=date(2024, 1, 1), issn="12-34")


def test_standard_and_complete_entries() -> None:
    work = full_work()
    standard = scopus_entry(work, "STANDARD")
    assert standard["dc:identifier"] == "SCOPUS_ID:85061234567"
    assert standard["eid"] == work.eid
    assert standard["dc:creator"] == "de Vries J.W."
    assert standard["prism:issn"] == "09513558"
    assert standard["prism:eIssn"] == "17586135"
    assert standard["citedby-count"] == "41"
    assert standard["prism:coverDate"] == "2019-05-13"
    assert standard["prism:coverDisplayDate"] == "13 May 2019"
    assert standard["prism:url"] == "https://api.elsevier.com/content/abstract/scopus_id/85061234567"
    assert [link["@ref"] for link in standard["link"]] == [
        "self",
        "author-affiliation",
        "scopus",
        "scopus-citedby",
    ]
    assert standard["affiliation"][0] == {
        "@_fa": "true",
        "affilname": "Erasmus University Rotterdam",
        "affiliation-city": "Rotterdam",
        "affiliation-country": "Netherlands",
    }
    assert standard["openaccess"] == "0"
    assert standard["openaccessFlag"] is False
    for complete_only in ("author", "author-count", "dc:description", "authkeywords", "fund-sponsor"):
        assert complete_only not in standard

    complete = scopus_entry(work, "complete")
    assert complete["dc:description"] == "We study public value."
    assert complete["authkeywords"] == "E-government | Public value | Trust"
    assert complete["author-count"] == {"@limit": "100", "@total": "2", "$": "2"}
    first = complete["author"][0]
    assert first["authid"] == "57190000001"
    assert first["authname"] == "de Vries J.W."
    assert first["given-name"] == "Jan Willem"
    assert first["@seq"] == "1"
    assert first["afid"] == [{"@_fa": "true", "$": "60000001"}, {"@_fa": "true", "$": "60000002"}]
    assert complete["affiliation"][1]["afid"] == "60000002"
    assert complete["fund-sponsor"] == "NWO"
    # Numbers are strings everywhere, as the XML-to-JSON conversion leaves them.
    assert all(isinstance(v, str) for v in complete["author-count"].values())

    no_pages = scopus_entry(ScopusWork(eid(2), "t", load_date=date(2024, 1, 1)))
    assert no_pages["prism:pageRange"] is None
    assert "dc:creator" not in no_pages
    with pytest.raises(ValueError, match="view"):
        scopus_entry(work, "FULL")


def test_complete_view_shows_at_most_100_authors() -> None:
    authors = [scopus_author(str(57000000000 + i), f"Name{i}", "A") for i in range(150)]
    entry = scopus_entry(
        ScopusWork(eid(3), "Big science", load_date=date(2024, 1, 1), authors=authors), "COMPLETE"
    )
    assert len(entry["author"]) == 100
    assert entry["author-count"]["$"] == "150"


def test_singletons_as_objects_in_the_functions() -> None:
    work = ScopusWork(
        eid(4),
        "One author",
        load_date=date(2024, 1, 1),
        authors=[scopus_author("57000000001", "Solo", "Han", "60000001")],
        affiliations=[ERASMUS],
        subject_areas=[("3321", "SOCI", "Public Administration")],
        authkeywords="Only one",
    )
    entry = scopus_entry(work, "COMPLETE", singletons_as_objects=True)
    assert isinstance(entry["author"], dict)
    assert entry["author"]["afid"] == {"@_fa": "true", "$": "60000001"}
    assert isinstance(entry["affiliation"], dict)
    assert isinstance(entry["link"], list)  # four links: stays a list
    full = abstract_response(work, "FULL", singletons_as_objects=True)["abstracts-retrieval-response"]
    assert full["subject-areas"]["subject-area"] == {
        "@_fa": "true",
        "$": "Public Administration",
        "@code": "3321",
        "@abbrev": "SOCI",
    }
    assert full["authkeywords"]["author-keyword"] == {"@_fa": "true", "$": "Only one"}
    assert isinstance(full["authors"]["author"], dict)


# --------------------------------------------------------------------------------------------
# Cursor paging
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("view", "count", "pages"), [("STANDARD", 200, 3), ("COMPLETE", 25, 18)])
def test_cursor_chain_over_437_works(
    make_server: ServerFactory, client: httpx.Client, view: str, count: int, pages: int
) -> None:
    server = make_server(make_works(437))
    harvested, chain = cursor_harvest(
        client, server, {"query": "ALL(governance)", "view": view, "count": count}
    )
    assert harvested == [eid(i) for i in range(437)]  # every EID once, in order
    assert len(chain) == pages + 1  # the page after the last one is empty
    for res in chain:
        assert res["opensearch:totalResults"] == "437"
    assert [int(res["opensearch:itemsPerPage"]) for res in chain] == [*[count] * (pages - 1), 437 % count, 0]
    assert chain[0]["cursor"]["@current"] == "*"
    for previous, res in itertools.pairwise(chain):
        assert res["cursor"]["@current"] == previous["cursor"]["@next"]
    for res in chain[:-1]:
        token = res["cursor"]["@next"]
        assert "+" in token and "/" in token and token.endswith("=")
    # The page after the last: the real API's "Result set was empty" entry, no next link.
    assert chain[-1]["entry"] == [EMPTY_RESULT_ENTRY]
    assert "next" in links(chain[0])
    assert "next" not in links(chain[-2])
    if view == "COMPLETE":
        assert chain[0]["entry"][0]["author"][0]["afid"] == [{"@_fa": "true", "$": "60000001"}]
    else:
        assert "author" not in chain[0]["entry"][0]
    # The server received each cursor intact (httpx encoded it).
    sent = [r.params["cursor"][0] for r in server.requests]
    assert sent == ["*", *(res["cursor"]["@next"] for res in chain[:-1])]


def test_next_link_is_already_encoded_and_works(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    first = results(search(client, server, query="ALL(governance)", cursor="*", count=25))
    following = results(client.get(links(first)["next"]))
    assert eids(following) == [eid(i) for i in range(25, 30)]
    assert following["cursor"]["@current"] == first["cursor"]["@next"]


def test_cursor_must_be_url_encoded(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    token = results(search(client, server, query="ALL(governance)", cursor="*", count=25))["cursor"]["@next"]
    raw = f"{server.url}{SEARCH_PATH}?query=ALL%28governance%29&count=25&cursor={token}"
    code, text = service_error(client.get(raw), 400)  # '+' arrived as ' '
    assert (code, text) == ("INVALID_INPUT", "Invalid cursor value")
    assert server.requests[-1].params["cursor"][0] == token.replace("+", " ")


def test_cursor_pages_are_idempotent_and_live(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(50))
    first = results(search(client, server, query="ALL(governance)", cursor="*", count=20))
    token = first["cursor"]["@next"]
    again = results(search(client, server, query="ALL(governance)", cursor=token, count=20))
    assert eids(again) == eids(
        results(search(client, server, query="ALL(governance)", cursor=token, count=20))
    )
    assert eids(again) == [eid(i) for i in range(20, 40)]
    # search_after semantics: a new work sorting before the position is not seen, one after is.
    early, late_eid = eid(1) + "0", eid(19) + "5"  # EIDs order as strings: 1 < 10 < 2, 19 < 195 < 20
    server.put(ScopusWork(early, "Work early governance", load_date=date(2024, 1, 1)))
    server.put(ScopusWork(late_eid, "Work late governance", load_date=date(2024, 1, 1)))
    late = results(search(client, server, query="ALL(governance)", cursor=token, count=20))
    assert eids(late)[0] == late_eid
    assert early not in eids(late)
    assert late["opensearch:totalResults"] == "52"
    server.expire_cursors()
    assert service_error(search(client, server, query="ALL(governance)", cursor=token, count=20), 400)[0] == (
        "INVALID_INPUT"
    )


def test_cursor_is_not_capped_at_5000(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(5100))
    harvested, chain = cursor_harvest(client, server, {"query": "ALL(governance)", "count": 200})
    assert len(harvested) == len(set(harvested)) == 5100
    assert len(chain) == 27


# --------------------------------------------------------------------------------------------
# Offset paging
# --------------------------------------------------------------------------------------------


def test_offset_paging_shape_and_links(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(437))
    pages = [
        results(search(client, server, query="ALL(governance)", start=s, count=200)) for s in (0, 200, 400)
    ]
    assert [e for page in pages for e in eids(page)] == [eid(i) for i in range(437)]
    first, middle, last = pages
    assert first["opensearch:totalResults"] == "437"
    assert first["opensearch:startIndex"] == "0"
    assert first["opensearch:itemsPerPage"] == "200"
    assert first["opensearch:Query"] == {
        "@role": "request",
        "@searchTerms": "ALL(governance)",
        "@startPage": "0",
    }
    assert "cursor" not in first
    assert [link["@ref"] for link in first["link"]] == ["self", "first", "next", "last"]
    assert all(link["@_fa"] == "true" and link["@type"] == "application/json" for link in first["link"])
    assert links(first)["next"].endswith("?start=200&count=200&query=ALL%28governance%29")
    assert links(first)["last"].endswith("?start=237&count=200&query=ALL%28governance%29")
    assert [link["@ref"] for link in middle["link"]] == ["self", "first", "prev", "next", "last"]
    assert middle["opensearch:startIndex"] == "200"
    assert "next" not in links(last)
    assert last["opensearch:itemsPerPage"] == "37"
    beyond = results(search(client, server, query="ALL(governance)", start=437, count=200))
    assert beyond["entry"] == [EMPTY_RESULT_ENTRY]
    assert beyond["opensearch:totalResults"] == "437"
    assert beyond["opensearch:itemsPerPage"] == "0"
    # Default count is 25.
    assert results(search(client, server, query="ALL(governance)"))["opensearch:itemsPerPage"] == "25"


def test_offset_paging_stops_at_5000(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(5100))
    one = results(search(client, server, query="ALL(governance)", count=1))
    assert one["opensearch:totalResults"] == "5100"
    assert "start=4999&count=1&" in links(one)["last"]
    assert "start=4975&count=25&" in links(results(search(client, server, query="ALL(governance)")))["last"]
    deepest = results(search(client, server, query="ALL(governance)", start=4999, count=1))
    assert eids(deepest) == [eid(4999)]
    assert "next" not in links(deepest)
    at_cap = results(search(client, server, query="ALL(governance)", start=4975, count=25))
    assert "next" not in links(at_cap)
    for start, count in ((5000, 1), (4990, 25), (4900, 200)):
        code, text = service_error(
            search(client, server, query="ALL(governance)", start=start, count=count), 400
        )
        assert (code, text) == ("INVALID_INPUT", "Exceeds the number of search results")


def test_count_maximum_per_view(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    assert (
        results(search(client, server, query="ALL(governance)", count=200))["opensearch:itemsPerPage"] == "3"
    )
    assert results(search(client, server, query="ALL(governance)", count=25, view="COMPLETE"))
    for view, count in (("STANDARD", 201), ("COMPLETE", 26)):
        code, text = service_error(
            search(client, server, query="ALL(governance)", count=count, view=view), 400
        )
        assert (code, text) == ("INVALID_INPUT", "Exceeds the maximum number allowed for the service level")
    assert (
        service_error(search(client, server, query="ALL(governance)", count="many"), 400)[0]
        == "INVALID_INPUT"
    )
    assert (
        service_error(search(client, server, query="ALL(governance)", view="FULL"), 400)[0] == "INVALID_INPUT"
    )
    code, _ = service_error(search(client, server, query="ALL(governance)", cursor="*", start=0), 400)
    assert code == "INVALID_INPUT"


def test_zero_results_give_the_empty_result_entry(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    res = results(search(client, server, query="TITLE(nonexistent)"))
    assert res["opensearch:totalResults"] == "0"
    assert res["opensearch:itemsPerPage"] == "0"
    assert res["entry"] == [{"@_fa": "true", "error": "Result set was empty"}]
    assert [link["@ref"] for link in res["link"]] == ["self", "first"]
    server.empty_result = "no_entry_key"
    assert "entry" not in results(search(client, server, query="TITLE(nonexistent)"))
    server.empty_result = "empty_list"
    assert results(search(client, server, query="TITLE(nonexistent)"))["entry"] == []


# --------------------------------------------------------------------------------------------
# The query language
# --------------------------------------------------------------------------------------------


def window_works() -> list[ScopusWork]:
    def work(i: int, load: date, orig: date, *affs: dict[str, Any]) -> ScopusWork:
        return ScopusWork(
            eid(i), f"Window work {i}", load_date=load, orig_load_date=orig, affiliations=list(affs)
        )

    return [
        work(0, date(2023, 12, 31), date(2023, 12, 31), ERASMUS),
        work(1, date(2024, 1, 1), date(2024, 1, 1), ERASMUS),
        work(2, date(2024, 1, 2), date(2024, 1, 2), ERASMUS),
        work(3, date(2024, 3, 15), date(2022, 5, 5), ERASMUS),  # reloaded, first accession 2022
        work(4, date(2024, 2, 1), date(2024, 2, 1), LEIDEN),
        work(5, date(2024, 2, 10), date(2024, 2, 10), ERASMUS_MC),
        work(6, date(2024, 2, 20), date(2024, 2, 20), LEIDEN, ERASMUS),
    ]


def test_load_date_windows_anded_with_affilorg(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(window_works())

    def found(query: str) -> list[int]:
        res = results(search(client, server, query=query, count=200))
        return [int(e[-2:]) for e in eids(res)]

    erasmus = 'AFFILORG("Erasmus University Rotterdam")'
    assert found(f"{erasmus} AND LOAD-DATE AFT 20240101") == [2, 3, 6]
    assert found(f"{erasmus} AND ORIG-LOAD-DATE AFT 20240101") == [2, 6]
    assert found(f"{erasmus} AND LOAD-DATE AFT 20240101 AND LOAD-DATE BEF 20240301") == [2, 6]
    assert found(f"{erasmus} AND LOAD-DATE > 20240101") == [2, 3, 6]
    assert found('affilorg("erasmus university rotterdam") and load-date aft 20240101') == [2, 3, 6]
    assert found("LOAD-DATE IS 20240101") == [1]
    assert found("LOAD-DATE = 20240101") == [1]
    assert found("ORIG-LOAD-DATE BEF 20230101") == [3]
    assert found("ORIG-LOAD-DATE < 20240101 AND LOAD-DATE AFT 20240101") == [3]
    assert found("AFFILORG(Erasmus)") == [0, 1, 2, 3, 5, 6]  # word: substring
    assert found("AF-ID(60000001) AND LOAD-DATE AFT 20240101") == [2, 3, 6]
    # A reload moves LOAD-DATE, not ORIG-LOAD-DATE.
    server.put(
        ScopusWork(
            eid(1),
            "Window work 1",
            load_date=date(2024, 4, 1),
            orig_load_date=date(2024, 1, 1),
            affiliations=[ERASMUS],
        )
    )
    assert found(f"{erasmus} AND LOAD-DATE AFT 20240101") == [1, 2, 3, 6]
    assert found(f"{erasmus} AND ORIG-LOAD-DATE AFT 20240101") == [2, 6]


def query_works() -> list[ScopusWork]:
    return [
        ScopusWork(
            eid(0),
            "Alpha beta: trust in e-government",
            load_date=date(2024, 1, 1),
            cover_date="2018-06-01",
            doi="10.1108/IJPSM-08-2018-0173",
            description="Public value creation.",
            authkeywords="Trust | E-government",
            authors=[scopus_author("57000000001", "Moore", "Mark", "60000001")],
            affiliations=[ERASMUS],
            issn="0951-3558",
            subject_areas=[("3321", "SOCI", "Public Administration")],
        ),
        ScopusWork(
            eid(1),
            "Alpha gamma",
            load_date=date(2024, 1, 1),
            cover_date="2019-03-01",
            doi="10.1016/S0014-5793(01)03313-0",
            subtype="re",
            subtype_description="Review",
            openaccess=1,
            affiliations=[LEIDEN],
        ),
        ScopusWork(eid(2), "Delta", load_date=date(2024, 1, 1), cover_date="2020-01-01", description="alpha"),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("PUBYEAR > 2018", [1, 2]),
        ("PUBYEAR AFT 2018", [1, 2]),
        ("PUBYEAR = 2019", [1]),
        ("PUBYEAR IS 2019", [1]),
        ("PUBYEAR < 2019", [0]),
        ("pubyear bef 2020", [0, 1]),
        ("DOI(10.1108/ijpsm-08-2018-0173)", [0]),
        ("DOI(10.1016/S0014-5793(01)03313-0)", [1]),
        ("DOI(10.1108/IJPSM-08-2018-0173 OR 10.1016/S0014-5793(01)03313-0)", [0, 1]),
        ("AF-ID(60000002)", [1]),
        ("AU-ID(57000000001)", [0]),
        ("AFFIL(leiden)", [1]),
        ("AFFIL(Rotterdam)", [0]),
        ("AFFILCOUNTRY(Netherlands)", [0, 1]),
        ("TITLE-ABS-KEY(alpha)", [0, 1, 2]),
        ("TITLE(alpha)", [0, 1]),
        ("TITLE-ABS-KEY(govern)", [0]),  # substring of e-government
        ('TITLE-ABS-KEY("e government")', [0]),  # loose phrase ignores punctuation
        ("TITLE-ABS-KEY({e government})", []),  # exact phrase does not
        ("TITLE-ABS-KEY({e-government})", [0]),
        ("TITLE(gam*)", [1]),
        ("TITLE(d?lta)", [2]),
        ("TITLE(alpha beta)", [0]),  # juxtaposed terms are ANDed
        ("TITLE(beta OR gamma)", [0, 1]),
        ("KEY(trust)", [0]),
        ("AUTH(moore)", [0]),
        ("SRCTITLE(examples)", [0, 1, 2]),
        ("ISSN(09513558)", [0]),
        ("DOCTYPE(re)", [1]),
        ("SUBJAREA(soci)", [0]),
        ("OPENACCESS(1)", [1]),
        ("OPENACCESS(0)", [0, 2]),
        ("gamma", [1]),  # a bare term searches ALL
        # Scopus precedence: OR binds tighter than AND, which binds tighter than AND NOT.
        ("TITLE(delta) AND TITLE(beta) OR TITLE(gamma)", []),
        ("(TITLE(delta) AND TITLE(beta)) OR TITLE(gamma)", [1]),
        ("TITLE-ABS-KEY(alpha) AND NOT TITLE(beta)", [1, 2]),
        ("TITLE-ABS-KEY(alpha) AND NOT TITLE(beta) OR PUBYEAR = 2020", [1]),
        ("(PUBYEAR > 2018 AND AFFIL(leiden)) OR DOI(10.1108/IJPSM-08-2018-0173)", [0, 1]),
    ],
)
def test_query_language(
    make_server: ServerFactory, client: httpx.Client, query: str, expected: list[int]
) -> None:
    server = make_server(query_works())
    res = results(search(client, server, query=query))
    assert eids(res) == [eid(i) for i in expected]


@pytest.mark.parametrize(
    ("query", "text"),
    [
        ("", "Error translating query"),
        ("TITLE(x", "Error translating query"),
        ("TITLE(x))", "Error translating query"),
        ("TITLE(x) AND", "Error translating query"),
        ("AND TITLE(x)", "Error translating query"),
        ("TITLE(x) OR OR TITLE(y)", "Error translating query"),
        ("NOT TITLE(x)", "Error translating query"),
        ("FOO(bar)", "Error translating query"),
        ("TITLE()", "Error translating query"),
        ('TITLE("unterminated)', "Error translating query"),
        ("DOI()", "Error translating query"),
        ("AF-ID(60000001 OR)", "Error translating query"),
        ("OPENACCESS(yes)", "Error translating query"),
        ("PUBYEAR > 19", "Error translating query"),
        ("PUBYEAR >= 2019", "Error translating query"),
        ("PUBYEAR", "Error translating query"),
        ("LOAD-DATE AFT 2024-01-01", "Error translating query"),
        ("LOAD-DATE AFT 20241301", "Error translating query"),
        ("LOAD-DATE AFTER 20240101", "Error translating query"),
        (
            "INDEXTERMS(brain)",
            "Use of certain field restrictions in the search query is not allowed for this requestor.",
        ),
    ],
)
def test_unparseable_queries_are_400(
    make_server: ServerFactory, client: httpx.Client, query: str, text: str
) -> None:
    server = make_server(query_works())
    assert service_error(search(client, server, query=query), 400) == ("INVALID_INPUT", text)


def test_real_but_unimplemented_syntax_is_refused_not_ignored(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(query_works())
    for query, word in (
        ("LIMIT-TO(PUBYEAR, 2020)", "LIMIT-TO"),
        ("LANGUAGE(english)", "LANGUAGE"),
        ("heart W/3 attack", "W/3"),
    ):
        code, text = service_error(search(client, server, query=query), 400)
        assert code == "INVALID_INPUT"
        assert "FakeScopus does not implement" in text
        assert word in text


def test_sort_date_and_subj_parameters(make_server: ServerFactory, client: httpx.Client) -> None:
    extra = ScopusWork(eid(7), "Alpha gamma", load_date=date(2024, 1, 1), cover_date="2019-03-01")
    works = [*window_works(), extra]
    server = make_server(works)

    def order(**params: Any) -> list[str]:
        return eids(results(search(client, server, query="ALL(work) OR ALL(gamma)", count=200, **params)))

    by_orig = sorted(works, key=lambda w: (w.orig_load_date, w.eid))
    assert order(sort="orig-load-date") == [w.eid for w in by_orig]
    assert order(sort="orig-load-date")[:2] == [eid(3), eid(0)]
    assert order(sort="+orig-load-date") == order(sort="orig-load-date")
    assert order(sort="-orig-load-date") == [
        w.eid for w in sorted(works, key=lambda w: (-(w.orig_load_date or w.load_date).toordinal(), w.eid))
    ]
    assert order(sort="-coverDate,creator")[0] == eid(3)  # reloaded 2024-03-15, the latest cover date
    assert order(date="2019") == [eid(7)]
    assert order(date="2023-2024") == [w.eid for w in window_works()]
    assert service_error(search(client, server, query="ALL(work)", sort="bogus"), 400)[0] == "INVALID_INPUT"
    _, text = service_error(search(client, server, query="ALL(work)", sort="pagecount"), 400)
    assert "does not implement" in text
    server.put(
        ScopusWork(eid(9), "Work nine", load_date=date(2024, 1, 1), subject_areas=[("3321", "SOCI", "PA")])
    )
    assert order(subj="SOCI") == [eid(9)]


def test_sorted_cursor_chain(make_server: ServerFactory, client: httpx.Client) -> None:
    works = make_works(120)
    for i, work in enumerate(works):
        work.cited_by = str((i * 37) % 50)
    server = make_server(works)
    harvested, _ = cursor_harvest(
        client, server, {"query": "ALL(governance)", "count": 25, "sort": "-citedby-count"}
    )
    expected = sorted(works, key=lambda w: (-int(w.cited_by), w.eid))
    assert harvested == [w.eid for w in expected]
    token = results(search(client, server, query="ALL(governance)", cursor="*", count=25))["cursor"]["@next"]
    # A cursor belongs to its sort order.
    code, _ = service_error(
        search(client, server, query="ALL(governance)", cursor=token, count=25, sort="pubyear"), 400
    )
    assert code == "INVALID_INPUT"


def test_field_projection(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server([full_work()])
    res = results(search(client, server, query="ALL(value)", field="dc:identifier,prism:doi"))
    assert res["entry"] == [
        {"@_fa": "true", "dc:identifier": "SCOPUS_ID:85061234567", "prism:doi": "10.1108/IJPSM-08-2018-0173"}
    ]
    res = results(search(client, server, query="ALL(value)", field="eid,afid,affilname"))
    assert res["entry"][0]["affiliation"][0] == {
        "@_fa": "true",
        "afid": "60000001",
        "affilname": "Erasmus University Rotterdam",
    }


# --------------------------------------------------------------------------------------------
# Keys, entitlements, quotas, throttling
# --------------------------------------------------------------------------------------------


def test_missing_and_unknown_keys_are_401(make_server: ServerFactory) -> None:
    server = make_server(make_works(2))
    url = f"{server.url}{SEARCH_PATH}"
    for headers in ({}, {"X-ELS-APIKey": "wrong"}):
        response = httpx.get(url, params={"query": "ALL(work)"}, headers=headers)
        assert service_error(response, 401) == ("AUTHENTICATION_ERROR", "Invalid API Key")
        assert not any(name in response.headers for name in RATE_HEADERS)
    response = httpx.get(url, params={"query": "ALL(work)"}, headers={**HEADERS, "X-ELS-Insttoken": "nope"})
    assert service_error(response, 401) == ("AUTHENTICATION_ERROR", "Invalid InstToken")
    assert server.quota(KEY).remaining == 20_000


def test_successful_responses_carry_elsevier_headers(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(2))
    response = search(client, server, query="ALL(work)")
    assert response.headers["content-type"] == "application/json;charset=UTF-8"
    assert response.headers["x-els-status"] == "OK"
    assert response.headers["x-els-apikey"] == KEY  # echoed, as api.elsevier.com does
    assert len(response.headers["x-els-reqid"]) == 16
    assert len(response.headers["x-els-transid"]) == 16
    assert response.headers["x-ratelimit-limit"] == "20000"
    assert response.headers["x-ratelimit-remaining"] == "19999"
    entry = server.requests[-1]
    assert entry.method == "GET"
    assert entry.path == SEARCH_PATH
    assert entry.params == {"query": ["ALL(work)"]}
    assert entry.headers["x-els-apikey"] == KEY
    assert entry.status == 200


def test_cursor_not_entitled_is_403(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(
        make_works(5),
        cursor_entitled=False,
        api_keys={KEY: KeyPlan(), "subscriber": KeyPlan(cursor_entitled=True)},
        inst_tokens=["campus-token"],
    )
    response = search(client, server, query="ALL(work)", cursor="*")
    assert service_error(response, 403) == (
        "AUTHORIZATION_ERROR",
        "Use of the cursor parameter is restricted",
    )
    assert results(search(client, server, query="ALL(work)", start=0))  # offset paging still works
    with_token = client.get(
        f"{server.url}{SEARCH_PATH}",
        params={"query": "ALL(work)", "cursor": "*"},
        headers={"X-ELS-Insttoken": "campus-token"},
    )
    assert len(eids(results(with_token))) == 5
    other_key = client.get(
        f"{server.url}{SEARCH_PATH}",
        params={"query": "ALL(work)", "cursor": "*"},
        headers={"X-ELS-APIKey": "subscriber"},
    )
    assert len(eids(results(other_key))) == 5


def test_complete_view_not_entitled_is_403(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(5), complete_entitled=False)
    text = "The requestor is not authorized to access the requested view or fields of the resource"
    assert service_error(search(client, server, query="ALL(work)", view="COMPLETE"), 403) == (
        "AUTHORIZATION_ERROR",
        text,
    )
    assert service_error(search(client, server, query="ALL(work)", field="eid,author"), 403)[1] == text
    assert results(search(client, server, query="ALL(work)", field="eid,dc:title"))
    assert results(search(client, server, query="ALL(work)", view="STANDARD"))
    server.complete_entitled = True
    assert "author" in results(search(client, server, query="ALL(work)", view="COMPLETE"))["entry"][0]


RESET = datetime(2024, 6, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("epoch", str(int(RESET.timestamp()))),
        ("epoch_ms", str(int(RESET.timestamp()) * 1000)),
        ("date", "Wed, 05 Jun 2024 00:00:00 GMT"),
    ],
)
def test_quota_headers_in_each_reset_style(
    make_server: ServerFactory, client: httpx.Client, style: str, expected: str
) -> None:
    clock = Clock(datetime(2024, 6, 1, 12, tzinfo=UTC))
    plan = KeyPlan(limit=20_000, remaining=500, reset_at=RESET)
    server = make_server(make_works(3), api_keys={KEY: plan}, reset_style=style, now=clock)
    remaining = []
    for _ in range(3):
        response = search(client, server, query="ALL(work)")
        assert response.headers["x-ratelimit-limit"] == "20000"
        assert response.headers["x-ratelimit-reset"] == expected
        remaining.append(int(response.headers["x-ratelimit-remaining"]))
    assert remaining == [499, 498, 497]
    if style == "date":
        assert email.utils.parsedate_to_datetime(expected) == RESET
    assert server.quota(KEY).remaining == 497


def test_quota_exceeded_after_the_limit_and_weekly_reset(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    clock = Clock(datetime(2024, 6, 1, 12, tzinfo=UTC))
    server = make_server(
        make_works(3),
        api_keys={KEY: KeyPlan(limit=3, reset_at=RESET, abstract_limit=2)},
        now=clock,
    )
    assert [search(client, server, query="ALL(work)").headers["x-ratelimit-remaining"] for _ in range(3)] == [
        "2",
        "1",
        "0",
    ]
    refused = search(client, server, query="ALL(work)")
    assert service_error(refused, 429) == ("QUOTA_EXCEEDED", "Quota Exceeded")
    assert refused.headers["x-els-status"] == "QUOTA_EXCEEDED - Quota Exceeded"
    assert refused.headers["x-ratelimit-reset"] == str(int(RESET.timestamp()))
    assert "x-ratelimit-limit" not in refused.headers
    assert "x-ratelimit-remaining" not in refused.headers
    assert server.violations == []
    # Abstract Retrieval has its own quota.
    abstract = client.get(f"{server.url}/content/abstract/scopus_id/85000000000")
    assert abstract.status_code == 200
    assert (abstract.headers["x-ratelimit-limit"], abstract.headers["x-ratelimit-remaining"]) == ("2", "1")
    # A week later the quota is back, with the next reset a week on.
    clock.now = RESET + timedelta(seconds=1)
    again = search(client, server, query="ALL(work)")
    assert again.status_code == 200
    assert again.headers["x-ratelimit-remaining"] == "2"
    assert again.headers["x-ratelimit-reset"] == str(int((RESET + timedelta(days=7)).timestamp()))
    server.set_quota(KEY, remaining=0)
    assert search(client, server, query="ALL(work)").status_code == 429


def test_throttling_beyond_9_per_second_is_a_bare_429(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(2), strict=True)
    statuses = []
    responses = []
    for _ in range(15):
        response = search(client, server, query="ALL(work)")
        statuses.append(response.status_code)
        responses.append(response)
    assert statuses[:9] == [200] * 9
    assert statuses.count(429) >= 4
    for response in responses:
        if response.status_code == 429:
            assert response.content == b""
            assert not any(name.startswith(("x-els-", "x-ratelimit-")) for name in response.headers)
    assert len(server.violations) == statuses.count(429)
    assert "exceeded 9 requests per second to the search API" in server.violations[0]
    # Throttled requests use no quota; Abstract Retrieval has its own bucket.
    assert server.quota(KEY).remaining == 20_000 - statuses.count(200)
    assert client.get(f"{server.url}/content/abstract/scopus_id/85000000000").status_code == 200
    time.sleep(0.3)
    assert search(client, server, query="ALL(work)").status_code == 200


def test_a_client_that_paces_itself_is_never_throttled(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(2), strict=True)
    start = time.monotonic()
    for i in range(12):
        time.sleep(max(0.0, start + i / 9 - time.monotonic()))
        assert search(client, server, query="ALL(work)").status_code == 200
    assert server.violations == []


def test_enforce_rate_false_only_records(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(2), strict=True)
    server.enforce_rate = False
    assert all(search(client, server, query="ALL(work)").status_code == 200 for _ in range(12))
    assert len(server.violations) >= 2


def test_key_in_url_is_recorded(make_server: ServerFactory) -> None:
    server = make_server(make_works(30), inst_tokens=["tok"])
    with httpx.Client(timeout=10) as bare:
        response = bare.get(f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)", "apiKey": KEY})
        res = results(response)
        assert server.key_in_url == [f"{SEARCH_PATH}?query=ALL%28work%29&apiKey={KEY}"]
        assert f"apiKey={KEY}" in links(res)["next"]  # the API echoes it into its links
        bare.get(
            f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)", "insttoken": "tok"}, headers=HEADERS
        )
        bare.get(f"{server.url}/content/abstract/scopus_id/85000000001", params={"apikey": KEY})
    assert len(server.key_in_url) == 3
    with httpx.Client(timeout=10, headers=HEADERS) as proper:
        results(proper.get(f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)"}))
    assert len(server.key_in_url) == 3


# --------------------------------------------------------------------------------------------
# Abstract Retrieval
# --------------------------------------------------------------------------------------------


def test_abstract_retrieval_views_and_subject_areas(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server([full_work()])
    full = client.get(f"{server.url}/content/abstract/scopus_id/85061234567", params={"view": "FULL"})
    assert full.status_code == 200
    assert full.headers["x-ratelimit-limit"] == "10000"
    body = full.json()["abstracts-retrieval-response"]
    assert body["subject-areas"]["subject-area"] == [
        {"@_fa": "true", "$": "Public Administration", "@abbrev": "SOCI", "@code": "3321"},
        {"@_fa": "true", "$": "Strategy and Management", "@abbrev": "BUSI", "@code": "1408"},
    ]
    core = body["coredata"]
    assert core["dc:identifier"] == "SCOPUS_ID:85061234567"
    assert core["prism:doi"] == "10.1108/IJPSM-08-2018-0173"
    assert core["prism:issn"] == "09513558 17586135"
    assert core["citedby-count"] == "41"
    assert core["dc:description"] == "We study public value."
    assert core["link"][0] == {
        "@_fa": "true",
        "@rel": "self",
        "@href": f"{server.url}/content/abstract/scopus_id/85061234567",
    }
    assert [a["@auid"] for a in body["authors"]["author"]] == ["57190000001", "57190000002"]
    assert [k["$"] for k in body["authkeywords"]["author-keyword"]] == [
        "E-government",
        "Public value",
        "Trust",
    ]
    assert body["language"] == {"@xml:lang": "eng"}

    default = client.get(f"{server.url}/content/abstract/scopus_id/85061234567").json()[
        "abstracts-retrieval-response"
    ]
    assert "subject-areas" not in default
    assert default["coredata"]["dc:description"] == "We study public value."
    meta = client.get(f"{server.url}/content/abstract/eid/2-s2.0-85061234567", params={"view": "META"}).json()
    assert "dc:description" not in meta["abstracts-retrieval-response"]["coredata"]
    by_doi = client.get(f"{server.url}/content/abstract/doi/10.1108/IJPSM-08-2018-0173")
    assert by_doi.json()["abstracts-retrieval-response"]["coredata"]["eid"] == "2-s2.0-85061234567"
    by_pmid = client.get(f"{server.url}/content/abstract/pubmed_id/31000001")
    assert by_pmid.status_code == 200

    missing = client.get(f"{server.url}/content/abstract/scopus_id/1", params={"view": "FULL"})
    assert service_error(missing, 404) == ("RESOURCE_NOT_FOUND", "The resource specified cannot be found.")
    assert service_error(
        client.get(f"{server.url}/content/abstract/scopus_id/85061234567", params={"view": "BOGUS"}), 400
    )
    _, text = service_error(
        client.get(f"{server.url}/content/abstract/scopus_id/85061234567", params={"view": "REF"}), 400
    )
    assert "does not implement" in text
    assert service_error(client.get(f"{server.url}/content/nothing"), 404)[0] == "RESOURCE_NOT_FOUND"
    assert server.quota(KEY, "abstract").remaining == 10_000 - 8
    assert server.quota(KEY, "search").remaining == 20_000


def test_singletons_as_objects_over_http(make_server: ServerFactory, client: httpx.Client) -> None:
    single = ScopusWork(
        eid(1),
        "Single author work",
        load_date=date(2024, 1, 1),
        authors=[scopus_author("57000000001", "Solo", "Han", "60000001")],
        affiliations=[ERASMUS],
        subject_areas=[("3321", "SOCI", "Public Administration")],
    )
    pair = ScopusWork(
        eid(2),
        "Two author work",
        load_date=date(2024, 1, 1),
        authors=[
            scopus_author("57000000002", "One", "A", "60000001"),
            scopus_author("57000000003", "Two", "B", "60000001"),
        ],
        affiliations=[ERASMUS, LEIDEN],
    )
    server = make_server([single, pair], singletons_as_objects=True)
    first, second = results(search(client, server, query="ALL(work)", view="COMPLETE"))["entry"]
    assert isinstance(first["author"], dict)
    assert first["author"]["afid"] == {"@_fa": "true", "$": "60000001"}
    assert isinstance(first["affiliation"], dict)
    assert isinstance(second["author"], list)
    assert isinstance(second["author"][0]["afid"], dict)
    assert isinstance(second["affiliation"], list)
    body = client.get(f"{server.url}/content/abstract/scopus_id/85000000001", params={"view": "FULL"}).json()
    assert isinstance(body["abstracts-retrieval-response"]["subject-areas"]["subject-area"], dict)
    server.singletons_as_objects = False
    assert isinstance(
        results(search(client, server, query="TITLE(single)", view="COMPLETE"))["entry"][0]["author"], list
    )


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_canned_responses_on_request_and_retry_after(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(2))
    server.faults.retry_after = 7
    server.faults.next_responses(1, status=503)
    server.faults.on_request(2, status=500, body=b"boom")
    assert search(client, server, query="ALL(work)").headers["retry-after"] == "7"
    assert search(client, server, query="ALL(work)").status_code == 200
    third = search(client, server, query="ALL(work)")
    assert (third.status_code, third.text, third.headers["content-type"]) == (
        500,
        "boom",
        "text/plain; charset=utf-8",
    )
    assert server.faults.served["canned"] == 2
    assert server.quota(KEY).remaining == 20_000 - 1  # canned answers use no quota
    assert [r.status for r in server.requests] == [503, 200, 500]


def test_server_errors_with_retry_after_seconds_or_date(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_works(2))
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    server.faults.server_error_next(1, status=500, retry_after=120)
    server.faults.server_error_next(1, status=503, retry_after=when)
    server.faults.server_error_next(1, status=502)
    error = search(client, server, query="ALL(work)")
    assert service_error(error, 500)[0] == "GENERAL_SYSTEM_ERROR"
    assert error.headers["retry-after"] == "120"
    unavailable = search(client, server, query="ALL(work)")
    assert unavailable.status_code == 503
    assert unavailable.headers["content-type"] == "text/html"
    assert email.utils.parsedate_to_datetime(unavailable.headers["retry-after"]) == when
    gateway = search(client, server, query="ALL(work)")
    assert gateway.status_code == 502
    assert "retry-after" not in gateway.headers
    assert search(client, server, query="ALL(work)").status_code == 200
    assert server.faults.served["server_error"] == 3
    with pytest.raises(ValueError, match="status"):
        Fault.server_error(404)


def test_quota_exceeded_and_throttle_faults(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(2))
    server.faults.quota_exceeded_next(1)
    server.faults.throttle_next(1)
    quota = search(client, server, query="ALL(work)")
    assert service_error(quota, 429)[0] == "QUOTA_EXCEEDED"
    assert quota.headers["x-els-status"] == "QUOTA_EXCEEDED - Quota Exceeded"
    assert "x-ratelimit-reset" in quota.headers
    assert "x-ratelimit-remaining" not in quota.headers
    throttle = search(client, server, query="ALL(work)")
    assert (throttle.status_code, throttle.content) == (429, b"")
    assert not any(name.startswith(("x-els-", "x-ratelimit-")) for name in throttle.headers)
    assert server.violations == []
    ok = search(client, server, query="ALL(work)")
    assert ok.headers["x-ratelimit-remaining"] == "19999"  # the faults used no quota
    assert server.faults.served == {"quota_exceeded": 1, "throttle": 1}


def test_refused_requests_take_no_fault(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(2))
    server.faults.html_next(1)
    assert httpx.get(f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)"}).status_code == 401
    assert server.faults.pending == 1
    page = search(client, server, query="ALL(work)")
    assert (page.status_code, page.content) == (200, HTML_ERROR_PAGE)
    assert page.headers["content-type"] == "text/html; charset=utf-8"


def test_truncated_body_has_matching_content_length(make_server: ServerFactory) -> None:
    server = make_server(make_works(20))
    server.faults.truncate_next(1, fraction=0.5)
    with httpx.Client(timeout=10, headers={**HEADERS, "Accept-Encoding": "identity"}) as plain:
        response = plain.get(f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)"})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == len(response.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.content)
    assert server.quota(KEY).remaining == 20_000 - 1  # processed, so counted


def test_reset_raises_transport_error(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(20))
    server.faults.reset_next(1, fraction=0.3)
    with pytest.raises(httpx.TransportError):
        search(client, server, query="ALL(work)")
    assert results(search(client, server, query="ALL(work)"))


def test_slow_drip_needs_a_total_deadline(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(1))
    server.faults.slow_drip_next(1, bytes_per_second=1500)
    started = time.monotonic()
    with httpx.Client(timeout=0.2, headers={**HEADERS, "Accept-Encoding": "identity"}) as impatient:
        response = impatient.get(f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)"})
    elapsed = time.monotonic() - started
    assert elapsed > 0.4  # well over the per-read timeout, yet no timeout fired
    assert eids(results(response)) == [eid(0)]


def test_stop_interrupts_a_drip(make_server: ServerFactory) -> None:
    server = make_server(make_works(1))
    server.faults.slow_drip_next(1, bytes_per_second=1)
    with (
        httpx.Client(timeout=10, headers=HEADERS) as c,
        c.stream("GET", f"{server.url}{SEARCH_PATH}", params={"query": "ALL(work)"}) as response,
    ):
        assert response.status_code == 200
        started = time.monotonic()
        server.stop()
        with pytest.raises(httpx.TransportError):
            response.read()
    assert time.monotonic() - started < 3


def test_duplicate_across_pages(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(60))
    server.faults.duplicate_across_pages = True
    harvested, _ = cursor_harvest(client, server, {"query": "ALL(work)", "count": 25})
    assert len(harvested) == 62
    assert len(set(harvested)) == 60
    second = results(search(client, server, query="ALL(work)", start=25, count=25))
    assert eids(second)[0] == eid(24)
    assert server.faults.served["duplicate_across_pages"] == 3  # two cursor pages, one offset page


def test_stuck_cursor(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(60))
    server.faults.stuck_cursor = True
    first = results(search(client, server, query="ALL(work)", cursor="*", count=25))
    token = first["cursor"]["@next"]
    second = results(search(client, server, query="ALL(work)", cursor=token, count=25))
    third = results(search(client, server, query="ALL(work)", cursor=second["cursor"]["@next"], count=25))
    assert second["cursor"]["@next"] == token
    assert eids(second) == eids(third) == [eid(i) for i in range(25, 50)]


def test_gzip_without_header_and_reset(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(3))
    server.faults.gzip_without_header = True
    server.faults.retry_after = 3
    server.faults.throttle_next(2)
    response = search(client, server, query="ALL(work)")
    assert response.headers["retry-after"] == "3"
    server.faults.reset()
    assert server.faults.pending == 0
    assert server.faults.served == {}
    server.faults.gzip_without_header = True
    raw = search(client, server, query="ALL(work)")
    assert "content-encoding" not in raw.headers
    assert json.loads(gzip.decompress(raw.content))["search-results"]["opensearch:totalResults"] == "3"
    server.faults.reset()
    assert results(search(client, server, query="ALL(work)"))


def test_restart_keeps_url_and_state(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_works(30))
    token = results(search(client, server, query="ALL(work)", cursor="*", count=25))["cursor"]["@next"]
    url = server.url
    server.stop()
    with pytest.raises(httpx.TransportError):
        search(client, server, query="ALL(work)")
    server.start()
    assert server.url == url
    assert eids(results(search(client, server, query="ALL(work)", cursor=token, count=25))) == [
        eid(i) for i in range(25, 30)
    ]
    assert server.quota(KEY).remaining == 20_000 - 2
    assert len(server) == 30
    assert server.get(eid(3)) is not None
    assert [w.eid for w in server.works] == [eid(i) for i in range(30)]
