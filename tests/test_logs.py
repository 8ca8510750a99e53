"""Log lines: JSON by default, console on request, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import structlog
from structlog.contextvars import bound_contextvars

from harvester.logs import configure_logging, register_secrets


def test_json_lines_with_context_and_redaction() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    register_secrets(["dummy-key-9f8e7d"])
    log = structlog.get_logger()
    with bound_contextvars(run_id="r1", source="scopus"):
        log.info("harvest.started", url="https://x/?q=1&key=dummy-key-9f8e7d", api_key="anything")
        log.debug("not.shown")
        try:
            raise RuntimeError("failed with dummy-key-9f8e7d inside")
        except RuntimeError:
            log.exception("harvest.failed")
    logging.getLogger("apscheduler.scheduler").warning("job missed by dummy-key-9f8e7d")
    logging.getLogger("httpx").info("HTTP Request: GET https://x/?apiKey=dummy-key-9f8e7d")  # quieted
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["harvest.started", "harvest.failed", "job missed by ***"]
    started = lines[0]
    assert started["run_id"] == "r1" and started["source"] == "scopus" and started["level"] == "info"
    assert started["timestamp"].endswith("Z")
    assert started["api_key"] == "***" and started["url"] == "https://x/?q=1&key=***"
    assert "dummy-key-9f8e7d" not in out.getvalue()
    assert "RuntimeError" in lines[1]["exception"]


def test_console_format_is_for_humans() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "console", stream=out)
    structlog.get_logger().info("page.committed", records=100)
    text = out.getvalue()
    assert "page.committed" in text and "records=100" in text and not text.startswith("{")
