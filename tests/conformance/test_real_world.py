"""Conformance run over the shared real-world OAI-PMH corpus: zero silent drops.

Requirement: every record in ``$HARVESTER_REAL_WORLD/oai/**/*.xml`` is either stored (live
or deleted) or explicitly rejected (quarantined with a reason). The module is skipped
unless ``HARVESTER_REAL_WORLD`` points at the corpus folder; it never looks for the
corpus on its own::

    HARVESTER_REAL_WORLD=/abs/path/shared/real-world python -m pytest -m conformance tests/conformance

One test per file, by what the file carries:

* ``ListRecords``: the real HTTP path. A tiny local server answers ``Identify`` with a
  synthetic valid Identify (granularity and earliestDatestamp fitted to the file), the
  fresh ``ListRecords`` with the file's exact bytes (and the Content-Type its cassette
  recorded, when there is one), and any ``resumptionToken`` with an empty final page.
  Then :func:`harvester.runner.harvest_source` into a real SQLite store.
* ``GetRecord``: the same parse -> normalize -> store path without HTTP
  (:func:`parse_oai_xml`, :func:`normalize_page`, :meth:`Store.commit_page`).
* Anything else (Identify, ListIdentifiers, ListSets, OAI errors, empty or broken
  bodies): parsing must succeed with zero records or raise one of the harvester's own
  errors; Identify documents are also read through ``OaiPmhSource.identify`` over HTTP.

Expected counts come from the bytes, not from the harvester: a recovering lxml parse and
a namespace-aware regex (the larger wins), cross-checked against the counts SOURCES.md
lists. A summary table is printed at the end of the session (see ``conftest.py``) and
written as JSON (per file in ``tmp_path``, all files in a session temp folder).

Known harvester bugs found by a file are listed in ``KNOWN_BUGS`` and marked
``xfail(strict=True)``: the suite stays green while the bug is visible, and turns red as
soon as the bug is fixed (then remove the entry).
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import shutil
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

import pytest
import yaml
from lxml import etree
from sqlalchemy import select

from harvester.errors import FatalError, InvalidResponse
from harvester.runner import normalize_page
from harvester.settings import Settings, load_settings
from harvester.sources import build_source
from harvester.sources.base import Page, RawItem
from harvester.sources.oai_pmh import OAI_NS, OaiPmhSource, parse_oai_xml
from storage.db import make_engine, upgrade
from storage.models import SourceRecord
from storage.store import Store
from tests.helpers import harvest, oai_source_block, write_config

ENV = "HARVESTER_REAL_WORLD"
SOURCE = "replay"
OWNER = "conformance"
_O = "{" + OAI_NS + "}"

#: Corpus files (relative to ``$HARVESTER_REAL_WORLD/oai``) that show a harvester bug.
#: Each entry becomes ``xfail(strict=True, reason=...)``.
KNOWN_BUGS: dict[str, str] = {}

pytestmark = pytest.mark.conformance


# -- discovery ---------------------------------------------------------------------------------


def _corpus_root() -> Path | None:
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() / "oai" if value else None


def _cases() -> list[Any]:
    root = _corpus_root()
    if root is None:
        return [
            pytest.param(
                None,
                id="corpus-not-configured",
                marks=pytest.mark.skip(reason=f"set {ENV} to the shared real-world corpus folder"),
            )
        ]
    if not root.is_dir():
        return [pytest.param(None, id="corpus-missing")]
    params = []
    for path in sorted(root.rglob("*.xml")):
        rel = path.relative_to(root).as_posix()
        if "_cassettes" in path.relative_to(root).parts:
            continue
        marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[rel])] if rel in KNOWN_BUGS else []
        params.append(pytest.param(rel, id=rel, marks=marks))
    return params or [pytest.param(None, id="corpus-empty")]


# -- what the bytes hold (independent of the harvester) ---------------------------------------

_RECOVER = etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False)
_OAI_PREFIX = re.compile(
    rb"""xmlns(?::([A-Za-z_][\w.-]*))?\s*=\s*["']http://www\.openarchives\.org/OAI/2\.0/["']"""
)
_RECORD_TAG = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?record(?=[\s/>])([^>]*)>")
_DEFAULT_NS = re.compile(rb"""\sxmlns\s*=\s*["']([^"']*)["']""")
_VERBS = ("Identify", "ListRecords", "GetRecord", "ListIdentifiers", "ListSets", "ListMetadataFormats")


