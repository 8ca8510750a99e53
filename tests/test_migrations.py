"""The migrations build exactly the schema the models describe, both ways, on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from storage.db import _alembic_config, current_revision, head_revision, make_engine, upgrade
from storage.models import Base
from tests.conftest import ScratchDatabases


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty, unmigrated database of each kind."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        scratch: ScratchDatabases = request.getfixturevalue("pg_databases")
        url = scratch.new(migrated=False)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def alembic(engine: Engine, action: str, revision: str) -> None:
    with engine.begin() as conn:
        getattr(command, action)(_alembic_config(conn), revision)


def test_the_migrated_schema_is_the_models_schema(empty: Engine) -> None:
    assert upgrade(empty) == head_revision() == "0006"
    assert differences(empty) == []


def test_downgrade_to_base_and_upgrade_again(empty: Engine) -> None:
    upgrade(empty)
    alembic(empty, "downgrade", "0003")
    names = set(inspect(empty).get_table_names())
    assert "record_identifiers" not in names and "identity_conflicts" not in names
    assert "title_key" not in {c["name"] for c in inspect(empty).get_columns("source_records")}
    alembic(empty, "downgrade", "base")
    assert set(inspect(empty).get_table_names()) <= {"alembic_version"}
    assert current_revision(empty) is None
    assert upgrade(empty) == "0006"
    assert differences(empty) == []


def test_0004_keeps_existing_records(empty: Engine) -> None:
    upgrade(empty, "0003")
    with empty.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO works (doi, data, provenance, deleted, created_at, updated_at) "
                "VALUES ('10.1234/x', '{}', '{}', false, '2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO source_records (source, key, work_id, doi, deleted, raw, raw_hash, normalized, "
                "first_seen, updated_at) SELECT 'repo', 'oai:1', id, doi, false, '<r/>', 'h', '{}', "
                "created_at, updated_at FROM works"
            )
        )
    upgrade(empty)
    with empty.connect() as conn:
        row = conn.execute(text("SELECT key, work_id, title_key, link_reason FROM source_records")).one()
    assert (row.key, row.title_key, row.link_reason) == ("oai:1", None, None)


def test_0005_keeps_json_documents(empty: Engine) -> None:
    upgrade(empty, "0004")
    with empty.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO works (doi, data, provenance, deleted, created_at, updated_at) VALUES "
                '(\'10.1234/y\', \'{"title": "T", "keywords": ["a"]}\', \'{"title": "s"}\', false, '
                "'2024-01-01 00:00:00+00', '2024-01-01 00:00:00+00')"
            )
        )
    upgrade(empty)
    alembic(empty, "downgrade", "0004")
    upgrade(empty)
    with empty.connect() as conn:
        data = conn.execute(text("SELECT data FROM works")).scalar_one()
    assert (json.loads(data) if isinstance(data, str) else data) == {"title": "T", "keywords": ["a"]}


@pytest.mark.parametrize("revision", ["0001", "0002", "0003", "0004", "0005"])
def test_upgrade_from_every_earlier_revision(empty: Engine, revision: str) -> None:
    assert upgrade(empty, revision) == revision
    assert upgrade(empty) == head_revision()
    assert differences(empty) == []


def _compression(engine: Engine, table: str, column: str) -> str:
    with engine.connect() as conn:
        return str(
            conn.execute(
                text(
                    "SELECT attcompression FROM pg_attribute "
                    "WHERE attrelid = CAST(:t AS regclass) AND attname = :c"
                ),
                {"t": table, "c": column},
            ).scalar_one()
        )


def test_0006_compresses_payloads_with_lz4_on_postgresql(empty: Engine) -> None:
    if empty.dialect.name != "postgresql":
        upgrade(empty)  # nothing to change on SQLite; the migration must simply pass
        assert current_revision(empty) == "0006"
        return
    upgrade(empty)
    columns = [
        ("source_records", "raw"),
        ("source_records", "normalized"),
        ("works", "data"),
        ("quarantine", "raw"),
    ]
    assert {_compression(empty, t, c) for t, c in columns} == {"l"}  # this server has LZ4
    alembic(empty, "downgrade", "0005")
    assert {_compression(empty, t, c) for t, c in columns} == {"p"}
