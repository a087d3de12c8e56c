"""``codedeploy-server`` preflight: what ``plan`` (and ``run``, before anything changes) checks.

Static, from the repository alone: the module's registry stores revision bundles (``s3``), the
bundle folder exists, its ``appspec.yml`` passes every check of :mod:`.server_appspec` against
the folder's files (file, line, key for each problem), the deployment config is not an ECS or
Lambda one.

Against the account, read-only (GetDeploymentGroup, GetDeploymentConfig,
ListOnPremisesInstances, DescribeInstances), as live checks (``plan`` after the static
preflight, ``deployfw doctor``): the group exists, is on the Server platform, a custom
deployment config exists, and the group's tag filters select at least one instance - a group
that selects none fails every deployment with NO_INSTANCES. Preflight itself never calls AWS:
``plan`` works offline, and a laptop without credentials is told the live checks did not run.
"""

from __future__ import annotations

from typing import Any

from deployfw.aws.clients import AwsError, aws_for
from deployfw.backends import LiveCheck, RunContext
from deployfw.config import Config, Module
from deployfw.errors import InputError, Problem
from deployfw_aws import server_appspec
from deployfw_aws.bundle import FolderView
from deployfw_aws.codedeploy_calls import get_group
from deployfw_aws.server_target import SERVER_CONFIGS, ServerTarget

_MISSING_GROUP = ("DeploymentGroupDoesNotExistException", "ApplicationDoesNotExistException")


def static_problems(config: Config, module: Module, target: ServerTarget) -> list[Problem]:
    problems: list[Problem] = []
    registry = module.registry.backend if module.registry is not None else None
    if registry != "s3":
        problems.append(Problem(config.relative_file, None, f"modules.{module.name}.registry.backend",
                                f"codedeploy-server deploys revision bundles; the registry must be s3 "
                                f"(registry: {{backend: s3, bucket: ...}}), not {registry!r}"))  # fmt: skip
    name = target.deployment_config or ""
    if name.startswith(("CodeDeployDefault.ECS", "CodeDeployDefault.Lambda")):
        problems.append(Problem(config.relative_file, None, target.option_key("deployment_config"),
                                f"{name} is not an EC2/on-premises deployment config; use one of "
                                f"{', '.join(SERVER_CONFIGS)} or a custom Server config"))  # fmt: skip
    folder = target.bundle_dir(config.root)
    if not folder.is_dir():
        problems.append(Problem(config.relative_file, None, target.option_key("bundle"),
                                f"bundle folder {target.bundle} does not exist"))  # fmt: skip
        return problems
    path = config.root / target.appspec
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(Problem(target.appspec, None, None,
                                f"no {server_appspec.APPSPEC_NAME} at the root of the bundle folder {target.bundle}"))
        return problems
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(Problem(target.appspec, None, None, f"cannot read the AppSpec: {exc}"))
        return problems
    try:
        _, found = server_appspec.check(server_appspec.load(text, target.appspec), FolderView(folder))
    except InputError as exc:  # a YAML syntax error
        found = list(exc.problems)
    problems.extend(found)
    return problems


