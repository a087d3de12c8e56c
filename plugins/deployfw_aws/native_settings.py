"""The ``ecs-native`` deploy section: strategy settings, AWS's ranges, and the deploymentConfiguration they make.

ECS runs blue/green, linear and canary deployments itself when a service's
``deploymentConfiguration.strategy`` says so. The module's deploy section names the strategy
and its numbers; :meth:`NativeSettings.deployment_configuration` turns them into what
UpdateService takes, keeping the service's other settings. The ranges are the ones botocore's
ECS model documents (checked here before any AWS call, each problem with its line):

- ``bake_time_minutes`` (bakeTimeInMinutes): 0-1440, for BLUE_GREEN, LINEAR and CANARY;
- ``canary_percent`` (canaryConfiguration.canaryPercent): multiples of 0.1 from 0.1 to 100;
- ``linear_step_percent`` (linearConfiguration.stepPercent): multiples of 0.1 from 3 to 100;
- ``canary_bake_time_minutes`` / ``linear_step_bake_time_minutes``: 0-1440.

The deployment circuit breaker (enable, rollback) is switched on for every strategy: AWS's
failure-detection guide names rolling and blue/green deployments, and a failure that is not
detected can only end in a timeout. ``alarms`` names CloudWatch alarms that fail (and roll
back) the deployment when one goes to ALARM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployfw.config import Config, Module
from deployfw.errors import Problem
from deployfw_aws.option_lines import option_problem

STRATEGIES = ("ROLLING", "BLUE_GREEN", "LINEAR", "CANARY")
TRAFFIC = ("BLUE_GREEN", "LINEAR", "CANARY")
DEFAULT_STRATEGY = "BLUE_GREEN"
DEFAULT_BAKE_MINUTES = 5
MAX_MINUTES = 1440
NLB_STAGE_MINUTES = 10  # ECS adds this to PRE_SCALE_UP, TEST_TRAFFIC_SHIFT and each production shift behind an NLB
# The model's defaults when the section leaves them out.
CANARY_DEFAULTS = (5.0, 10)
LINEAR_DEFAULTS = (10.0, 6)
_OWNED = (
    "strategy",
    "bakeTimeInMinutes",
    "linearConfiguration",
    "canaryConfiguration",
    "deploymentCircuitBreaker",
    "alarms",
)


@dataclass(frozen=True)
class NativeSettings:
    strategy: str
    bake_time_minutes: int | None = None
    canary_percent: float | None = None
    canary_bake_time_minutes: int | None = None
    linear_step_percent: float | None = None
    linear_step_bake_time_minutes: int | None = None
    alarms: tuple[str, ...] = ()
    load_balancer_type: str | None = None

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> NativeSettings:
        return cls(
            strategy=str(options.get("strategy") or DEFAULT_STRATEGY),
            bake_time_minutes=options.get("bake_time_minutes"),
            canary_percent=options.get("canary_percent"),
            canary_bake_time_minutes=options.get("canary_bake_time_minutes"),
            linear_step_percent=options.get("linear_step_percent"),
            linear_step_bake_time_minutes=options.get("linear_step_bake_time_minutes"),
            alarms=tuple(options.get("alarms") or ()),
            load_balancer_type=options.get("load_balancer_type"),
        )

    @property
    def traffic(self) -> bool:
        """Whether ECS shifts load balancer traffic (everything but ROLLING)."""
        return self.strategy in TRAFFIC

    def describe(self) -> str:
        """One phrase for plan and logs: ``CANARY 10% for 5 min, then bake 5 min``."""
        bake = self.bake_time_minutes if self.bake_time_minutes is not None else DEFAULT_BAKE_MINUTES
        if self.strategy == "CANARY":
            percent, minutes = self._canary()
            return f"CANARY {percent:g}% for {minutes} min, then the rest; bake {bake} min"
        if self.strategy == "LINEAR":
            percent, minutes = self._linear()
            return f"LINEAR {percent:g}% every {minutes} min; bake {bake} min"
        if self.strategy == "BLUE_GREEN":
            return f"BLUE_GREEN all at once; bake {bake} min"
        return "ROLLING update"

    def _canary(self) -> tuple[float, int]:
        return (
            float(self.canary_percent if self.canary_percent is not None else CANARY_DEFAULTS[0]),
            int(self.canary_bake_time_minutes if self.canary_bake_time_minutes is not None else CANARY_DEFAULTS[1]),
        )

    def _linear(self) -> tuple[float, int]:
        return (
            float(self.linear_step_percent if self.linear_step_percent is not None else LINEAR_DEFAULTS[0]),
            int(
                self.linear_step_bake_time_minutes
                if self.linear_step_bake_time_minutes is not None
                else LINEAR_DEFAULTS[1]
            ),
        )

    def deployment_configuration(self, current: Mapping[str, Any]) -> dict[str, Any]:
        """UpdateService's ``deploymentConfiguration``: ours for the strategy, the service's for the rest.

        Settings of another strategy are dropped (ECS accepts a linear or canary configuration only
        with its own strategy); what the section leaves out keeps the service's value for the same
        strategy, else ECS's default.
        """
        config = {k: v for k, v in current.items() if k not in _OWNED}
        same = current.get("strategy") == self.strategy
        config["strategy"] = self.strategy
        config["deploymentCircuitBreaker"] = {"enable": True, "rollback": True}
        if self.traffic:
            bake: Any = self.bake_time_minutes
            if bake is None:
                bake = current.get("bakeTimeInMinutes") if same else None
            config["bakeTimeInMinutes"] = int(bake if bake is not None else DEFAULT_BAKE_MINUTES)
        if self.strategy == "CANARY":
            canary = dict(current.get("canaryConfiguration") or {}) if same else {}
            if self.canary_percent is not None:
                canary["canaryPercent"] = float(self.canary_percent)
            if self.canary_bake_time_minutes is not None:
                canary["canaryBakeTimeInMinutes"] = int(self.canary_bake_time_minutes)
            if canary:
                config["canaryConfiguration"] = canary
        if self.strategy == "LINEAR":
            linear = dict(current.get("linearConfiguration") or {}) if same else {}
            if self.linear_step_percent is not None:
                linear["stepPercent"] = float(self.linear_step_percent)
            if self.linear_step_bake_time_minutes is not None:
                linear["stepBakeTimeInMinutes"] = int(self.linear_step_bake_time_minutes)
            if linear:
                config["linearConfiguration"] = linear
        if self.alarms:
            config["alarms"] = {"alarmNames": list(self.alarms), "enable": True, "rollback": True}
        elif current.get("alarms"):
            config["alarms"] = current["alarms"]
        return config

    def expected_minutes(self, network: bool) -> float:
        """How long the strategy itself waits: step bakes, the bake time, and the NLB stage delays."""
        if not self.traffic:
            return 0.0
        bake = float(self.bake_time_minutes if self.bake_time_minutes is not None else DEFAULT_BAKE_MINUTES)
        steps, between = 1, 0.0
        if self.strategy == "CANARY":
            percent, minutes = self._canary()
            steps = 2 if percent < 100 else 1
            between = float(minutes) * (steps - 1)
        elif self.strategy == "LINEAR":
            percent, minutes = self._linear()
            steps = max(1, -(-1000 // max(1, round(percent * 10))))  # ceil(100 / percent) in tenths
            between = float(minutes) * (steps - 1)
        delays = NLB_STAGE_MINUTES * (2 + steps) if network else 0
        return bake + between + delays


def static_problems(config: Config, module: Module, settings: NativeSettings) -> list[Problem]:
    """AWS's ranges and which keys go with which strategy, located in modules.yaml."""
    problems: list[Problem] = []
    options = module.deploy.options if module.deploy else {}

    def bad(option: str, message: str) -> None:
        problems.append(option_problem(config, module.name, "deploy", option, message))

    strategy = settings.strategy
    for option, value in options.items():
        if option.startswith("canary_") and strategy != "CANARY":
            bad(option, f"{option} applies to strategy CANARY; this module's strategy is {strategy}")
        if option.startswith("linear_") and strategy != "LINEAR":
            bad(option, f"{option} applies to strategy LINEAR; this module's strategy is {strategy}")
        if option == "bake_time_minutes" and strategy == "ROLLING":
            bad(option, "bake_time_minutes applies to BLUE_GREEN, LINEAR and CANARY; a ROLLING update has no bake")
        if option.endswith("_minutes") and option != "timeout_minutes" and not _minutes(value):
            bad(option, f"{option} is {value!r}; ECS accepts whole minutes from 0 to {MAX_MINUTES}")
    _percent(options, "canary_percent", 0.1, "canaryConfiguration.canaryPercent", bad)
    _percent(options, "linear_step_percent", 3.0, "linearConfiguration.stepPercent", bad)
    return problems


def _minutes(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MINUTES


def _percent(options: Mapping[str, Any], option: str, low: float, field: str, bad: Any) -> None:
    if option not in options:
        return
    value = options[option]
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not low <= value <= 100 or abs(value * 10 - round(value * 10)) > 1e-6:
        bad(option, f"{option} is {value!r}; ECS accepts {field} in multiples of 0.1 from {low:g} to 100")


def steps_text(settings: NativeSettings) -> Sequence[str]:
    """What a deployment of these settings does, for ``plan``."""
    if not settings.traffic:
        return ["ECS replaces the tasks (rolling update) with the deployment circuit breaker (rollback on)"]
    watch = "the deployment circuit breaker (rollback on)"
    if settings.alarms:
        watch += f" and CloudWatch alarms {', '.join(settings.alarms)} (rollback on) fail the deployment"
    else:
        watch += " fails the deployment"
    return [f"ECS deploys a green service revision on the alternate target group: {settings.describe()}", watch]
