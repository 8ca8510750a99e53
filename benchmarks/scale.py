"""Flat at scale: per-record cost against a big store, and memory against a big harvest.

* **Store size**: the same 10,000-record OAI-PMH harvest into a SQLite store that already
  holds ``--small`` works and into one that holds ``--large`` works (default 10,000 and
  1,000,000; the stores are filled with bulk SQL, the harvest goes through the whole
  record path). Ratio large/small of the per-record cost (goal at most 1.3x).
* **Memory**: peak RSS of a harvester process harvesting ``--rss-small`` and
  ``--rss-large`` records (default 10,000 and 100,000), each in a fresh subprocess.
  Ratio large/small (goal at most 1.2x) and the absolute peak (goal under 250 MB).

    python benchmarks/scale.py                # the issue's sizes (takes several minutes)
    python benchmarks/scale.py --large 200000 --rss-large 50000   # quicker
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from sqlalchemy import text  # noqa: E402

from benchmarks.oai import NOW, T0, harvester_run, real_templates, realistic  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from harvester.record import Record  # noqa: E402
from storage.store import Store, raw_hash  # noqa: E402
from tests.oai_server import FakeOaiServer  # noqa: E402


def prefill(url: str, n: int) -> None:
    """``n`` works, each with one source record, written with bulk SQL (not the record path)."""
    store = Store.open(url)
    store.upgrade()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.000000")
    batch = 20_000
    with store.engine.begin() as conn:
        for start in range(0, n, batch):
            works, records = [], []
            for i in range(start, min(n, start + batch)):
                doi = f"10.9999/prefill.{i}"
                data = orjson.dumps({"doi": doi, "title": f"Prefilled work {i}", "sources": ["old"]}).decode()
                works.append({"id": i + 1, "doi": doi, "data": data, "now": now})
                record = Record(key=f"oai:old:{i}", doi=doi, title=f"Prefilled work {i}")
                raw = f"<record>{i}</record>"
                records.append(
                    {
                        "key": record.key,
                        "work": i + 1,
                        "doi": doi,
                        "raw": raw,
                        "hash": raw_hash(raw),
                        "norm": orjson.dumps(record.to_json()).decode(),
                        "now": now,
                    }
                )
            conn.execute(
                text(
                    "INSERT INTO works (id, doi, data, provenance, deleted, created_at, updated_at) "
                    "VALUES (:id, :doi, :data, '{}', 0, :now, :now)"
                ),
                works,
            )
            conn.execute(
                text(
                    "INSERT INTO source_records (source, key, work_id, doi, deleted, raw, raw_hash, "
                    "normalized, first_seen, updated_at) VALUES ('old', :key, :work, :doi, 0, :raw, :hash, "
                    ":norm, :now, :now)"
                ),
                records,
            )
    store.close()


def store_size(args: argparse.Namespace, tmp: Path) -> float:
    templates = real_templates()
    records = [realistic(i, templates) for i in range(args.harvest)]
    costs = {}
    with FakeOaiServer(records, page_size=100, now=lambda: NOW, earliest_datestamp=T0) as server:
        for label, n in (("small", args.small), ("large", args.large)):
            url = f"sqlite:///{tmp / f'scale-{label}.db'}"
            started = time.perf_counter()
            prefill(url, n)
            print(f"  prefilled {n:,} works in {time.perf_counter() - started:.0f}s")
            inserted, seconds = harvester_run(server.url, tmp, url)
            assert inserted == args.harvest
            costs[label] = seconds / inserted
            print(f"  {n:>9,} works stored: {costs[label] * 1e6:7.1f} µs per harvested record")
    return costs["large"] / costs["small"]


CHILD = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {root!r})
from benchmarks.oai import NOW, T0, harvester_run, real_templates, realistic
from harvester.logs import configure_logging
from tests.oai_server import FakeOaiServer
configure_logging("WARNING")
url = sys.argv[1]
n = int(sys.argv[2])
with tempfile.TemporaryDirectory() as tmp:
    inserted, seconds = harvester_run(url, Path(tmp))
# VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the parent it was forked from
print(inserted, open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
"""


def peak_rss(n: int, tmp: Path) -> int:
    """Peak RSS (KiB) of a harvester process harvesting ``n`` records (server in this process)."""
    templates = real_templates()
    records = [realistic(i, templates) for i in range(n)]
    with FakeOaiServer(records, page_size=100, now=lambda: NOW, earliest_datestamp=T0) as server:
        result = subprocess.run(
            [sys.executable, "-c", CHILD.format(root=str(ROOT)), server.url, str(n)],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp,
        )
    inserted, rss = result.stdout.split()
    assert int(inserted) == n, result.stderr
    return int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--harvest", type=int, default=10_000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--rss-small", type=int, default=10_000)
    parser.add_argument("--rss-large", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    configure_logging("WARNING")
    with tempfile.TemporaryDirectory() as tmp:
        print(
            f"store size: harvesting {args.harvest:,} records into stores of "
            f"{args.small:,} and {args.large:,} works"
        )
        cost_ratio = store_size(args, Path(tmp))
        rss_small, rss_large = peak_rss(args.rss_small, Path(tmp)), peak_rss(args.rss_large, Path(tmp))
    rss_ratio = rss_large / rss_small
    result = {
        "cost_ratio": round(cost_ratio, 2),
        "rss_small_mb": round(rss_small / 1024, 1),
        "rss_large_mb": round(rss_large / 1024, 1),
        "rss_ratio": round(rss_ratio, 2),
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"per-record cost, {args.large:,} vs {args.small:,} works stored: {cost_ratio:.2f}x   "
        "(goal <= 1.3x)  "
        f"{'OK' if cost_ratio <= 1.3 else 'ABOVE GOAL'}"
    )
    print(
        f"peak RSS, {args.rss_large:,} vs {args.rss_small:,} records: {rss_large / 1024:.0f} MB vs "
        f"{rss_small / 1024:.0f} MB = {rss_ratio:.2f}x   (goal <= 1.2x, < 250 MB)  "
        f"{'OK' if rss_ratio <= 1.2 and rss_large / 1024 < 250 else 'ABOVE GOAL'}"
    )


if __name__ == "__main__":
    main()
