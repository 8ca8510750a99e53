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

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from harvester.record import Record

__all__ = [
    "Enriching",
    "NormalizationError",
    "Page",
    "QuotaAware",
    "QuotaState",
    "RawItem",
    "Source",
    "http_url",
    "is_iso_date",
    "preview",
]


_HTTP_URL = re.compile(r"https?://\S+", re.IGNORECASE)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def http_url(value: Any) -> str | None:
    """``value`` when it is an http(s) URL without spaces (trimmed), else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    return url if _HTTP_URL.fullmatch(url) else None


def is_iso_date(text: Any) -> bool:
    """A real calendar date in ``YYYY-MM-DD`` form (not 2026-02-30)."""
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def preview(value: Any) -> str:
    """A short ``repr`` of a bad value for an error message (at most 80 characters)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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


@dataclass(frozen=True, slots=True)
class QuotaState:
    """What an API last said about one key's quota (``key_id`` is a fingerprint, never the key)."""

    api: str
    key_id: str
    limit: int | None = None
    remaining: int | None = None
    reset_at: dt.datetime | None = None
    exhausted: bool = False


@runtime_checkable
class QuotaAware(Protocol):
    """A source whose API meters requests per key: the runner keeps its quota state in the store."""

    def restore_quotas(self, states: Iterable[QuotaState]) -> None: ...

    def quota_states(self) -> list[QuotaState]: ...


@runtime_checkable
class Enriching(Protocol):
    """A source that can fetch more about records it already stored (extra requests, opt-in).

    ``enrichment_suffix`` names the extra records (stored as their own source records with
    key ``<record key><suffix>``, so they join the same work and go through the same path);
    the runner asks the store for records without one and hands their keys over.
    """

    enrichment_suffix: str

    def wants_enrichment(self) -> bool: ...

    def enrich(self, keys: Sequence[str]) -> Iterator[Page]: ...