def _regex_record_count(body: bytes) -> int:
    """``<record>`` start tags whose prefix (or the default namespace) is bound to OAI 2.0."""
    prefixes = {m.group(1) or b"" for m in _OAI_PREFIX.finditer(body)}
    count = 0
    for m in _RECORD_TAG.finditer(body):
        prefix = m.group(1) or b""
        if prefix not in prefixes:
            continue
        redeclared = _DEFAULT_NS.search(m.group(2)) if not prefix else None
        if redeclared and redeclared.group(1) != OAI_NS.encode():
            continue  # e.g. <record xmlns="http://www.loc.gov/MARC21/slim"> inside <metadata>
        count += 1
    return count


@dataclass
class Expected:
    kind: str  # the OAI verb element, "error:<code>", "empty body" or "unparsable"
    records: int  # <record> elements (max of the recovering parse and the regex)
    lxml_records: int | None
    regex_records: int
    identifiers: list[str | None]  # one per record, stripped, None when missing
    deleted_ids: set[str]
    headers: int  # <header> elements anywhere (ListIdentifiers pages)
    deleted_headers: int
    metadata_prefix: str | None  # from the request echo
    datestamps: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def distinct(self) -> int:
        return len({i for i in self.identifiers if i is not None}) + sum(
            1 for i in self.identifiers if i is None
        )


def expected_of(body: bytes) -> Expected:
    regex_count = _regex_record_count(body)
    if not body.strip():
        return Expected("empty body", 0, None, regex_count, [], set(), 0, 0, None, [])
    try:
        root = etree.fromstring(body, parser=_RECOVER)
    except etree.XMLSyntaxError:
        root = None
    if root is None:
        return Expected(
            "unparsable", regex_count, None, regex_count, [None] * regex_count, set(), 0, 0, None, []
        )
    kind = "unknown"
    for child in root:
        if not isinstance(child.tag, str):
            continue
        local = etree.QName(child).localname
        if child.tag == _O + "error":
            kind = f"error:{child.get('code') or '?'}"
            break
        if local in _VERBS and child.tag == _O + local:
            kind = local
            break
    records = list(root.iter(_O + "record"))
    identifiers: list[str | None] = []
    deleted: set[str] = set()
    for record in records:
        key = (record.findtext(f"{_O}header/{_O}identifier") or "").strip() or None
        identifiers.append(key)
        header = record.find(f"{_O}header")
        if key and header is not None and header.get("status") == "deleted":
            deleted.add(key)
    headers = list(root.iter(_O + "header"))
    request = root.find(f"{_O}request")
    prefix = request.get("metadataPrefix") if request is not None else None
    stamps = [(h.findtext(f"{_O}datestamp") or "").strip() for h in headers]
    expected = Expected(
        kind=kind,
        records=max(len(records), regex_count),
        lxml_records=len(records),
        regex_records=regex_count,
        identifiers=identifiers,
        deleted_ids=deleted,
        headers=len(headers),
        deleted_headers=sum(1 for h in headers if h.get("status") == "deleted"),
        metadata_prefix=prefix.strip() if prefix else None,
        datestamps=[s for s in stamps if s],
    )
    if len(records) != regex_count:
        expected.notes.append(f"record counts differ: recovering lxml {len(records)}, regex {regex_count}")
    return expected


@cache
def _documented_counts(sources_md: Path) -> dict[str, tuple[int, int]]:
    """``folder/file.xml`` -> (records, deleted) as SOURCES.md lists them."""
    out: dict[str, tuple[int, int]] = {}
    if not sources_md.is_file():
        return out
    folder = ""
    for line in sources_md.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^##\s+(\S+)/\s*$", line)
        if heading:
            folder = heading.group(1)
            continue
        row = re.match(r"^\|\s*`([^`]+\.xml)`\s*\|", line)
        counts = re.search(r"\|\s*(\d+)/(\d+)/(\d+)\s*\|", line)
        if row and counts and folder:
            out[f"{folder}/{row.group(1)}"] = (int(counts.group(1)), int(counts.group(2)))
    return out


