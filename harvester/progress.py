"""Progress bars for one-shot ``harvester harvest`` on a terminal.

Only when stdout is a TTY: a daemon, a cron job or a pipe gets none, and the bars are
never written into the JSON log stream. When stderr is the same terminal, log lines are
printed above the bars by rich instead of tearing the display; when stderr goes to a
file or a pipe, the log lines go there untouched.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

__all__ = ["HarvestProgress", "harvest_progress"]


class HarvestProgress:
    """One line per source: records, pages, records/s."""

    def __init__(self, progress: Progress | None) -> None:
        self._progress = progress

    @property
    def active(self) -> bool:
        return self._progress is not None

    def source(self, name: str) -> Callable[[Any], None] | None:
        """A page callback for ``harvest_source(progress=...)``, or None without a terminal."""
        progress = self._progress
        if progress is None:
            return None
        task = progress.add_task(name, records=0, pages=0, rate="")

        def update(stats: Any) -> None:
            elapsed = progress.tasks[task].elapsed or 0.0
            rate = f"{stats.fetched / elapsed:,.0f}/s" if elapsed > 0 else ""
            progress.update(task, records=stats.fetched, pages=stats.pages, rate=rate)

        return update


@contextmanager
def harvest_progress(enabled: bool | None = None) -> Iterator[HarvestProgress]:
    """Bars on the terminal (``enabled=None``: when stdout is a TTY), else a no-op."""
    if enabled is None:
        enabled = sys.stdout.isatty()
    if not enabled:
        yield HarvestProgress(None)
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[records]:>10,} records"),
        TextColumn("{task.fields[pages]:>6,} pages"),
        TextColumn("{task.fields[rate]:>10}"),
        TimeElapsedColumn(),
        console=Console(file=sys.stdout),
        redirect_stderr=sys.stderr.isatty(),  # logs on the same terminal print above the bars
        redirect_stdout=False,
        transient=False,
    )
    with progress:
        yield HarvestProgress(progress)
