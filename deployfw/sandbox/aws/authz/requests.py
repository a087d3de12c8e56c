"""What an AWS request asks IAM for: the action(s), the resource ARN(s), the request's condition keys.

AWS authorises a request per action and resource: ``ecs:UpdateService`` on the service's ARN,
``codedeploy:GetDeployment`` on the deployment group the deployment belongs to, and for
RegisterTaskDefinition also ``iam:PassRole`` on each role it names, with ``iam:PassedToService``.
This module derives those checks from the request's parameters (and, where the request names only
an id, from the sandbox's own state). The action is the operation's name under the service's IAM
prefix unless AWS documents another (S3's ``HeadObject`` is ``s3:GetObject``); an action IAM defines
without a resource type is checked against ``*``. A test compares the result with AWS's service
authorization data for every operation deployfw's backends use.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# IAM prefix of the services whose signing name differs from it.
PREFIX = {"monitoring": "cloudwatch", "email": "ses"}


@dataclass(frozen=True)
class Check:
    """One authorisation AWS makes for a request."""

    action: str
    resource: str
    context: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Where:
    """The account and region of the request, and a lookup into the sandbox's state."""

    account: str
    region: str
    lookup: Callable[[str, str, str], str | None] = lambda kind, region, key: None

    def arn(self, service: str, resource: str, *, regional: bool = True, in_account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region if regional else ''}:{self.account if in_account else ''}:{resource}"


def checks(service: str, operation: str, params: Mapping[str, Any], where: Where) -> list[Check]:
    """The checks for one request (empty: AWS requires no permission, e.g. sts:GetCallerIdentity)."""
    prefix = PREFIX.get(service, service)
    resolver = _RESOLVERS.get(prefix)
    if resolver is None:
        return [Check(f"{prefix}:{operation}", "*")]
    return list(resolver(operation, params, where))


def _last(value: Any) -> str:
    """A name from a name or an ARN (``arn:...:cluster/shop`` -> ``shop``)."""
    return str(value).rsplit("/", 1)[-1] if str(value).startswith("arn:") else str(value)


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def pass_role(role: str, to_service: str, where: Where) -> Check:
    arn = role if role.startswith("arn:") else where.arn("iam", f"role/{role}", regional=False)
    return Check("iam:PassRole", arn, {"iam:PassedToService": (to_service,)})


# -- ECS ------------------------------------------------------------------------------------------


