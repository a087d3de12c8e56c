"""Read-only checks of a live ECS service against what its ``ecs-native`` strategy needs.

``plan`` runs them (through the AWS boundary, changing nothing) and the deployer runs them
again before UpdateService, so a service that cannot take the strategy fails with the reason
and the fix instead of a rolled-back deployment:

- the service uses the ECS deployment controller - for CODE_DEPLOY the fix is the in-place
  migration, ``deployfw migrate MODULE --to ecs-native``;
- for BLUE_GREEN, LINEAR and CANARY each load balancer entry has an ``advancedConfiguration``
  with an alternate target group, a production listener rule and a role;
- the production (and optional test) rule forwards to both target groups - otherwise ECS rolls
  the deployment back with "Both targetGroup and alternateTargetGroup must be associated with
  the productionListenerRule or testListenerRule";
- the balancer is the type the section declares (``load_balancer_type``), when it declares one.

Notes (not failures) say what the caller needs: ``iam:PassRole`` on the infrastructure role the
service names, which ECS assumes to move the listener rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployfw.aws.clients import Aws, AwsError
from deployfw_aws.deploy_common import Target
from deployfw_aws.native_settings import NativeSettings

BOTH_GROUPS = "Both targetGroup and alternateTargetGroup must be associated with the productionListenerRule"


@dataclass(frozen=True)
class Finding:
    message: str
    blocking: bool = True


@dataclass
class Setup:
    """What the live service says about its load balancing (filled by :func:`check`)."""

    network: bool = False
    role: str | None = None
    production_rule: str | None = None


def check(
    aws: Aws, target: Target, settings: NativeSettings, service: dict[str, Any] | None, module: str
) -> tuple[list[Finding], Setup]:
    """Findings for ``service`` (as DescribeServices returns it; None when it does not exist)."""
    setup = Setup()
    where = f"{target.cluster}/{target.service}"
    if service is None:
        return [Finding(f"service {where} does not exist")], setup
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    if controller == "CODE_DEPLOY":
        return [
            Finding(
                f"service {where} uses the CODE_DEPLOY deployment controller; ecs-native needs the ECS controller. "
                f"Switch it in place: `deployfw migrate {module} --to ecs-native --role ROLE` (shows the plan), "
                "then again with --yes"
            )
        ], setup
    if controller != "ECS":
        return [Finding(f"service {where} uses the {controller} deployment controller; ecs-native needs ECS")], setup
    if not settings.traffic:
        return [], setup
    findings: list[Finding] = []
    balancers = service.get("loadBalancers") or []
    if not balancers:
        findings.append(
            Finding(
                f"service {where} has no load balancer; {settings.strategy} shifts load balancer "
                "traffic between two target groups (use strategy ROLLING without one)"
            )
        )
    for lb in balancers:
        findings.extend(_balancer(aws, where, lb, settings, setup))
    return findings, setup


def _balancer(aws: Aws, where: str, lb: dict[str, Any], settings: NativeSettings, setup: Setup) -> list[Finding]:
    group = lb.get("targetGroupArn")
    if not group:
        return [Finding(f"service {where}: a load balancer entry without a target group cannot shift traffic")]
    advanced = lb.get("advancedConfiguration") or {}
    missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not advanced.get(k)]
    if missing:
        return [
            Finding(
                f"service {where}: the load balancer entry of target group {_name(group)} lacks "
                f"advancedConfiguration.{', advancedConfiguration.'.join(missing)} - {settings.strategy} needs an "
                "alternate target group, a production listener rule (an NLB's listener) and the ECS infrastructure "
                "role for load balancers"
            )
        ]
    findings: list[Finding] = []
    setup.role = advanced["roleArn"]
    setup.production_rule = advanced["productionListenerRule"]
    findings.append(
        Finding(
            f"the deploying principal needs iam:PassRole on {advanced['roleArn']} (iam:PassedToService "
            "ecs.amazonaws.com): ECS assumes it to move the listener rules",
            blocking=False,
        )
    )
    wanted = {group, advanced["alternateTargetGroupArn"]}
    forwarded: set[str] = set()
    for key in ("productionListenerRule", "testListenerRule"):
        arn = advanced.get(key)
        if not arn:
            continue
        try:
            groups, network = _forwards(aws, arn)
        except AwsError as exc:
            findings.append(Finding(f"service {where}: {key} {arn} cannot be read: {exc.detail}"))
            continue
        forwarded |= groups
        setup.network = setup.network or network
    if not wanted <= forwarded:
        findings.append(
            Finding(
                f"service {where}: its production/test listener rules forward to "
                f"{', '.join(sorted(map(_name, forwarded))) or 'no target group'}, not to both "
                f"{_name(group)} and {_name(advanced['alternateTargetGroupArn'])}; ECS would roll the deployment back "
                f'("{BOTH_GROUPS}"). Make the production rule forward to both, weights 1 and 0'
            )
        )
    declared = settings.load_balancer_type
    actual = "network" if setup.network else "application"
    if declared and declared != actual:
        findings.append(
            Finding(
                f"service {where} is behind an {actual} load balancer; modules.yaml says load_balancer_type: {declared}"
            )
        )
    return findings


def _forwards(aws: Aws, arn: str) -> tuple[set[str], bool]:
    """Target groups a listener rule (or an NLB listener) forwards to, and whether it is an NLB's."""
    if ":listener-rule/" in arn:
        rules = aws.call("elbv2", "describe_rules", RuleArns=[arn]).get("Rules") or []
        actions = rules[0].get("Actions") or [] if rules else []
        network = ":listener-rule/net/" in arn
    else:
        listeners = aws.call("elbv2", "describe_listeners", ListenerArns=[arn]).get("Listeners") or []
        actions = listeners[0].get("DefaultActions") or [] if listeners else []
        network = ":listener/net/" in arn
    groups: set[str] = set()
    for action in actions:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            groups.add(action["TargetGroupArn"])
        for entry in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            groups.add(entry["TargetGroupArn"])
    return groups, network


def _name(arn: str) -> str:
    """``targetgroup/NAME/ID`` -> NAME, for messages."""
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn
