"""Progress a person can follow: one line per event, prefixed with module and stage.

In CI (Jenkins, CodeBuild, GitHub Actions) there is no terminal to redraw, so
every event is a plain, timestamped line; build logs stream through the same
sink with the module prefix, which keeps interleaved parallel output readable.
On a terminal, :mod:`deployfw.live` subscribes to the same events and turns off the
line echo (``echo=False``) to draw a per-module table instead. Every line passes
through :func:`deployfw.redact.mask` before any printer or subscriber sees it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from deployfw import redact


@dataclass(frozen=True)
class Event:
    """One line of progress, already masked: what subscribers (the live view) receive."""

    time: float
    module: str
    stage: str
    line: str


class EventLog:
    """Thread-safe line printer; ``width`` aligns module names for readability.

    ``echo=False`` keeps the lines off the stream (a subscriber shows them its own way).
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        width: int = 12,
        clock: Callable[[], float] = time.time,
        echo: bool = True,
    ):
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._width = width
        self._clock = clock
        self.echo = echo
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Call ``subscriber`` with every line from now on (under the log's lock: keep it quick)."""
        with self._lock:
            self._subscribers.append(subscriber)

    def emit(self, module: str, stage: str, message: str) -> None:
        now = self._clock()
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        text = redact.mask(message.rstrip("\n"))
        with self._lock:
            for line in text.splitlines() or [""]:
                for subscriber in self._subscribers:
                    subscriber(Event(now, module, stage, line))
                if self.echo:
                    self._stream.write(f"{stamp} {module:<{self._width}} {stage:<7}| {line}\n")
            if self.echo:
                self._stream.flush()

    def for_module(self, module: str, stage: str) -> Callable[[str], None]:
        """A ``log(line)`` callable for backends, bound to one module and stage."""
        return lambda line: self.emit(module, stage, line)
