"""Tests of the fake OAI-PMH server (tests/oai_server.py), with plain httpx and lxml.

They prove the server speaks OAI-PMH 2.0 like real repositories do, and that each fault of
its FaultPlan does what it says, so harvester tests can rely on it.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lxml import etree

from tests.oai_server import (
    GRANULARITY_DAY,
    OAI_NS,
    FakeOaiServer,
    Fault,
    OaiRecord,
    RequestLogEntry,
    dc_metadata,
)

NS = {
    "oai": OAI_NS,
    "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/",
    "dc": "http://purl.org/dc/elements/1.1/",
}
T0 = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
FIXED_NOW = datetime(2024, 6, 1, 12, 30, 45, 123456, tzinfo=UTC)
# The parser a careful harvester uses: strict, no entities, no network, no DTD.
STRICT = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, recover=False)
LIST_RECORDS = {"verb": "ListRecords", "metadataPrefix": "oai_dc"}
LIST_IDENTIFIERS = {"verb": "ListIdentifiers", "metadataPrefix": "oai_dc"}

ServerFactory = Callable[..., FakeOaiServer]


def make_records(n: int, *, start: datetime = T0, step: timedelta = timedelta(minutes=1)) -> list[OaiRecord]:
    """n records, oai:repo.example.org:0..n-1, one `step` apart from `start`."""
    return [
        OaiRecord(
            f"oai:repo.example.org:{i}",
            start + i * step,
            dc_metadata(
                f"Record {i}", creators=[f"Author {i}"], identifiers=[f"https://doi.org/10.1234/r{i}"]
            ),
        )
        for i in range(n)
    ]


def parse(response: httpx.Response) -> etree._Element:
    """Strictly parse an OAI-PMH response (raises XMLSyntaxError on anything malformed)."""
    root = etree.fromstring(response.content, STRICT)
    assert root.tag == f"{{{OAI_NS}}}OAI-PMH"
    return root


def error_code(response: httpx.Response) -> str | None:
    error = parse(response).find("oai:error", NS)
    return None if error is None else error.get("code")


def identifiers(root: etree._Element) -> list[str]:
    return [str(e.text) for e in root.iterfind(".//oai:header/oai:identifier", NS)]


def mask_tokens(body: bytes) -> bytes:
    """The body with resumption token values (random) replaced by a fixed string."""
    return re.sub(rb"(<resumptionToken[^>]*>)[^<]+<", rb"\1TOKEN<", body)


def token_of(root: etree._Element) -> etree._Element | None:
    return root.find(".//oai:resumptionToken", NS)


def harvest(
    client: httpx.Client, url: str, params: dict[str, str], max_pages: int = 1000
) -> tuple[list[str], list[etree._Element]]:
    """Follow resumption tokens to the end; returns (identifiers, token elements per page)."""
    ids: list[str] = []
    tokens: list[etree._Element] = []
    response = client.get(url, params=params)
    for _ in range(max_pages):
        assert response.status_code == 200, response.text
        root = parse(response)
        ids.extend(identifiers(root))
        token = token_of(root)
        if token is None:
            return ids, tokens
        tokens.append(token)
        if not token.text:
            return ids, tokens
        response = client.get(url, params={"verb": params["verb"], "resumptionToken": token.text})
    raise AssertionError(f"no end of list after {max_pages} pages")


@pytest.fixture
def make_server() -> Iterator[ServerFactory]:
    """Build and start FakeOaiServers; all are stopped at teardown."""
    servers: list[FakeOaiServer] = []

    def factory(records: Any = (), **kwargs: Any) -> FakeOaiServer:
        kwargs.setdefault("now", lambda: FIXED_NOW)
        server = FakeOaiServer(records, **kwargs).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()
        assert server.internal_errors == []


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


# --------------------------------------------------------------------------------------------
# Protocol
# --------------------------------------------------------------------------------------------


def test_identify_reports_repository_and_clock(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3), deleted_record="transient")
    response = client.get(server.url, params={"verb": "Identify"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    root = parse(response)
    assert root.findtext("oai:responseDate", namespaces=NS) == "2024-06-01T12:30:45Z"
    request = root.find("oai:request", NS)
    assert request is not None
    assert request.text == server.url
    assert dict(request.attrib) == {"verb": "Identify"}
    identify = root.find("oai:Identify", NS)
    assert identify is not None
    fields = {etree.QName(e).localname: e.text for e in identify}
    assert fields == {
        "repositoryName": "Fake OAI-PMH repository",
        "baseURL": server.url,
        "protocolVersion": "2.0",
        "adminEmail": "admin@repo.example.org",
        "earliestDatestamp": "2024-05-01T00:00:00Z",
        "deletedRecord": "transient",
        "granularity": "YYYY-MM-DDThh:mm:ssZ",
    }
    assert server.url.startswith("http://127.0.0.1:")
    assert server.url.endswith("/oai")


def test_identify_day_granularity_and_explicit_earliest(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(
        make_records(2),
        granularity=GRANULARITY_DAY,
        earliest_datestamp=datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
        now=lambda: datetime(2024, 6, 1, 14, 30, tzinfo=UTC),
    )
    root = parse(client.get(server.url, params={"verb": "Identify"}))
    assert root.findtext("oai:Identify/oai:earliestDatestamp", namespaces=NS) == "2001-02-03"
    assert root.findtext("oai:Identify/oai:granularity", namespaces=NS) == "YYYY-MM-DD"
    # responseDate is always full seconds, whatever the granularity
    assert root.findtext("oai:responseDate", namespaces=NS) == "2024-06-01T14:30:00Z"


def test_response_date_is_converted_to_utc(make_server: ServerFactory, client: httpx.Client) -> None:
    from datetime import timezone

    cest = timezone(timedelta(hours=2))
    server = make_server(now=lambda: datetime(2024, 6, 1, 14, 30, 5, tzinfo=cest))
    root = parse(client.get(server.url, params={"verb": "Identify"}))
    assert root.findtext("oai:responseDate", namespaces=NS) == "2024-06-01T12:30:05Z"


def test_paging_250_records_yields_each_once_in_order(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    records = make_records(250)
    server = make_server(reversed(records), page_size=100)  # insertion order does not matter
    ids, tokens = harvest(client, server.url, LIST_RECORDS)
    assert ids == [r.identifier for r in records]
    assert len(tokens) == 3
    assert [t.get("cursor") for t in tokens] == ["0", "100", "200"]
    assert {t.get("completeListSize") for t in tokens} == {"250"}
    assert all(t.text for t in tokens[:2])
    assert tokens[0].text != tokens[1].text
    assert tokens[2].text is None  # <resumptionToken completeListSize="250" cursor="200"/>
    # the token requests carried only verb + resumptionToken, and are echoed as such
    assert server.requests[1] == {"verb": "ListRecords", "resumptionToken": tokens[0].text}
    assert len(server.requests) == 3


def test_page_echo_and_record_structure(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(5), page_size=2)
    root = parse(client.get(server.url, params=LIST_RECORDS))
    request = root.find("oai:request", NS)
    assert request is not None
    assert dict(request.attrib) == LIST_RECORDS
    assert request.text == server.url
    records = root.findall("oai:ListRecords/oai:record", NS)
    assert len(records) == 2
    assert records[0].findtext("oai:header/oai:datestamp", namespaces=NS) == "2024-05-01T00:00:00Z"
    assert records[1].findtext("oai:metadata/oai_dc:dc/dc:title", namespaces=NS) == "Record 1"
    token = token_of(root)
    assert token is not None
    assert token.text
    page2 = parse(client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text}))
    request2 = page2.find("oai:request", NS)
    assert request2 is not None
    assert dict(request2.attrib) == {"verb": "ListRecords", "resumptionToken": token.text}


def test_single_page_list_has_no_token(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3), page_size=10)
    root = parse(client.get(server.url, params=LIST_RECORDS))
    assert len(identifiers(root)) == 3
    assert token_of(root) is None


def test_list_identifiers_with_deleted_header(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(5), page_size=2)
    server.delete("oai:repo.example.org:1", T0 + timedelta(days=1))
    ids, tokens = harvest(client, server.url, LIST_IDENTIFIERS)
    assert ids == [f"oai:repo.example.org:{i}" for i in (0, 2, 3, 4, 1)]  # the deletion moved it last
    assert tokens[-1].text is None
    root = parse(client.get(server.url, params=LIST_IDENTIFIERS | {"from": "2024-05-02"}))
    headers = root.findall("oai:ListIdentifiers/oai:header", NS)
    assert len(headers) == 1
    assert headers[0].get("status") == "deleted"
    assert headers[0].findtext("oai:datestamp", namespaces=NS) == "2024-05-02T00:00:00Z"
    assert root.find(".//oai:metadata", NS) is None


def test_from_until_inclusive(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(10))  # 00:00 .. 00:09
    root = parse(
        client.get(
            server.url,
            params=LIST_RECORDS | {"from": "2024-05-01T00:03:00Z", "until": "2024-05-01T00:05:00Z"},
        )
    )
    assert identifiers(root) == [f"oai:repo.example.org:{i}" for i in (3, 4, 5)]
    root = parse(client.get(server.url, params=LIST_RECORDS | {"from": "2024-05-01T00:08:00Z"}))
    assert identifiers(root) == ["oai:repo.example.org:8", "oai:repo.example.org:9"]
    root = parse(client.get(server.url, params=LIST_RECORDS | {"until": "2024-05-01T00:00:00Z"}))
    assert identifiers(root) == ["oai:repo.example.org:0"]
    response = client.get(server.url, params=LIST_RECORDS | {"from": "2024-05-01T00:09:01Z"})
    assert error_code(response) == "noRecordsMatch"


def test_sub_second_datestamps_compare_at_seconds(make_server: ServerFactory, client: httpx.Client) -> None:
    record = OaiRecord("oai:x:1", T0 + timedelta(microseconds=999_999), dc_metadata("x"))
    server = make_server([record])
    root = parse(client.get(server.url, params=LIST_RECORDS | {"until": "2024-05-01T00:00:00Z"}))
    assert identifiers(root) == ["oai:x:1"]
    assert root.findtext(".//oai:datestamp", namespaces=NS) == "2024-05-01T00:00:00Z"


def test_day_arguments_on_a_seconds_server_cover_whole_days(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    server = make_server(make_records(6, start=T0 - timedelta(hours=12), step=timedelta(hours=12)))
    # datestamps: 04-30T12, 05-01T00, 05-01T12, 05-02T00, 05-02T12, 05-03T00
    root = parse(client.get(server.url, params=LIST_RECORDS | {"from": "2024-05-01", "until": "2024-05-01"}))
    assert identifiers(root) == ["oai:repo.example.org:1", "oai:repo.example.org:2"]


def test_set_selection_matches_subsets(make_server: ServerFactory, client: httpx.Client) -> None:
    specs: list[tuple[str, ...]] = [("a",), ("a:b",), ("a:b:c",), ("ab",), ("x", "a:b"), ()]
    records = [
        OaiRecord(f"oai:s:{i}", T0 + timedelta(minutes=i), dc_metadata(f"s{i}"), sets)
        for i, sets in enumerate(specs)
    ]
    server = make_server(records)
    root = parse(client.get(server.url, params=LIST_IDENTIFIERS | {"set": "a:b"}))
    assert identifiers(root) == ["oai:s:1", "oai:s:2", "oai:s:4"]
    root = parse(client.get(server.url, params=LIST_IDENTIFIERS | {"set": "a"}))
    assert identifiers(root) == ["oai:s:0", "oai:s:1", "oai:s:2", "oai:s:4"]
    root = parse(
        client.get(server.url, params=LIST_RECORDS | {"set": "a:b:c", "from": "2024-05-01T00:02:00Z"})
    )
    assert identifiers(root) == ["oai:s:2"]
    assert error_code(client.get(server.url, params=LIST_RECORDS | {"set": "zzz"})) == "noRecordsMatch"
    header = root.find(".//oai:header", NS)
    assert header is not None
    assert [e.text for e in header.iterfind("oai:setSpec", NS)] == ["a:b:c"]


def test_day_granularity_server(make_server: ServerFactory, client: httpx.Client) -> None:
    records = make_records(4, start=T0 + timedelta(hours=10), step=timedelta(hours=8))
    # 05-01T10, 05-01T18, 05-02T02, 05-02T10
    server = make_server(records, granularity=GRANULARITY_DAY)
    for params in ({"from": "2024-05-01T00:00:00Z"}, {"until": "2024-05-01T00:00:00Z"}):
        response = client.get(server.url, params=LIST_RECORDS | params)
        assert error_code(response) == "badArgument"  # as Dataverse (IQSS/dataverse#11020)
    root = parse(client.get(server.url, params=LIST_RECORDS | {"until": "2024-05-01"}))
    assert identifiers(root) == ["oai:repo.example.org:0", "oai:repo.example.org:1"]
    assert {e.text for e in root.iterfind(".//oai:datestamp", NS)} == {"2024-05-01"}
    root = parse(client.get(server.url, params=LIST_RECORDS | {"from": "2024-05-02", "until": "2024-05-02"}))
    assert identifiers(root) == ["oai:repo.example.org:2", "oai:repo.example.org:3"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "badVerb"),
        ({"verb": "ListEverything"}, "badVerb"),
        ({"verb": ["Identify", "Identify"]}, "badVerb"),
        ({"verb": "Identify", "metadataPrefix": "oai_dc"}, "badArgument"),
        ({"verb": "ListRecords"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": ["oai_dc", "oai_dc"]}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "resumptionToken": "abc"}, "badArgument"),
        (
            {
                "verb": "ListRecords",
                "metadataPrefix": "oai_dc",
                "from": "2024-05-01",
                "until": "2024-05-02T00:00:00Z",
            },
            "badArgument",
        ),
        (
            {"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-05-02", "until": "2024-05-01"},
            "badArgument",
        ),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-13-01"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2024-05-01T00:00:00"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
        ({"verb": "GetRecord", "identifier": "oai:repo.example.org:0"}, "badArgument"),
        ({"verb": "ListSets", "set": "a"}, "badArgument"),
        ({"verb": "ListRecords", "metadataPrefix": "marcxml"}, "cannotDisseminateFormat"),
        (
            {"verb": "GetRecord", "identifier": "oai:repo.example.org:0", "metadataPrefix": "mods"},
            "cannotDisseminateFormat",
        ),
        ({"verb": "GetRecord", "identifier": "oai:nope:1", "metadataPrefix": "oai_dc"}, "idDoesNotExist"),
        ({"verb": "ListMetadataFormats", "identifier": "oai:nope:1"}, "idDoesNotExist"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2030-01-01"}, "noRecordsMatch"),
        ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "a"}, "noSetHierarchy"),
        ({"verb": "ListSets"}, "noSetHierarchy"),
        ({"verb": "ListRecords", "resumptionToken": "not-a-token"}, "badResumptionToken"),
        ({"verb": "ListSets", "resumptionToken": ""}, "badResumptionToken"),
    ],
)
def test_oai_errors(
    make_server: ServerFactory, client: httpx.Client, params: dict[str, Any], code: str
) -> None:
    server = make_server(make_records(3))
    response = client.get(server.url, params=params)
    assert response.status_code == 200
    assert error_code(response) == code
    request = parse(response).find("oai:request", NS)
    assert request is not None
    assert request.text == server.url
    if code in ("badVerb", "badArgument"):
        assert dict(request.attrib) == {}  # the spec: no attributes echoed for these two


def test_error_message_and_echo_are_escaped(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(1))
    nasty = 'oai:x:<&>"\x0b'
    response = client.get(
        server.url, params={"verb": "GetRecord", "identifier": nasty, "metadataPrefix": "oai_dc"}
    )
    root = parse(response)
    request = root.find("oai:request", NS)
    assert request is not None
    assert request.get("identifier") == 'oai:x:<&>"\ufffd'
    error = root.find("oai:error", NS)
    assert error is not None
    assert error.get("code") == "idDoesNotExist"
    assert 'oai:x:<&>"' in str(error.text)


def test_error_status_422_like_zenodo(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3), error_status=422)
    response = client.get(server.url, params=LIST_RECORDS | {"from": "2030-01-01"})
    assert response.status_code == 422
    assert error_code(response) == "noRecordsMatch"
    assert client.get(server.url, params={"verb": "Bogus"}).status_code == 422
    assert client.get(server.url, params=LIST_RECORDS).status_code == 200
    assert [entry.status for entry in server.request_log] == [422, 422, 200]


def test_bad_resumption_token_after_expire_tokens(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(30), page_size=10)
    token = token_of(parse(client.get(server.url, params=LIST_RECORDS)))
    assert token is not None
    server.expire_tokens()
    response = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    assert error_code(response) == "badResumptionToken"
    # a new list works, with fresh tokens
    ids, _ = harvest(client, server.url, LIST_RECORDS)
    assert len(ids) == 30


def test_token_is_bound_to_its_verb_and_reusable(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(30), page_size=10)
    token = token_of(parse(client.get(server.url, params=LIST_RECORDS)))
    assert token is not None
    wrong_verb = client.get(server.url, params={"verb": "ListIdentifiers", "resumptionToken": token.text})
    assert error_code(wrong_verb) == "badResumptionToken"
    again = [
        client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
        for _ in range(2)
    ]
    roots = [parse(r) for r in again]
    assert (
        identifiers(roots[0]) == identifiers(roots[1]) == [f"oai:repo.example.org:{i}" for i in range(10, 20)]
    )
    next_tokens = [token_of(r) for r in roots]
    assert next_tokens[0] is not None
    assert next_tokens[1] is not None
    assert next_tokens[0].text == next_tokens[1].text  # retrying a page is idempotent


def test_get_record_and_escaping(make_server: ServerFactory, client: httpx.Client) -> None:
    metadata = dc_metadata(
        'Ångström & <friends> "quoted" \x0b',
        creators=["Müller, J.", "O'Brien"],
        identifiers=["doi:10.1000/a&b"],
        date=datetime(2024, 1, 2, tzinfo=UTC).date(),
        types=["article"],
        languages=["en"],
        subjects=["x<y"],
        description="a > b",
        publisher="P & Co",
        relations=["https://doi.org/10.1000/rel"],
        sources=["Journal 1(2)"],
    )
    record = OaiRecord("oai:repo.example.org:a&b", T0, metadata, sets=("col:1",))
    server = make_server([record])
    response = client.get(
        server.url,
        params={"verb": "GetRecord", "identifier": "oai:repo.example.org:a&b", "metadataPrefix": "oai_dc"},
    )
    root = parse(response)
    header = root.find("oai:GetRecord/oai:record/oai:header", NS)
    assert header is not None
    assert header.findtext("oai:identifier", namespaces=NS) == "oai:repo.example.org:a&b"
    assert header.findtext("oai:setSpec", namespaces=NS) == "col:1"
    dc = root.find(".//oai_dc:dc", NS)
    assert dc is not None
    values = [(etree.QName(e).localname, e.text) for e in dc]
    assert values == [
        ("title", 'Ångström & <friends> "quoted" \ufffd'),
        ("creator", "Müller, J."),
        ("creator", "O'Brien"),
        ("subject", "x<y"),
        ("description", "a > b"),
        ("publisher", "P & Co"),
        ("date", "2024-01-02"),
        ("type", "article"),
        ("identifier", "doi:10.1000/a&b"),
        ("source", "Journal 1(2)"),
        ("language", "en"),
        ("relation", "https://doi.org/10.1000/rel"),
    ]


def test_get_record_of_deleted_record(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server([OaiRecord("oai:x:1", T0, dc_metadata("gone"), sets=("s",))])
    server.delete("oai:x:1", T0 + timedelta(hours=1))
    root = parse(
        client.get(
            server.url, params={"verb": "GetRecord", "identifier": "oai:x:1", "metadataPrefix": "oai_dc"}
        )
    )
    record = root.find("oai:GetRecord/oai:record", NS)
    assert record is not None
    header = record.find("oai:header", NS)
    assert header is not None
    assert header.get("status") == "deleted"
    assert header.findtext("oai:datestamp", namespaces=NS) == "2024-05-01T01:00:00Z"
    assert header.findtext("oai:setSpec", namespaces=NS) == "s"  # DSpace keeps sets on tombstones
    assert record.find("oai:metadata", NS) is None
    assert server.records[0].deleted


def test_deleted_record_no_hides_deletions(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3), deleted_record="no")
    server.delete("oai:repo.example.org:1", T0 + timedelta(days=1))
    ids, _ = harvest(client, server.url, LIST_IDENTIFIERS)
    assert ids == ["oai:repo.example.org:0", "oai:repo.example.org:2"]
    params = {"verb": "GetRecord", "identifier": "oai:repo.example.org:1", "metadataPrefix": "oai_dc"}
    assert error_code(client.get(server.url, params=params)) == "idDoesNotExist"


def test_list_metadata_formats(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(1), metadata_prefixes=("oai_dc", "marcxml", "custom"))
    root = parse(client.get(server.url, params={"verb": "ListMetadataFormats"}))
    formats = root.findall("oai:ListMetadataFormats/oai:metadataFormat", NS)
    assert [f.findtext("oai:metadataPrefix", namespaces=NS) for f in formats] == [
        "oai_dc",
        "marcxml",
        "custom",
    ]
    assert formats[0].findtext("oai:metadataNamespace", namespaces=NS) == NS["oai_dc"]
    params = {"verb": "ListMetadataFormats", "identifier": "oai:repo.example.org:0"}
    assert len(parse(client.get(server.url, params=params)).findall(".//oai:metadataFormat", NS)) == 3
    root = parse(client.get(server.url, params={"verb": "ListRecords", "metadataPrefix": "marcxml"}))
    assert identifiers(root) == ["oai:repo.example.org:0"]


def test_list_sets_with_ancestors_names_and_paging(make_server: ServerFactory, client: httpx.Client) -> None:
    records = [
        OaiRecord("oai:1", T0, dc_metadata("1"), sets=("com:col1", "x")),
        OaiRecord("oai:2", T0, dc_metadata("2"), sets=("com:col2:sub",)),
    ]
    server = make_server(records, page_size=2, set_names={"com": "Community"})
    specs: list[str] = []
    names: list[str] = []
    response = client.get(server.url, params={"verb": "ListSets"})
    while True:
        root = parse(response)
        specs += [str(e.text) for e in root.iterfind(".//oai:setSpec", NS)]
        names += [str(e.text) for e in root.iterfind(".//oai:setName", NS)]
        token = token_of(root)
        if token is None or not token.text:
            break
        response = client.get(server.url, params={"verb": "ListSets", "resumptionToken": token.text})
    assert specs == ["com", "com:col1", "com:col2", "com:col2:sub", "x"]
    assert names[0] == "Community"
    assert names[1] == "com:col1"


def test_post_form_encoded(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(25), page_size=10)
    ids: list[str] = []
    response = client.post(server.url, data=LIST_RECORDS)
    while True:
        root = parse(response)
        ids += identifiers(root)
        token = token_of(root)
        if token is None or not token.text:
            break
        response = client.post(server.url, data={"verb": "ListRecords", "resumptionToken": token.text})
    assert ids == [f"oai:repo.example.org:{i}" for i in range(25)]
    assert [entry.method for entry in server.request_log] == ["POST"] * 3
    assert server.request_log[0] == RequestLogEntry("POST", "/oai", LIST_RECORDS, 200)
    assert server.requests[0] == LIST_RECORDS


def test_other_paths_are_404(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(1), path="/cgi/oai2")
    assert server.url.endswith("/cgi/oai2")
    response = client.get(server.url.replace("/cgi/oai2", "/oai"), params={"verb": "Identify"})
    assert response.status_code == 404
    assert client.get(server.url, params={"verb": "Identify"}).status_code == 200


def test_snapshot_is_stable_when_records_change_mid_list(
    make_server: ServerFactory, client: httpx.Client
) -> None:
    records = make_records(30)
    server = make_server(records, page_size=10)
    root = parse(client.get(server.url, params=LIST_RECORDS))
    ids = identifiers(root)
    # Between pages: new records sorting first, a deletion, and an update of a record on page 2.
    for i in range(5):
        server.put(OaiRecord(f"oai:new:{i}", T0 - timedelta(days=1), dc_metadata(f"new {i}")))
    server.delete("oai:repo.example.org:3", T0 + timedelta(days=9))
    server.put(OaiRecord("oai:repo.example.org:15", T0 + timedelta(days=9), dc_metadata("updated")))
    token = token_of(root)
    while token is not None and token.text:
        root = parse(client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text}))
        ids += identifiers(root)
        token = token_of(root)
        if identifiers(root) and identifiers(root)[0] == "oai:repo.example.org:10":
            titles = [e.text for e in root.iterfind(".//dc:title", NS)]
            assert titles[5] == "Record 15"  # the snapshot keeps the version it was taken with
    assert ids == [r.identifier for r in records]
    # a new list sees the changes
    new_ids, _ = harvest(client, server.url, LIST_RECORDS)
    assert new_ids[:5] == [f"oai:new:{i}" for i in range(5)]
    assert new_ids[-2:] == ["oai:repo.example.org:15", "oai:repo.example.org:3"]
    assert len(new_ids) == 35


def test_put_replaces_by_identifier(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(2))
    server.put(OaiRecord("oai:repo.example.org:0", T0 + timedelta(hours=1), dc_metadata("v2")))
    root = parse(client.get(server.url, params=LIST_RECORDS))
    assert identifiers(root) == ["oai:repo.example.org:1", "oai:repo.example.org:0"]
    assert [e.text for e in root.iterfind(".//dc:title", NS)] == ["Record 1", "v2"]


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        OaiRecord("oai:x", datetime(2024, 1, 1), dc_metadata("x"))
    with pytest.raises(ValueError, match="no metadata"):
        OaiRecord("oai:x", T0)
    assert OaiRecord("oai:x", T0, deleted=True).metadata is None
    with pytest.raises(ValueError, match="granularity"):
        FakeOaiServer(granularity="YYYY")
    with pytest.raises(ValueError, match="deleted_record"):
        FakeOaiServer(deleted_record="sometimes")


def test_restart_keeps_url_and_state(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(20), page_size=10)
    token = token_of(parse(client.get(server.url, params=LIST_RECORDS)))
    assert token is not None
    url = server.url
    server.stop()
    with pytest.raises(httpx.ConnectError):
        client.get(url, params={"verb": "Identify"})
    server.start()
    assert server.url == url
    root = parse(client.get(url, params={"verb": "ListRecords", "resumptionToken": token.text}))
    assert identifiers(root)[0] == "oai:repo.example.org:10"


def test_concurrent_clients_and_puts(make_server: ServerFactory) -> None:
    server = make_server(make_records(500), page_size=50)
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(timeout=10) as c:
                results.append(harvest(c, server.url, LIST_IDENTIFIERS)[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for i in range(200):
        server.put(OaiRecord(f"oai:later:{i}", T0 + timedelta(days=30), dc_metadata("later")))
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(results) == 6
    for ids in results:
        assert len(ids) == len(set(ids))
        assert ids[:500] == [f"oai:repo.example.org:{i}" for i in range(500)]


# --------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------


def test_next_responses_then_normal_service(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3))
    server.faults.next_responses(2, status=503, headers={"Retry-After": "1"}, body=b"busy")
    for _ in range(2):
        response = client.get(server.url, params=LIST_RECORDS)
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.content == b"busy"
    assert client.get(server.url, params=LIST_RECORDS).status_code == 200
    assert server.faults.served["canned"] == 2
    assert [e.status for e in server.request_log] == [503, 503, 200]
    assert len(server.requests) == 3  # faulted requests are recorded too
    assert server.faults.pending == 0


def test_retry_after_http_date_and_empty_500(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3))
    server.faults.next_responses(1, status=503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})
    server.faults.next_responses(1, status=500)
    first = client.get(server.url, params=LIST_RECORDS)
    assert first.headers["retry-after"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    second = client.get(server.url, params=LIST_RECORDS)
    assert second.status_code == 500
    assert second.content == b""  # like MIT DSpace's empty 500s
    assert "content-type" not in second.headers


def test_on_request_hits_the_kth_request(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(30), page_size=10)
    server.faults.on_request(2, status=500, body=b"boom")  # the third request: page 3
    server.faults.on_request(0, Fault.html())
    assert client.get(server.url, params={"verb": "Identify"}).headers["content-type"].startswith("text/html")
    root = parse(client.get(server.url, params=LIST_RECORDS))
    token = token_of(root)
    assert token is not None
    failed = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    assert failed.status_code == 500
    retried = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    assert identifiers(parse(retried))[0] == "oai:repo.example.org:10"
    assert server.faults.served == {"html": 1, "canned": 1}


def test_truncated_body_has_matching_content_length(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(20))
    full = client.get(server.url, params=LIST_RECORDS).content
    server.faults.truncate_next(fraction=0.6)
    response = client.get(server.url, params=LIST_RECORDS)
    assert response.status_code == 200
    assert len(response.content) == int(len(full) * 0.6)
    assert response.headers["content-length"] == str(len(response.content))
    assert full.startswith(response.content)
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    # A recovering parser (what sickle uses) silently returns fewer records.
    recovered = etree.fromstring(response.content, etree.XMLParser(recover=True))
    assert 0 < len(identifiers(recovered)) < 20
    assert client.get(server.url, params=LIST_RECORDS).content == full  # then normal service


def test_reset_raises_transport_error(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(20))
    server.faults.reset_next()
    with pytest.raises(httpx.TransportError):
        client.get(server.url, params=LIST_RECORDS)
    server.faults.reset_next(fraction=0.5)  # part of the body, then the connection drops
    with pytest.raises(httpx.TransportError):
        client.get(server.url, params=LIST_RECORDS)
    assert client.get(server.url, params=LIST_RECORDS).status_code == 200
    assert server.faults.served["reset"] == 2


def test_html_error_page(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3))
    server.faults.html_next()
    response = client.get(server.url, params=LIST_RECORDS)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content.startswith(b"<!DOCTYPE html>")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content, STRICT)
    server.faults.html_next(status=429)
    assert client.get(server.url, params=LIST_RECORDS).status_code == 429


def test_repeat_token_loops_on_same(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(30), page_size=10)
    server.faults.repeat_token = True
    first = parse(client.get(server.url, params=LIST_RECORDS))
    token = token_of(first)
    assert token is not None
    assert token.text == "SAME"
    second = parse(client.get(server.url, params={"verb": "ListRecords", "resumptionToken": "SAME"}))
    token2 = token_of(second)
    assert token2 is not None
    assert token2.text == "SAME"
    assert identifiers(second) == identifiers(first)
    assert server.faults.served["repeat_token"] == 2


def test_empty_pages_with_token(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(15), page_size=10)
    server.faults.empty_pages_with_token = 2
    pages: list[list[str]] = []
    response = client.get(server.url, params=LIST_RECORDS)
    seen_tokens = []
    while True:
        root = parse(response)
        pages.append(identifiers(root))
        token = token_of(root)
        if token is None or not token.text:
            break
        seen_tokens.append(token.text)
        response = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    assert [len(p) for p in pages] == [0, 0, 10, 5]
    assert len(set(seen_tokens)) == len(seen_tokens)  # fresh tokens
    assert server.faults.served["empty_pages_with_token"] == 2


def test_ignore_from(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(5))
    server.faults.ignore_from = True
    params = LIST_RECORDS | {"from": "2030-01-01", "until": "2030-01-02"}
    assert len(identifiers(parse(client.get(server.url, params=params)))) == 5
    assert server.faults.served["ignore_from"] == 1
    bad = client.get(server.url, params=LIST_RECORDS | {"from": "not-a-date"})
    assert error_code(bad) == "badArgument"  # still validated


def test_control_chars_in_first_record(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(15), page_size=10)
    server.delete("oai:repo.example.org:0", T0)  # the first record with metadata is now :1
    server.faults.control_chars = True
    response = client.get(server.url, params=LIST_RECORDS)
    assert b"Record 1\x0b\x01</dc:title>" in response.content
    assert response.content.count(b"\x0b") == 1
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    # The page that does not contain it is clean; GetRecord of it is dirty too.
    token = etree.fromstring(response.content, etree.XMLParser(recover=True)).find(
        ".//oai:resumptionToken", NS
    )
    assert token is not None
    page2 = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    parse(page2)
    get = client.get(
        server.url,
        params={"verb": "GetRecord", "identifier": "oai:repo.example.org:1", "metadataPrefix": "oai_dc"},
    )
    assert b"\x0b\x01" in get.content
    # Stripping the two characters gives back the clean document.
    server.faults.control_chars = False
    clean = client.get(server.url, params=LIST_RECORDS).content
    assert mask_tokens(response.content.replace(b"\x0b\x01", b"")) == mask_tokens(clean)
    assert server.faults.served["control_chars"] == 2


def test_wrong_charset(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server([OaiRecord("oai:x:1", T0, dc_metadata("Ångström – Überblick"))])
    server.faults.wrong_charset = True
    response = client.get(server.url, params=LIST_RECORDS)
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert "Ångström".encode("iso-8859-1") in response.content
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.content)
    fixed = etree.fromstring(
        response.content.decode("iso-8859-1")
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        .encode("iso-8859-1")
    )
    assert fixed.findtext(".//dc:title", namespaces=NS) == "Ångström – Überblick"  # the dash was a char ref


def test_gzip_without_header(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3))
    plain = client.get(server.url, params=LIST_RECORDS).content
    server.faults.gzip_without_header = True
    response = client.get(server.url, params=LIST_RECORDS)
    assert "content-encoding" not in response.headers
    assert response.content[:2] == b"\x1f\x8b"
    assert gzip.decompress(response.content) == plain


def test_duplicate_across_pages(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(25), page_size=10)
    server.faults.duplicate_across_pages = True
    ids, tokens = harvest(client, server.url, LIST_RECORDS)
    assert len(ids) == 27
    assert ids[10] == ids[9] == "oai:repo.example.org:9"
    assert ids[21] == ids[20] == "oai:repo.example.org:19"
    assert list(dict.fromkeys(ids)) == [f"oai:repo.example.org:{i}" for i in range(25)]
    assert tokens[-1].get("completeListSize") == "25"
    assert server.faults.served["duplicate_across_pages"] == 2


def test_token_leads_to_empty_last_page(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(20), page_size=10)
    server.faults.token_leads_to_empty_last_page = True
    pages = []
    response = client.get(server.url, params=LIST_RECORDS)
    while True:
        root = parse(response)
        pages.append(identifiers(root))
        token = token_of(root)
        assert token is not None
        if not token.text:
            break
        response = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": token.text})
    assert [len(p) for p in pages] == [10, 10, 0]
    assert token.get("cursor") == "20"


def test_awkward_tokens_need_url_encoding(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(20), page_size=10)
    server.faults.awkward_tokens = True
    token = token_of(parse(client.get(server.url, params=LIST_RECORDS)))
    assert token is not None
    text = str(token.text)
    assert "+" in text
    assert "/" in text
    assert text.endswith("==")
    unencoded = client.get(f"{server.url}?verb=ListRecords&resumptionToken={text}")
    assert error_code(unencoded) == "badResumptionToken"  # '+' arrived as a space
    encoded = client.get(server.url, params={"verb": "ListRecords", "resumptionToken": text})
    assert len(identifiers(parse(encoded))) == 10


def test_slow_drip_times_out_and_completes(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server([OaiRecord("oai:x:1", T0, dc_metadata("x"))])
    normal = client.get(server.url, params={"verb": "Identify"}).content
    server.faults.slow_drip_next(bytes_per_second=1)
    with pytest.raises(httpx.ReadTimeout):
        client.get(server.url, params={"verb": "Identify"}, timeout=httpx.Timeout(5, read=0.5))
    rate = 4000.0
    server.faults.slow_drip_next(bytes_per_second=rate)
    started = time.perf_counter()
    dripped = client.get(server.url, params={"verb": "Identify"})
    elapsed = time.perf_counter() - started
    assert dripped.content == normal
    assert elapsed >= 0.8 * len(normal) / rate
    assert server.faults.served["slow_drip"] == 2


def test_stop_interrupts_a_drip(make_server: ServerFactory) -> None:
    server = make_server(make_records(1))
    server.faults.slow_drip_next(bytes_per_second=1)
    outcome: list[BaseException | int] = []

    def fetch() -> None:
        try:
            outcome.append(httpx.get(server.url, params={"verb": "Identify"}, timeout=30).status_code)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=fetch)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.request_log and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    server.stop()
    thread.join(10)
    assert time.perf_counter() - started < 3
    assert len(outcome) == 1
    assert isinstance(outcome[0], httpx.TransportError)


def test_faults_reset_clears_everything(make_server: ServerFactory, client: httpx.Client) -> None:
    server = make_server(make_records(3))
    faults = server.faults
    faults.next_responses(3, status=503)
    faults.on_request(10, status=500)
    faults.repeat_token = faults.ignore_from = faults.wrong_charset = faults.gzip_without_header = True
    faults.control_chars = faults.duplicate_across_pages = faults.token_leads_to_empty_last_page = True
    faults.awkward_tokens = True
    faults.empty_pages_with_token = 3
    client.get(server.url, params=LIST_RECORDS)
    assert faults.served["canned"] == 1
    faults.reset()
    assert faults.pending == 0
    assert not faults.served
    response = client.get(server.url, params=LIST_RECORDS)
    assert response.status_code == 200
    assert identifiers(parse(response)) == [f"oai:repo.example.org:{i}" for i in range(3)]
    assert not faults.served


# --------------------------------------------------------------------------------------------
# Throughput (printed, not asserted)
# --------------------------------------------------------------------------------------------


def test_throughput_20000_records(make_server: ServerFactory, client: httpx.Client) -> None:
    started = time.perf_counter()
    records = make_records(20_000, step=timedelta(seconds=7))
    server = make_server(records, page_size=500)
    built = time.perf_counter() - started
    started = time.perf_counter()
    ids, tokens = harvest(client, server.url, LIST_RECORDS)
    elapsed = time.perf_counter() - started
    assert len(ids) == 20_000
    assert len(set(ids)) == 20_000
    assert len(tokens) == 40
    print(
        f"\nFakeOaiServer: built 20,000 records in {built:.2f}s; harvested {len(ids)} records "
        f"in {len(tokens)} pages in {elapsed:.2f}s = {len(ids) / elapsed:,.0f} records/s "
        "(including strict lxml parsing on the client side)"
    )


# --------------------------------------------------------------------------------------------
# Interoperability with the sickle library itself (not the project's harvester)
# --------------------------------------------------------------------------------------------


def test_sickle_library_harvests_the_server(make_server: ServerFactory) -> None:
    sickle = pytest.importorskip("sickle")
    server = make_server(make_records(250), page_size=100)
    server.delete("oai:repo.example.org:7", T0 + timedelta(days=1))
    harvester = sickle.Sickle(server.url, timeout=10)
    identify = harvester.Identify()
    assert identify.granularity == "YYYY-MM-DDThh:mm:ssZ"
    records = list(harvester.ListRecords(metadataPrefix="oai_dc"))
    assert len(records) == 250
    assert [r.header.identifier for r in records if r.deleted] == ["oai:repo.example.org:7"]
    assert records[0].metadata["title"] == ["Record 0"]
    headers = list(harvester.ListIdentifiers(metadataPrefix="oai_dc", ignore_deleted=True))
    assert len(headers) == 249
    assert [r["verb"] for r in server.requests].count("ListRecords") == 3
