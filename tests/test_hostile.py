"""Hostile input (issue 8, items 4 and 5): XML that attacks the parser, oversized and redirected
responses, malformed configs and malformed records.

fault → test → what it proves

* DOCTYPE with a ``file:///etc/passwd`` entity (and a canary file), with an
  ``http://127.0.0.1:<port>/`` entity and external DTD, billion laughs →
  ``test_hostile_doctype_is_refused``: the run fails at once (no retry) with
  "refusing a document with a DOCTYPE"; the canary port receives no connection; no file
  content and no expansion anywhere in the store or the logs.
* the same DOCTYPEs after 5 KB of comments, or in a UTF-16 document →
  ``test_hostile_doctype_anywhere_stays_harmless``: still no file read, no request, no
  expansion (the parser never resolves entities); and ``test_a_doctype_anywhere_is_refused``:
  refused like any DOCTYPE. (Until da7b10e the check looked at the first 4096 bytes only, as
  bytes: such documents were parsed and their records stored with raw entity references.)
* responses above the size cap → ``test_default_size_cap_is_100_mb`` (config default) and
  ``test_a_response_above_the_size_cap_is_refused``: refused, not retried, nothing of it
  stored, the checkpoint stays.
* redirects to ``http://169.254.169.254/``, ``file:///``, ``ftp://``, link-local IPv6,
  ``metadata.google.internal``, Alibaba's metadata IP → ``test_redirects_are_refused``: the
  run fails naming the refusal and NO connection is attempted (every outbound connection
  is intercepted: nothing can reach a real metadata service from CI);
  ``test_redirects_within_http_are_followed``: a plain http redirect still works;
  other spellings of 169.254.169.254 (decimal, hex, short form, IPv4-mapped IPv6) and a
  trailing dot on the metadata host name → ``test_redirects_to_other_spellings_of_the_
  metadata_address_are_refused``: refused before any connection. (Until da7b10e the check
  compared the literal host only, and a connection to 169.254.169.254 was attempted.)
* malformed configs → ``test_malformed_configs_through_the_cli`` (6 cases, the real
  ``harvester check-config``): exit 2 and exactly one stderr line ``FILE: KEY.PATH: problem``
  (the 70+ other cases are in ``test_settings.py``); ``test_a_bad_filter_value_names_its_key``:
  XFAIL (bug) — a wrong Crossref filter value is reported at ``...filter.type.str`` with
  "(and 3 more problems)", pydantic's union branches leaking into the key path.
* malformed records → ``test_malformed_records_are_quarantined_and_listed_by_status``: no
  metadata, unsupported format, an over-long identifier: quarantined with the reason, counted,
  listed by ``harvester status`` and ``status --json``; the run succeeds;
  ``test_a_record_with_broken_xml_is_quarantined``: XFAIL (bug) — one record with an
  unescaped ``&`` makes its whole page unparsable: retried, the run fails, and every later
  run fails on the same page.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harvester.http import HttpPolicy
from harvester.settings import HttpSettings
from storage.store import Store
from tests.conftest import ROOT
from tests.faults_helpers import block, captured, events, everything_stored, run, settings_of, write_config
from tests.helpers import T0, article
from tests.oai_server import OAI_NS, FakeOaiServer, OaiRecord, dc_metadata

NOW = dt.datetime(2024, 6, 1, 12, 0, tzinfo=dt.UTC)
SOURCE = "repo"
DECLARATION = '<?xml version="1.0" encoding="{encoding}"?>\n'


class Canary:
    """A TCP port that counts every connection made to it (nothing should ever connect)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> tuple[Path, str]:
    content = f"CANARY-FILE-CONTENT-{uuid.uuid4().hex}"
    path = tmp_path / "canary.txt"
    path.write_text(content, encoding="utf-8")
    return path, content


