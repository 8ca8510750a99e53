"""OAI-PMH end to end vs bare sickle, side by side in one run.

Serves N oai_dc records from the local test OAI-PMH server (127.0.0.1), then measures:

* **bare sickle**: ``Sickle(url).ListRecords(metadataPrefix="oai_dc")`` iterated to the
  end, touching each record's metadata dict, storing nothing (the baseline every
  Python OAI harvester starts from);
* **harvester**: the whole record path — fetch, strict parse, normalize, DOI dedup and
  merge, store in a fresh SQLite file with per-page checkpoint transactions.

Both read the same endpoint with the same page size, alternating, and the best of
``--repeat`` rounds is kept (these machines are noisy; ratios in one run are what count).

    python benchmarks/oai.py --records 20000 --page-size 100 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402
from sickle import Sickle  # noqa: E402

from harvester.logs import configure_logging  # noqa: E402
from harvester.runner import harvest_source  # noqa: E402
from harvester.settings import load_settings  # noqa: E402
from harvester.sources import build_source  # noqa: E402
from storage.store import Store  # noqa: E402
from tests.helpers import article, oai_source_block, write_config  # noqa: E402
from tests.oai_server import FakeOaiServer, OaiRecord  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "oai"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
DC = "{http://purl.org/dc/elements/1.1/}"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def real_templates() -> list[str]:
    """The oai_dc metadata of every real record in the test fixtures (DSpace, EPrints, Zenodo, ...).

    Their DOIs are removed: each benchmark record gets its own, so works do not pile up.
    """
    templates = []
    for path in sorted(FIXTURES.glob("*.xml")):
        root = etree.parse(str(path)).getroot()
        for record in root.iter(f"{OAI}record"):
            metadata = record.find(f"{OAI}metadata")
            if metadata is None or len(metadata) == 0 or not metadata[0].tag.endswith("}dc"):
                continue
            dc = metadata[0]
            for element in list(dc):
                value = element.text or ""
                if element.tag in (f"{DC}identifier", f"{DC}relation") and (
                    "10." in value or "oai:" in value
                ):
                    dc.remove(element)  # each benchmark record gets its own DOI; no shared OAI ids
            templates.append(etree.tostring(dc, encoding="unicode"))
    return templates


def realistic(i: int, templates: list[str]) -> OaiRecord:
    template = templates[i % len(templates)]
    doi = f"<dc:identifier xmlns:dc='http://purl.org/dc/elements/1.1/'>https://doi.org/10.5555/bench.{i}</dc:identifier>"
    cut = template.rindex("</")
    return OaiRecord(
        f"oai:bench.example.org:{i}", T0 + dt.timedelta(seconds=i), template[:cut] + doi + template[cut:]
    )


NOW = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)


def bare_sickle(url: str) -> tuple[int, float]:
    started = time.perf_counter()
    n = 0
    for record in Sickle(url).ListRecords(metadataPrefix="oai_dc"):
        _ = record.metadata
        n += 1
    return n, time.perf_counter() - started


def harvester_run(
    url: str, workdir: Path, db_url: str | None = None, source_block: str | None = None
) -> tuple[int, float]:
    """One timed harvest of the source ``bench`` (an OAI-PMH block unless given) into a fresh store."""
    db_url = db_url or f"sqlite:///{workdir / f'bench-{time.monotonic_ns()}.db'}"
    block = source_block or oai_source_block("bench", url, window="3650d")
    settings = load_settings(write_config(workdir / "bench.yaml", db_url, block))
    store = Store.open(settings.database.url)
    store.upgrade()
    started = time.perf_counter()
    result = harvest_source(build_source(settings.source("bench"), settings.http), store, owner="bench")
    elapsed = time.perf_counter() - started
    store.close()
    if result.outcome != "succeeded":
        raise SystemExit(f"harvest failed: {result.error}")
    return result.stats.inserted, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--records-kind",
        choices=["real", "small"],
        default="real",
        help="real: the real fixture records (1-4 KB each, abstracts); small: minimal synthetic records",
    )
    args = parser.parse_args()

    configure_logging("WARNING")
    if args.records_kind == "real":
        templates = real_templates()
        records = [realistic(i, templates) for i in range(args.records)]
    else:
        records = [article(i, T0 + dt.timedelta(seconds=i)) for i in range(args.records)]
    with (
        FakeOaiServer(records, page_size=args.page_size, now=lambda: NOW, earliest_datestamp=T0) as server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        best_bare = best_ours = float("inf")
        for _ in range(args.repeat):
            n_bare, t_bare = bare_sickle(server.url)
            n_ours, t_ours = harvester_run(server.url, Path(tmp))
            assert n_bare == n_ours == args.records, (n_bare, n_ours)
            best_bare, best_ours = min(best_bare, t_bare), min(best_ours, t_ours)
        bare_rate, our_rate = args.records / best_bare, args.records / best_ours
        ratio = our_rate / bare_rate
        print(
            f"records: {args.records} ({args.records_kind}), page size: {args.page_size}, "
            f"best of {args.repeat}"
        )
        print(f"bare sickle ListRecords (no storage): {bare_rate:10.0f} records/s")
        print(f"harvester end to end (SQLite):        {our_rate:10.0f} records/s")
        print(f"ratio: {ratio:.2f}x   (goal >= 1.0x)  {'OK' if ratio >= 1.0 else 'BELOW GOAL'}")


if __name__ == "__main__":
    main()
