"""Progress a person can follow: one line per event, prefixed with module and stage.

In CI (Jenkins, CodeBuild, GitHub Actions) there is no terminal to redraw, so
every event is a plain, timestamped line; build logs stream through the same
sink with the module prefix, which keeps interleaved parallel output readable.
On a terminal the same lines are printed (a live view can subscribe to the same
events). Every line passes through :func:`deployfw.redact.mask`.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from deployfw import redact


class EventLog:
    """Thread-safe line printer; ``width`` aligns module names for readability."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 12, clock: Callable[[], float] = time.time):
        self._stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._width = width
        self._clock = clock

    def emit(self, module: str, stage: str, message: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(self._clock()))
        text = redact.mask(message.rstrip("\n"))
        with self._lock:
            for line in text.splitlines() or [""]:
                self._stream.write(f"{stamp} {module:<{self._width}} {stage:<7}| {line}\n")
            self._stream.flush()

    def for_module(self, module: str, stage: str) -> Callable[[str], None]:
        """A ``log(line)`` callable for backends, bound to one module and stage."""
        return lambda line: self.emit(module, stage, line)
