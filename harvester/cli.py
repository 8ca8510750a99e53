"""The ``harvester`` command (see the operator contract): thin wrappers, no logic.

Command output (exports, ``show``, ``status``) goes to stdout, log lines to stderr.
Exit codes: 0 ok; 1 a source failed / a DOI is unknown; 2 the config is invalid.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import click
import structlog

from harvester import __version__
from harvester.doi import extract_doi, strict_doi
from harvester.export import FORMATS
from harvester.logs import configure_logging, register_secrets
from harvester.progress import harvest_progress
from harvester.runner import RunResult, harvest_source
from harvester.settings import ConfigError, Settings, load_settings
from harvester.sources import build_source
from storage.source_state import all_quotas
from storage.store import Store, default_owner

log = structlog.get_logger()

DEFAULT_CONFIG = "config/harvester.yaml"


class Context:
    def __init__(self, config_path: str) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            try:
                self._settings = load_settings(self.config_path)
            except ConfigError as exc:
                click.echo(str(exc), err=True)
                sys.exit(2)
            configure_logging(self._settings.logging.level, self._settings.logging.format)
            register_secrets(self._settings.secrets())
        return self._settings

    def store(self, *, upgrade: bool = False) -> Store:
        merge = self.settings.merge
        store = Store.open(
            self.settings.database.url,
            merge.precedence,
            match_without_doi=merge.match_without_doi,
            busy_timeout=self.settings.database.busy_timeout,
        )
        if upgrade:
            revision = store.upgrade()
            log.info("db.upgraded", revision=revision)
        return store


pass_ctx = click.make_pass_decorator(Context)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Config file (default: $HARVESTER_CONFIG, else {DEFAULT_CONFIG}).",
)
@click.version_option(__version__, prog_name="harvester")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """Harvest scholarly metadata (OAI-PMH, Crossref, Scopus) into one deduplicated store."""
    ctx.obj = Context(config_path or os.environ.get("HARVESTER_CONFIG") or DEFAULT_CONFIG)


@main.command("check-config")
@pass_ctx
def check_config(ctx: Context) -> None:
    """Validate the config and print each source with its schedule."""
    settings = ctx.settings
    click.echo(f"{ctx.config_path}: ok")
    click.echo(f"database: {_safe_url(settings.database.url)}")
    for source in settings.sources:
        schedule = source.schedule
        when = f"every {_duration(schedule.every)}" if schedule.every else f"cron {schedule.cron!r} (UTC)"
        state = "" if source.enabled else "  (disabled)"
        click.echo(f"source {source.name}: {source.type} {getattr(source, 'url', '')}  {when}{state}")
    if settings.merge.precedence:
        click.echo(f"merge precedence: {', '.join(settings.merge.precedence)}")


@main.group("db")
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply the Alembic migrations."""
    store = ctx.store(upgrade=True)
    store.close()


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        log.info("harvest.stopping", signal=signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@main.command("harvest")
@click.argument("names", nargs=-1)
@pass_ctx
def harvest(ctx: Context, names: tuple[str, ...]) -> None:
    """Harvest the named sources (default: all enabled) once, now, and exit."""
    settings = ctx.settings
    known = {s.name for s in settings.sources}
    for name in names:
        if name not in known:
            click.echo(f"{ctx.config_path}: sources: no source named {name!r}", err=True)
            sys.exit(2)
    chosen = [settings.source(n) for n in names] if names else list(settings.enabled_sources())
    store = ctx.store(upgrade=True)
    owner = default_owner()
    store.mark_stale_runs_interrupted()
    results: list[RunResult] = []
    with _stop_on_signals() as stop, harvest_progress() as bars:
        if bars.active and sys.stderr.isatty():  # one terminal: log lines go above the bars
            configure_logging(settings.logging.level, settings.logging.format, stream=sys.stderr)
        for source_settings in chosen:
            if stop.is_set():
                break
            try:
                source = build_source(source_settings, settings.http, stop)
                results.append(
                    harvest_source(
                        source, store, owner=owner, stop=stop, progress=bars.source(source_settings.name)
                    )
                )
            except Exception as exc:  # noqa: BLE001 - one failing source never stops the others
                log.error("harvest.failed", source=source_settings.name, error=f"{type(exc).__name__}: {exc}")
                results.append(RunResult(source_settings.name, "failed", error=str(exc)))
    store.close()
    failed = [r for r in results if r.outcome == "failed"]
    interrupted = stop.is_set()
    sys.exit(1 if failed or interrupted else 0)


@main.command("run")
@pass_ctx
def run(ctx: Context) -> None:
    """The daemon: every enabled source on its schedule until SIGTERM/SIGINT."""
    from harvester.daemon import Daemon  # noqa: PLC0415 - APScheduler only for this command

    settings = ctx.settings
    store = ctx.store(upgrade=True)
    store.mark_stale_runs_interrupted()
    code = Daemon(settings, store, default_owner()).run()
    store.close()
    sys.exit(code)


@main.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--conflicts",
    is_flag=True,
    help="List the identity conflicts instead: records with different DOIs sharing an identifier.",
)
@pass_ctx
def status(ctx: Context, as_json: bool, conflicts: bool) -> None:
    """Per source: last run, checkpoint, record counts, quarantine."""
    settings = ctx.settings
    store = ctx.store(upgrade=False)
    if conflicts:
        found = store.identity_conflicts()
        store.close()
        if as_json:
            click.echo(json.dumps({"conflicts": found}, indent=2, sort_keys=True, ensure_ascii=False))
        else:
            _print_conflicts(found, sys.stdout)
        return
    data = store.status()
    for source in settings.sources:  # configured sources that never ran are shown too
        data["sources"].setdefault(
            source.name,
            {
                "last_run": None,
                "last_success": None,
                "checkpoint": None,
                "records": {"live": 0, "deleted": 0},
                "quarantined": 0,
                "busy": False,
            },
        )
    for name, quotas in all_quotas(store).items():
        if name in data["sources"]:
            data["sources"][name]["quota"] = quotas
    quarantine = store.quarantine_items(limit=20)
    store.close()
    if as_json:
        data["quarantine"] = quarantine
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    _print_status(data, quarantine, sys.stdout)


