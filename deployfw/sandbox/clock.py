"""The sandbox clock: how fast sandbox time passes against real time.

AWS deployments wait for real: a ``CodeDeployDefault.ECSCanary10Percent15Minutes``
deployment holds 10 % of the traffic for fifteen minutes, a target needs five health
checks thirty seconds apart before it is healthy, a rollback deployment runs for
minutes. The sandbox keeps every one of those durations in *sandbox seconds* and
lets them pass at ``DEPLOYFW_SANDBOX_TIME_SCALE`` sandbox seconds per real second:

- the default, :data:`DEFAULT_SCALE` (60: one sandbox minute per real second), makes
  the fifteen-minute canary take fifteen real seconds - long enough to watch with
  ``curl`` on the listener, short enough for a demo;
- ``0`` makes every timed wait due at once ("one step per poll"): what tests that do
  not care about durations use. Work that is not a timed wait (a process starting,
  a health check answering) still takes the real time it takes.

Timestamps the API returns stay wall-clock times; only durations are scaled.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from deployfw.timescale import DEFAULT_SCALE, TIME_SCALE_ENV, parse_time_scale

__all__ = ["DEFAULT_SCALE", "TIME_SCALE_ENV", "SandboxClock", "parse_scale", "set_default_scale"]

MIN_POLL = 0.05
"""Real seconds between two looks at something that is polled (health checks at scale 0)."""
BOUNDED_SCALE_AT_ZERO = 600.0
"""At scale 0, how fast the *limit* of a wait for a condition passes (the 60-minute replacement health
timeout, a lifecycle hook's hour): the wait cannot be skipped - the condition may come true - so its
limit passes at this scale instead (60 minutes = 6 real seconds)."""


_default = DEFAULT_SCALE


def set_default_scale(scale: float) -> None:
    """The scale used when ``DEPLOYFW_SANDBOX_TIME_SCALE`` is not set (the pytest kit sets 0)."""
    global _default
    _default = scale


def parse_scale(text: str | None) -> float:
    """``"60"`` -> 60.0; empty or None -> the default scale; anything else bad input (exit 2)."""
    if text is None or not text.strip():
        return _default
    return parse_time_scale(text)


@dataclass(frozen=True)
class SandboxClock:
    """Converts sandbox durations to real ones; ``scale`` sandbox seconds pass per real second."""

    scale: float = DEFAULT_SCALE

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> SandboxClock:
        env = os.environ if environ is None else environ
        return cls(parse_scale(env.get(TIME_SCALE_ENV)))

    @property
    def instant(self) -> bool:
        """True at scale 0: timed waits do not wait."""
        return self.scale == 0

    def real(self, sandbox_seconds: float) -> float:
        """Real seconds that ``sandbox_seconds`` take (0 at scale 0)."""
        if self.scale == 0 or sandbox_seconds <= 0:
            return 0.0
        return sandbox_seconds / self.scale

    def bounded(self, sandbox_seconds: float) -> float:
        """Real seconds a wait for a condition may last when AWS limits it to ``sandbox_seconds``."""
        return max(0.0, sandbox_seconds) / (self.scale or BOUNDED_SCALE_AT_ZERO)

    def poll(self, sandbox_seconds: float) -> float:
        """Real seconds between two runs of something repeated every ``sandbox_seconds`` (never 0)."""
        return max(MIN_POLL, self.real(sandbox_seconds))

    def now(self) -> float:
        """Real monotonic seconds; deadlines are compared against this."""
        return time.monotonic()

    def after(self, sandbox_seconds: float) -> float:
        """The monotonic time at which ``sandbox_seconds`` from now have passed."""
        return time.monotonic() + self.real(sandbox_seconds)