def _ecs(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"ecs:{operation}"
    cluster = _last(params.get("cluster") or "default")
    if operation == "RegisterTaskDefinition":
        family = str(params.get("family", ""))
        revision = where.lookup("ecs-next-revision", where.region, family) or "1"
        yield Check(action, where.arn("ecs", f"task-definition/{family}:{revision}"))
        for key in ("taskRoleArn", "executionRoleArn"):
            if params.get(key):
                yield pass_role(str(params[key]), "ecs-tasks.amazonaws.com", where)
        if params.get("tags"):  # tag-on-create: ECS authorises ecs:TagResource with ecs:CreateAction
            yield Check("ecs:TagResource", where.arn("ecs", f"task-definition/{family}:{revision}"),
                        {"ecs:CreateAction": (operation,)})  # fmt: skip
        return
    if operation in ("DescribeTaskDefinition", "DeregisterTaskDefinition", "ListTaskDefinitions",
                     "ListTaskDefinitionFamilies", "ListServices", "ListClusters", "ListTasks", "CreateCluster"):
        yield Check(action, "*")  # no resource type in IAM for these
        return
    if operation == "DescribeServices":
        for service in _list(params.get("services")):
            yield Check(action, where.arn("ecs", f"service/{cluster}/{_last(service)}"))
        return
    if operation == "DescribeClusters":
        for name in _list(params.get("clusters")) or ["default"]:
            yield Check(action, where.arn("ecs", f"cluster/{_last(name)}"))
        return
    if operation == "DescribeTasks":
        for task in _list(params.get("tasks")):
            yield Check(action, where.arn("ecs", f"task/{cluster}/{_last(task)}"))
        return
    if operation in ("DescribeServiceDeployments", "StopServiceDeployment", "DescribeServiceRevisions"):
        for arn in _list(params.get("serviceDeploymentArns") or params.get("serviceDeploymentArn")
                         or params.get("serviceRevisionArns")):  # fmt: skip
            yield Check(action, arn)
        return
    named = params.get("service") or params.get("serviceName")
    if named:
        yield Check(action, where.arn("ecs", f"service/{cluster}/{_last(named)}"))
        if operation == "CreateService" and params.get("role"):
            yield pass_role(str(params["role"]), "ecs.amazonaws.com", where)
        for lb in params.get("loadBalancers") or [] if operation in ("CreateService", "UpdateService") else []:
            role = (lb.get("advancedConfiguration") or {}).get("roleArn") if isinstance(lb, Mapping) else None
            if role:  # the infrastructure role ECS assumes to move listener rules (ECS-native blue/green)
                yield pass_role(str(role), "ecs.amazonaws.com", where)
        return
    yield Check(action, where.arn("ecs", f"cluster/{cluster}") if params.get("cluster") else "*")


# -- ECR ------------------------------------------------------------------------------------------


def _ecr(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"ecr:{operation}"
    names = _list(params.get("repositoryName")) or _list(params.get("repositoryNames"))
    if operation == "GetAuthorizationToken" or not names:
        yield Check(action, "*")
        return
    for name in names:
        yield Check(action, where.arn("ecr", f"repository/{name}"))


# -- CodeDeploy -----------------------------------------------------------------------------------

_CODEDEPLOY_GLOBAL = {
    "StopDeployment", "GetDeploymentTarget", "ListDeploymentTargets", "BatchGetDeploymentTargets",
    "ListOnPremisesInstances", "ListApplications", "ListDeploymentConfigs", "ContinueDeployment",
    "PutLifecycleEventHookExecutionStatus", "ListGitHubAccountTokenNames",
}  # fmt: skip


def _codedeploy(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"codedeploy:{operation}"
    app = str(params["applicationName"]) if params.get("applicationName") else None
    if operation in _CODEDEPLOY_GLOBAL:
        yield Check(action, "*")
        return
    if operation in ("GetDeployment", "BatchGetDeployments"):
        for deployment in _list(params.get("deploymentId")) or _list(params.get("deploymentIds")):
            owner = where.lookup("codedeploy-deployment-group", where.region, deployment)
            yield Check(action, where.arn("codedeploy", f"deploymentgroup:{owner}") if owner else "*")
        return
    if operation.endswith("DeploymentConfig") and "deploymentConfigName" in params:
        yield Check(action, where.arn("codedeploy", f"deploymentconfig:{params.get('deploymentConfigName')}"))
        return
    if operation == "BatchGetOnPremisesInstances":
        for name in _list(params.get("instanceNames")):
            yield Check(action, where.arn("codedeploy", f"instance:{name}"))
        return
    groups = _list(params.get("deploymentGroupName")) or _list(params.get("deploymentGroupNames"))
    if app and groups:
        for group in groups:
            yield Check(action, where.arn("codedeploy", f"deploymentgroup:{app}/{group}"))
        if params.get("serviceRoleArn"):
            yield pass_role(str(params["serviceRoleArn"]), "codedeploy.amazonaws.com", where)
        return
    if app:
        yield Check(action, where.arn("codedeploy", f"application:{app}"))
        return
    yield Check(action, "*")


# -- CodeBuild ------------------------------------------------------------------------------------


def _codebuild(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"codebuild:{operation}"
    projects: list[str] = []
    if operation == "BatchGetBuilds":
        projects = [build.split(":", 1)[0] if not build.startswith("arn:") else build.split("/")[-1].split(":")[0]
                    for build in _list(params.get("ids"))]  # fmt: skip
    elif operation in ("StopBuild", "RetryBuild"):
        projects = [str(params.get("id", "")).split("/")[-1].split(":")[0]]
    elif operation == "BatchGetProjects":
        projects = [_last(name) for name in _list(params.get("names"))]
    elif params.get("projectName") or params.get("name"):
        projects = [_last(params.get("projectName") or params.get("name"))]
    if not projects:
        yield Check(action, "*")
        return
    for project in dict.fromkeys(projects):
        yield Check(action, where.arn("codebuild", f"project/{project}"))
    role = params.get("serviceRoleOverride") or params.get("serviceRole")
    if role:
        yield pass_role(str(role), "codebuild.amazonaws.com", where)


# -- CloudWatch Logs ------------------------------------------------------------------------------


def _logs(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"logs:{operation}"
    group, stream = params.get("logGroupName"), params.get("logStreamName")
    if group and stream:
        yield Check(action, where.arn("logs", f"log-group:{group}:log-stream:{stream}"))
    elif group:
        yield Check(action, where.arn("logs", f"log-group:{group}"))
    else:
        yield Check(action, "*")


# -- DynamoDB -------------------------------------------------------------------------------------

_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}
_BATCH = {"PutRequest": "PutItem", "DeleteRequest": "DeleteItem"}


def _dynamodb(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    def table(name: Any) -> str:
        return where.arn("dynamodb", f"table/{name}")

    if operation == "TransactWriteItems":  # authorised per item, with the item's own action
        for item in params.get("TransactItems") or []:
            for kind, body in item.items():
                yield Check(f"dynamodb:{_TRANSACT.get(kind, kind)}", table(body.get("TableName")))
        return
    if operation == "TransactGetItems":
        for item in params.get("TransactItems") or []:
            yield Check("dynamodb:GetItem", table(item.get("Get", {}).get("TableName")))
        return
    if operation in ("BatchWriteItem", "BatchGetItem"):
        for name, items in (params.get("RequestItems") or {}).items():
            kinds = {_BATCH.get(k, k) for r in items for k in r} if operation == "BatchWriteItem" else {"BatchGetItem"}
            for kind in sorted(kinds):
                yield Check(f"dynamodb:{kind}", table(name))
        return
    name = params.get("TableName")
    if not name:
        yield Check(f"dynamodb:{operation}", "*")
        return
    index = params.get("IndexName")
    yield Check(f"dynamodb:{operation}", f"{table(name)}/index/{index}" if index else table(name))


# -- S3 -------------------------------------------------------------------------------------------

# Operations whose action is not their own name (Amazon S3 API reference, "Permissions").
_S3_ACTION = {
    "HeadObject": "GetObject",
    "HeadBucket": "ListBucket",
    "ListObjects": "ListBucket",
    "ListObjectsV2": "ListBucket",
    "ListObjectVersions": "ListBucketVersions",
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "CopyObject": "PutObject",
    "GetBucketLocation": "GetBucketLocation",
}


def _s3(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    bucket, key = params.get("Bucket"), params.get("Key")
    action = f"s3:{_S3_ACTION.get(operation, operation)}"
    if not bucket:
        yield Check(action, "*")
    elif key and operation not in ("ListObjects", "ListObjectsV2", "ListObjectVersions", "HeadBucket"):
        yield Check(action, f"arn:aws:s3:::{bucket}/{key}")
    else:
        yield Check(action, f"arn:aws:s3:::{bucket}")


# -- STS, IAM and the rest ------------------------------------------------------------------------


def _sts(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    if operation == "GetCallerIdentity":
        return  # "No permissions are required to perform this operation" (STS API reference)
    role = params.get("RoleArn")
    yield Check(f"sts:{operation}", str(role) if role else "*")


def _iam(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    action = f"iam:{operation}"
    if operation in ("SimulatePrincipalPolicy", "GetContextKeysForPrincipalPolicy"):
        yield Check(action, str(params.get("PolicySourceArn") or "*"))
    elif params.get("RoleName"):
        yield Check(action, where.arn("iam", f"role/{params['RoleName']}", regional=False))
    elif params.get("UserName"):
        yield Check(action, where.arn("iam", f"user/{params['UserName']}", regional=False))
    elif params.get("GroupName"):
        yield Check(action, where.arn("iam", f"group/{params['GroupName']}", regional=False))
    elif params.get("PolicyArn"):
        yield Check(action, str(params["PolicyArn"]))
    else:
        yield Check(action, "*")


def _ssm(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    names = _list(params.get("Name")) or _list(params.get("Names"))
    if not names:
        yield Check(f"ssm:{operation}", "*")
    for name in names:
        yield Check(f"ssm:{operation}", where.arn("ssm", f"parameter/{name.lstrip('/')}"))


def _secretsmanager(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    secret = params.get("SecretId")
    if not secret:
        yield Check(f"secretsmanager:{operation}", "*")
        return
    arn = str(secret) if str(secret).startswith("arn:") else where.lookup("secret-arn", where.region, str(secret))
    yield Check(f"secretsmanager:{operation}", arn or where.arn("secretsmanager", f"secret:{secret}"))


def _elasticloadbalancing(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
    """Reads take ``*``; the listener and rule writes (``deployfw migrate``) their ARN."""
    arn = params.get("ListenerArn") if operation == "ModifyListener" else None
    arn = params.get("RuleArn") if operation == "ModifyRule" else arn
    yield Check(f"elasticloadbalancing:{operation}", str(arn) if arn else "*")


def _describe_only(prefix: str) -> Callable[[str, Mapping[str, Any], Where], Iterator[Check]]:
    """Services deployfw only reads (load balancers, instances, alarms): their reads take ``*``."""

    def resolve(operation: str, params: Mapping[str, Any], where: Where) -> Iterator[Check]:
        yield Check(f"{prefix}:{operation}", "*")

    return resolve


_RESOLVERS: dict[str, Callable[[str, Mapping[str, Any], Where], Iterator[Check]]] = {
    "ecs": _ecs,
    "ecr": _ecr,
    "codedeploy": _codedeploy,
    "codebuild": _codebuild,
    "logs": _logs,
    "dynamodb": _dynamodb,
    "s3": _s3,
    "sts": _sts,
    "iam": _iam,
    "ssm": _ssm,
    "secretsmanager": _secretsmanager,
    "elasticloadbalancing": _elasticloadbalancing,
    "ec2": _describe_only("ec2"),
    "cloudwatch": _describe_only("cloudwatch"),
}
