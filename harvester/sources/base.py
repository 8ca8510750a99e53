"""What a source is: three methods and two small types.

A source turns its API into :class:`Page` objects (raw records plus the checkpoint
state reached once the page is stored) and turns one raw record into a canonical
:class:`~harvester.record.Record` with a pure function. It knows nothing of the store:
the runner commits each page with its checkpoint in one transaction.

Checkpoint states are small JSON objects owned by the source (window bounds, an OAI
resumption token). A page whose ``checkpoint`` is None leaves the stored state as it is
(used when a position cannot be resumed from, such as a Crossref cursor).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harvester.record import Record

__all__ = ["NormalizationError", "Page", "RawItem", "Source"]


class NormalizationError(ValueError):
    """This raw record cannot become a canonical record; it is quarantined with the message."""


@dataclass(frozen=True, slots=True)
class RawItem:
    """One raw record: ``raw`` is what the store keeps, ``parsed`` what the normalizer reads.

    Both exist so that each response is parsed once: the source hands over the element
    or object it already parsed, and ``reprocess`` rebuilds ``parsed`` from ``raw``.
    """

    raw: str
    parsed: Any
    key: str | None = None  # best-effort key, for quarantine rows when normalization fails


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[RawItem]
    checkpoint: Mapping[str, Any] | None


class Source(Protocol):
    """A harvestable source. Implementations live one per module in this package."""

    name: str

    def pages(self, state: Mapping[str, Any] | None) -> Iterator[Page]:
        """Pages from the stored checkpoint ``state`` (None: first harvest) up to now."""
        ...

    def normalize(self, item: RawItem) -> Record:
        """Raw → canonical; pure. Raises NormalizationError (or anything) to quarantine."""
        ...

    def load_raw(self, raw: str) -> RawItem:
        """Rebuild a RawItem from the stored raw text (for reprocess; no network)."""
        ...

    def close(self) -> None: ...