def live_checks(ctx: RunContext, target: ServerTarget) -> list[LiveCheck]:
    """The read-only checks against the account (see the module docstring), as ``plan``/``doctor`` rows.

    A missing group or a group that selects no instance is a failed row with its fix, not bad input:
    the config may be right and the account not yet (``plan`` exits 1 on it, ``run`` meets AWS's answer).
    """
    aws = aws_for(ctx)
    where = f"{target.where} in {ctx.region}"
    try:
        group = get_group(aws, target.application, target.deployment_group)
    except AwsError as exc:
        if exc.code not in _MISSING_GROUP:
            raise
        return [LiveCheck("deployment group", False, f"{where} does not exist: {exc.detail}",
                          f"create it (Server platform) or set modules.{target.module}.deploy.deployment_group "
                          "to an existing one")]  # fmt: skip
    platform = group.get("computePlatform") or "Server"
    if platform != "Server":
        return [LiveCheck("deployment group", False, f"{where} is on the {platform} platform, not Server "
                          "(EC2/on-premises)", "use a deployment group of a Server application")]  # fmt: skip
    rows = [LiveCheck("deployment group", True, f"{where} (Server platform)")]
    custom = target.deployment_config
    if custom and custom not in SERVER_CONFIGS:
        try:
            aws.call("codedeploy", "get_deployment_config", deploymentConfigName=custom)
            rows.append(LiveCheck("deployment config", True, custom))
        except AwsError as exc:
            if exc.code != "DeploymentConfigDoesNotExistException":
                raise
            rows.append(LiveCheck("deployment config", False, f"{custom} does not exist in {ctx.region}",
                                  f"create it (aws deploy create-deployment-config) or use one of "
                                  f"{', '.join(SERVER_CONFIGS)}"))  # fmt: skip
    selected = selected_instances(aws, group)
    if selected == 0:
        rows.append(LiveCheck("instances", False, f"the tag filters of {target.where} select no instance "
                              f"({describe_filters(group)}); every deployment would fail with NO_INSTANCES",
                              "register and tag the servers (aws deploy register-on-premises-instance, "
                              "add-tags-to-on-premises-instances) or fix the group's tag filters"))  # fmt: skip
    else:
        rows.append(LiveCheck("instances", True, f"the tag filters of {target.where} select {selected}"))
    return rows


def selected_instances(aws: Any, group: dict[str, Any]) -> int:
    """How many instances the group's tag filters select (registered on-premises ones and running EC2 ones).

    The filters of one list are ORed; the lists of a tag set are ANDed (an instance must match one
    filter of every list), as CodeDeploy documents it.
    """
    if group.get("autoScalingGroups"):
        return 1  # an Auto Scaling group brings its own instances; counting them needs another API
    count = 0
    premises = _filter_groups(group.get("onPremisesInstanceTagFilters"), group.get("onPremisesTagSet"),
                              "onPremisesTagSetList")  # fmt: skip
    if premises:
        count += len(set.intersection(*(set(_on_premises(aws, filters)) for filters in premises)))
    ec2 = _filter_groups(group.get("ec2TagFilters"), group.get("ec2TagSet"), "ec2TagSetList")
    if ec2:
        count += len(set.intersection(*(_ec2(aws, filters) for filters in ec2)))
    return count


def _filter_groups(filters: Any, tag_set: Any, list_key: str) -> list[list[dict[str, Any]]]:
    if filters:
        return [list(filters)]
    return [list(g) for g in ((tag_set or {}).get(list_key) or []) if g]


def _on_premises(aws: Any, filters: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    token: str | None = None
    while True:
        page = aws.call("codedeploy", "list_on_premises_instances", registrationStatus="Registered",
                        tagFilters=filters, **({"nextToken": token} if token else {}))  # fmt: skip
        names += page.get("instanceNames") or []
        token = page.get("nextToken")
        if not token:
            return names


def _ec2(aws: Any, filters: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for tag_filter in filters:  # EC2 tag filters of one group are ORed
        key, value, kind = tag_filter.get("Key"), tag_filter.get("Value"), tag_filter.get("Type") or "KEY_AND_VALUE"
        if kind == "KEY_ONLY":
            ec2_filter = {"Name": "tag-key", "Values": [key]}
        elif kind == "VALUE_ONLY":
            ec2_filter = {"Name": "tag-value", "Values": [value]}
        else:
            ec2_filter = {"Name": f"tag:{key}", "Values": [value]}
        answer = aws.call("ec2", "describe_instances",
                          Filters=[ec2_filter, {"Name": "instance-state-name", "Values": ["running"]}])  # fmt: skip
        for reservation in answer.get("Reservations") or []:
            found.update(i["InstanceId"] for i in reservation.get("Instances") or [])
    return found


def describe_filters(group: dict[str, Any]) -> str:
    rows = []
    for tag_filter in (group.get("onPremisesInstanceTagFilters") or []) + (group.get("ec2TagFilters") or []):
        rows.append(f"{tag_filter.get('Key') or '*'}={tag_filter.get('Value') or '*'}")
    return ", ".join(rows) or "no tag filters"
