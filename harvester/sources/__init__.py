"""Source types. Adding one: a module here, a config model in settings.py, a line in SOURCES."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from harvester.settings import HttpSettings
from harvester.sources import crossref, oai_pmh, scopus
from harvester.sources.base import Page, RawItem, Source

__all__ = ["SOURCES", "Page", "RawItem", "Source", "build_source"]

#: type name in the config → factory(source settings, http settings, stop event)
SOURCES: dict[str, Callable[[Any, HttpSettings, threading.Event | None], Source]] = {
    "oai-pmh": oai_pmh.from_settings,
    "crossref": crossref.from_settings,
    "scopus": scopus.from_settings,
}


def build_source(settings: Any, http: HttpSettings, stop: threading.Event | None = None) -> Source:
    """The source object for one config block (a fresh HTTP client per run)."""
    return SOURCES[settings.type](settings, http, stop)
