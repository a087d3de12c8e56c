"""Parse a CodeDeploy ECS AppSpec (YAML or JSON) into what the blue/green shift needs.

AWS accepts the AppSpec as a YAML or JSON string in ``revision.appSpecContent.content``
and fails the deployment (not the API call) when it is malformed; callers turn the
``ValueError`` raised here into a failed deployment with ``errorInformation``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True)
class EcsAppSpec:
    task_definition: str
    container_name: str
    container_port: int
    launch_type: str | None = None
    platform_version: str | None = None
    network_configuration: dict[str, Any] | None = None
    hooks: list[dict[str, str]] = field(default_factory=list)


def _get(doc: dict[str, Any], key: str) -> Any:
    """AppSpec keys are case-insensitive in practice (awscli writes both spellings)."""
    for name, value in doc.items():
        if str(name).lower() == key.lower():
            return value
    return None


def revision_content(revision: dict[str, Any]) -> str:
    """The AppSpec text of an ``AppSpecContent`` or ``String`` revision."""
    kind = revision.get("revisionType")
    if kind == "AppSpecContent":
        return str((revision.get("appSpecContent") or {}).get("content") or "")
    if kind == "String":
        return str((revision.get("string") or {}).get("content") or "")
    raise ValueError(f"revision type {kind!r} carries no inline AppSpec")


def parse_ecs(text: str) -> EcsAppSpec:
    """Read the single ``AWS::ECS::Service`` resource of an AppSpec."""
    try:
        doc = json.loads(text)
    except ValueError:
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"The AppSpec file is not valid YAML or JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("The AppSpec file must be a mapping")
    resources = _get(doc, "Resources")
    if not isinstance(resources, list) or not resources:
        raise ValueError("The AppSpec file has no Resources section")
    target: dict[str, Any] | None = None
    for entry in resources:
        if isinstance(entry, dict):
            for value in entry.values():
                if isinstance(value, dict) and _get(value, "Type") == "AWS::ECS::Service":
                    target = value
    if target is None:
        raise ValueError("The AppSpec file has no resource of Type AWS::ECS::Service")
    props = _get(target, "Properties") or {}
    task_definition = _get(props, "TaskDefinition")
    lb = _get(props, "LoadBalancerInfo") or {}
    container_name = _get(lb, "ContainerName")
    container_port = _get(lb, "ContainerPort")
    if not task_definition:
        raise ValueError("The AppSpec file does not specify Properties.TaskDefinition")
    if not container_name or container_port is None:
        raise ValueError("The AppSpec file must specify LoadBalancerInfo.ContainerName and ContainerPort")
    try:
        port = int(container_port)
    except (TypeError, ValueError):
        raise ValueError(f"ContainerPort {container_port!r} is not a number") from None
    network = None
    awsvpc = _get(_get(props, "NetworkConfiguration") or {}, "AwsvpcConfiguration")
    if isinstance(awsvpc, dict):
        network = {
            "awsvpcConfiguration": {
                "subnets": list(_get(awsvpc, "Subnets") or []),
                "securityGroups": list(_get(awsvpc, "SecurityGroups") or []),
                "assignPublicIp": _get(awsvpc, "AssignPublicIp") or "DISABLED",
            }
        }
    hooks = _get(doc, "Hooks") or []
    return EcsAppSpec(
        task_definition=str(task_definition),
        container_name=str(container_name),
        container_port=port,
        launch_type=_get(props, "LaunchType"),
        platform_version=_get(props, "PlatformVersion"),
        network_configuration=network,
        hooks=[h for h in hooks if isinstance(h, dict)],
    )
