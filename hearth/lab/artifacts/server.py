"""A static HTTP server for the artifact tree (``<lab root>/artifacts``)."""

from __future__ import annotations

import functools
import logging
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger("hearth.lab.artifacts")


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), format % args)


def serve(directory: Path, host: str, port: int) -> ThreadingHTTPServer:
    """Bind a server for ``directory`` (call ``serve_forever`` on the result)."""
    directory.mkdir(parents=True, exist_ok=True)
    handler = functools.partial(_Handler, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
