"""Structured logging: JSON lines on stderr, the daemon's monitoring interface.

Every line carries ``timestamp`` (UTC), ``level`` and ``event``; lines written inside a
run also carry ``run_id`` and ``source`` (bound with :func:`structlog.contextvars`).
Operators alert on these events, so their names are part of the contract (README, "Log
events"). Third-party loggers (APScheduler, Alembic) are routed through the same
renderer; httpx and httpcore are held at WARNING because they print full URLs.

Secrets: every value registered with :func:`register_secrets` (API keys, tokens from the
config) is replaced by ``***`` in every string of every event, and values under keys that
name secrets (``api_key``, ``token``...) are masked whatever they hold. This is the last
line of defence; the HTTP layer also keeps keys out of URLs.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "redact", "register_secrets"]

_SECRETS: set[str] = set()
_SECRET_PATTERN: re.Pattern[str] | None = None
_SENSITIVE_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "api_keys",
        "token",
        "plus_token",
        "inst_token",
        "insttoken",
        "password",
        "authorization",
        "x-els-apikey",
        "x-els-insttoken",
        "crossref-plus-api-token",
    }
)
_QUIET = ("httpx", "httpcore", "urllib3", "requests", "hpack")


def register_secrets(secrets: Iterable[str]) -> None:
    """Add values that must never appear in a log line (empty values are ignored)."""
    global _SECRET_PATTERN  # noqa: PLW0603 - one process-wide redaction table
    _SECRETS.update(s for s in secrets if s and len(s) >= 4)
    if _SECRETS:
        alternatives = sorted(_SECRETS, key=len, reverse=True)
        _SECRET_PATTERN = re.compile("|".join(re.escape(s) for s in alternatives))


def redact(text: str) -> str:
    """Replace every registered secret in ``text`` by ``***``."""
    if _SECRET_PATTERN is None:
        return text
    return _SECRET_PATTERN.sub("***", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {
            k: ("***" if str(k).lower() in _SENSITIVE_KEYS else _redact_value(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    if isinstance(value, BaseException):
        return redact(f"{type(value).__name__}: {value}")
    return value


def _redact_processor(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event_dict):
        if key.lower() in _SENSITIVE_KEYS:
            event_dict[key] = "***"
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


def _redact_rendered(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    # Tracebacks are rendered into strings by format_exc_info: redact them afterwards too.
    for key in ("exception", "stack"):
        if isinstance(event_dict.get(key), str):
            event_dict[key] = redact(event_dict[key])
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Set up structlog and the stdlib root logger. Safe to call more than once."""
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_processor,
    ]
    renderer: Any
    if fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
        tail: list[Any] = []
    else:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        tail = [structlog.processors.format_exc_info, _redact_rendered]
    structlog.configure(
        processors=[*shared, *tail, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.WARNING))
    logging.getLogger("alembic").setLevel(max(numeric, logging.WARNING))


def get_logger() -> Any:
    """The structlog logger (context such as run_id and source comes from contextvars)."""
    return structlog.get_logger()
