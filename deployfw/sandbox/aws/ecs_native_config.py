"""What UpdateService refuses for ECS-native strategies, and the listener rules they move.

Refusals (InvalidParameterException, as the ECS API names it) for what the ECS API reference
and botocore's model document: the strategy enum; ``bakeTimeInMinutes`` 0-1440 (and present for
BLUE_GREEN); ``canaryPercent`` 0.1-100 and ``stepPercent`` 3-100, both in multiples of 0.1;
bake times of a step 0-1440; a linear/canary configuration given for another strategy; and a
load balancer without the ``advancedConfiguration`` a traffic-shifting strategy needs
(alternate target group, production listener rule, role), or naming ones that do not exist.

What AWS does *not* refuse synchronously stays a deployment failure (:mod:`.ecs_native`): a
production rule that does not forward to both target groups rolls the deployment back with
the message the ECS guide quotes.

The rule helpers treat an ALB listener rule (the listener's default rule included) and an
NLB listener (which the API accepts in place of a rule) alike: a forward action whose target
groups carry weights.
"""

from __future__ import annotations

from typing import Any

from moto.ecs.exceptions import InvalidParameterException

from deployfw.sandbox.aws import elb
from deployfw.sandbox.aws.ecs_native_model import TRAFFIC_STRATEGIES

STRATEGIES = ("ROLLING", *TRAFFIC_STRATEGIES)
MAX_BAKE_MINUTES = 1440
INVALID_NETWORKING = (
    "Service deployment rolled back because of invalid networking configuration. Both targetGroup and "
    "alternateTargetGroup must be associated with the productionListenerRule or testListenerRule."
)


def _tenths(value: float) -> bool:
    return abs(value * 10 - round(value * 10)) < 1e-6


