"""Read and steer ELBv2 listeners the way CodeDeploy does during a blue/green shift."""

from __future__ import annotations

from typing import Any


def elbv2(account_id: str, region: str) -> Any:
    from moto.elbv2.models import elbv2_backends

    return elbv2_backends[account_id][region]


def find_listener(elb: Any, listener_arn: str) -> Any | None:
    for balancer in elb.load_balancers.values():
        if listener_arn in balancer.listeners:
            return balancer.listeners[listener_arn]
    return None


def weights(listener: Any) -> dict[str, int]:
    """Target group ARN -> weight of the listener's default forward action."""
    result: dict[str, int] = {}
    for action in listener.default_actions:
        data = action.data
        if data.get("Type") != "forward":
            continue
        if data.get("TargetGroupArn"):
            result[data["TargetGroupArn"]] = 1
        for group in data.get("ForwardConfig", {}).get("TargetGroups", []):
            result[group["TargetGroupArn"]] = int(group.get("Weight", 1))
    return result


def serving_group(listener: Any) -> str | None:
    """The target group carrying (most of) the listener's traffic."""
    current = weights(listener)
    if not current:
        return None
    return max(current.items(), key=lambda kv: kv[1])[0]


def route(elb: Any, listener_arn: str, shares: dict[str, int]) -> None:
    """Point the listener at one group, or split it by weight (a canary/linear step)."""
    live = {arn: w for arn, w in shares.items() if w > 0}
    action: dict[str, Any]
    if len(live) == 1:
        action = {"Type": "forward", "TargetGroupArn": next(iter(live))}
    else:
        action = {
            "Type": "forward",
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in shares.items()]},
        }
    elb.modify_listener(listener_arn, actions=[action])


def balancer_type_of_group(elb: Any, target_group_arn: str) -> str | None:
    """``application`` or ``network`` for the balancer a target group is attached to."""
    group = elb.target_groups.get(target_group_arn)
    if group is None:
        return None
    for arn in group.load_balancer_arns:
        balancer = elb.load_balancers.get(arn)
        if balancer is not None:
            return str(getattr(balancer, "type", None) or "application")
    return "network" if getattr(group, "protocol", "") in ("TCP", "UDP", "TLS") else None


def elbv2_backends_of() -> list[Any]:
    """Every built ELBv2 backend (all accounts and regions)."""
    from moto.elbv2.models import elbv2_backends

    return [backend for _, _, backend in elbv2_backends.iter_backends()]
