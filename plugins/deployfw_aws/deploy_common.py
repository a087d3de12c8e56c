"""What every ECS deployer shares: the resolved deploy section, and honest waiting.

:class:`Target` turns a module's ``deploy`` section (after defaults and the
environment overlay) into the names AWS needs, with the documented defaults in
one place so ``plan``, ``render`` and ``run`` never disagree about them.

:class:`Wait` is the only way a deployer waits: a deadline, polls that start
short (a deployment that is already over is noticed within a second) and back off
to a cap (a 30-minute canary does not hammer the API), a return to short polls
after every change of state, and a sleep that wakes at once on cancel. Clock and
sleep are injected so tests run in no time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployfw.errors import InputError, Problem

if TYPE_CHECKING:
    from deployfw.backends import RunContext
    from deployfw.config import Config, Module

CODEDEPLOY_BACKENDS = ("ecs-bluegreen", "ecs-nlb")
ECS_BACKENDS = (*CODEDEPLOY_BACKENDS, "ecs-rolling", "ecs-native")
ECS_ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"


@dataclass(frozen=True)
class Target:
    """A module's deploy section resolved: where it goes and from which templates."""

    module: str
    backend: str
    cluster: str
    service: str
    family: str
    container: str | None
    container_port: int | None
    health_check_path: str | None
    taskdef: str
    appspec: str | None
    application: str
    deployment_group: str
    deployment_config: str | None
    timeout_minutes: float | None

    @property
    def uses_codedeploy(self) -> bool:
        return self.backend in CODEDEPLOY_BACKENDS

    def option_key(self, option: str) -> str:
        return f"modules.{self.module}.deploy.{option}"


def target_of(config: Config, module: Module) -> Target:
    """Resolve ``module``'s deploy section; defaults documented on each option in the schema."""
    section = module.deploy
    if section is None or section.backend not in ECS_BACKENDS:
        backend = section.backend if section else None
        raise InputError(
            Problem(config.relative_file, None, f"modules.{module.name}.deploy",
                    f"module {module.name!r} has deploy backend {backend!r}; rendering needs one of "
                    f"{', '.join(ECS_BACKENDS)}")
        )
    options = section.options
    service = options.get("service") or module.name
    codedeploy = section.backend in CODEDEPLOY_BACKENDS
    application = f"{config.project}-{module.name}" if config.project else module.name
    return Target(
        module=module.name,
        backend=section.backend,
        cluster=options.get("cluster") or "default",
        service=service,
        family=options.get("family") or service,
        container=options.get("container"),
        container_port=options.get("container_port"),
        health_check_path=options.get("health_check_path"),
        taskdef=options.get("taskdef") or _first_existing(config.root, module.path, ("taskdef.json",)),
        appspec=(options.get("appspec") or _first_existing(config.root, module.path, ("appspec.yaml", "appspec.yml")))
        if codedeploy
        else None,
        application=options.get("application") or application,
        deployment_group=options.get("deployment_group") or module.name,
        deployment_config=options.get("deployment_config"),
        timeout_minutes=options.get("timeout_minutes"),
    )


def _first_existing(root: Path, folder: str, names: tuple[str, ...]) -> str:
    """The module's own template, else the repository's shared one; the module's path when neither exists."""
    candidates = [f"{folder}/{n}" for n in names] + list(names)
    for candidate in candidates:
        if (root / candidate).is_file():
            return candidate
    return candidates[0]


POLL_FLOOR = 0.2
POLL_CAP_FLOOR = 1.0


