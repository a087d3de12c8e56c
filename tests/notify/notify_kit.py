"""A Slack-shaped webhook receiver on 127.0.0.1 for the notification tests.

It answers like Slack's incoming webhooks (``200 ok``, or the status a test queues
up: ``503`` for an outage, ``429`` with ``Retry-After``, ``404 no_service``) and
records every request: path, headers and the JSON body.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

# What a Slack URL carries: the token is in the path, so the URL is a secret.
TOKEN = "T0DEPLOYFW/B0NOTIFY/s3cretTOKENxyz"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes


@dataclass
class Receiver:
    """``url``: where it listens (with the secret token in the path); ``answers``: statuses to give next."""

    received: list[Received] = field(default_factory=list)
    answers: deque[tuple[int, str, dict[str, str]]] = field(default_factory=deque)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{TOKEN}"

    def answer(self, status: int, body: str = "", headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))

    def events(self) -> list[str]:
        """The ``event`` of each JSON webhook body, or the Slack text of each Slack body."""
        return [r.body.get("event") or r.body.get("text") for r in self.received]

    def start(self) -> Receiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                receiver.received.append(Received(self.path, dict(self.headers), body, raw))
                status, text, headers = receiver.answers.popleft() if receiver.answers else (200, "ok", {})
                data = text.encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
