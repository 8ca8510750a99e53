"""The exception tree. Every failure the harvester acts on is one of these.

::

    HarvestError
    ├── RetryableError          transient: network, timeout, 429, 5xx, unparsable body
    │   └── InvalidResponse     the body is not what was due (truncated XML, HTML, bad JSON)
    ├── FatalError              retrying cannot help: 4xx, entitlement, token loops
    │   └── ResponseTooLarge    the body passed ``http.max_response_bytes``
    ├── QuotaExhausted          the source may not be asked again until ``resume_at``
    └── Interrupted             the operator asked us to stop (SIGTERM/SIGINT)

The HTTP layer decides Retryable vs Fatal in one table (:mod:`harvester.http`); sources
add :class:`InvalidResponse` when a body fails strict parsing. The runner ends a source's
run on anything that escapes the retry loop, leaving the checkpoint at the last committed
page. Messages never carry secrets: URLs are redacted before they get here.
"""

from __future__ import annotations

import datetime as dt

__all__ = [
    "FatalError",
    "HarvestError",
    "Interrupted",
    "InvalidResponse",
    "QuotaExhausted",
    "ResponseTooLarge",
    "RetryableError",
]


class HarvestError(Exception):
    """Base of every error the harvester raises on purpose."""


class RetryableError(HarvestError):
    """A failure worth retrying; ``retry_after`` is the server's wish in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class InvalidResponse(RetryableError):
    """The body could not be parsed as what was due (truncated, HTML, not XML/JSON)."""


class FatalError(HarvestError):
    """A failure that retrying will not fix; it ends the source's run."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ResponseTooLarge(FatalError):
    """The response body passed the configured size cap."""


class QuotaExhausted(HarvestError):
    """The server says this client's quota is used up until ``resume_at`` (UTC)."""

    def __init__(self, message: str, *, resume_at: dt.datetime | None) -> None:
        super().__init__(message)
        self.resume_at = resume_at


class Interrupted(HarvestError):
    """A stop was requested; the page in flight is rolled back, nothing is lost."""
