"""A forward HTTP proxy for apt, on the bridge, that reaches only the apt registry.

Lab machines have no route off the LAN. apt in the image is configured to use
this proxy (``Acquire::http::Proxy``); the proxy forwards plain-HTTP GET/HEAD
requests to the allowed registry hosts and refuses everything else with 403.
"""

from __future__ import annotations

import http.client
import logging
import shutil
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

log = logging.getLogger("hearth.lab.aptproxy")
ALLOWED_HOSTS = frozenset({"deb.debian.org"})
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


class AptProxyHandler(BaseHTTPRequestHandler):
    """Forward GET/HEAD for allowed hosts; 403 otherwise."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format, *args)

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def _forward(self) -> None:
        url = urlsplit(self.path)
        if url.scheme != "http" or url.hostname not in ALLOWED_HOSTS:
            log.info("refused %s %s", self.command, self.path)
            self.send_error(403, f"hearth lab apt proxy: only {sorted(ALLOWED_HOSTS)}")
            return
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        path = url.path + (f"?{url.query}" if url.query else "")
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        try:
            conn.request(self.command, path or "/", headers=headers)
            resp = conn.getresponse()
        except OSError as exc:
            self.send_error(502, f"upstream: {exc}")
            return
        self.send_response(resp.status, resp.reason)
        length = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in _HOP:
                self.send_header(k, v)
        if length is None and self.command == "GET":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "GET":
            shutil.copyfileobj(resp, self.wfile, 64 * 1024)
        conn.close()


def serve(host: str, port: int) -> ThreadingHTTPServer:
    """Bind the proxy (call ``serve_forever`` on the result)."""
    server = ThreadingHTTPServer((host, port), AptProxyHandler)
    server.daemon_threads = True
    return server