# -- cassettes (only for the Content-Type a file was served with) ------------------------------


class _CassetteLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader that also reads vcrpy's (Python 2) ``!!python/unicode`` strings."""


_CassetteLoader.add_constructor(
    "tag:yaml.org,2002:python/unicode", lambda loader, node: loader.construct_scalar(node)
)
_CassetteLoader.add_constructor(
    "tag:yaml.org,2002:python/str", lambda loader, node: loader.construct_scalar(node)
)


def _header(headers: dict[str, Any], name: str) -> str | None:
    for key, value in (headers or {}).items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return None


@cache
def _cassette_bodies(folder: Path) -> list[tuple[bytes, int, str | None]]:
    """(body bytes as the corpus extracted them, HTTP status, Content-Type) per interaction."""
    out: list[tuple[bytes, int, str | None]] = []
    for path in sorted((folder / "_cassettes").glob("*.yaml")):
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_CassetteLoader)
        except yaml.YAMLError:
            continue
        for interaction in (data or {}).get("interactions", []):
            response = interaction.get("response") or {}
            body = (response.get("body") or {}).get("string")
            headers = response.get("headers") or {}
            if body is None:
                continue
            raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
            if (_header(headers, "content-encoding") or "").lower() == "gzip" and raw[:2] == b"\x1f\x8b":
                try:
                    raw = gzip.decompress(raw)
                except OSError:
                    continue
            status = int((response.get("status") or {}).get("code") or 200)
            out.append((raw, status, _header(headers, "content-type")))
    return out


def recorded_response(path: Path, body: bytes) -> tuple[int, str | None] | None:
    """The (status, Content-Type) of the cassette interaction whose body is this file."""
    for raw, status, content_type in _cassette_bodies(path.parent):
        if raw == body or (body.strip() and raw.strip() == body.strip()):
            return status, content_type
    return None


# -- a replay server ---------------------------------------------------------------------------


def _stamp(text: str) -> dt.datetime | None:
    try:
        if len(text) == 10:
            return dt.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _envelope(base_url: str, verb: str, inner: str, response_date: str | None = None) -> bytes:
    date = response_date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OAI-PMH xmlns="{OAI_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="{OAI_NS} http://www.openarchives.org/OAI/2.0/OAI-PMH.xsd">'
        f"<responseDate>{date}</responseDate>"
        f'<request verb="{verb}">{escape(base_url)}</request>{inner}</OAI-PMH>'
    ).encode()


def synthetic_identify(base_url: str, name: str, datestamps: list[str]) -> tuple[bytes, str]:
    """A valid Identify fitted to a file: its granularity, an earliestDatestamp before its
    oldest record, and a responseDate after its newest (so one window covers it all)."""
    day = bool(datestamps) and all(len(s) == 10 for s in datestamps)
    granularity = "YYYY-MM-DD" if day else "YYYY-MM-DDThh:mm:ssZ"
    parsed = [p for p in (_stamp(s) for s in datestamps) if p is not None]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    earliest = (min(parsed) if parsed else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) - dt.timedelta(days=1)
    latest = max([now, *parsed]) + dt.timedelta(days=1)
    earliest_text = earliest.strftime("%Y-%m-%d" if day else "%Y-%m-%dT%H:%M:%SZ")
    inner = (
        "<Identify>"
        f"<repositoryName>{escape(name)}</repositoryName>"
        f"<baseURL>{escape(base_url)}</baseURL>"
        "<protocolVersion>2.0</protocolVersion>"
        "<adminEmail>conformance@example.org</adminEmail>"
        f"<earliestDatestamp>{earliest_text}</earliestDatestamp>"
        "<deletedRecord>persistent</deletedRecord>"
        f"<granularity>{granularity}</granularity>"
        "</Identify>"
    )
    return _envelope(base_url, "Identify", inner, latest.strftime("%Y-%m-%dT%H:%M:%SZ")), granularity


