"""Switch a CODE_DEPLOY service to ECS-native deployments in place, as AWS's ECS guide describes it.

Since July 2025 UpdateService can change a service's deployment controller from CODE_DEPLOY to
ECS. The guide's in-place path reuses the load balancing CodeDeploy set up: the production
target group (the one the primary task set serves from), the other group of the pair as the
*alternate* target group, the production and test listeners (an ALB listener's default rule,
an NLB's listener itself) - after making each forward to both target groups, weights 1 and 0,
which ECS requires - and an IAM role ECS assumes to move them (the infrastructure role for load
balancers, AmazonECSInfrastructureRolePolicyForLoadBalancers). AWS's prerequisites are checked
first: no CodeDeploy deployment in progress, exactly one task set.

:func:`plan_migration` only reads (DescribeServices, GetDeploymentGroup, ListDeployments,
GetDeploymentConfig, DescribeTargetGroups, DescribeListeners, DescribeRules, GetRole) and
returns the plan as data: the listener changes, the UpdateService request, and the deploy
section modules.yaml needs afterwards (the CodeDeploy deployment config mapped to a strategy:
canary -> CANARY, linear -> LINEAR, all at once -> BLUE_GREEN; the group's termination wait
as the bake time). :func:`apply` makes the changes and follows the service deployment the
switch starts (a load balancer change makes ECS start new tasks on the alternate target group
and shift traffic to them). modules.yaml is never rewritten: the new section is printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml

from deployfw.aws.clients import Aws, AwsError
from deployfw.config import Config, Module
from deployfw.errors import DeployfwError, InputError, Problem
from deployfw_aws.deploy_common import describe_service, target_of
from deployfw_aws.native_settings import MAX_MINUTES, NativeSettings

if TYPE_CHECKING:
    from deployfw.iam.needs import IamNeed, IamScope

ACTIVE = ["Created", "Queued", "InProgress", "Baking", "Ready"]
KEEP_KEYS = (
    "cluster",
    "service",
    "taskdef",
    "container",
    "family",
    "container_port",
    "health_check_path",
    "timeout_minutes",
)


def migration_needs(scope: IamScope, service_arn: str) -> list[IamNeed]:
    """What ``deployfw migrate MODULE --to ecs-native`` calls, beyond what the CodeDeploy deploy needs.

    Declared by the CodeDeploy backends (the module is on one of them while it is migrated) as
    ``setup``: a one-time change, in the policies only when asked for. The listeners and the role
    come from the deployment group and ``--role`` at migration time, hence the patterns.
    """
    from deployfw.iam.needs import IamNeed, passed_to
    from deployfw_aws.ecs_deployer import NO_RESOURCE

    assert scope.module is not None
    target = target_of(scope.config, scope.module)
    group = scope.arn("codedeploy", f"deploymentgroup:{target.application}/{target.deployment_group}")
    role = scope.arn("iam", "role/*", regional=False)
    return [
        IamNeed("MigrateReadDeploymentGroup", ("codedeploy:GetDeploymentGroup", "codedeploy:ListDeployments"),
                (group,), "read the load balancing CodeDeploy set up; no deployment may be in progress",
                when="setup"),
        IamNeed("MigrateReadDeploymentConfig", ("codedeploy:GetDeploymentConfig",),
                (scope.arn("codedeploy", "deploymentconfig:*"),), "map the group's deployment config to a strategy",
                when="setup"),
        IamNeed("MigrateReadLoadBalancing",
                ("elasticloadbalancing:DescribeTargetGroups", "elasticloadbalancing:DescribeListeners",
                 "elasticloadbalancing:DescribeRules"), ("*",),
                "read the target groups and listeners of the pair", wildcard=NO_RESOURCE, when="setup"),
        IamNeed("MigrateListeners", ("elasticloadbalancing:ModifyListener",),
                (scope.arn("elasticloadbalancing", "listener/*"),),
                "make the production and test listeners forward to both target groups", when="setup"),
        IamNeed("MigrateReadRole", ("iam:GetRole",), (role,), "check the infrastructure role (--role) exists",
                when="setup"),
        IamNeed("MigrateSwitchController", ("ecs:UpdateService",), (service_arn,),
                "switch the service to the ECS controller with the alternate target group", when="setup"),
        IamNeed("MigratePassInfrastructureRole", ("iam:PassRole",), (role,),
                "hand the infrastructure role for load balancers to ECS", conditions=passed_to("ecs.amazonaws.com"),
                when="setup"),
        IamNeed("MigrateFollow", ("ecs:DescribeServiceDeployments",),
                (scope.arn("ecs", f"service-deployment/{target.cluster}/{target.service}/*"),),
                "follow the service deployment the switch starts", when="setup"),
    ]  # fmt: skip


class NothingToMigrate(DeployfwError):
    """The service already uses the ECS deployment controller (exit 0: the goal is reached)."""

    exit_code = 0


@dataclass(frozen=True)
class ListenerChange:
    listener: str
    purpose: str  # production | test
    before: Mapping[str, int]
    after: Mapping[str, int]


@dataclass(frozen=True)
class MigrationPlan:
    module: str
    cluster: str
    service: str
    application: str
    deployment_group: str
    task_definition: str
    network: bool
    blue_group: str
    green_group: str
    production_rule: str
    test_rule: str | None
    role: str
    strategy: NativeSettings
    listener_changes: tuple[ListenerChange, ...]
    update: Mapping[str, Any]
    section: Mapping[str, Any]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "service": f"{self.cluster}/{self.service}",
            "codedeploy": {"application": self.application, "deployment_group": self.deployment_group},
            "listener_changes": [
                {"listener": c.listener, "purpose": c.purpose, "before": dict(c.before), "after": dict(c.after)}
                for c in self.listener_changes
            ],
            "update_service": dict(self.update),
            "deploy_section": dict(self.section),
            "notes": list(self.notes),
        }

    def text(self) -> str:
        where = f"{self.cluster}/{self.service}"
        balancer = "Network Load Balancer" if self.network else "Application Load Balancer"
        lines = [
            f"migrate {self.module}: service {where} from CODE_DEPLOY ({self.application}/{self.deployment_group}) "
            f"to the ECS deployment controller, in place, behind its {balancer}",
            f"  production target group {_name(self.blue_group)} (serving), alternate {_name(self.green_group)}",
        ]
        step = 0
        for change in self.listener_changes:
            step += 1
            lines.append(
                f"  {step}. ModifyListener {change.purpose} {change.listener}: forward "
                f"{_weights(change.before)} -> {_weights(change.after)}"
            )
        test = f", test rule {self.test_rule}" if self.test_rule else ""
        lines.append(
            f"  {step + 1}. UpdateService {where}: deploymentController ECS, {self.strategy.describe()}, alternate "
            f"target group, production rule {self.production_rule}{test}, role {self.role}"
        )
        lines.append(
            f"  {step + 2}. follow the service deployment the switch starts (ECS starts tasks on the alternate "
            "target group and shifts traffic to them) to its end; a rollback is a failure"
        )
        lines.extend(f"  note: {note}" for note in self.notes)
        lines.append("modules.yaml is not changed; afterwards the module's deploy section should read:")
        block = yaml.safe_dump({"modules": {self.module: {"deploy": dict(self.section)}}}, sort_keys=False)
        lines.extend("  " + line for line in block.rstrip().splitlines())
        return "\n".join(lines)


def plan_migration(
    aws: Aws, config: Config, module: Module, *, role: str, strategy: str | None = None
) -> MigrationPlan:
    """What the in-place switch of ``module``'s service would do (reads only)."""
    target = target_of(config, module)
    where = f"{target.cluster}/{target.service}"
    service = describe_service(aws, target)
    if service is None:
        raise DeployfwError(f"service {where} does not exist")
    controller = (service.get("deploymentController") or {}).get("type", "ECS")
    if controller == "ECS":
        raise NothingToMigrate(f"service {where} already uses the ECS deployment controller; nothing to migrate")
    if controller != "CODE_DEPLOY":
        raise DeployfwError(
            f"service {where} uses the {controller} deployment controller; only CODE_DEPLOY services are migrated"
        )
    task_sets = service.get("taskSets") or []
    if len(task_sets) != 1:
        raise DeployfwError(
            f"service {where} has {len(task_sets)} task sets: a CodeDeploy deployment is in "
            "progress; AWS allows no controller switch during a deployment - retry after it ends"
        )
    group = aws.call(
        "codedeploy",
        "get_deployment_group",
        applicationName=target.application,
        deploymentGroupName=target.deployment_group,
    )["deploymentGroupInfo"]
    active = aws.call(
        "codedeploy",
        "list_deployments",
        applicationName=target.application,
        deploymentGroupName=target.deployment_group,
        includeOnlyStatuses=ACTIVE,
    ).get("deployments")
    if active:
        raise DeployfwError(
            f"CodeDeploy deployment {active[0]} of {target.application}/{target.deployment_group} "
            "is in progress; migrate after it ends"
        )
    pair = ((group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or [{}])[0]
    names = [g.get("name") for g in pair.get("targetGroups") or []]
    if len(names) != 2:
        raise DeployfwError(
            f"deployment group {target.application}/{target.deployment_group} has no target group pair to reuse"
        )
    groups = aws.call("elbv2", "describe_target_groups", Names=names).get("TargetGroups") or []
    by_name = {g["TargetGroupName"]: g["TargetGroupArn"] for g in groups}
    balancer = (task_sets[0].get("loadBalancers") or [{}])[0]
    blue = balancer.get("targetGroupArn") or by_name[names[0]]
    others = [arn for arn in by_name.values() if arn != blue]
    if not others:
        raise DeployfwError(f"the target group pair of {target.deployment_group} does not include a second group")
    green = others[0]
    prod = ((pair.get("prodTrafficRoute") or {}).get("listenerArns") or [None])[0]
    test = ((pair.get("testTrafficRoute") or {}).get("listenerArns") or [None])[0]
    if not prod:
        raise DeployfwError(f"deployment group {target.deployment_group} names no production listener")
    listeners = aws.call("elbv2", "describe_listeners", ListenerArns=[a for a in (prod, test) if a])["Listeners"]
    by_arn = {item["ListenerArn"]: item for item in listeners}
    network = str(by_arn[prod].get("Protocol", "")).upper() in ("TCP", "TLS", "UDP", "TCP_UDP")
    changes = tuple(
        change
        for purpose, arn in (("production", prod), ("test", test))
        if arn and (change := _listener_change(by_arn[arn], purpose, blue, green)) is not None
    )
    production_rule = prod if network else _default_rule(aws, prod)
    test_rule = (test if network else _default_rule(aws, test)) if test else None
    role_arn, notes = _role(aws, role)
    settings = _strategy(aws, group, strategy)
    configuration = settings.deployment_configuration(service.get("deploymentConfiguration") or {})
    advanced = {"alternateTargetGroupArn": green, "productionListenerRule": production_rule, "roleArn": role_arn}
    if test_rule:
        advanced["testListenerRule"] = test_rule
    update = {
        "cluster": target.cluster,
        "service": target.service,
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": configuration,
        "loadBalancers": [
            {
                "targetGroupArn": blue,
                "containerName": balancer.get("containerName") or target.container,
                "containerPort": balancer.get("containerPort") or target.container_port,
                "advancedConfiguration": advanced,
            }
        ],
    }
    notes += (
        f"the principal that migrates and every later deployer need iam:PassRole on {role_arn} "
        "(iam:PassedToService ecs.amazonaws.com)",
        f"CodeDeploy application {target.application} and group {target.deployment_group} are left as they are: "
        "turn off whatever starts CodeDeploy deployments of this service, delete them when no longer needed",
        "AppSpec hooks do not carry over: ECS lifecycle hooks are Lambda functions configured on the service",
    )
    return MigrationPlan(
        module=module.name,
        cluster=target.cluster,
        service=target.service,
        application=target.application,
        deployment_group=target.deployment_group,
        task_definition=str(task_sets[0].get("taskDefinition")),
        network=network,
        blue_group=blue,
        green_group=green,
        production_rule=production_rule,
        test_rule=test_rule,
        role=role_arn,
        strategy=settings,
        listener_changes=changes,
        update=update,
        section=_section(module, settings, network),
        notes=notes,
    )


def apply_listener_changes(aws: Aws, plan: MigrationPlan) -> None:
    """Make each listener forward to both target groups (the shape ECS-native blue/green requires)."""
    for change in plan.listener_changes:
        groups = [{"TargetGroupArn": arn, "Weight": weight} for arn, weight in change.after.items()]
        aws.call(
            "elbv2",
            "modify_listener",
            ListenerArn=change.listener,
            DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": groups}}],
        )


def switch(aws: Aws, plan: MigrationPlan) -> str:
    """UpdateService to the ECS controller; the ARN of the service deployment it started."""
    service = aws.call("ecs", "update_service", **plan.update)["service"]
    current = service.get("currentServiceDeployment")
    if not current:
        raise DeployfwError(f"UpdateService of {plan.cluster}/{plan.service} started no service deployment")
    return str(current)


# -- reading what CodeDeploy set up -------------------------------------------------------------


def _listener_change(listener: dict[str, Any], purpose: str, blue: str, green: str) -> ListenerChange | None:
    before: dict[str, int] = {}
    for action in listener.get("DefaultActions") or []:
        if action.get("Type") != "forward":
            continue
        if action.get("TargetGroupArn"):
            before[action["TargetGroupArn"]] = 1
        for entry in (action.get("ForwardConfig") or {}).get("TargetGroups") or []:
            before[entry["TargetGroupArn"]] = int(entry.get("Weight", 1))
    if {blue, green} <= set(before):
        return None
    return ListenerChange(str(listener["ListenerArn"]), purpose, before, {blue: 1, green: 0})


def _default_rule(aws: Aws, listener: str) -> str:
    rules = aws.call("elbv2", "describe_rules", ListenerArn=listener).get("Rules") or []
    found = next((r["RuleArn"] for r in rules if r.get("IsDefault")), None)
    if found is None:
        raise DeployfwError(f"listener {listener} has no default rule")
    return str(found)


def _role(aws: Aws, ref: str) -> tuple[str, tuple[str, ...]]:
    """The role's ARN (a bare name is in the caller's account) and a note when its existence is unverified."""
    if not ref:
        raise InputError(
            Problem(
                None,
                None,
                "--role",
                "the IAM role ECS assumes to move listener rules is required "
                "(the ECS infrastructure role for load balancers)",
            )
        )
    arn = ref if ref.startswith("arn:") else f"arn:aws:iam::{aws.account_id()}:role/{ref}"
    try:
        aws.call("iam", "get_role", RoleName=arn.rsplit("/", 1)[-1])
    except AwsError as exc:
        if exc.code == "NoSuchEntity":
            raise InputError(Problem(None, None, "--role", f"role {arn} does not exist")) from None
        return arn, (f"role {arn} could not be checked ({exc.code}); make sure it exists and trusts ecs.amazonaws.com",)
    return arn, ()


def _strategy(aws: Aws, group: dict[str, Any], override: str | None) -> NativeSettings:
    """The ECS strategy that does what the group's CodeDeploy config did, unless ``override`` names another."""
    blue_green = group.get("blueGreenDeploymentConfiguration") or {}
    wait = (blue_green.get("terminateBlueInstancesOnDeploymentSuccess") or {}).get("terminationWaitTimeInMinutes")
    bake = min(MAX_MINUTES, int(wait or 0))
    if override == "ROLLING":
        return NativeSettings("ROLLING")
    name = group.get("deploymentConfigName") or "CodeDeployDefault.ECSAllAtOnce"
    info = aws.call("codedeploy", "get_deployment_config", deploymentConfigName=name)["deploymentConfigInfo"]
    routing = info.get("trafficRoutingConfig") or {}
    kind = routing.get("type", "AllAtOnce")
    mapped = {"TimeBasedCanary": "CANARY", "TimeBasedLinear": "LINEAR"}.get(kind, "BLUE_GREEN")
    if override and override != mapped:
        return NativeSettings(override, bake_time_minutes=bake)
    if kind == "TimeBasedCanary":
        canary = routing["timeBasedCanary"]
        return NativeSettings(
            "CANARY",
            bake_time_minutes=bake,
            canary_percent=float(canary["canaryPercentage"]),
            canary_bake_time_minutes=int(canary["canaryInterval"]),
        )
    if kind == "TimeBasedLinear":
        linear = routing["timeBasedLinear"]
        percent = float(linear["linearPercentage"])
        if percent < 3:
            raise InputError(
                Problem(
                    None,
                    None,
                    "--strategy",
                    f"{name} shifts {percent:g}% per step; ECS LINEAR "
                    "takes at least 3% - choose the strategy with --strategy",
                )
            )
        return NativeSettings(
            "LINEAR",
            bake_time_minutes=bake,
            linear_step_percent=percent,
            linear_step_bake_time_minutes=int(linear["linearInterval"]),
        )
    return NativeSettings("BLUE_GREEN", bake_time_minutes=bake)


def _section(module: Module, settings: NativeSettings, network: bool) -> dict[str, Any]:
    options = module.deploy.options if module.deploy else {}
    section: dict[str, Any] = {"backend": "ecs-native"}
    section.update({k: options[k] for k in KEEP_KEYS if k in options})
    section["strategy"] = settings.strategy
    for key in (
        "bake_time_minutes",
        "canary_percent",
        "canary_bake_time_minutes",
        "linear_step_percent",
        "linear_step_bake_time_minutes",
    ):
        value = getattr(settings, key)
        if value is not None:
            section[key] = value
    if network:
        section["load_balancer_type"] = "network"
    return section


def _name(arn: str) -> str:
    parts = arn.split("/")
    return parts[-2] if len(parts) >= 3 else arn


def _weights(weights: Mapping[str, int]) -> str:
    return ", ".join(f"{_name(arn)}={weight}" for arn, weight in weights.items()) or "nothing"
