"""Injected faults: the ``DEPLOYFW_SANDBOX_FAULTS`` syntax, parsed and consumed.

``deploy:<module>`` and ``build:<module>`` are one-shot: they fail that module's *next*
deployment or build and are then used up, which is what a retry-and-recover test needs.
``throttle:<percent>`` and ``error:<percent>`` stay until replaced; they apply to every
AWS call (never the control endpoints) with a seedable random draw.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from deployfw.sandbox.faults import parse_faults


@dataclass
class FaultSet:
    """A parsed fault list. Thread-safe: the server and the lifecycle code both use it."""

    deploy: set[str] = field(default_factory=set)
    build: set[str] = field(default_factory=set)
    throttle: int = 0
    error: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    # Called with the new fault list after every replace: the Jenkins double of the same
    # sandbox session follows the AWS control endpoint, so one POST sets both.
    listeners: list[Callable[[str], None]] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str | None) -> FaultSet:
        """Parse ``"deploy:a,build:b,throttle:20,error:10"``; an empty string means none."""
        spec = parse_faults(text)
        return cls(set(spec.deploy), set(spec.build), spec.throttle, spec.error)

    def replace(self, other: FaultSet) -> None:
        """Take over ``other``'s faults in place (the backends hold a reference to us)."""
        with self._lock:
            self.deploy = set(other.deploy)
            self.build = set(other.build)
            self.throttle = other.throttle
            self.error = other.error
        for listener in self.listeners:
            listener(str(other))

    def take_deploy(self, module: str) -> bool:
        """True (once) if ``module``'s next deployment must fail its health checks."""
        with self._lock:
            if module in self.deploy:
                self.deploy.discard(module)
                return True
            return False

    def take_build(self, module: str) -> bool:
        """True (once) if ``module``'s next build must fail."""
        with self._lock:
            if module in self.build:
                self.build.discard(module)
                return True
            return False

    def draw(self, rng: random.Random) -> str | None:
        """Decide the fate of one AWS call: ``"throttle"``, ``"error"`` or ``None``."""
        with self._lock:
            throttle, error = self.throttle, self.error
        if throttle and rng.random() * 100 < throttle:
            return "throttle"
        if error and rng.random() * 100 < error:
            return "error"
        return None

    def __str__(self) -> str:
        with self._lock:
            items = [f"deploy:{m}" for m in sorted(self.deploy)]
            items += [f"build:{m}" for m in sorted(self.build)]
            if self.throttle:
                items.append(f"throttle:{self.throttle}")
            if self.error:
                items.append(f"error:{self.error}")
        return ",".join(items)
