"""Read-only checks of what the AWS backends need in the live account (``deployfw doctor``).

deployfw's preflight checks files; these check the account: the cluster and service exist, the
service's deployment controller is the one the backend drives (a CodeDeploy backend on an ECS
controller service fails at the first deploy, and the fix is a migration, not a retry), the
CodeDeploy group deploys this very service through target groups its listeners really forward
to, an NLB is deployed all at once, the repository and the build project exist. Only Describe,
Get and List calls; a check AWS refuses to answer is a failed row whose fix is the permission.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deployfw.aws.clients import Aws, AwsError
from deployfw.backends import LiveCheck

ECS_ALL_AT_ONCE = "CodeDeployDefault.ECSAllAtOnce"


def checking(name: str, probe: Callable[[], LiveCheck]) -> LiveCheck:
    """Run one probe; an AWS refusal or failure becomes a failed row that says why."""
    try:
        return probe()
    except AwsError as exc:
        if exc.denial is not None:
            return LiveCheck(name, False, f"cannot check: {exc.detail}",
                             f"allow {exc.denial.action} to whoever runs `deployfw doctor`")  # fmt: skip
        return LiveCheck(name, False, f"cannot check: {exc}")


def cluster(aws: Aws, name: str) -> LiveCheck:
    def probe() -> LiveCheck:
        found = aws.call("ecs", "describe_clusters", clusters=[name]).get("clusters") or []
        active = [c for c in found if c.get("status") == "ACTIVE"]
        if active:
            return LiveCheck("cluster", True, f"ECS cluster {name} is ACTIVE")
        return LiveCheck("cluster", False, f"ECS cluster {name} does not exist",
                         f"create it (`aws ecs create-cluster --cluster-name {name}`) or fix the module's "
                         "deploy.cluster")  # fmt: skip

    return checking("cluster", probe)


def service(aws: Aws, cluster_name: str, service_name: str) -> tuple[LiveCheck, dict[str, Any] | None]:
    """The service row, and the service (for the checks that read it) when it exists."""
    found: dict[str, Any] = {}

    def probe() -> LiveCheck:
        answer = aws.call("ecs", "describe_services", cluster=cluster_name, services=[service_name])
        active = [s for s in answer.get("services") or [] if s.get("status") == "ACTIVE"]
        if not active:
            return LiveCheck("service", False, f"ECS service {cluster_name}/{service_name} does not exist",
                             "create the service (deployfw deploys to existing services) or fix the module's "
                             "deploy.service / deploy.cluster")  # fmt: skip
        found.update(active[0])
        return LiveCheck("service", True, f"ECS service {cluster_name}/{service_name} is ACTIVE "
                                          f"({active[0].get('runningCount', 0)}/{active[0].get('desiredCount', 0)} "
                                          "tasks)")  # fmt: skip

    return checking("service", probe), (found or None)


def controller(found: dict[str, Any], wanted: str, backend: str, cluster_name: str, service_name: str) -> LiveCheck:
    """The service's deployment controller against the one ``backend`` drives, with the way across."""
    actual = (found.get("deploymentController") or {}).get("type") or "ECS"
    if actual == wanted:
        return LiveCheck("controller", True, f"deployment controller {actual}, as {backend} needs")
    where = f"--cluster {cluster_name} --service {service_name}"
    if wanted == "CODE_DEPLOY":
        fix = (f"{backend} deploys through CodeDeploy, which needs the CODE_DEPLOY controller. Either deploy this "
               f"service with deploy backend ecs-rolling (or ecs-native: ECS's own blue/green), or move it: "
               f"`aws ecs update-service {where} --deployment-controller type=CODE_DEPLOY` (the service needs a "
               "load balancer with two target groups) and create its CodeDeploy application and deployment group")
    else:
        fix = (f"{backend} updates the service itself, which needs the ECS controller. Either deploy this service "
               f"with deploy backend ecs-bluegreen (or ecs-nlb behind an NLB), or move it to ECS's own "
               f"controller: `aws ecs update-service {where} --deployment-controller type=ECS` once no CodeDeploy "
               "deployment is in progress (then ecs-rolling, or ecs-native for blue/green without CodeDeploy)")
    return LiveCheck("controller", False, f"deployment controller is {actual}, {backend} needs {wanted}", fix)