class _Handler(BaseHTTPRequestHandler):
    server: _ReplayHttpServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes

    def do_GET(self) -> None:
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        status, content_type, body = self.server.replay.answer(params)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _ReplayHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    replay: ReplayServer


class ReplayServer:
    """Serves one corpus file as the answer to a fresh ListRecords (or to Identify)."""

    def __init__(
        self,
        *,
        name: str,
        datestamps: list[str],
        list_records: bytes | None = None,
        identify: bytes | None = None,
        content_type: str | None = None,
    ) -> None:
        self._httpd = _ReplayHttpServer(("127.0.0.1", 0), _Handler)
        self._httpd.replay = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/oai/request"
        synthetic, self.granularity = synthetic_identify(self.url, name, datestamps)
        self.identify = identify if identify is not None else synthetic
        self.list_records = list_records
        self.content_type = content_type or "text/xml; charset=utf-8"
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="oai-replay", daemon=True
        )

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, params: dict[str, str]) -> tuple[int, str, bytes]:
        with self._lock:
            self.requests.append(params)
        verb = params.get("verb")
        xml = "text/xml; charset=utf-8"
        if verb == "Identify":
            return 200, self.content_type if self.list_records is None else xml, self.identify
        if verb == "ListRecords" and "resumptionToken" in params:
            inner = "<ListRecords><resumptionToken/></ListRecords>"
            return 200, xml, _envelope(self.url, "ListRecords", inner)
        if verb == "ListRecords" and self.list_records is not None:
            return 200, self.content_type, self.list_records
        if verb == "ListRecords":
            inner = '<error code="noRecordsMatch">nothing to replay</error>'
            return 200, xml, _envelope(self.url, "ListRecords", inner)
        inner = f'<error code="badVerb">{escape(str(verb))} is not replayed here</error>'
        return 200, xml, _envelope(self.url, str(verb), inner)

    def fresh_list_requests(self) -> list[dict[str, str]]:
        return [r for r in self.requests if r.get("verb") == "ListRecords" and "resumptionToken" not in r]


# -- stores and settings -----------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (migrating 30 times costs seconds)."""
    path = tmp_path_factory.mktemp("conformance-db") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return path


@pytest.fixture
def store(migrated_sqlite: Path, tmp_path: Path) -> Iterator[Store]:
    db = tmp_path / "harvester.db"
    shutil.copyfile(migrated_sqlite, db)
    s = Store.open(f"sqlite:///{db}")
    yield s
    s.close()


def settings_for(tmp_path: Path, url: str, metadata_prefix: str | None) -> Settings:
    options: dict[str, Any] = {"window": "36500d"}
    if metadata_prefix:
        options["metadata_prefix"] = json.dumps(metadata_prefix)
    path = write_config(
        tmp_path / "harvester.yaml",
        f"sqlite:///{tmp_path / 'harvester.db'}",
        oai_source_block(SOURCE, url, **options),
    )
    return load_settings(path, env={})


# -- the test ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the harvester made of one file."""

    path: str  # "http" or "direct"
    outcome: str
    error: str | None = None
    fetched: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _harvest_over_http(
    rel: str, path: Path, body: bytes, exp: Expected, store: Store, tmp_path: Path
) -> Outcome:
    recorded = recorded_response(path, body)
    content_type = recorded[1] if recorded else None
    with ReplayServer(
        name=f"replay of {rel}", datestamps=exp.datestamps, list_records=body, content_type=content_type
    ) as server:
        settings = settings_for(tmp_path, server.url, exp.metadata_prefix)
        result = harvest(settings, store, name=SOURCE, owner=OWNER)
    fresh = server.fresh_list_requests()
    extra = {
        "granularity": server.granularity,
        "content_type": content_type,
        "requests": server.requests,
        "pages": result.stats.pages,
    }
    outcome = Outcome("http", result.outcome, result.error, result.stats.fetched, extra)
    if result.outcome == "succeeded" and len(fresh) != 1:
        outcome.outcome = "failed"
        outcome.error = f"expected exactly one fresh ListRecords request (one window), got {fresh}"
    elif fresh and exp.metadata_prefix and fresh[0].get("metadataPrefix") != exp.metadata_prefix:
        outcome.outcome = "failed"
        outcome.error = (
            f"asked for metadataPrefix {fresh[0].get('metadataPrefix')!r}, not {exp.metadata_prefix!r}"
        )
    return outcome