@dataclass(frozen=True)
class Backoff:
    """Poll delays: ``first`` seconds, multiplied by ``factor`` up to ``cap``."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 10.0

    @classmethod
    def at_scale(cls, scale: float) -> Backoff:
        """AWS's pauses at an endpoint whose clock runs ``scale`` times as fast (a sandbox's).

        Shortened in proportion, down to a floor (0.2 s, backing off to 1 s) that keeps a
        run's polls to about one a second; the instant clock (0) gets the floor.
        """
        if scale == 0:
            return cls(first=POLL_FLOOR, cap=POLL_CAP_FLOOR)
        aws = cls()
        return cls(first=max(aws.first / scale, POLL_FLOOR), cap=max(aws.cap / scale, POLL_CAP_FLOOR))


class Wait:
    """A deadline plus backing-off pauses that end early on cancel."""

    def __init__(
        self,
        seconds: float,
        *,
        cancel: threading.Event,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.seconds = seconds
        self.cancel = cancel
        self._sleep = sleep or cancel.wait
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._delay = self._backoff.first
        self.deadline = clock() + seconds

    @property
    def cancelled(self) -> bool:
        return self.cancel.is_set()

    @property
    def expired(self) -> bool:
        return self._clock() >= self.deadline

    @property
    def elapsed(self) -> float:
        """Seconds since the wait began (on its clock)."""
        return self._clock() - (self.deadline - self.seconds)

    def changed(self) -> None:
        """The state moved: poll soon again, the next state often follows quickly."""
        self._delay = self._backoff.first

    def pause(self) -> None:
        remaining = self.deadline - self._clock()
        if remaining <= 0 or self.cancelled:
            return
        self._sleep(min(self._delay, remaining))
        self._delay = min(self._delay * self._backoff.factor, self._backoff.cap)


class Paced:
    """What every deployer that waits is made with: the run's context, and an injectable sleep and clock.

    Production passes only ``ctx``; tests pass a sleep that returns at once and a clock they move,
    so waits with deadlines and backing-off polls run in no time. :meth:`wait` makes a
    :class:`Wait` with these.
    """

    def __init__(
        self,
        ctx: RunContext,
        *,
        sleep: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        self.ctx = ctx
        self._sleep = sleep
        self._clock = clock
        self._backoff = backoff or Backoff.at_scale(ctx.time_scale)

    def wait(self, seconds: float, cancel: threading.Event) -> Wait:
        return Wait(seconds, cancel=cancel, sleep=self._sleep, clock=self._clock, backoff=self._backoff)


def minutes(seconds: float) -> str:
    value = seconds / 60
    return f"{value:g} min" if value >= 1 else f"{seconds:g} s"


# -- reading what runs: shared by recover, redeploy and describe ----------------------------


def describe_service(aws: Any, target: Target) -> dict[str, Any] | None:
    """The module's ECS service as DescribeServices returns it; None when it does not exist (or is INACTIVE)."""
    found = aws.call("ecs", "describe_services", cluster=target.cluster, services=[target.service])
    services = [s for s in found.get("services") or [] if s.get("status") != "INACTIVE"]
    return services[0] if services else None


def task_definition_image(aws: Any, arn: str | None, container: str | None) -> tuple[str | None, str | None]:
    """``(image, status)`` of a registered task definition: the ``container``'s image (else the first one's).

    ``status`` is ECS's ACTIVE/INACTIVE (a deregistered revision cannot be deployed again); both are
    None when the ARN is unknown, so ``status`` and ``rollback`` can say so instead of failing.
    """
    if not arn:
        return None, None
    try:
        found = aws.call("ecs", "describe_task_definition", taskDefinition=arn)["taskDefinition"]
    except Exception as exc:  # AwsError; ClientException is ECS's answer for an unknown revision
        if getattr(exc, "code", None) in ("ClientException", "InvalidParameterException"):
            return None, None
        raise
    containers = found.get("containerDefinitions") or []
    chosen = next((c for c in containers if c.get("name") == container), containers[0] if containers else {})
    return chosen.get("image"), found.get("status")


def short_arn(arn: str | None) -> str:
    """``family:revision`` of a task definition ARN, for log lines."""
    return str(arn).rsplit("/", 1)[-1] if arn else "-"
