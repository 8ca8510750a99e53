"""Shared machinery of the fault suite (``tests/test_faults_*.py`` and friends).

The pattern of every fault test:

1. a fault-free reference: the same server contents harvested once into a SQLite store
   (module-scoped, see :func:`reference_snapshot`), reduced to a :func:`snapshot`:
   source records ``(source, key, raw hash, deleted)`` and works ``(doi, data, deleted)``;
2. the harvest WITH the fault (and, for faults that legitimately end a run, once more
   without it) into the test's store, on SQLite and PostgreSQL;
3. the snapshots compared EXACTLY; the checkpoint checked after every committed page by
   :class:`CheckpointGuard` (it never claims a record the store does not hold as the
   fault-free harvest would); the log events checked to name what happened.

Snapshots replace the test server's URL by ``<server>`` before hashing, because Scopus
echoes its own URL in every entry (``prism:url``, ``link``) and each test has its own port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, MetaData, select
from structlog.testing import capture_logs

from harvester.runner import RunResult, harvest_source
from harvester.settings import Settings, load_settings
from harvester.sources import build_source
from storage.db import make_engine, upgrade
from storage.models import SourceRecord, Work
from storage.store import Store

Snapshot = dict[str, Any]

#: Fast HTTP: tests never sleep for real backoff; Retry-After values in tests are 0-1 s.
FAST_HTTP: dict[str, Any] = {
    "user_agent": '"harvester-fault-tests/1.0 (mailto:tests@example.org)"',
    "timeout": 5,
    "total_timeout": 20,
    "retries": 3,
    "backoff": 0.01,
    "backoff_max": 0.05,
    "max_retry_after": 5,
}


def write_config(
    path: Path,
    db_url: str,
    sources: str,
    *,
    http: Mapping[str, Any] | None = None,
    level: str = "DEBUG",
    precedence: str = "",
    busy_timeout: float | None = None,
) -> Path:
    """A config file; ``http`` overrides keys of :data:`FAST_HTTP` (e.g. ``total_timeout``)."""
    settings = {**FAST_HTTP, **(http or {})}
    http_lines = "\n".join(f"  {k}: {v}" for k, v in settings.items())
    merge = f"merge:\n  precedence: [{precedence}]\n" if precedence else ""
    busy = f"  busy_timeout: {busy_timeout}\n" if busy_timeout is not None else ""
    text = (
        f"database:\n  url: {db_url}\n{busy}"
        f"logging:\n  level: {level}\n"
        f"http:\n{http_lines}\n"
        f"{merge}"
        f"sources:\n{textwrap.indent(textwrap.dedent(sources).strip(), '  ')}\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


def block(name: str, type_: str, url: str, **options: Any) -> str:
    """One ``sources`` entry (values are written as given; quote them yourself if needed)."""
    lines = [f"- name: {name}", f"  type: {type_}", f"  url: {url}"]
    lines += [f"  {k}: {v}" for k, v in options.items()]
    return "\n".join(lines)


def settings_of(tmp_path: Path, db_url: str, sources: str, **kw: Any) -> Settings:
    return load_settings(write_config(tmp_path / "faults.yaml", db_url, sources, **kw))


def run(settings: Settings, store: Store, name: str, **kw: Any) -> RunResult:
    """One harvest of ``name``, in process, exactly as the CLI and the daemon run it."""
    source = build_source(settings.source(name), settings.http, kw.pop("stop", None))
    return harvest_source(source, store, owner=kw.pop("owner", "fault-tests"), **kw)


# -- snapshots -----------------------------------------------------------------------------


def _replaced(text: str, replace: Mapping[str, str]) -> str:
    for old, new in replace.items():
        text = text.replace(old, new)
    return text


def stored_hashes(engine: Engine, replace: Mapping[str, str] | None = None) -> dict[tuple[str, str], str]:
    """(source, key) -> hash of the stored raw payload (server URL replaced)."""
    replace = replace or {}
    with engine.connect() as conn:
        rows = conn.execute(select(SourceRecord.source, SourceRecord.key, SourceRecord.raw)).all()
    return {
        (r.source, r.key): hashlib.sha256(
            _replaced(r.raw, replace).encode("utf-8", "surrogatepass")
        ).hexdigest()
        for r in rows
    }


def snapshot(engine: Engine, replace: Mapping[str, str] | None = None) -> Snapshot:
    """Everything the store holds that a harvest decides, without ids and timestamps."""
    replace = replace or {}
    with engine.connect() as conn:
        records = conn.execute(
            select(SourceRecord.source, SourceRecord.key, SourceRecord.raw, SourceRecord.deleted).order_by(
                SourceRecord.source, SourceRecord.key
            )
        ).all()
        works = conn.execute(select(Work.doi, Work.data, Work.deleted)).all()
    return {
        "records": [
            (
                r.source,
                r.key,
                hashlib.sha256(_replaced(r.raw, replace).encode("utf-8", "surrogatepass")).hexdigest(),
                bool(r.deleted),
            )
            for r in records
        ],
        "works": sorted(
            _replaced(json.dumps([w.doi, w.data, bool(w.deleted)], sort_keys=True), replace) for w in works
        ),
    }


def everything_stored(store: Store) -> str:
    """Every value of every table, as one string (to search it for leaks)."""
    meta = MetaData()
    meta.reflect(store.engine)
    parts: list[str] = []
    with store.engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def url_snapshot(url: str, replace: Mapping[str, str] | None = None) -> Snapshot:
    engine = make_engine(url)
    try:
        return snapshot(engine, replace)
    finally:
        engine.dispose()


def reference_snapshot(
    tmp_dir: Path,
    sources: Callable[[str], str],
    server_url: str,
    names: tuple[str, ...],
    runs: int = 1,
) -> Snapshot:
    """Harvest ``names`` fault-free ``runs`` times into a fresh SQLite store and snapshot it.

    ``sources(url)`` gives the config's ``sources`` block for a server at ``url``.
    """
    url = f"sqlite:///{tmp_dir / 'reference.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    settings = load_settings(write_config(tmp_dir / "reference.yaml", url, sources(server_url)))
    store = Store.open(url)
    try:
        for _ in range(runs):
            for name in names:
                result = run(settings, store, name)
                assert result.outcome == "succeeded", (name, result.error)
        return snapshot(store.engine, {server_url: "<server>"})
    finally:
        store.close()


def assert_same(actual: Snapshot, expected: Snapshot) -> None:
    """Exact equality, with a readable difference when it fails."""
    if actual == expected:
        return
    got, want = set(actual["records"]), set(expected["records"])
    missing = sorted(want - got)[:5]
    extra = sorted(got - want)[:5]
    works_missing = sorted(set(expected["works"]) - set(actual["works"]))[:2]
    works_extra = sorted(set(actual["works"]) - set(expected["works"]))[:2]
    raise AssertionError(
        f"store differs from the fault-free harvest: {len(actual['records'])} records "
        f"(expected {len(expected['records'])}), missing {missing}, unexpected {extra}; "
        f"{len(actual['works'])} works (expected {len(expected['works'])}), "
        f"missing {works_missing}, unexpected {works_extra}"
    )


# -- the checkpoint invariant --------------------------------------------------------------


class CheckpointGuard:
    """After every committed page, the checkpoint may only claim records the store holds.

    ``claimed(state)`` names the (source, key) pairs the stored checkpoint ``state`` says are
    done (e.g. every OAI record with a datestamp up to ``through``); each must be stored with
    the raw payload of the fault-free harvest (``expected``: (source, key) -> raw hash).
    Violations are collected (the check runs inside the harvest) and asserted by the test.
    """

    def __init__(
        self,
        store: Store,
        source: str,
        expected: Mapping[tuple[str, str], str],
        claimed: Callable[[Mapping[str, Any] | None], set[tuple[str, str]]],
        replace: Mapping[str, str] | None = None,
    ) -> None:
        self.store, self.source, self.expected, self.claimed = store, source, expected, claimed
        self.replace = dict(replace or {})
        self.violations: list[str] = []
        self.checks = 0
        self._commit = store.commit_page

        def commit_page(*args: Any, **kwargs: Any) -> Any:
            stats = self._commit(*args, **kwargs)
            self.check()
            return stats

        store.commit_page = commit_page  # type: ignore[method-assign]

    def check(self) -> None:
        self.checks += 1
        state = self.store.load_checkpoint(self.source)
        stored = stored_hashes(self.store.engine, self.replace)
        for pair in sorted(self.claimed(state)):
            if stored.get(pair) != self.expected.get(pair):
                self.violations.append(f"checkpoint {state} claims {pair}, which is not stored as expected")
                return

    def assert_clean(self) -> None:
        self.check()
        assert not self.violations, self.violations[:3]


def expected_hashes(reference: Snapshot) -> dict[tuple[str, str], str]:
    return {(r[0], r[1]): r[2] for r in reference["records"]}


# -- logs -----------------------------------------------------------------------------------


@contextlib.contextmanager
def captured() -> Iterator[list[dict[str, Any]]]:
    """Log events as dicts, with the run's bound ``run_id``/``source``."""
    with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
        yield logs


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def names(logs: list[dict[str, Any]]) -> list[str]:
    return [e["event"] for e in logs]


