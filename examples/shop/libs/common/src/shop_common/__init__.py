"""Helpers every shop service shares."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

HEALTH_PATH = "/health"


def handler_for(service: str) -> type[BaseHTTPRequestHandler]:
    """A tiny HTTP handler answering the health check and one JSON route."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"service": service, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
