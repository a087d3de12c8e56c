"""The app of the sandbox's placeholder image: what a seeded service runs before its first deploy.

``python3 server.py PORT NAME`` answers every GET with ``200 placeholder NAME``, so the
seeded service's tasks pass their health checks and its listener answers before deployfw
deploys the module's own image. Standard library only (it runs on the host's Python).
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"placeholder {sys.argv[2] if len(sys.argv) > 2 else ''}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