def _store_directly(body: bytes, where: str, exp: Expected, store: Store, tmp_path: Path) -> Outcome:
    settings = settings_for(tmp_path, "http://127.0.0.1:9/unused", exp.metadata_prefix)
    source = build_source(settings.source(SOURCE), settings.http)
    assert store.acquire_lease(SOURCE, OWNER, 60)
    run_id = store.start_run(SOURCE, OWNER)
    outcome = Outcome("direct", "running")
    try:
        tree = parse_oai_xml(body, where)
        container = tree.find(f"{_O}GetRecord")
        if container is None:
            raise InvalidResponse(f"GetRecord response from {where} has no <GetRecord> element")
        items = []
        for element in container.iterfind(f"{_O}record"):  # as OaiPmhSource._items builds them
            key = element.findtext(f"{_O}header/{_O}identifier")
            raw = etree.tostring(element, encoding="unicode")
            items.append(RawItem(raw=raw, parsed=element, key=key.strip() if key else None))
        incoming, quarantined = normalize_page(source, Page(items, None))
        stats = store.commit_page(
            SOURCE, incoming, run_id=run_id, owner=OWNER, quarantined=quarantined, lease_ttl=60
        )
        outcome.outcome, outcome.fetched = "succeeded", stats.fetched
    except Exception as exc:  # reported, and asserted on, by the caller
        outcome.outcome, outcome.error = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        store.finish_run(run_id, outcome.outcome, outcome.error)
        store.release_lease(SOURCE, OWNER)
        source.close()
    return outcome


def _read_back(store: Store) -> tuple[dict[str, bool], list[str], list[dict[str, Any]]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(SourceRecord.key, SourceRecord.deleted, SourceRecord.doi).where(
                SourceRecord.source == SOURCE
            )
        ).all()
    stored = {row.key: bool(row.deleted) for row in rows}
    dois = sorted(row.doi for row in rows if row.doi and not row.deleted)
    quarantine = store.quarantine_items(SOURCE, limit=1_000_000)
    return stored, dois, quarantine


def _group_reasons(quarantine: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(re.sub(r"\s+", " ", q["reason"] or "<no reason>")[:160] for q in quarantine))


def _check_recordless(body: bytes, where: str, exp: Expected, tmp_path: Path) -> dict[str, Any]:
    """Parse must give zero records or one of our errors; Identify is also read over HTTP."""
    report: dict[str, Any] = {}
    try:
        tree = parse_oai_xml(body, where)
    except (InvalidResponse, FatalError) as exc:
        report["result"] = f"rejected: {type(exc).__name__}"
        report["detail"] = str(exc)[:300]
        return report
    records = list(tree.iter(f"{_O}record"))
    assert not records, f"{where}: the strict parse found {len(records)} records the corpus count missed"
    error = tree.find(f"{_O}error")
    if error is not None:
        report["result"] = f"parsed: OAI error {error.get('code')!r}"
        return report
    report["result"] = f"parsed: 0 records ({exp.headers} headers, {exp.deleted_headers} deleted)"
    if exp.kind == "Identify":
        with ReplayServer(name=where, datestamps=[], identify=body) as server:
            settings = settings_for(tmp_path, server.url, None)
            source = build_source(settings.source(SOURCE), settings.http)
            assert isinstance(source, OaiPmhSource)
            try:
                identity = source.identify()
            except (InvalidResponse, FatalError) as exc:
                report["result"] += f"; identify() -> {type(exc).__name__}"
                report["detail"] = str(exc)[:300]
            else:
                earliest = identity.earliest.isoformat() if identity.earliest else None
                report["result"] += f"; identify() -> granularity {identity.granularity}, earliest {earliest}"
            finally:
                source.close()
    return report


