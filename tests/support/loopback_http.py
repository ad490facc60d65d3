"""The small HTTP servers the tests run on 127.0.0.1 (Kubernetes API, health URL, IAM
simulation): a quiet handler that answers in one call, and start / stop in a thread."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    def log_message(self, *_: Any) -> None:  # one line per request would drown the test output
        return None

    def reply(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def serve(
    handler: type[BaseHTTPRequestHandler], name: str, ssl_context: ssl.SSLContext | None = None
) -> tuple[ThreadingHTTPServer, str]:
    """Start `handler` on a free loopback port in a daemon thread; (server, base URL)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    scheme = "http"
    if ssl_context is not None:
        server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server, f"{scheme}://127.0.0.1:{server.server_address[1]}"


def stop(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
