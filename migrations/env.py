"""Alembic environment.

``harvester db upgrade`` (and ``harvest``/``run``) pass their own connection in
``config.attributes["connection"]``. Run by hand (``alembic -c migrations/alembic.ini
upgrade head``), the URL comes from ``$HARVESTER_DATABASE_URL`` or the ``-x url=...``
argument.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from storage.db import make_engine
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("HARVESTER_DATABASE_URL")
    if not url:
        raise SystemExit("set HARVESTER_DATABASE_URL or pass -x url=...")
    engine = make_engine(url)
    with engine.begin() as conn:
        _run(conn)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