def deployment_group(
    aws: Aws, application: str, group_name: str, cluster_name: str, service_name: str
) -> tuple[list[LiveCheck], dict[str, Any] | None]:
    """Application and group exist, and the group deploys this service (blue/green, with traffic control)."""
    rows: list[LiveCheck] = []
    found: dict[str, Any] = {}

    def app_probe() -> LiveCheck:
        try:
            info = aws.call("codedeploy", "get_application", applicationName=application)["application"]
        except AwsError as exc:
            if exc.code == "ApplicationDoesNotExistException":
                return LiveCheck("codedeploy-application", False, f"CodeDeploy application {application} does not "
                                 "exist", f"create it (`aws deploy create-application --application-name "
                                 f"{application} --compute-platform ECS`) or fix the module's deploy.application")
            raise
        platform = info.get("computePlatform")
        if platform not in (None, "ECS"):
            return LiveCheck("codedeploy-application", False, f"CodeDeploy application {application} is for "
                             f"{platform}, not ECS", "use an application created with --compute-platform ECS")
        return LiveCheck("codedeploy-application", True, f"CodeDeploy application {application} (ECS)")

    def group_probe() -> LiveCheck:
        try:
            info = aws.call("codedeploy", "get_deployment_group", applicationName=application,
                            deploymentGroupName=group_name)["deploymentGroupInfo"]  # fmt: skip
        except AwsError as exc:
            if exc.code in ("DeploymentGroupDoesNotExistException", "ApplicationDoesNotExistException"):
                return LiveCheck("deployment-group", False, f"deployment group {application}/{group_name} does not "
                                 "exist", "create it for this service (`aws deploy create-deployment-group` with "
                                 f"--ecs-services clusterName={cluster_name},serviceName={service_name}, a "
                                 "blue/green deployment style and the load balancer's target group pair) or fix "
                                 "the module's deploy.deployment_group")  # fmt: skip
            raise
        found.update(info)
        pairs = [(s.get("clusterName"), s.get("serviceName")) for s in info.get("ecsServices") or []]
        if (cluster_name, service_name) not in pairs:
            where = ", ".join(f"{c}/{s}" for c, s in pairs) or "no ECS service"
            return LiveCheck("deployment-group", False, f"deployment group {application}/{group_name} deploys "
                             f"{where}, not {cluster_name}/{service_name}", "point the module's "
                             "deploy.deployment_group at the group of this service")  # fmt: skip
        style = info.get("deploymentStyle") or {}
        if style and style.get("deploymentType") != "BLUE_GREEN":
            return LiveCheck("deployment-group", False, f"deployment group {application}/{group_name} is "
                             f"{style.get('deploymentType')}, ECS deployments are BLUE_GREEN",
                             "recreate the group with deploymentType BLUE_GREEN, deploymentOption "
                             "WITH_TRAFFIC_CONTROL")  # fmt: skip
        return LiveCheck("deployment-group", True, f"deployment group {application}/{group_name} deploys "
                         f"{cluster_name}/{service_name}")  # fmt: skip

    rows.append(checking("codedeploy-application", app_probe))
    rows.append(checking("deployment-group", group_probe))
    return rows, (found or None)


def traffic(aws: Aws, group: dict[str, Any], backend: str, config_name: str | None) -> list[LiveCheck]:
    """The group's target group pair exists, its production listener forwards to one of them, and an
    NLB is deployed all at once (CodeDeploy refuses anything else behind an NLB)."""
    pairs = (group.get("loadBalancerInfo") or {}).get("targetGroupPairInfoList") or []
    if not pairs:
        return [LiveCheck("listeners", False, "the deployment group names no target group pair",
                          "give the group loadBalancerInfo.targetGroupPairInfoList: two target groups and the "
                          "production listener")]  # fmt: skip
    pair = pairs[0]
    names = [tg.get("name") for tg in pair.get("targetGroups") or []]
    prod = list((pair.get("prodTrafficRoute") or {}).get("listenerArns") or [])
    kinds: set[str] = set()

    def listeners_probe() -> LiveCheck:
        groups = aws.call("elbv2", "describe_target_groups", Names=names).get("TargetGroups") or []
        arns = {g["TargetGroupArn"] for g in groups}
        balancers = {arn for g in groups for arn in g.get("LoadBalancerArns") or []}
        if len(groups) != 2:
            return LiveCheck("listeners", False, f"target groups {', '.join(map(str, names))}: "
                             f"{len(groups)} of 2 exist", "create both target groups of the pair")  # fmt: skip
        if balancers:
            found = aws.call("elbv2", "describe_load_balancers", LoadBalancerArns=sorted(balancers))
            kinds.update(lb.get("Type", "application") for lb in found.get("LoadBalancers") or [])
        if not prod:
            return LiveCheck("listeners", False, "the group has no production listener",
                             "set prodTrafficRoute.listenerArns on the group's target group pair")  # fmt: skip
        described = aws.call("elbv2", "describe_listeners", ListenerArns=prod).get("Listeners") or []
        forwards = {target for listener in described for target in _forwarded(listener)}
        if not forwards & arns:
            return LiveCheck("listeners", False, "the production listener forwards to neither target group of "
                             "the pair", "make the listener's default action forward to one of "
                             f"{', '.join(map(str, names))}")  # fmt: skip
        return LiveCheck("listeners", True, f"production listener forwards to {', '.join(map(str, names))}")

    rows = [checking("listeners", listeners_probe)]
    effective = config_name or group.get("deploymentConfigName") or ECS_ALL_AT_ONCE
    if "network" in kinds:
        ok = effective == ECS_ALL_AT_ONCE
        rows.append(LiveCheck("nlb-config", ok, f"behind a Network Load Balancer with {effective}",
                              None if ok else "CodeDeploy shifts NLB traffic all at once only: set deployment_config "
                              f"{ECS_ALL_AT_ONCE} (deploy backend ecs-nlb enforces it)"))  # fmt: skip
    elif kinds and backend == "ecs-nlb":
        rows.append(LiveCheck("nlb-config", False, f"deploy backend ecs-nlb, but the load balancer is "
                              f"{'/'.join(sorted(kinds))}", "use deploy backend ecs-bluegreen for an ALB"))  # fmt: skip
    return rows


def _forwarded(listener: dict[str, Any]) -> list[str]:
    """The target groups a listener's default actions forward to (plain or weighted forward)."""
    found: list[str] = []
    for action in listener.get("DefaultActions") or []:
        found += [action["TargetGroupArn"]] if action.get("TargetGroupArn") else []
        weighted = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        found += [t["TargetGroupArn"] for t in weighted if t.get("TargetGroupArn")]
    return found