def doctype(case: str, canary: Canary, secret: Path) -> tuple[str, str]:
    """(DOCTYPE, the entity references to put in a title) for one attack."""
    if case == "file":
        return (
            "<!DOCTYPE OAI-PMH ["
            '<!ENTITY passwd SYSTEM "file:///etc/passwd">'
            f'<!ENTITY canary SYSTEM "file://{secret}">]>',
            "&passwd; &canary;",
        )
    if case == "http":
        url = f"http://127.0.0.1:{canary.port}"
        return (
            f'<!DOCTYPE OAI-PMH SYSTEM "{url}/evil.dtd" ['
            f'<!ENTITY % remote SYSTEM "{url}/remote.dtd"> %remote;'
            f'<!ENTITY fetch SYSTEM "{url}/entity">]>',
            "&fetch;",
        )
    lols = ['<!ENTITY lol "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ]
    return f"<!DOCTYPE OAI-PMH [{''.join(lols)}]>", "&lol9;"


def hostile_page(
    case: str, canary: Canary, secret: Path, *, padding: str = "", encoding: str = "UTF-8"
) -> bytes:
    dtd, refs = doctype(case, canary, secret)
    text = (
        DECLARATION.format(encoding=encoding)
        + padding
        + dtd
        + f'<OAI-PMH xmlns="{OAI_NS}"><responseDate>2024-06-01T12:00:00Z</responseDate>'
        '<request verb="ListRecords" metadataPrefix="oai_dc">http://127.0.0.1/oai</request><ListRecords>'
        "<record><header><identifier>oai:evil.example.org:1</identifier>"
        "<datestamp>2024-05-01T08:00:00Z</datestamp></header><metadata>"
        '<oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<dc:title>Evil {refs}</dc:title><dc:identifier>https://doi.org/10.5555/evil</dc:identifier>"
        "</oai_dc:dc></metadata></record></ListRecords></OAI-PMH>\n"
    )
    return text.encode("utf-16") if encoding == "UTF-16" else text.encode("utf-8")


def new_server(**kw: Any) -> FakeOaiServer:
    records = [article(i, T0 + dt.timedelta(minutes=i)) for i in range(30)]
    return FakeOaiServer(records, page_size=10, now=lambda: NOW, earliest_datestamp=T0, **kw)


@pytest.fixture
def server() -> Iterator[FakeOaiServer]:
    with new_server() as s:
        yield s


ATTACKS = ["file", "http", "laughs"]


@pytest.mark.parametrize("case", ATTACKS)
def test_hostile_doctype_is_refused(
    case: str,
    server: FakeOaiServer,
    store: Store,
    tmp_path: Path,
    db_url: str,
    canary: Canary,
    secret_file: Any,
) -> None:
    secret, content = secret_file
    server.faults.on_request(
        1, status=200, headers={"Content-Type": "text/xml"}, body=hostile_page(case, canary, secret)
    )
    settings = settings_of(tmp_path, db_url, block(SOURCE, "oai-pmh", server.url))
    with captured() as logs:
        result = run(settings, store, SOURCE)
    assert result.outcome == "failed"
    assert "refusing a document with a DOCTYPE" in (result.error or "")
    assert len(server.requests) == 2 and not events(logs, "http.retry")  # fatal: not asked again
    assert canary.connections == 0
    assert store.load_checkpoint(SOURCE) is None
    stored = everything_stored(store) + json.dumps(logs, default=str)
    assert content not in stored and "root:x:0:0" not in stored and "lollollol" not in stored
    assert "refusing a document with a DOCTYPE" in events(logs, "harvest.failed")[0]["error"]


BYPASSES = {
    "after-5kb-of-comments": {"padding": "<!--" + " " * 5000 + "-->\n"},
    "utf-16": {"encoding": "UTF-16"},
}


@pytest.mark.parametrize("variant", sorted(BYPASSES))
@pytest.mark.parametrize("case", ATTACKS)
def test_hostile_doctype_anywhere_stays_harmless(
    case: str, variant: str, tmp_path: Path, canary: Canary, secret_file: Any
) -> None:
    """Whatever the policy check misses, the parser itself never resolves an entity."""
    secret, content = secret_file
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with new_server() as server:
        page = hostile_page(case, canary, secret, **BYPASSES[variant])
        server.faults.on_request(1, status=200, headers={"Content-Type": "text/xml"}, body=page)
        settings = settings_of(tmp_path, url, block(SOURCE, "oai-pmh", server.url))
        store = Store.open(url)
        try:
            store.upgrade()
            with captured() as logs:
                run(settings, store, SOURCE)
            stored = everything_stored(store) + json.dumps(logs, default=str)
        finally:
            store.close()
    assert canary.connections == 0
    assert content not in stored and "root:x:0:0" not in stored and "lollollol" not in stored


@pytest.mark.parametrize("variant", sorted(BYPASSES))
def test_a_doctype_anywhere_is_refused(
    variant: str, tmp_path: Path, canary: Canary, secret_file: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with new_server() as server:
        page = hostile_page("file", canary, secret_file[0], **BYPASSES[variant])
        server.faults.on_request(1, status=200, headers={"Content-Type": "text/xml"}, body=page)
        store = Store.open(url)
        try:
            store.upgrade()
            result = run(settings_of(tmp_path, url, block(SOURCE, "oai-pmh", server.url)), store, SOURCE)
        finally:
            store.close()
    assert result.outcome == "failed" and "DOCTYPE" in (result.error or "")


# -- size cap ----------------------------------------------------------------------------------


def test_default_size_cap_is_100_mb(tmp_path: Path) -> None:
    assert HttpSettings().max_response_bytes == HttpPolicy().max_response_bytes == 100_000_000
    path = tmp_path / "minimal.yaml"
    path.write_text("sources:\n  - {name: repo, type: oai-pmh, url: 'https://r.example.org/oai'}\n")
    from harvester.settings import load_settings

    assert load_settings(path, env={}).http.max_response_bytes == 100_000_000


def test_a_response_above_the_size_cap_is_refused(
    server: FakeOaiServer, store: Store, tmp_path: Path, db_url: str
) -> None:
    settings = settings_of(
        tmp_path, db_url, block(SOURCE, "oai-pmh", server.url), http={"max_response_bytes": 4000}
    )
    with captured() as logs:
        result = run(settings, store, SOURCE)
    assert result.outcome == "failed"
    assert "ResponseTooLarge" in (result.error or "") and "larger than 4000 bytes" in (result.error or "")
    assert len(server.requests) == 2 and not events(logs, "http.retry")  # Identify fits, page 1 does not
    assert result.stats.fetched == 0 and store.load_checkpoint(SOURCE) is None
    assert "ResponseTooLarge" in events(logs, "harvest.failed")[0]["error"]


# -- redirects ---------------------------------------------------------------------------------


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every outbound TCP connection not to 127.0.0.1 is recorded and refused: a test can
    never reach a real cloud metadata service, and it sees any attempt to."""
    attempts: list[Any] = []
    real = socket.create_connection

    def guarded(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] not in ("127.0.0.1", "localhost"):
            attempts.append(address)
            raise OSError(f"blocked by the test: connection to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    return attempts


def redirected_harvest(
    server: FakeOaiServer, location: str, tmp_path: Path
) -> tuple[Any, list[dict[str, Any]]]:
    server.faults.on_request(0, status=302, headers={"Location": location})
    url = f"sqlite:///{tmp_path / 'r.db'}"
    store = Store.open(url)
    try:
        store.upgrade()
        with captured() as logs:
            result = run(settings_of(tmp_path, url, block(SOURCE, "oai-pmh", server.url)), store, SOURCE)
    finally:
        store.close()
    return result, logs


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "link-local or metadata"),
        ("http://[fe80::1]/oai", "link-local or metadata"),
        ("http://[fd00:ec2::254]/latest/meta-data/", "link-local or metadata"),
        ("http://100.100.100.200/latest/meta-data/", "link-local or metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata"),
        ("file:///etc/passwd", "file"),
        ("ftp://127.0.0.1/pub/oai.xml", "ftp"),
    ],
)
def test_redirects_are_refused(
    server: FakeOaiServer, tmp_path: Path, outbound: list[Any], location: str, message: str
) -> None:
    result, logs = redirected_harvest(server, location, tmp_path)
    assert result.outcome == "failed" and message in (result.error or ""), result.error
    assert outbound == []  # not even a connection attempt
    assert len(server.requests) == 1 and not events(logs, "http.retry")
    assert events(logs, "harvest.failed")


def test_redirects_within_http_are_followed(
    server: FakeOaiServer, tmp_path: Path, outbound: list[Any]
) -> None:
    result, _ = redirected_harvest(server, f"{server.url}?verb=Identify", tmp_path)
    assert result.outcome == "succeeded", result.error
    assert result.stats.inserted == 30 and outbound == []


@pytest.mark.parametrize(
    "location",
    [
        "http://2852039166/latest/meta-data/",
        "http://0xa9fea9fe/latest/meta-data/",
        "http://169.254.43518/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://metadata.google.internal./computeMetadata/v1/",
    ],
)
def test_redirects_to_other_spellings_of_the_metadata_address_are_refused(
    server: FakeOaiServer, tmp_path: Path, outbound: list[Any], location: str
) -> None:
    result, _ = redirected_harvest(server, location, tmp_path)
    assert outbound == [], f"a connection to {outbound[0]} was attempted"
    assert result.outcome == "failed" and "refusing" in (result.error or ""), result.error


# -- bad input: configs and records --------------------------------------------------------------


def cli(config: Path | str, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=cwd or ROOT,
    )


SOURCE_OK = "sources:\n  - name: pure\n    type: oai-pmh\n    url: https://research.example.edu/oai\n"
MALFORMED_CONFIGS = [
    (
        "http:\n  max_response_bytes: -1\n" + SOURCE_OK,
        "http.max_response_bytes: must be greater than 0, got -1",
    ),
    (SOURCE_OK + "    window: forever\n", "sources[0].window: 'forever' is not a duration"),
    (
        "sources:\n  - {name: s, type: scopus, query: 'AFFILORG(\"X\")', api_key: k-123, view: FULL}\n",
        "sources[0].view: 'FULL' is not one of STANDARD, COMPLETE",
    ),
    (
        "sources:\n  - {name: s, type: scopus, query: 'AFFILORG(\"X\")'}\n",
        "sources[0].api_key: give 'api_key' or 'api_keys'",
    ),
    (
        "sources:\n  - {name: cr, type: crossref, filter: {from-index-date: '2020-01-01'}}\n",
        "sources[0].filter.from-index-date: the harvester sets the date-window filters itself"
        " (use 'since' and 'date_field')",
    ),
    ("database: {url: 'sqlite:///h.db', pool: 3}\n" + SOURCE_OK, "database.pool: unknown key"),
]


def test_malformed_configs_through_the_cli(tmp_path: Path) -> None:
    procs = []
    for i, (text, _) in enumerate(MALFORMED_CONFIGS):
        path = tmp_path / f"bad{i}.yaml"
        path.write_text(text, encoding="utf-8")
        procs.append((path, cli(path, "check-config")))
    for (path, proc), (_, expected) in zip(procs, MALFORMED_CONFIGS, strict=True):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 2, (path, err)
        assert out == ""
        assert err.splitlines() == [f"{path}: {expected}"], err


def test_a_bad_filter_value_names_its_key(tmp_path: Path) -> None:
    path = tmp_path / "filter.yaml"
    path.write_text("sources:\n  - {name: cr, type: crossref, filter: {type: {a: 1}}}\n", encoding="utf-8")
    proc = cli(path, "check-config")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    [line] = err.splitlines()
    assert line.startswith(f"{path}: sources[0].filter.type: ") and "more problem" not in line, line


def test_malformed_records_are_quarantined_and_listed_by_status(
    store: Store, tmp_path: Path, db_url: str
) -> None:
    long_id = "oai:repo.example.org:" + "x" * 2100
    bad = [
        OaiRecord("oai:repo.example.org:empty", T0 + dt.timedelta(minutes=3, seconds=1), ""),
        OaiRecord(
            "oai:repo.example.org:marc",
            T0 + dt.timedelta(minutes=12, seconds=1),
            "<marc:record xmlns:marc='http://www.loc.gov/MARC21/slim'><marc:leader>x</marc:leader></marc:record>",
        ),
        OaiRecord(long_id, T0 + dt.timedelta(minutes=20, seconds=1), dc_metadata("Too long an identifier")),
    ]
    with new_server() as server:
        for record in bad:
            server.put(record)
        config = write_config(tmp_path / "q.yaml", db_url, block(SOURCE, "oai-pmh", server.url))
        settings = settings_of(tmp_path, db_url, block(SOURCE, "oai-pmh", server.url))
        with captured() as logs:
            result = run(settings, store, SOURCE)
    assert result.outcome == "succeeded", result.error
    assert (result.stats.inserted, result.stats.quarantined) == (30, 3)
    reasons = {
        e["key"][:2048]: e["reason"] for e in events(logs, "record.quarantined")
    }  # keys are cut at 2048
    assert reasons["oai:repo.example.org:empty"] == (
        "NormalizationError: record without metadata and not marked deleted"
    )
    assert "unsupported metadata format" in reasons["oai:repo.example.org:marc"]
    assert reasons[long_id[:2048]] == "NormalizationError: identifier longer than 2048 characters"
    assert store.load_checkpoint(SOURCE)["through"] == "2024-06-01T12:00:00Z"  # type: ignore[index]

    human, as_json = cli(config, "status"), cli(config, "status", "--json")
    out, err = human.communicate(timeout=60)
    assert human.returncode == 0, err
    assert "30 live, 0 deleted; 3 quarantined" in out
    for key, reason in reasons.items():
        assert f"{SOURCE}  {key}  seen 1x  {reason}" in out
    out, err = as_json.communicate(timeout=60)
    assert as_json.returncode == 0, err
    data = json.loads(out)
    assert data["sources"][SOURCE]["quarantined"] == 3
    assert {(q["key"], q["reason"]) for q in data["quarantine"]} == set(reasons.items())


def test_a_record_with_broken_xml_is_quarantined(store: Store, tmp_path: Path, db_url: str) -> None:
    broken = OaiRecord(
        "oai:repo.example.org:broken",
        T0 + dt.timedelta(minutes=5, seconds=1),
        dc_metadata("placeholder").replace("placeholder", "Salt & pepper"),
    )
    with new_server() as server:
        server.put(broken)
        settings = settings_of(tmp_path, db_url, block(SOURCE, "oai-pmh", server.url), http={"retries": 1})
        results = [run(settings, store, SOURCE) for _ in range(2)]  # a second run is allowed
    assert results[-1].outcome == "succeeded", results[-1].error
    assert [q["key"] for q in store.quarantine_items()] == [broken.identifier]
    assert sum(r.stats.inserted for r in results) == 30