def _print_conflicts(conflicts: list[dict[str, Any]], out: TextIO) -> None:
    """One paragraph per conflict: the identifier, then both records and their DOIs."""
    out.write(f"identity conflicts: {len(conflicts)} (each record stays with its DOI)\n")
    for c in conflicts:
        mine, other = c["record"], c["other"]
        out.write(
            f"\n{c['scheme']}={c['value']}  first seen {c['first_seen']}, last seen {c['last_seen']}\n"
            f"  {mine['source']}  {mine['key']}  doi {mine['doi'] or '-'}\n"
            f"  {other['source']}  {other['key']}  doi {other['doi'] or '-'}\n"
        )


def _print_status(data: dict[str, Any], quarantine: list[dict[str, Any]], out: TextIO) -> None:
    works = data["works"]
    out.write(f"works: {works['live']} live ({works['with_doi']} with DOI), {works['deleted']} deleted\n")
    for name, info in sorted(data["sources"].items()):
        out.write(f"\n{name}{'  [harvesting now]' if info['busy'] else ''}\n")
        run = info["last_run"]
        if run:
            out.write(
                f"  last run     {run['outcome']}  {run['started_at']} -> {run['finished_at'] or '...'}\n"
                f"  counters     fetched={run['fetched']} inserted={run['inserted']} "
                f"updated={run['updated']} "
                f"unchanged={run['unchanged']} deleted={run['deleted']} quarantined={run['quarantined']} "
                f"pages={run['pages']}\n"
            )
            if run["error"]:
                out.write(f"  error        {run['error']}\n")
        else:
            out.write("  last run     never\n")
        out.write(f"  last success {info['last_success'] or 'never'}\n")
        cp = info["checkpoint"]
        if cp:
            token = " (resumption token stored)" if cp.get("token") else ""
            out.write(f"  checkpoint   through {cp.get('through') or '-'}{token}\n")
        for quota in info.get("quota", []):
            left = f"{quota['remaining']}/{quota['limit']} left"
            state = "EXHAUSTED" if quota["exhausted"] else left
            resets = quota["reset_at"]
            out.write(f"  quota        {quota['api']} key {quota['key']}: {state}, resets {resets}\n")
        out.write(
            f"  records      {info['records']['live']} live, {info['records']['deleted']} deleted; "
            f"{info['quarantined']} quarantined\n"
        )
    if quarantine:
        out.write("\nquarantine (most recent)\n")
        for item in quarantine:
            out.write(f"  {item['source']}  {item['key'] or '-'}  seen {item['seen']}x  {item['reason']}\n")


def _normalize_cli_doi(value: str) -> str:
    doi = strict_doi(value) or extract_doi(value)
    if doi is None:
        raise click.BadParameter(f"{value!r} is not a DOI")
    return doi


@main.command("show")
@click.argument("what")
@pass_ctx
def show(ctx: Context, what: str) -> None:
    """A work as JSON: merged fields, per-field provenance, its source records and why each is there.

    WHAT is a DOI (any spelling), a work id, or a source record as SOURCE:KEY
    (``repo:oai:repo.example.org:42``), which shows the record's work: the way to a
    work without a DOI.
    """
    settings = ctx.settings
    store = ctx.store(upgrade=False)
    source, _, key = what.partition(":")
    normalized = None
    if what.isdigit():
        work = store.work_by_id(int(what))
        label = f"id {what}"
    elif (normalized := strict_doi(what)) is not None:
        work = store.work_by_doi(normalized)
        label = f"DOI {normalized!r}"
    elif key and source in {s.name for s in settings.sources}:
        work = store.work_of_record(source, key)
        label = f"record {key!r} of {source}"
    else:
        normalized = extract_doi(what)
        work = store.work_by_doi(normalized) if normalized else None
        label = f"DOI {normalized or what!r}"
    store.close()
    if work is None:
        click.echo(f"no work with {label}", err=True)
        sys.exit(1)
    click.echo(json.dumps(work, indent=2, ensure_ascii=False))


