"""Injected faults for the Jenkins double: what goes wrong, where, and how often.

Two vocabularies meet here. Tests of the Jenkins client need surgical faults: *this*
path answers 502 twice, *that* request hangs past the client timeout, the connection
is reset mid-request, a proxy returns an empty 200. The sandbox user speaks the
DESIGN.md syntax shared with the AWS sandbox (``build:<module>`` fails that module's
next build once; ``error:<percent>`` answers that share of requests with 500/503).
``deploy:`` and ``throttle:`` are accepted and ignored, so one
``DEPLOYFW_SANDBOX_FAULTS`` string can configure both stand-ins.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass, field
from typing import Literal

from deployfw.sandbox.faults import parse_faults

FaultKind = Literal["status", "delay", "reset", "empty"]


@dataclass(frozen=True)
class Fault:
    """One surgical fault rule.

    ``pattern`` is a regular expression searched in the request path (query string
    excluded), so ``r"/queue/item/\\d+/api/json$"`` hits every queue poll. ``times``
    bounds how many requests it hits (``None``: all of them), which is what a
    "fails twice, then recovers" retry test needs. ``after=True`` lets the controller
    handle the request first and then loses the answer (a proxy timing out on a build
    that was queued): the ambiguous failure a non-idempotent trigger must survive.
    """

    kind: FaultKind
    pattern: str = ""
    status: int = 503
    delay: float = 0.0
    method: str | None = None
    times: int | None = 1
    after: bool = False

    def matches(self, method: str, path: str) -> bool:
        """True if this rule applies to a request with ``method`` and ``path``."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return re.search(self.pattern, path) is not None


@dataclass(frozen=True)
class Decision:
    """What the handler must do to one request before (or instead of) serving it."""

    kind: FaultKind
    status: int = 503
    delay: float = 0.0
    after: bool = False


@dataclass
class FaultPlan:
    """The faults in force. Thread-safe: request threads and build workers consult it."""

    rules: list[Fault] = field(default_factory=list)
    build_failures: set[str] = field(default_factory=set)
    error_percent: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    _remaining: dict[int, int | None] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def replace(self, spec: str = "", rules: tuple[Fault, ...] | list[Fault] = ()) -> None:
        """Replace every fault with those in ``spec`` (DESIGN.md syntax) and ``rules``."""
        build, error = parse_spec(spec)
        with self._lock:
            self.rules = list(rules)
            self._remaining = {i: rule.times for i, rule in enumerate(self.rules)}
            self.build_failures = build
            self.error_percent = error

    def decide(self, method: str, path: str) -> Decision | None:
        """Consume and return the fault for one request, or ``None`` to serve it normally."""
        with self._lock:
            for index, rule in enumerate(self.rules):
                left = self._remaining.get(index)
                if left == 0 or not rule.matches(method, path):
                    continue
                if left is not None:
                    self._remaining[index] = left - 1
                return Decision(rule.kind, rule.status, rule.delay, rule.after)
            if self.error_percent and self.rng.random() * 100 < self.error_percent:
                return Decision("status", self.rng.choice((500, 503)))
        return None

    def take_build_failure(self, module: str | None) -> bool:
        """True (once) if ``module``'s next build must fail."""
        if module is None:
            return False
        with self._lock:
            if module in self.build_failures:
                self.build_failures.discard(module)
                return True
        return False


def parse_spec(spec: str | None) -> tuple[set[str], int]:
    """Parse ``"build:a,error:10"`` into (modules whose next build fails, error percent).

    The syntax is shared with the AWS sandbox (:mod:`deployfw.sandbox.faults`);
    ``deploy:`` and ``throttle:`` concern the AWS sandbox and are accepted but unused here.
    """
    parsed = parse_faults(spec)
    return set(parsed.build), parsed.error
