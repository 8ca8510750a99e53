"""Prometheus metrics and a health endpoint (opt-in: ``metrics: {port: 9464}``).

The record path reports into a module-level :data:`METRICS` object: a no-op until
:func:`enable` is called, so one-shot CLI commands and tests pay nothing. The daemon
enables it and serves, on one port:

* ``/metrics``: records fetched/inserted/updated/unchanged/deleted/quarantined per
  source, run durations and outcomes, the last success time per source, HTTP responses
  by source and status, and the remaining API quota per source, API and key fingerprint;
* ``/healthz``: 200 while the scheduler runs and the database answers ``SELECT 1``,
  503 otherwise (with the reason in the body) — what a container HEALTHCHECK or a
  Kubernetes probe asks.

Labels never carry secrets: keys appear only as fingerprints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["METRICS", "Metrics", "MetricsServer", "enable"]

COUNTERS = ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined")


class Metrics:
    """The daemon's metrics; every method is cheap and thread-safe."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.enabled = registry is not None
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records = Counter(
            "harvester_records", "Records by source and outcome", ["source", "outcome"], registry=r
        )
        self.pages = Counter("harvester_pages", "Pages committed", ["source"], registry=r)
        self.runs = Counter("harvester_runs", "Harvest runs by outcome", ["source", "outcome"], registry=r)
        self.run_seconds = Histogram(
            "harvester_run_duration_seconds",
            "Duration of harvest runs",
            ["source"],
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
            registry=r,
        )
        self.last_success = Gauge(
            "harvester_last_success_timestamp_seconds",
            "End of the last successful run",
            ["source"],
            registry=r,
        )
        self.http = Counter(
            "harvester_http_responses", "HTTP responses by status", ["source", "status"], registry=r
        )
        self.quota = Gauge(
            "harvester_quota_remaining", "Remaining API quota", ["source", "api", "key"], registry=r
        )

    def page_committed(self, source: str, stats: Any) -> None:
        if not self.enabled:
            return
        self.pages.labels(source).inc()
        for name in COUNTERS:
            value = getattr(stats, name, 0)
            if value:
                self.records.labels(source, name).inc(value)

    def run_finished(self, source: str, outcome: str, seconds: float, finished_at: float) -> None:
        if not self.enabled:
            return
        self.runs.labels(source, outcome).inc()
        self.run_seconds.labels(source).observe(seconds)
        if outcome == "succeeded":
            self.last_success.labels(source).set(finished_at)

    def http_response(self, source: str | None, status: int) -> None:
        if self.enabled:
            self.http.labels(source or "-", str(status)).inc()

    def quota_state(self, source: str, api: str, key: str, remaining: int | None) -> None:
        if self.enabled and remaining is not None:
            self.quota.labels(source, api, key).set(remaining)


#: What the record path reports into; replaced by :func:`enable`.
METRICS = Metrics()


def enable() -> Metrics:
    """Switch metrics on (idempotent) and return the live object."""
    global METRICS  # noqa: PLW0603 - one process-wide registry
    if not METRICS.enabled:
        METRICS = Metrics(CollectorRegistry())
    return METRICS


class MetricsServer:
    """``/metrics`` and ``/healthz`` on one port, in a daemon thread."""

    def __init__(
        self,
        metrics: Metrics,
        healthy: Callable[[], str | None],
        host: str = "0.0.0.0",  # noqa: S104 - a service port, by design
        port: int = 9464,
    ) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    body, status, ctype = generate_latest(metrics.registry), 200, CONTENT_TYPE_LATEST
                elif self.path.split("?")[0] == "/healthz":
                    problem = outer._check(healthy)
                    status = 503 if problem else 200
                    body, ctype = (problem or "ok").encode() + b"\n", "text/plain; charset=utf-8"
                else:
                    body, status, ctype = b"not found\n", 404, "text/plain; charset=utf-8"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    @staticmethod
    def _check(healthy: Callable[[], str | None]) -> str | None:
        try:
            return healthy()
        except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", with its reason
            return f"{type(exc).__name__}: {exc}"

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
