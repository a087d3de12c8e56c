"""The double's request log: what a client asked and what it was answered.

Tests assert on it ("the trigger was sent once", "the crumb was fetched twice") instead
of trusting the client's own account of its retries.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LoggedRequest:
    """One request. ``status`` is 0 when the connection was reset instead of answered."""

    method: str
    path: str
    query: str
    status: int
    user: str
    fault: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class RequestLog:
    """A thread-safe append-only list of :class:`LoggedRequest`."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self._lock = threading.Lock()
        # time.monotonic() of the latest request (of the start before any), kept when the entries are cleared.
        self.last = time.monotonic()

    def add(self, entry: LoggedRequest) -> None:
        """Record one request."""
        with self._lock:
            self._entries.append(entry)
            self.last = time.monotonic()

    def entries(self) -> list[LoggedRequest]:
        """A snapshot, oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget everything logged so far."""
        with self._lock:
            self._entries.clear()
