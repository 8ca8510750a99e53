"""PostgreSQL vs SQLite: the same OAI-PMH harvest end to end, side by side in one run.

Serves N real-shaped records from the local OAI-PMH server and harvests them into a
fresh SQLite file and into a fresh PostgreSQL database (created and dropped here; the
admin URL defaults to the local server, ``--admin-url`` changes it). Prints both rates
and the ratio PostgreSQL/SQLite (goal at least 0.8x). Best of ``--repeat`` rounds.

    python benchmarks/postgres.py --records 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from benchmarks.oai import NOW, T0, harvester_run, real_templates, realistic  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from tests.oai_server import FakeOaiServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    configure_logging("WARNING")
    templates = real_templates()
    records = [realistic(i, templates) for i in range(args.records)]
    info = psycopg.conninfo.conninfo_to_dict(args.admin_url)
    best_sqlite = best_pg = float("inf")
    with (
        FakeOaiServer(records, page_size=args.page_size, now=lambda: NOW, earliest_datestamp=T0) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for _ in range(args.repeat):
            name = f"harvester_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                pg_url = (
                    f"postgresql+psycopg://{info.get('user', 'postgres')}@{info.get('host', '127.0.0.1')}:"
                    f"{info.get('port', '5432')}/{name}"
                )
                n_pg, t_pg = harvester_run(server.url, Path(tmp), pg_url)
            finally:
                with psycopg.connect(args.admin_url, autocommit=True) as conn:
                    conn.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                    )
            n_lite, t_lite = harvester_run(server.url, Path(tmp))
            assert n_pg == n_lite == args.records, (n_pg, n_lite)
            best_sqlite, best_pg = min(best_sqlite, t_lite), min(best_pg, t_pg)
    lite_rate, pg_rate = args.records / best_sqlite, args.records / best_pg
    ratio = pg_rate / lite_rate
    print(
        f"records: {args.records} (real), page size: {args.page_size}, best of {args.repeat}, "
        f"started {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M}Z"
    )
    print(f"SQLite end to end:     {lite_rate:10.0f} records/s")
    print(f"PostgreSQL end to end: {pg_rate:10.0f} records/s")
    print(f"ratio: {ratio:.2f}x   (goal >= 0.8x)  {'OK' if ratio >= 0.8 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