@pytest.mark.parametrize("rel", _cases())
def test_every_record_is_stored_or_quarantined(
    rel: str | None, store: Store, tmp_path: Path, conformance_rows: list[dict[str, Any]]
) -> None:
    root = _corpus_root()
    if rel is None or root is None:
        pytest.fail(f"{ENV}={os.environ.get(ENV)!r} holds no oai/*.xml corpus files")
    path = root / rel
    body = path.read_bytes()
    exp = expected_of(body)
    documented = _documented_counts(root / "SOURCES.md").get(rel)
    row: dict[str, Any] = {
        "file": rel,
        "kind": exp.kind,
        "bytes": len(body),
        "expected": exp.records,
        "documented_rec_del": list(documented) if documented else None,
        "notes": list(exp.notes),
        "result": "error (see the test report)",
    }
    try:
        if documented is not None:
            assert (exp.records, len(exp.deleted_ids)) == documented, (
                f"{rel}: counted {exp.records} records / {len(exp.deleted_ids)} deleted, "
                f"SOURCES.md says {documented[0]} / {documented[1]}"
            )
        if exp.distinct != exp.records:
            row["notes"].append(f"{exp.records} <record> elements, {exp.distinct} distinct identifiers")
        if exp.records == 0:
            row["expected"] = None
            row.update(_check_recordless(body, rel, exp, tmp_path))
            return
        _check_records(rel, path, body, exp, store, tmp_path, row)
    finally:
        conformance_rows.append(row)
        (tmp_path / "conformance.json").write_text(
            json.dumps(row, indent=2, ensure_ascii=False, default=str), encoding="utf-8"
        )


def _check_records(
    rel: str, path: Path, body: bytes, exp: Expected, store: Store, tmp_path: Path, row: dict[str, Any]
) -> None:
    if exp.kind == "ListRecords":
        outcome = _harvest_over_http(rel, path, body, exp, store, tmp_path)
    elif exp.kind == "GetRecord":
        outcome = _store_directly(body, rel, exp, store, tmp_path)
    else:
        pytest.fail(f"{rel}: {exp.records} <record> elements in a {exp.kind} response; no path for it")
    stored, dois, quarantine = _read_back(store)
    live = sum(1 for d in stored.values() if not d)
    deleted = sum(1 for d in stored.values() if d)
    reasons = _group_reasons(quarantine)
    row.update(
        {
            "path": outcome.path,
            "outcome": outcome.outcome,
            "error": outcome.error,
            "fetched": outcome.fetched,
            "stored_live": live,
            "stored_deleted": deleted,
            "quarantined": len(quarantine),
            "quarantine_reasons": reasons,
            "dois_found": len(dois),
            "dois": dois,
            "result": f"{outcome.path}: {outcome.outcome}",
            **{k: v for k, v in outcome.extra.items() if k != "requests"},
        }
    )

    assert outcome.outcome == "succeeded", f"{rel}: run {outcome.outcome}: {outcome.error}"
    assert all((q["reason"] or "").strip() for q in quarantine), f"{rel}: quarantine rows without a reason"

    target = exp.records
    note = ""
    if exp.distinct != exp.records:
        target = exp.distinct
        note = (
            f" (the file lists {exp.records} <record> elements but only {exp.distinct} distinct "
            "identifiers; duplicates count once)"
        )
    accounted = live + deleted + len(quarantine)
    known = {i for i in exp.identifiers if i is not None}
    quarantined_keys = {q["key"].strip() for q in quarantine if q["key"]}
    missing = sorted(known - set(stored) - quarantined_keys)
    assert accounted == target, (
        f"{rel}: {target} records expected{note}, but {live} stored live + {deleted} stored deleted "
        f"+ {len(quarantine)} quarantined = {accounted}; silently dropped: {missing[:10]}"
    )
    assert not missing, f"{rel}: identifiers neither stored nor quarantined: {missing[:10]}"
    wrong_state = sorted(k for k, is_deleted in stored.items() if is_deleted != (k in exp.deleted_ids))
    assert not wrong_state, f"{rel}: stored with the wrong deleted flag: {wrong_state[:10]}"
    if outcome.fetched is not None:
        assert outcome.fetched == exp.records, (
            f"{rel}: the run counted {outcome.fetched} fetched records, the file holds {exp.records}"
        )
