"""Engines and migrations for SQLite (embedded default) and PostgreSQL (production).

SQLite is set up for a daemon that shares its file with CLI readers and other
harvester processes: WAL (readers never block the writer), ``foreign_keys=ON``,
``synchronous=FULL`` (a power loss does not undo a commit, which the checkpoint
guarantee relies on) and a long ``busy_timeout``. Write transactions start with
``BEGIN IMMEDIATE``: with pysqlite's default deferred BEGIN, two processes that both
read and then write deadlock, and SQLite answers "database is locked" at once instead
of waiting. Read-only work asks for ``execution_options(sqlite_readonly=True)``.

Migrations are applied with Alembic from the ``migrations`` package installed beside
this one, over the same engine (so the pragmas apply to them too).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url

__all__ = ["current_revision", "head_revision", "json_text", "make_engine", "upgrade"]

SQLITE_BUSY_TIMEOUT_MS = 60_000


def json_text(value: Any) -> str:
    """JSON text of a stored document (orjson: the record path writes three per record)."""
    return orjson.dumps(value).decode("utf-8")


def make_engine(url: str, *, busy_timeout: float | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url`` with the settings this store needs on its backend.

    JSON columns are (de)serialized with orjson: the record path writes three JSON
    values per record, and the standard library's encoder was a visible share of it.
    """
    kwargs.setdefault("json_serializer", json_text)
    kwargs.setdefault("json_deserializer", orjson.loads)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        wait_ms = int((busy_timeout * 1000) if busy_timeout is not None else SQLITE_BUSY_TIMEOUT_MS)
        engine = create_engine(url, connect_args={"timeout": wait_ms / 1000}, **kwargs)
        event.listen(engine, "connect", functools.partial(_sqlite_on_connect, wait_ms=wait_ms))
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    # No server-side prepared statements: psycopg prepares a statement after five runs and
    # PostgreSQL then keeps a generic plan made when the tables were small (a sequential
    # scan), so the per-page lookups grew slower with every page of a first harvest.
    connect_args = {"prepare_threshold": None, **kwargs.pop("connect_args", {})}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)


def _sqlite_on_connect(dbapi_connection: Any, _record: Any, *, wait_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is DEFERRED).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={wait_ms}")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get("sqlite_readonly"):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    import migrations  # noqa: PLC0415 - the installed package that holds the revisions

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.attributes["connection"] = connection
    return cfg


@contextlib.contextmanager
def _migration_lock(connection: Connection) -> Iterator[None]:
    """Serialize concurrent upgrades (several replicas starting at once)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(7283001)"))
    yield


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Apply migrations up to ``revision``; returns the revision the database is at."""
    with engine.begin() as connection, _migration_lock(connection):
        command.upgrade(_alembic_config(connection), revision)
        return MigrationContext.configure(connection).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    with make_engine("sqlite://").connect() as connection:
        return ScriptDirectory.from_config(_alembic_config(connection)).get_current_head()
