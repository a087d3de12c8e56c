"""The sandbox's shared, mutable world: lock, clock settings, faults, module registry.

moto keeps its backends in process-wide dictionaries, so the lifecycle code living in
our backend subclasses cannot be handed a per-instance object through moto's
constructors. Instead each started :class:`~deployfw.sandbox.aws.server.AwsSandbox`
pushes its :class:`SandboxContext` here and the backends ask :func:`current` for it.
Two sandboxes running at once in one process therefore share moto's state (that is
moto's limit); the most recently started one's faults, timings and runner apply.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployfw.sandbox.aws.faults import FaultSet
from deployfw.sandbox.clock import SandboxClock

if TYPE_CHECKING:
    from deployfw.sandbox.aws.authz import IamEnforcer
    from deployfw.sandbox.aws.health import HealthChecks
    from deployfw.sandbox.fleet import Fleet
    from deployfw.sandbox.runtime import TaskRuntime


@dataclass
class Timings:
    """Real-second floors under the sandbox clock's durations (``DEPLOYFW_SANDBOX_TIMINGS``).

    The clock (:mod:`deployfw.sandbox.clock`) decides how long each wait AWS would make
    takes; these floors make a step last at least so long in real seconds whatever the
    scale, which is how a test holds a deployment in progress long enough to cancel it.
    ``0`` adds nothing.
    """

    deploy_step: float = 0.4
    """At least this many real seconds per CodeDeploy lifecycle step (Created->InProgress, each traffic shift)."""
    rolling_step: float = 0.4
    """Real seconds per ECS rolling step: a deployment is judged (completed or failed) two steps after it starts at the
    earliest."""
    build_phase: float = 0.05
    """Minimum seconds spent in each CodeBuild bookkeeping phase (SUBMITTED, QUEUED...)."""
    tick: float = 0.05
    """Interval of the background ticker that advances work nobody polls."""


@dataclass
class ModuleRegistry:
    """Which deployfw module owns which AWS resource, so faults can name modules."""

    services: dict[tuple[str, str], str] = field(default_factory=dict)
    deployment_groups: dict[tuple[str, str], str] = field(default_factory=dict)
    projects: dict[str, str] = field(default_factory=dict)

    def module_for_service(self, cluster: str, service: str) -> str:
        """The module deploying ``cluster/service``; the service name when unregistered."""
        return self.services.get((cluster.split("/")[-1], service.split("/")[-1]), service)

    def module_for_group(self, application: str, group: str) -> str:
        return self.deployment_groups.get((application, group), group)

    def module_for_project(self, project: str) -> str:
        return self.projects.get(project, project)


BuildRunner = Callable[..., Any]


@dataclass
class SandboxContext:
    """Everything the sandbox's backends share with its server and control endpoints."""

    faults: FaultSet
    timings: Timings = field(default_factory=Timings)
    repo_root: Path | None = None
    build_runner: BuildRunner | None = None
    seed: int | None = None
    registry: ModuleRegistry = field(default_factory=ModuleRegistry)
    lock: threading.RLock = field(default_factory=threading.RLock)
    rng: random.Random = field(init=False)
    stopping: threading.Event = field(default_factory=threading.Event)
    endpoint_url: str | None = None
    clock: SandboxClock = field(default_factory=SandboxClock)
    runtime: TaskRuntime | None = None
    """Where tasks run; started with the sandbox (None in a moto without us: tasks then never start)."""
    health: HealthChecks | None = None
    fleet: Fleet | None = None
    """The server instances CodeDeploy's EC2/on-premises deployments reach (started with the sandbox)."""
    iam: IamEnforcer | None = None
    """IAM: enforcing (``--enforce-iam``) or only answering SimulatePrincipalPolicy; set when started."""
    reseed: Callable[[], list[str]] | None = None
    """``POST /_sandbox/seed``: seed again from the config file as it is now (what it adds); set by the
    ``deployfw sandbox`` command, which knows the config file and the plugins. None: not offered."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


_stack: list[SandboxContext] = []
_stack_lock = threading.Lock()


def push(ctx: SandboxContext) -> None:
    with _stack_lock:
        _stack.append(ctx)


def remove(ctx: SandboxContext) -> None:
    with _stack_lock:
        if ctx in _stack:
            _stack.remove(ctx)


def current() -> SandboxContext:
    """The active sandbox's context, or a default one when moto runs without us."""
    with _stack_lock:
        if _stack:
            return _stack[-1]
    global _fallback
    if _fallback is None:
        _fallback = SandboxContext(faults=FaultSet())
    return _fallback


def any_running() -> bool:
    with _stack_lock:
        return bool(_stack)


_fallback: SandboxContext | None = None
