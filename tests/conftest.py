"""Shared fixtures: real databases (SQLite files and a scratch PostgreSQL database).

PostgreSQL is not optional: the store must work on both, so store and end-to-end
tests are parametrized over ``sqlite`` and ``postgresql``. The admin URL defaults to
the local server (trust auth) and can be changed with ``HARVESTER_TEST_PG_ADMIN_URL``.
Each test gets a fresh database cloned from a migrated template (fast), dropped after.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings
from psycopg import sql

from storage.db import make_engine, upgrade
from storage.store import Store

# No deadlines on property tests: hypothesis fails an example that takes over 200 ms of wall
# time, which a cheap example can on a loaded 2-core machine. Seen once: a run of
# test_dc_values_match_a_reading_of_every_child failed, then passed on a dozen reruns,
# although hypothesis replays a saved failing example first. Speed is measured by the
# benchmarks, never by timed tests.
settings.register_profile("harvester", deadline=None, print_blob=True)
settings.load_profile("harvester")

PG_ADMIN_URL = os.environ.get("HARVESTER_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def _sa_url(dbname: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(PG_ADMIN_URL)
    user = info.get("user", "postgres")
    host = info.get("host", "127.0.0.1")
    port = info.get("port", "5432")
    return f"postgresql+psycopg://{user}@{host}:{port}/{dbname}"


def _admin(statement: sql.Composable) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(statement)


def _drop(dbname: str) -> None:
    _admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL database to clone test databases from."""
    name = f"harvester_tpl_{uuid.uuid4().hex[:10]}"
    _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    engine = make_engine(_sa_url(name))
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    yield name
    _drop(name)


class ScratchDatabases:
    """Creates PostgreSQL databases for one test and drops them afterwards."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.created: list[str] = []

    def new(self, *, migrated: bool = True) -> str:
        name = f"harvester_t_{uuid.uuid4().hex[:12]}"
        if migrated:
            _admin(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        else:
            _admin(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.created.append(name)
        return _sa_url(name)

    def drop_all(self) -> None:
        for name in self.created:
            _drop(name)


@pytest.fixture
def pg_databases(pg_template: str) -> Iterator[ScratchDatabases]:
    scratch = ScratchDatabases(pg_template)
    yield scratch
    scratch.drop_all()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'harvester.db'}"
        engine = make_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return url
    scratch: ScratchDatabases = request.getfixturevalue("pg_databases")
    return scratch.new()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store.open(db_url, precedence=("crossref", "scopus", "pure"))
    yield s
    s.close()
