"""Helpers every shop service shares."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler

HEALTH_PATH = "/health"


def exit_if_broken_build() -> None:
    """Exit at start in an image built with ``SHOP_BROKEN_BUILD`` set: a broken build, on purpose.

    The buildspecs bake the build's ``SHOP_BROKEN_BUILD`` into the image's environment, so
    ``build: {environment: {SHOP_BROKEN_BUILD: "1"}}`` (the example's ``broken`` environment)
    ships an app whose every task exits at once - its deployment then fails on real health
    checks and rolls back, with no fault injected.
    """
    if os.environ.get("SHOP_BROKEN_BUILD"):
        sys.exit("shop: this image was built with SHOP_BROKEN_BUILD set; exiting at start")


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