@main.command("reprocess")
@click.option(
    "--source", "source_name", default=None, help="Only this source (default: every configured one)."
)
@pass_ctx
def reprocess(ctx: Context, source_name: str | None) -> None:
    """Normalize the stored raw records again with the current code and recompute the works.

    No network request is made. Records whose normalized form is unchanged write nothing;
    running it twice changes nothing the second time. Exit 1 if a source failed or was
    being harvested by another process (it is skipped), else 0.
    """
    from harvester.reprocess import reprocess_source  # noqa: PLC0415

    settings = ctx.settings
    if source_name is not None and source_name not in {s.name for s in settings.sources}:
        click.echo(f"{ctx.config_path}: sources: no source named {source_name!r}", err=True)
        sys.exit(2)
    chosen = [settings.source(source_name)] if source_name else list(settings.sources)
    store = ctx.store(upgrade=True)
    if source_name is None:
        for name in sorted(set(store.record_sources()) - {s.name for s in settings.sources}):
            log.warning(
                "reprocess.skipped", source=name, reason="not in the config, so its normalizer is unknown"
            )
    owner = default_owner()
    outcomes: list[str] = []
    with _stop_on_signals() as stop:
        for source_settings in chosen:
            if stop.is_set():
                break
            source = build_source(source_settings, settings.http, stop)
            outcomes.append(reprocess_source(source, store, owner=owner, stop=stop).outcome)
    store.close()
    sys.exit(0 if all(o == "succeeded" for o in outcomes) and not stop.is_set() else 1)


@main.command("export")
@click.option("--format", "fmt", type=click.Choice(sorted(FORMATS)), required=True)
@click.option("--doi", "dois", multiple=True, help="Only these DOIs (any spelling); repeatable.")
@click.option("--source", "source_name", default=None, help="Only works with a live record from this source.")
@click.option("--since", "since", default=None, help="Only works changed since this date (YYYY-MM-DD, UTC).")
@click.option("--include-deleted", is_flag=True, help='Also tombstoned works, marked "deleted": true.')
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None)
@pass_ctx
def export(
    ctx: Context,
    fmt: str,
    dois: tuple[str, ...],
    source_name: str | None,
    since: str | None,
    include_deleted: bool,
    output: str | None,
) -> None:
    """Write the live deduplicated works (streamed, in id order)."""
    wanted = [_normalize_cli_doi(d) for d in dois] if dois else None
    since_dt = None
    if since:
        try:
            since_dt = dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC)
        except ValueError:
            raise click.BadParameter(f"{since!r} is not a date (YYYY-MM-DD)", param_hint="--since") from None
    store = ctx.store(upgrade=False)
    works = store.iter_works(dois=wanted, source=source_name, since=since_dt, include_deleted=include_deleted)
    writer = FORMATS[fmt]
    if output:
        tmp = Path(f"{output}.tmp")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = writer(works, out)
        tmp.replace(output)
    else:
        count = writer(works, sys.stdout)
        sys.stdout.flush()
    store.close()
    log.info("export.finished", format=fmt, works=count, output=output or "stdout")


def _duration(value: dt.timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    return make_url(url).render_as_string(hide_password=True)


@main.command("health")
@pass_ctx
def health(ctx: Context) -> None:
    """Exit 0 when the daemon is healthy (container HEALTHCHECK), 1 with the reason otherwise.

    With ``metrics`` configured, asks the running daemon's ``/healthz`` (scheduler running
    and database answering); without, checks that the database answers.
    """
    settings = ctx.settings
    problem: str | None = None
    try:
        if settings.metrics is not None:
            import httpx  # noqa: PLC0415

            host = "127.0.0.1" if settings.metrics.host in ("0.0.0.0", "::") else settings.metrics.host  # noqa: S104
            response = httpx.get(f"http://{host}:{settings.metrics.port}/healthz", timeout=5)
            if response.status_code != 200:
                problem = response.text.strip() or f"HTTP {response.status_code}"
        else:
            from sqlalchemy import text  # noqa: PLC0415

            store = ctx.store(upgrade=False)
            try:
                with store.engine.connect() as conn:
                    conn.execute(text("SELECT 1"))
            finally:
                store.close()
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        click.echo(f"unhealthy: {problem}", err=True)
        sys.exit(1)
    click.echo("healthy")
