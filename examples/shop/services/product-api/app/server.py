"""The product-api service: answers on port 8080."""

from __future__ import annotations

from http.server import ThreadingHTTPServer

from shop_common import exit_if_broken_build, handler_for

if __name__ == "__main__":
    exit_if_broken_build()
    ThreadingHTTPServer(("0.0.0.0", 8080), handler_for("product-api")).serve_forever()
