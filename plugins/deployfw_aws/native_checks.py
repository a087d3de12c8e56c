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
from deployfw.backends import LiveCheck
from deployfw_aws.deploy_common import Target
from deployfw_aws.native_settings import NativeSettings

BOTH_GROUPS = "Both targetGroup and alternateTargetGroup must be associated with the productionListenerRule"


@dataclass(frozen=True)
class Finding:
    """One check's result: ``check`` names it (a row of ``deployfw doctor``/``plan``), ``blocking``
    means the deploy would fail, ``fix`` says what to do then."""

    check: str
    message: str
    blocking: bool = True
    fix: str | None = None

    @property
    def text(self) -> str:
        return f"{self.message}. {self.fix}" if self.fix else self.message

    def row(self) -> LiveCheck:
        return LiveCheck(self.check, not self.blocking, self.message, self.fix)


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
        return [Finding("service", f"service {where} does not exist")], setup
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    if controller == "CODE_DEPLOY":
        return [
            Finding(
                "controller",
                f"service {where} uses the CODE_DEPLOY deployment controller; ecs-native needs the ECS controller",
                fix=f"switch it in place: `deployfw migrate {module} --to ecs-native --role ROLE` (shows the plan), "
                "then again with --yes",
            )
        ], setup
    if controller != "ECS":
        return [
            Finding(
                "controller",
                f"service {where} uses the {controller} deployment controller; ecs-native needs ECS",
                fix=f"`aws ecs update-service --cluster {target.cluster} --service {target.service} "
                "--deployment-controller type=ECS`, or a deploy backend for that controller",
            )
        ], setup
    findings = [Finding("controller", "deployment controller ECS, as ecs-native needs", blocking=False)]
    if not settings.traffic:
        return findings, setup
    balancers = service.get("loadBalancers") or []
    if not balancers:
        findings.append(
            Finding(
                "load-balancer",
                f"service {where} has no load balancer; {settings.strategy} shifts load balancer "
                "traffic between two target groups",
                fix="give the service a load balancer (two target groups, a listener rule, the infrastructure "
                "role), or use strategy ROLLING",
            )
        )
    for lb in balancers:
        findings.extend(_balancer(aws, where, lb, settings, setup))
    return findings, setup


def _balancer(aws: Aws, where: str, lb: dict[str, Any], settings: NativeSettings, setup: Setup) -> list[Finding]:
    group = lb.get("targetGroupArn")
    if not group:
        return [
            Finding(
                "load-balancer",
                f"service {where}: a load balancer entry without a target group cannot shift traffic",
                fix="give the entry a targetGroupArn and an advancedConfiguration",
            )
        ]
    advanced = lb.get("advancedConfiguration") or {}
    missing = [k for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn") if not advanced.get(k)]
    if missing:
        return [
            Finding(
                "load-balancer",
                f"service {where}: the load balancer entry of target group {_name(group)} lacks "
                f"advancedConfiguration.{', advancedConfiguration.'.join(missing)}",
                fix=f"{settings.strategy} needs an alternate target group, a production listener rule (an NLB's "
                "listener) and the ECS infrastructure role for load balancers: `aws ecs update-service "
                "--load-balancers` with them (`deployfw migrate` prints the call for a CODE_DEPLOY service)",
            )
        ]
    setup.role = advanced["roleArn"]
    setup.production_rule = advanced["productionListenerRule"]
    findings = [
        Finding(
            "load-balancer",
            f"target group {_name(group)}, alternate {_name(advanced['alternateTargetGroupArn'])}",
            blocking=False,
        ),
        Finding(
            "infrastructure-role",
            f"ECS assumes {advanced['roleArn']} to move the listener rules; whoever sets it on the service "
            "(`deployfw migrate`, not `run`) needs iam:PassRole on it (iam:PassedToService ecs.amazonaws.com)",
            blocking=False,
        ),
    ]
    wanted = {group, advanced["alternateTargetGroupArn"]}
    forwarded: set[str] = set()
    for key in ("productionListenerRule", "testListenerRule"):
        arn = advanced.get(key)
        if not arn:
            continue
        try:
            groups, network = _forwards(aws, arn)
        except AwsError as exc:
            fix = f"allow {exc.denial.action} to whoever runs deployfw" if exc.denial is not None else None
            findings.append(Finding("listener-rules", f"service {where}: {key} {arn} cannot be read: {exc.detail}",
                                    fix=fix))  # fmt: skip
            continue
        forwarded |= groups
        setup.network = setup.network or network
    if not wanted <= forwarded:
        findings.append(
            Finding(
                "listener-rules",
                f"service {where}: its production/test listener rules forward to "
                f"{', '.join(sorted(map(_name, forwarded))) or 'no target group'}, not to both "
                f"{_name(group)} and {_name(advanced['alternateTargetGroupArn'])}; ECS would roll the deployment back "
                f'("{BOTH_GROUPS}")',
                fix="make the production rule forward to both target groups, weights 1 and 0",
            )
        )
    else:
        findings.append(Finding("listener-rules", "the production listener rule forwards to both target groups",
                                blocking=False))  # fmt: skip
    declared = settings.load_balancer_type
    actual = "network" if setup.network else "application"
    if declared and declared != actual:
        findings.append(
            Finding(
                "load-balancer-type",
                f"service {where} is behind an {actual} load balancer; modules.yaml says "
                f"load_balancer_type: {declared}",
                fix=f"set load_balancer_type: {actual} (or leave it out)",
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
