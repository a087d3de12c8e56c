"""Target-group health checks that probe the registered targets for real.

An ELB health check is a request to each registered target (``GET <path>`` on the
traffic port for HTTP target groups, a TCP connect for TCP ones) every
``HealthCheckIntervalSeconds``; ``HealthyThresholdCount`` consecutive successes make a
target ``healthy``, ``UnhealthyThresholdCount`` consecutive failures ``unhealthy``. A
deregistered target is ``draining`` for the group's ``deregistration_delay``, then gone.
Intervals, timeouts and delays are sandbox durations (:mod:`deployfw.sandbox.clock`).

:class:`HealthChecks` keeps the state per (target group, target id, port); its thread
snapshots what is due under the sandbox lock, probes outside it (a hanging app never
blocks the API), and records the outcome under the lock again.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.clock import MIN_POLL

if TYPE_CHECKING:
    from deployfw.sandbox.aws.context import SandboxContext

Key = tuple[str, str, int]
"""(target group ARN, target id, port)."""

_MIN_PROBE_TIMEOUT = 2.0
"""Real seconds a probe waits at least. AWS gives a target its whole HealthCheckTimeoutSeconds (5 s by
default); on the sandbox clock that shrinks to milliseconds, and a task process on a loaded machine can take
longer than that to answer - two such timeouts would mark a healthy target unhealthy, which AWS would not."""
SETTLED_RECHECK_AT_ZERO = 0.5
"""Real seconds between two checks of a *healthy* target when the clock is instant (scale 0). There the
interval passes at once and every healthy task of an idle sandbox was probed twenty times a second
(measured: the example's tasks and the checker took about 40 % of a core doing nothing). A target still
becoming healthy, or unhealthy, is checked at the fast pace; a healthy one that breaks is noticed within
``UnhealthyThresholdCount`` of these. At any other scale the group's interval applies unchanged."""
START_GRACE = 3.0
"""Real seconds a new target stays ``initial`` however its first checks go: a process needs a moment
to start, which on AWS the 30-second interval covers but at a high time scale nothing would."""


@dataclass
class TargetState:
    """One target's health, named as DescribeTargetHealth names it."""

    state: str = "initial"
    reason: str | None = "Elb.InitialHealthChecking"
    description: str | None = "Initial health checks in progress"
    successes: int = 0
    failures: int = 0
    next_probe: float = 0.0
    drain_until: float | None = None
    probes: int = 0
    registered_at: float = 0.0


@dataclass(frozen=True)
class Probe:
    key: Key
    protocol: str
    path: str
    port: int
    timeout: float
    codes: str


def matches(codes: str, status: int) -> bool:
    """ELB's matcher syntax: ``200``, ``200,202``, ``200-299``."""
    for part in codes.split(","):
        part = part.strip()
        if "-" in part:
            low, _, high = part.partition("-")
            if low.isdigit() and high.isdigit() and int(low) <= status <= int(high):
                return True
        elif part.isdigit() and int(part) == status:
            return True
    return False


def probe(item: Probe) -> tuple[bool, str | None, str | None]:
    """Run one health check; (passed, reason, description) as DescribeTargetHealth words them."""
    host = item.key[1]
    try:
        if item.protocol in ("TCP", "TLS", "UDP", "TCP_UDP"):
            with socket.create_connection((host, item.port), timeout=item.timeout):
                return True, None, None
        connection = http.client.HTTPConnection(host, item.port, timeout=item.timeout)
        try:
            connection.request("GET", item.path or "/", headers={"User-Agent": "ELB-HealthChecker/2.0"})
            status = connection.getresponse().status
        finally:
            connection.close()
    except TimeoutError:
        return False, "Target.Timeout", "Request timed out"
    except OSError:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    except http.client.HTTPException:
        return False, "Target.FailedHealthChecks", "Health checks failed"
    if matches(item.codes, status):
        return True, None, None
    return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"


class HealthChecks:
    """Health state of every registered target, kept current by a background thread."""

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx
        self.targets: dict[Key, TargetState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sandbox-health")

    # -- registration (callers hold the sandbox lock) ---------------------------------------

    def register(self, key: Key) -> None:
        current = self.targets.get(key)
        if current is None or current.state in ("draining", "unused"):
            now = time.monotonic()
            self.targets[key] = TargetState(next_probe=now, registered_at=now)

    def deregister(self, key: Key, delay_seconds: float) -> None:
        current = self.targets.get(key)
        if current is None:
            return
        current.state = "draining"
        current.reason = "Target.DeregistrationInProgress"
        current.description = "Target deregistration is in progress"
        current.drain_until = self.ctx.clock.after(delay_seconds)

    def state(self, key: Key) -> TargetState | None:
        return self.targets.get(key)

    def healthy(self, key: Key) -> bool:
        current = self.targets.get(key)
        return current is not None and current.state == "healthy"

    # -- the checker -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sandbox-health-checks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.wait(MIN_POLL):
            try:
                self.run_once()
            except Exception as exc:  # keep checking; one bad target group must not stop the rest
                import sys

                sys.stderr.write(f"deployfw sandbox health checks: {type(exc).__name__}: {exc}\n")

    def run_once(self) -> None:
        due = self._due()
        if not due:
            return
        results = list(self._pool.map(probe, [item for item, _ in due]))
        with self.ctx.lock:
            for (item, settings), outcome in zip(due, results, strict=True):
                self._record(item.key, settings, *outcome)

    def _due(self) -> list[tuple[Probe, dict[str, Any]]]:
        from deployfw.sandbox.aws.elb import elbv2_backends_of

        now = time.monotonic()
        due: list[tuple[Probe, dict[str, Any]]] = []
        with self.ctx.lock:
            groups = {}
            for backend in elbv2_backends_of():
                groups.update(backend.target_groups)
            for key, state in list(self.targets.items()):
                group = groups.get(key[0])
                if group is None:
                    del self.targets[key]
                    continue
                if state.state == "draining":
                    if state.drain_until is not None and now >= state.drain_until:
                        del self.targets[key]
                    continue
                if now < state.next_probe:
                    continue
                settings = _settings(group)
                state.next_probe = now + self._pause(state, settings["interval"])
                port = key[2] if settings["port"] in (None, "traffic-port") else int(settings["port"])
                item = Probe(key, settings["protocol"], settings["path"], port,
                             max(_MIN_PROBE_TIMEOUT, self.ctx.clock.real(settings["timeout"])),
                             settings["codes"])  # fmt: skip
                due.append((item, settings))
        return due

    def _pause(self, state: TargetState, interval: float) -> float:
        """Real seconds until the target's next check."""
        pause = self.ctx.clock.poll(interval)
        if self.ctx.clock.instant and state.state == "healthy":
            return max(pause, SETTLED_RECHECK_AT_ZERO)
        return pause

    def _record(self, key: Key, settings: dict[str, Any], passed: bool, reason: str | None, text: str | None) -> None:
        state = self.targets.get(key)
        if state is None or state.state == "draining":
            return
        state.probes += 1
        if passed:
            state.successes += 1
            state.failures = 0
            if state.state != "healthy" and state.successes >= settings["healthy"]:
                state.state, state.reason, state.description = "healthy", None, None
        else:
            state.failures += 1
            state.successes = 0
            young = state.state == "initial" and time.monotonic() - state.registered_at < START_GRACE
            if state.failures >= settings["unhealthy"] and not young:
                state.state, state.reason, state.description = "unhealthy", reason, text


def _settings(group: Any) -> dict[str, Any]:
    matcher = getattr(group, "matcher", None) or {}
    return {
        "protocol": str(group.health_check_protocol or group.protocol or "HTTP").upper(),
        "path": group.health_check_path or "/",
        "port": group.health_check_port,
        "interval": float(group.health_check_interval_seconds or 30),
        "timeout": float(group.health_check_timeout_seconds or 5),
        "healthy": int(group.healthy_threshold_count or 5),
        "unhealthy": int(group.unhealthy_threshold_count or 2),
        "codes": str(matcher.get("HttpCode") or "200"),
    }


def deregistration_delay(group: Any) -> float:
    try:
        return float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
    except (TypeError, ValueError):
        return 300.0
