"""Where each record's time goes: the record path one stage at a time, against its budget.

The end-to-end benchmarks (``oai.py``, ``crossref.py``) give one ratio; this one says
which stage a missing ratio is in. It drives the same three calls ``harvest_source``
makes for each page — the source's next page (fetch and strict parse),
``normalize_page`` (normalization, the stored JSON form and the raw hash) and
``Store.commit_page`` (identity, DOI dedup and merge, the upserts, the checkpoint and the
``fsync``) — one after the other in one thread, with a timer around each. There is no
prefetch thread, so the stages do not overlap and their sum is the single-core cost of
a record. Each stage is set against the budget the goal gives: the bare client's time
per record divided by the goal's ratio.

    python benchmarks/stages.py --records 20000
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import crossref as crossref_benchmark  # noqa: E402
from benchmarks import oai as oai_benchmark  # noqa: E402
from harvester.logs import configure_logging  # noqa: E402
from harvester.runner import normalize_page  # noqa: E402
from harvester.settings import load_settings  # noqa: E402
from harvester.sources import build_source  # noqa: E402
from storage.store import Store  # noqa: E402
from tests.crossref_server import FakeCrossref  # noqa: E402
from tests.helpers import oai_source_block, write_config  # noqa: E402
from tests.oai_server import FakeOaiServer  # noqa: E402

STAGES = ("fetch + strict parse", "normalize (+ JSON form, hash)", "commit (identity, merge, store)")


def staged_run(block: str, workdir: Path) -> tuple[int, dict[str, float]]:
    """One harvest of the source ``bench`` into a fresh SQLite file; seconds per stage."""
    db_url = f"sqlite:///{workdir / f'stages-{time.monotonic_ns()}.db'}"
    settings = load_settings(write_config(workdir / "stages.yaml", db_url, block))
    store = Store.open(settings.database.url)
    store.upgrade()
    source = build_source(settings.source("bench"), settings.http)
    owner = "stages"
    assert store.acquire_lease("bench", owner, 300.0)
    run_id = store.start_run("bench", owner)
    spent = dict.fromkeys(STAGES, 0.0)
    inserted = 0
    pages: Iterator[Any] = source.pages(store.load_checkpoint("bench"))
    while True:
        started = time.perf_counter()
        page = next(pages, None)
        spent[STAGES[0]] += time.perf_counter() - started
        if page is None:
            break
        started = time.perf_counter()
        incoming, quarantined = normalize_page(source, page)
        spent[STAGES[1]] += time.perf_counter() - started
        started = time.perf_counter()
        stats = store.commit_page(
            "bench", incoming, run_id=run_id, owner=owner, quarantined=quarantined, checkpoint=page.checkpoint
        )
        spent[STAGES[2]] += time.perf_counter() - started
        inserted += stats.inserted
    store.finish_run(run_id, "succeeded")
    source.close()
    store.close()
    return inserted, spent


def measure(
    title: str,
    server: AbstractContextManager[Any],
    bare: Callable[[str], tuple[int, float]],
    block: Callable[[str], str],
    goal: float,
    records: int,
    repeat: int,
) -> None:
    with server as running, tempfile.TemporaryDirectory() as tmp:
        if hasattr(running, "enforce_limits"):
            running.enforce_limits = False
        best_bare = float("inf")
        best: dict[str, float] = {}
        for _ in range(repeat):
            n_bare, t_bare = bare(running.url)
            n_ours, spent = staged_run(block(running.url), Path(tmp))
            assert n_bare == n_ours == records, (n_bare, n_ours)
            best_bare = min(best_bare, t_bare)
            if not best or sum(spent.values()) < sum(best.values()):
                best = spent
    per = 1e6 / records
    bare_us = best_bare * per
    budget = bare_us / goal
    total = sum(best.values()) * per
    print(f"\n{title}: {records} records, best of {repeat}, one stage at a time")
    print(f"  {'bare client (stores nothing)':34s} {bare_us:7.0f} us/record")
    print(f"  {'budget at the goal (>= ' + f'{goal}x)':34s} {budget:7.0f} us/record")
    for stage in STAGES:
        us = best[stage] * per
        print(f"  {stage:34s} {us:7.0f} us/record  {us / budget:5.2f} of the budget")
    print(f"  {'harvester, all stages':34s} {total:7.0f} us/record  {total / budget:5.2f} of the budget")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    configure_logging("WARNING")

    templates = oai_benchmark.real_templates()
    records = [oai_benchmark.realistic(i, templates) for i in range(args.records)]
    oai_server = FakeOaiServer(
        records, page_size=100, now=lambda: oai_benchmark.NOW, earliest_datestamp=oai_benchmark.T0
    )
    measure(
        "OAI-PMH (real fixture records, pages of 100) vs bare sickle",
        oai_server,
        oai_benchmark.bare_sickle,
        lambda url: oai_source_block("bench", url, window="3650d"),
        1.0,
        args.records,
        args.repeat,
    )
    del records, oai_server

    measure(
        "Crossref (rows=1000) vs bare httpx + json",
        FakeCrossref(crossref_benchmark.fixture_works(args.records), rate_limit=100_000),
        crossref_benchmark.bare_loop,
        crossref_benchmark.source_block,
        0.6,
        args.records,
        args.repeat,
    )


if __name__ == "__main__":
    main()
