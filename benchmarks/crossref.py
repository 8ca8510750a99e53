"""Crossref end to end vs a bare httpx + json cursor loop, side by side in one run.

Serves N works from the local Crossref-shaped server (127.0.0.1) and measures:

* **bare loop**: ``httpx`` GET ``/works?cursor=*&rows=1000`` with the same filter, ``json``
  parse, follow ``next-cursor`` until a short page; nothing stored;
* **harvester**: the whole record path — windows, cursor paging, strict JSON parse,
  normalization, DOI dedup and merge, SQLite storage with per-page transactions.

The server's advertised rate limit is raised so both run at full speed (the harvester
obeys ``x-rate-limit-*``; the bare loop would not). Best of ``--repeat`` rounds.

    python benchmarks/crossref.py --records 20000 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks import oai as oai_benchmark  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from tests.crossref_server import CrossrefWork, FakeCrossref, work_item  # noqa: E402

TODAY = dt.datetime.now(dt.UTC).date()
DAYS = 20


def make_works(n: int) -> list[CrossrefWork]:
    start = dt.datetime.combine(TODAY - dt.timedelta(days=DAYS - 1), dt.time(), tzinfo=dt.UTC)
    step = dt.timedelta(days=DAYS) / n
    abstract = (
        "<jats:sec><jats:title>Purpose</jats:title><jats:p>The purpose of this paper is to investigate the "
        "paradox of e-government in post-Soviet countries.</jats:p></jats:sec><jats:sec><jats:title>Findings"
        "</jats:title><jats:p>Digital services grew while trust in government did not.</jats:p></jats:sec>"
    )
    authors = [
        {
            "given": "Colin",
            "family": "Knox",
            "sequence": "first",
            "affiliation": [{"name": "Nazarbayev University"}],
            "ORCID": "http://orcid.org/0000-0002-1825-0097",
            "authenticated-orcid": False,
        },
        {"given": "Saltanat", "family": "Janenova", "sequence": "additional", "affiliation": []},
    ]
    return [
        CrossrefWork(
            work_item(
                f"10.5555/bench.{i}",
                f"Benchmark work number {i}",
                abstract=abstract,
                author=authors,
                is_referenced_by_count=i % 50,
            ),
            indexed=start + step * i,
        )
        for i in range(n)
    ]


def bare_loop(url: str) -> tuple[int, float]:
    since = (TODAY - dt.timedelta(days=DAYS)).isoformat()
    params = {
        "filter": f"from-index-date:{since},until-index-date:{TODAY.isoformat()}",
        "rows": 1000,
        "cursor": "*",
    }
    started = time.perf_counter()
    n = 0
    with httpx.Client() as client:
        while True:
            message = json.loads(client.get(f"{url}/works", params=params).content)["message"]
            n += len(message["items"])
            if len(message["items"]) < 1000:
                break
            params["cursor"] = message["next-cursor"]
    return n, time.perf_counter() - started


def source_block(url: str) -> str:
    """The config block of the source ``bench``: the served days, in one window."""
    return (
        f"- name: bench\n  type: crossref\n  url: {url}\n  mailto: bench@example.org\n"
        f"  since: {(TODAY - dt.timedelta(days=DAYS)).isoformat()}\n  max_window_results: 1000000"
    )


def fixture_works(n: int) -> list[CrossrefWork]:
    """:func:`make_works`, with the collector kept off them: they live for the whole run."""
    gc.disable()
    works = make_works(n)
    gc.enable()
    gc.freeze()
    return works


def harvester_run(url: str, workdir: Path) -> tuple[int, float]:
    return oai_benchmark.harvester_run(url, workdir, source_block=source_block(url))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    configure_logging("WARNING")
    works = fixture_works(args.records)
    with FakeCrossref(works, rate_limit=100_000) as server, tempfile.TemporaryDirectory() as tmp:
        server.enforce_limits = False
        best_bare = best_ours = float("inf")
        for _ in range(args.repeat):
            n_bare, t_bare = bare_loop(server.url)
            n_ours, t_ours = harvester_run(server.url, Path(tmp))
            assert n_bare == n_ours == args.records, (n_bare, n_ours)
            best_bare, best_ours = min(best_bare, t_bare), min(best_ours, t_ours)
    bare_rate, our_rate = args.records / best_bare, args.records / best_ours
    ratio = our_rate / bare_rate
    print(f"records: {args.records}, rows: 1000, best of {args.repeat}")
    print(f"bare httpx + json cursor loop (no storage): {bare_rate:10.0f} records/s")
    print(f"harvester end to end (SQLite):              {our_rate:10.0f} records/s")
    print(f"ratio: {ratio:.2f}x   (goal >= 0.6x)  {'OK' if ratio >= 0.6 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