def _minutes(value: Any, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BAKE_MINUTES:
        raise InvalidParameterException(f"{name} must be an integer between 0 and {MAX_BAKE_MINUTES} minutes.")


def _percent(value: Any, name: str, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= 100 or not _tenths(value):
        raise InvalidParameterException(f"{name} must be a multiple of 0.1 between {low:g} and 100.")
    return float(value)


def merged_configuration(current: dict[str, Any] | None, requested: dict[str, Any] | None) -> dict[str, Any]:
    """The service's ``deploymentConfiguration`` after an update: requested keys over current ones.

    A request that names a strategy replaces the strategy-specific settings too: the service's
    linear or canary configuration of an earlier strategy does not outlive it.
    """
    merged = dict(current or {})
    if requested and requested.get("strategy"):
        for key, strategy in (("linearConfiguration", "LINEAR"), ("canaryConfiguration", "CANARY")):
            if requested["strategy"] != strategy:
                merged.pop(key, None)
    merged.update(requested or {})
    return merged


def validate_configuration(config: dict[str, Any]) -> str:
    """Check a merged ``deploymentConfiguration``; returns its strategy (ROLLING when unset)."""
    strategy = config.get("strategy") or "ROLLING"
    if strategy not in STRATEGIES:
        raise InvalidParameterException(
            f"Invalid deployment strategy {strategy!r}; valid values: {', '.join(STRATEGIES)}."
        )
    if "bakeTimeInMinutes" in config and config["bakeTimeInMinutes"] is not None:
        _minutes(config["bakeTimeInMinutes"], "bakeTimeInMinutes")
    elif strategy == "BLUE_GREEN":
        raise InvalidParameterException("bakeTimeInMinutes must be provided for the BLUE_GREEN deployment strategy.")
    linear, canary = config.get("linearConfiguration"), config.get("canaryConfiguration")
    if linear and strategy != "LINEAR":
        raise InvalidParameterException("linearConfiguration is only valid with the LINEAR deployment strategy.")
    if canary and strategy != "CANARY":
        raise InvalidParameterException("canaryConfiguration is only valid with the CANARY deployment strategy.")
    if linear:
        if "stepPercent" in linear:
            _percent(linear["stepPercent"], "linearConfiguration.stepPercent", 3.0)
        if "stepBakeTimeInMinutes" in linear:
            _minutes(linear["stepBakeTimeInMinutes"], "linearConfiguration.stepBakeTimeInMinutes")
    if canary:
        if "canaryPercent" in canary:
            _percent(canary["canaryPercent"], "canaryConfiguration.canaryPercent", 0.1)
        if "canaryBakeTimeInMinutes" in canary:
            _minutes(canary["canaryBakeTimeInMinutes"], "canaryConfiguration.canaryBakeTimeInMinutes")
    return str(strategy)


def traffic_steps(strategy: str, config: dict[str, Any]) -> tuple[list[float], float]:
    """Production percentages of the new revision, step by step, and the bake between steps (minutes).

    Defaults are the model's: linear 10 % every 6 minutes, canary 5 % for 10 minutes. A linear
    deployment's step bake time is not applied after it reaches 100 %.
    """
    if strategy == "LINEAR":
        linear = config.get("linearConfiguration") or {}
        step = float(linear.get("stepPercent", 10.0))
        shares: list[float] = []
        share = 0.0
        while share < 100.0:
            share = min(100.0, round(share + step, 1))
            shares.append(share)
        return shares, float(linear.get("stepBakeTimeInMinutes", 6))
    if strategy == "CANARY":
        canary = config.get("canaryConfiguration") or {}
        first = float(canary.get("canaryPercent", 5.0))
        return ([first, 100.0] if first < 100.0 else [100.0]), float(canary.get("canaryBakeTimeInMinutes", 10))
    return [100.0], 0.0


def validate_load_balancers(account: str, region: str, load_balancers: list[dict[str, Any]]) -> None:
    """Every load balancer of a traffic-shifting service needs its advanced configuration, all of it existing."""
    elbv2 = elb.elbv2(account, region)
    if not load_balancers:
        raise InvalidParameterException(
            "A load balancer with an advancedConfiguration is required for blue/green, linear and canary "
            "deployments that shift load balancer traffic."
        )
    for lb in load_balancers:
        primary = lb.get("targetGroupArn")
        advanced = lb.get("advancedConfiguration") or {}
        if not primary:
            raise InvalidParameterException("loadBalancers.targetGroupArn is required.")
        for key in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
            if not advanced.get(key):
                raise InvalidParameterException(
                    f"advancedConfiguration.{key} is required for the load balancer of target group {primary} "
                    "when the deployment strategy is BLUE_GREEN, LINEAR or CANARY."
                )
        for group in (primary, advanced["alternateTargetGroupArn"]):
            if group not in elbv2.target_groups:
                raise InvalidParameterException(f"Target group {group} does not exist.")
        if advanced["alternateTargetGroupArn"] == primary:
            raise InvalidParameterException("alternateTargetGroupArn must differ from targetGroupArn.")
        for key in ("productionListenerRule", "testListenerRule"):
            if advanced.get(key) and find_forward(elbv2, advanced[key]) is None:
                raise InvalidParameterException(f"The {key} {advanced[key]} does not exist.")
        if not _role_exists(account, advanced["roleArn"]):
            raise InvalidParameterException(f"Unable to assume role {advanced['roleArn']}: the role does not exist.")


def _role_exists(account: str, arn: str) -> bool:
    from moto.iam.models import iam_backends

    name = arn.rsplit("/", 1)[-1]
    backend = iam_backends[account]["aws"]
    return any(role.name == name for role in backend.roles.values())


# -- listener rules ---------------------------------------------------------------------------


def find_forward(elbv2: Any, arn: str) -> tuple[Any, Any | None] | None:
    """(listener, rule) for a rule ARN, (listener, None) for a listener ARN, None when neither exists."""
    for balancer in elbv2.load_balancers.values():
        for listener in balancer.listeners.values():
            if listener.arn == arn:
                return listener, None
            for rule in listener.rules.values():
                if rule.arn == arn:
                    return listener, rule
    return None


def forward_weights(elbv2: Any, arn: str) -> dict[str, int]:
    """Target group ARN -> weight of the forward action of a listener (its default rule) or rule."""
    found = find_forward(elbv2, arn)
    if found is None:
        return {}
    listener, rule = found
    if rule is None or rule.is_default:
        return elb.weights(listener)
    weights: dict[str, int] = {}
    for action in rule.actions:
        data = action.data
        if data.get("Type") != "forward":
            continue
        if data.get("TargetGroupArn"):
            weights[data["TargetGroupArn"]] = 1
        for group in data.get("ForwardConfig", {}).get("TargetGroups", []):
            weights[group["TargetGroupArn"]] = int(group.get("Weight", 1))
    return weights


def shift(elbv2: Any, arn: str, blue: str, green: str, green_percent: float) -> None:
    """Point ``arn``'s forward action at both groups, ``green_percent`` of it to ``green``.

    Both target groups stay in the action (the one not serving at weight 0): the next deployment
    needs the rule to forward to both. Weights are whole numbers (ELB's 0-999), in tenths of a
    percent when the share needs them.
    """
    if float(green_percent).is_integer():
        green_weight, total = int(green_percent), 100
    else:
        green_weight, total = round(green_percent * 10), 1000
    blue_weight = total - green_weight
    if blue_weight > 999:
        blue_weight = 999
    action = {
        "Type": "forward",
        "ForwardConfig": {
            "TargetGroups": [
                {"TargetGroupArn": blue, "Weight": blue_weight},
                {"TargetGroupArn": green, "Weight": green_weight},
            ]
        },
    }
    found = find_forward(elbv2, arn)
    if found is None:
        return
    listener, rule = found
    if rule is None or rule.is_default:
        elbv2.modify_listener(listener.arn, actions=[action])
    else:
        elbv2.modify_rule(arn, conditions=[], actions=[action])
