"""The HTTP plumbing the local fake servers share (OAI-PMH, Crossref, Scopus).

A threading server bound without a DNS lookup that tracks its open connections (so a
test can drop them all, as a restarting server would), and a keep-alive handler base
with ``TCP_NODELAY`` and no access log. Each fake adds its own ``do_GET``.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["KeepAliveHandler", "LocalHTTPServer", "Served"]


class LocalHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its open connections."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), which can stall on a DNS lookup.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every response carries a Content-Length."""

    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are dropped after this
    server: LocalHTTPServer

    def setup(self) -> None:
        super().setup()
        # Headers and body may go out in separate writes; without TCP_NODELAY, Nagle's
        # algorithm and delayed ACKs would add ~40 ms to such responses.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; the fakes keep their own request logs."""


class Served:
    """``start``/``stop``/``with`` for a fake served by a :class:`LocalHTTPServer` in a thread.

    A fake sets ``_httpd = None``, ``_thread = None``, ``_port = 0``, ``_stopping`` (an
    Event) and ``url = ""`` in its ``__init__`` and says how to build its server.
    """

    url: str
    _httpd: LocalHTTPServer | None
    _thread: threading.Thread | None
    _port: int
    _stopping: threading.Event
    _url_path = ""

    def _make_server(self, address: tuple[str, int]) -> LocalHTTPServer:
        raise NotImplementedError

    def start(self) -> Self:
        """Bind 127.0.0.1 (a free port the first time, the same port after a `stop`) and serve
        in a daemon thread. Returns self."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = self._make_server(("127.0.0.1", self._port))
        self._port = httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self._port}{self._url_path}"
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close open connections (interrupting slow drips) and the socket.
        Idempotent; the fake's content and logs are kept, so `start` resumes on the same URL."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
