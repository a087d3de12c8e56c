"""The sandbox's per-deployment progress, kept beside moto's ``DeploymentInfo``.

Shared by the CodeDeploy backend and its platform lifecycles (ECS, Server), which is
why it lives apart from both: they import it, it imports neither.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.utils import utcnow

ECS_EVENTS = (
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
)
"""The lifecycle events of an ECS deployment, in order, as GetDeploymentTarget names them."""

HOOK_EVENTS = ("BeforeInstall", "AfterInstall", "AfterAllowTestTraffic", "BeforeAllowTraffic", "AfterAllowTraffic")
"""The ECS events an AppSpec ``Hooks`` section may name a Lambda function for."""


@dataclass
class HookExecution:
    """One AppSpec hook awaiting PutLifecycleEventHookExecutionStatus."""

    execution_id: str
    deployment_id: str
    event: str
    function: str
    status: str = "Pending"


@dataclass
class Progress:
    due: float
    stage: str = "start"
    shift_index: int = 0
    steps: list[int] = field(default_factory=lambda: [100])
    interval_minutes: float = 0.0
    fail_health: bool = False
    module: str = ""
    ecs: dict[str, Any] = field(default_factory=dict)
    """ECS blue/green bookkeeping, filled when the replacement task set is created."""
    events: list[dict[str, Any]] = field(default_factory=list)
    traffic: list[int] = field(default_factory=list)
    deadline: float | None = None
    continued: set[str] = field(default_factory=set)
    """ContinueDeployment wait types received (READY_WAIT, TERMINATION_WAIT)."""
    hooks: dict[str, str] = field(default_factory=dict)
    """Lifecycle event -> Lambda function named by the AppSpec."""
    executions: dict[str, HookExecution] = field(default_factory=dict)
    rollback_of: str | None = None

    def start_events(self, names: tuple[str, ...]) -> None:
        self.events = [{"lifecycleEventName": n, "status": "Pending"} for n in names]

    def event(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.events if e["lifecycleEventName"] == name), None)

    def begin(self, name: str) -> None:
        event = self.event(name)
        if event is not None and event["status"] == "Pending":
            event.update(status="InProgress", startTime=utcnow())

    def end(self, name: str, status: str = "Succeeded") -> None:
        event = self.event(name)
        if event is None:
            return
        now = utcnow()
        event.setdefault("startTime", now)
        event.update(status=status, endTime=now)

    def close_open_events(self, status: str) -> None:
        """On failure: the running event fails, the ones not reached are Skipped."""
        for event in self.events:
            if event["status"] == "InProgress":
                self.end(event["lifecycleEventName"], status)
            elif event["status"] == "Pending":
                event["status"] = "Skipped"

    def hook(self, deployment_id: str, event: str) -> HookExecution | None:
        """The execution for ``event``'s hook (created on first ask); None when the AppSpec names none."""
        function = self.hooks.get(event)
        if function is None:
            return None
        for execution in self.executions.values():
            if execution.event == event:
                return execution
        execution = HookExecution(str(uuid.uuid4()), deployment_id, event, function)
        self.executions[execution.execution_id] = execution
        return execution
