"""Create, idempotently, what a ``ServerFleet`` description asks for: the IDC route's one-time set-up.

A CodeDeploy application on the Server platform, its deployment group selecting instances by
tag (``onPremisesInstanceTagFilters`` / ``ec2TagFilters``, one KEY_AND_VALUE filter per tag)
with automatic rollback on failure and on stop, and the instances themselves: on-premises ones
registered (RegisterOnPremisesInstance with an IAM session ARN, as ``aws deploy register``
does) and tagged, EC2 ones started with the tags. Each instance joins the sandbox's fleet, so
it has an address, a root folder and an agent before the first deployment. Made through the
sandbox's own backends in-process and under the sandbox lock, like :mod:`.seeding`.
"""

from __future__ import annotations

from typing import Any

from deployfw.sandbox.aws import codedeploy_server
from deployfw.sandbox.aws.server import ACCOUNT_ID, AwsSandbox
from deployfw.seeding import ServerFleet

ROLE = "deployfw-codedeploy-role"
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]
SEED_AMI = "ami-12c6146b"  # any id: moto's RunInstances does not check images unless asked to


def seed_servers(sandbox: AwsSandbox, fleet: ServerFleet, region: str) -> list[str]:
    """Create the application, group and instances of ``fleet``; the instance names. Safe to call again."""
    from moto.codedeploy.models import codedeploy_backends

    with sandbox.ctx.lock:
        backend = codedeploy_backends[ACCOUNT_ID][region]
        sandbox.ctx.registry.deployment_groups[(fleet.application, fleet.deployment_group)] = fleet.module
        if fleet.application not in backend.applications:
            backend.create_application(application_name=fleet.application, compute_platform="Server", tags=[])
        if fleet.deployment_group not in backend.deployment_groups.get(fleet.application, {}):
            backend.create_deployment_group(
                application_name=fleet.application,
                deployment_group_name=fleet.deployment_group,
                deployment_config_name=fleet.deployment_config,
                ec2_tag_filters=_filters(fleet.ec2_tags),
                on_premises_instance_tag_filters=_filters(fleet.on_premises_tags),
                auto_scaling_groups=None,
                service_role_arn=f"arn:aws:iam::{ACCOUNT_ID}:role/{ROLE}",
                auto_rollback_configuration={"enabled": True, "events": ROLLBACK_EVENTS},
                deployment_style={"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
            )
        count = max(2, fleet.instances)
        names = _on_premises(backend, fleet, count) if fleet.on_premises_tags else []
    if fleet.ec2_tags:  # through the API, outside the lock its request takes
        names += _ec2(sandbox, fleet, count, region)
    return names


def _filters(tags: Any) -> list[dict[str, str]] | None:
    return [{"Key": k, "Value": v, "Type": "KEY_AND_VALUE"} for k, v in dict(tags).items()] or None


def _on_premises(backend: Any, fleet: ServerFleet, count: int) -> list[str]:
    names = []
    tags = [{"Key": k, "Value": v} for k, v in fleet.on_premises_tags.items()]
    known = codedeploy_server.on_premises(backend)
    for n in range(1, count + 1):
        name = f"{fleet.deployment_group}-{n}"
        if name not in known or known[name].deregister_time is not None:
            session = f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/CodeDeployInstanceRole/{name}"
            codedeploy_server.register(backend, name, session, None)
        codedeploy_server.add_tags(backend, [name], tags)
        names.append(name)
    return names


def _ec2(sandbox: AwsSandbox, fleet: ServerFleet, count: int, region: str) -> list[str]:
    """Running EC2 instances carrying the tags, started (RunInstances) until there are ``count``."""
    ec2 = sandbox.client("ec2", region)
    wanted = dict(fleet.ec2_tags)
    filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in wanted.items()]
    filters.append({"Name": "instance-state-name", "Values": ["running"]})
    found = [i["InstanceId"] for r in ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    if len(found) < count:
        tags = [{"Key": k, "Value": v} for k, v in wanted.items()]
        started = ec2.run_instances(ImageId=SEED_AMI, MinCount=count - len(found), MaxCount=count - len(found),
                                    TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])  # fmt: skip
        found += [i["InstanceId"] for i in started["Instances"]]
    servers = sandbox.ctx.fleet
    for instance_id in found:
        if servers is not None:
            servers.add(instance_id, "ec2", wanted)
    return sorted(found)
