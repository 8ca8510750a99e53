"""Conformance over the real Crossref responses in ``$HARVESTER_REAL_WORLD/crossref``.

Every work in those bodies either normalizes into a canonical record or is rejected
with a reason (NormalizationError); error bodies (validation failures, bad cursors,
text/plain 404s, 500 exceptions) are recognised by the source's response parser as the
harvester's own errors. Nothing else may happen: zero silent drops, zero crashes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from harvester.errors import FatalError, InvalidResponse
from harvester.http import FetchedResponse, HttpClient, HttpPolicy
from harvester.record import Record
from harvester.sources.base import NormalizationError
from harvester.sources.crossref import CrossrefSource, _CursorExpired, normalize_crossref_item

CORPUS = os.environ.get("HARVESTER_REAL_WORLD")
pytestmark = [
    pytest.mark.conformance,
    pytest.mark.skipif(not CORPUS, reason="set HARVESTER_REAL_WORLD to the shared real-world corpus folder"),
]


def _bodies() -> list[Path]:
    if not CORPUS:
        return []
    return sorted((Path(CORPUS) / "crossref").rglob("*.body.*"))


def _items(body: Any) -> list[Any] | None:
    if not isinstance(body, dict) or body.get("status") != "ok":
        return None
    message = body.get("message")
    if body.get("message-type") == "work":
        return [message]
    if body.get("message-type") == "work-list" and isinstance(message, dict):
        return list(message.get("items") or [])
    return None


@pytest.mark.parametrize(
    "path", _bodies(), ids=lambda p: str(p.relative_to(Path(CORPUS or ".") / "crossref"))
)
def test_every_item_normalizes_or_is_rejected_with_a_reason(path: Path) -> None:
    raw = path.read_bytes()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    items = _items(body)
    if items is None:
        # an error body: the source's parser must turn it into one of our errors, not crash
        status = 404 if raw.startswith(b"Resource not found") or b"cursor-invalid" in raw else 400
        if b'"exception"' in raw:
            status = 500
        source = CrossrefSource("conformance", client=HttpClient(HttpPolicy()))
        response = FetchedResponse(status, httpx.Headers(), raw, "https://api.crossref.org/works", 0.0)
        with pytest.raises((FatalError, InvalidResponse, _CursorExpired)):
            source._parse(response)
        source.close()
        return
    normalized: list[Record] = []
    rejected: list[str] = []
    for item in items:
        try:
            normalized.append(normalize_crossref_item(item))
        except NormalizationError as exc:
            rejected.append(str(exc))
    assert all(rejected), "a rejection must carry a reason"
    assert len(normalized) + len(rejected) == len(items)
    for record in normalized:
        assert record.doi and record.key == record.doi
        assert Record.from_json(record.to_json()) == record
    with_title = sum(1 for r in normalized if r.title)
    print(
        f"{path.name}: {len(items)} items, {len(normalized)} normalized ({with_title} with title), "
        f"{len(rejected)} rejected {sorted(set(rejected))}"
    )