# -- runs that must not hang -------------------------------------------------------------------


class Within:
    """Run ``fn`` in a thread and wait at most ``seconds``: a hang fails the test quickly
    instead of stalling the suite. ``done`` says whether it finished; ``value`` is its result
    (or its exception is re-raised by :meth:`get`)."""

    def __init__(self, seconds: float, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.value = fn()
            except BaseException as exc:  # handed to the test
                self.error = exc

        self.thread = threading.Thread(target=target, name="within", daemon=True)
        started = time.monotonic()
        self.thread.start()
        self.thread.join(seconds)
        self.seconds = time.monotonic() - started
        self.done = not self.thread.is_alive()

    def get(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value

    def join(self, seconds: float = 30) -> None:
        """After the test unblocked whatever hung (e.g. stopped the server)."""
        self.thread.join(seconds)


# -- one test's harvests --------------------------------------------------------------------


class Harvest:
    """The harvests of one fault test against ``server``: config, checkpoint guard, logs.

    Calling it runs one harvest of ``source`` (``http`` overrides :data:`FAST_HTTP`, other
    keywords become source options) and returns the :class:`RunResult`; every log event of
    every call is kept in ``logs``. :meth:`assert_complete` compares the store with the
    fault-free ``reference`` and checks the checkpoint invariant once more.
    """

    def __init__(
        self,
        *,
        tmp_path: Path,
        db_url: str,
        server: Any,
        store: Store,
        reference: Snapshot,
        source: str,
        sources: Callable[..., str],
        claimed: Callable[[Mapping[str, Any] | None], set[tuple[str, str]]],
    ) -> None:
        self.tmp_path, self.db_url, self.store, self.reference = tmp_path, db_url, store, reference
        self.source, self.sources = source, sources
        self.server = server
        self.guard = CheckpointGuard(store, source, expected_hashes(reference), claimed, self.replace)
        self.logs: list[dict[str, Any]] = []

    @property
    def replace(self) -> dict[str, str]:
        return {self.server.url: "<server>"}

    def use(self, server: Any) -> None:
        """Harvest from another server (same contents, e.g. built with other options)."""
        self.server = server
        self.guard.replace = self.replace

    def __call__(self, http: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
        settings = settings_of(
            self.tmp_path, self.db_url, self.sources(self.server.url, **options), http=http
        )
        with captured() as logs:
            result = run(settings, self.store, self.source)
        self.logs += logs
        self.guard.check()
        return result

    def snapshot(self) -> Snapshot:
        return snapshot(self.store.engine, self.replace)

    def assert_complete(self) -> None:
        assert_same(self.snapshot(), self.reference)
        self.guard.assert_clean()
