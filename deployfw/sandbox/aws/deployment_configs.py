"""CodeDeploy deployment configurations: the predefined ones and how they shift traffic.

moto has no deployment configs at all. AWS ships a fixed set of ``CodeDeployDefault.*``
configs per compute platform; ECS ones carry a ``trafficRoutingConfig`` whose canary or
linear percentages the sandbox turns into the sequence of traffic shifts it performs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class DeploymentConfig:
    name: str
    compute_platform: str
    traffic_routing: dict[str, Any] = field(default_factory=lambda: {"type": "AllAtOnce"})
    minimum_healthy_hosts: dict[str, Any] | None = None
    config_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    create_time: datetime = field(default_factory=lambda: datetime(2020, 1, 1, tzinfo=UTC))

    def info(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "deploymentConfigId": self.config_id,
            "deploymentConfigName": self.name,
            "createTime": self.create_time,
            "computePlatform": self.compute_platform,
        }
        if self.compute_platform == "Server":
            doc["minimumHealthyHosts"] = self.minimum_healthy_hosts or {
                "type": "FLEET_PERCENT",
                "value": 0,
            }
        else:
            doc["trafficRoutingConfig"] = self.traffic_routing
        return doc

    def interval_minutes(self) -> float:
        """Minutes between two traffic shifts (canary: before the rest; linear: between steps)."""
        routing = self.traffic_routing
        if routing.get("type") == "TimeBasedCanary":
            return float(routing["timeBasedCanary"].get("canaryInterval") or 0)
        if routing.get("type") == "TimeBasedLinear":
            return float(routing["timeBasedLinear"].get("linearInterval") or 0)
        return 0.0

    def shift_steps(self) -> list[int]:
        """Percentages of production traffic on the replacement, one entry per step."""
        kind = self.traffic_routing.get("type", "AllAtOnce")
        if kind == "TimeBasedCanary":
            canary = int(self.traffic_routing["timeBasedCanary"]["canaryPercentage"])
            return [canary, 100]
        if kind == "TimeBasedLinear":
            step = max(1, int(self.traffic_routing["timeBasedLinear"]["linearPercentage"]))
            return [*range(step, 100, step), 100]
        return [100]


def _canary(pct: int, minutes: int) -> dict[str, Any]:
    return {
        "type": "TimeBasedCanary",
        "timeBasedCanary": {"canaryPercentage": pct, "canaryInterval": minutes},
    }


def _linear(pct: int, minutes: int) -> dict[str, Any]:
    return {
        "type": "TimeBasedLinear",
        "timeBasedLinear": {"linearPercentage": pct, "linearInterval": minutes},
    }


def predefined() -> dict[str, DeploymentConfig]:
    """The configs AWS provides in every account (names exactly as AWS spells them)."""
    configs = [
        DeploymentConfig("CodeDeployDefault.ECSAllAtOnce", "ECS"),
        DeploymentConfig("CodeDeployDefault.ECSCanary10Percent5Minutes", "ECS", _canary(10, 5)),
        DeploymentConfig("CodeDeployDefault.ECSCanary10Percent15Minutes", "ECS", _canary(10, 15)),
        DeploymentConfig("CodeDeployDefault.ECSLinear10PercentEvery1Minutes", "ECS", _linear(10, 1)),
        DeploymentConfig("CodeDeployDefault.ECSLinear10PercentEvery3Minutes", "ECS", _linear(10, 3)),
        DeploymentConfig("CodeDeployDefault.LambdaAllAtOnce", "Lambda"),
        DeploymentConfig("CodeDeployDefault.LambdaCanary10Percent5Minutes", "Lambda", _canary(10, 5)),
        DeploymentConfig("CodeDeployDefault.LambdaLinear10PercentEvery1Minute", "Lambda", _linear(10, 1)),
        DeploymentConfig(
            "CodeDeployDefault.AllAtOnce",
            "Server",
            {"type": "AllAtOnce"},
            {"type": "FLEET_PERCENT", "value": 0},
        ),
        DeploymentConfig(
            "CodeDeployDefault.HalfAtATime",
            "Server",
            {"type": "AllAtOnce"},
            {"type": "FLEET_PERCENT", "value": 50},
        ),
        DeploymentConfig(
            "CodeDeployDefault.OneAtATime",
            "Server",
            {"type": "AllAtOnce"},
            {"type": "HOST_COUNT", "value": 1},
        ),
    ]
    return {c.name: c for c in configs}


NLB_ONLY = "CodeDeployDefault.ECSAllAtOnce"
DEFAULT_FOR_PLATFORM = {
    "ECS": "CodeDeployDefault.ECSAllAtOnce",
    "Server": "CodeDeployDefault.OneAtATime",
    "Lambda": "CodeDeployDefault.LambdaAllAtOnce",
}
