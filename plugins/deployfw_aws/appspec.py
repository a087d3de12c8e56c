"""Read a CodeDeploy ECS AppSpec template and hold it against the task definition.

CodeDeploy accepts any AppSpec text at CreateDeployment and fails the deployment
minutes later when ``LoadBalancerInfo.ContainerName`` names a container the task
definition does not have (the seed pipeline's ``test-api-server`` against a task
definition whose container is ``aws-cicd-test-api``), or when ``ContainerPort`` is
not one of that container's port mappings. Both are checked here, with the AppSpec
line and both names in the message.

``Properties.TaskDefinition`` is always replaced: by ``<TASK_DEFINITION>`` in the
CodePipeline artifact (the ECS blue/green action fills it) and by the ARN just
registered when deployfw deploys - a literal ARN in a template would otherwise
deploy a stale revision forever.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from deployfw.errors import Problem
from deployfw.yamlsrc import Document, KeyPath
from deployfw_aws.located import problem

ECS_SERVICE = "AWS::ECS::Service"


@dataclass(frozen=True)
class AppSpec:
    """A parsed AppSpec and where its ECS service resource lives."""

    doc: Document
    properties: KeyPath  # path of the ECS resource's Properties mapping
    container_name: str | None
    container_port: int | None

    @property
    def file(self) -> str:
        return self.doc.file

    def lb_key(self, name: str) -> KeyPath:
        props = _node(self.doc.data, self.properties) or {}
        lb_name = _key(props, "LoadBalancerInfo") or "LoadBalancerInfo"
        return (*self.properties, lb_name, _key(_get(props, "LoadBalancerInfo") or {}, name) or name)

    def render(self, task_definition: str) -> str:
        """The AppSpec as YAML with ``TaskDefinition`` set to ``task_definition``."""
        data = copy.deepcopy(self.doc.data)
        props = _node(data, self.properties)
        assert isinstance(props, dict)
        props[_key(props, "TaskDefinition") or "TaskDefinition"] = task_definition
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


def _key(mapping: Mapping[str, Any], name: str) -> str | None:
    """The spelling ``mapping`` uses for ``name`` (AppSpec keys are matched without case)."""
    return next((k for k in mapping if isinstance(k, str) and k.lower() == name.lower()), None)


def _get(mapping: Any, name: str) -> Any:
    if not isinstance(mapping, Mapping):
        return None
    key = _key(mapping, name)
    return mapping[key] if key is not None else None


def _node(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


def read(doc: Document) -> tuple[AppSpec | None, list[Problem]]:
    """Find the single ``AWS::ECS::Service`` resource and its load balancer container."""
    data = doc.data
    if not isinstance(data, dict):
        return None, [problem(doc, (), "an AppSpec must be a mapping with version and Resources")]
    resources_key = _key(data, "Resources") or "Resources"
    resources = data.get(resources_key)
    if not isinstance(resources, list) or not resources:
        return None, [problem(doc, (resources_key,), "needs a Resources list with one ECS service")]
    found: list[KeyPath] = []
    for index, entry in enumerate(resources):
        if isinstance(entry, dict):
            for name, value in entry.items():
                if isinstance(value, dict) and _get(value, "Type") == ECS_SERVICE:
                    found.append((resources_key, index, name))
    if len(found) != 1:
        what = "no resource" if not found else f"{len(found)} resources"
        return None, [problem(doc, (resources_key,), f"{what} of Type {ECS_SERVICE}; an ECS AppSpec needs exactly one")]
    resource = _node(data, found[0])
    props_key = _key(resource, "Properties") or "Properties"
    props = resource.get(props_key)
    if not isinstance(props, dict):
        return None, [problem(doc, (*found[0], props_key), "needs Properties with TaskDefinition and LoadBalancerInfo")]
    path = (*found[0], props_key)
    problems: list[Problem] = []
    if _key(props, "TaskDefinition") is None:
        problems.append(problem(doc, path, "missing TaskDefinition (write <TASK_DEFINITION>)"))
    lb = _get(props, "LoadBalancerInfo")
    name = _get(lb, "ContainerName")
    port = _get(lb, "ContainerPort")
    spec = AppSpec(doc, path, str(name) if name is not None else None, None)
    if not isinstance(lb, dict):
        problems.append(problem(doc, path, "missing LoadBalancerInfo with ContainerName and ContainerPort"))
        return spec, problems
    if name is None:
        problems.append(problem(doc, spec.lb_key("ContainerName"), "missing ContainerName"))
    if port is None:
        problems.append(problem(doc, spec.lb_key("ContainerPort"), "missing ContainerPort"))
    elif isinstance(port, bool) or not isinstance(port, int | str) or not str(port).isdigit():
        problems.append(problem(doc, spec.lb_key("ContainerPort"), f"ContainerPort {port!r} is not a port number"))
        port = None
    return AppSpec(doc, path, spec.container_name, int(port) if port is not None else None), problems


def check_against(spec: AppSpec, containers: Mapping[str, list[int]], taskdef_file: str) -> list[Problem]:
    """ContainerName must be a container of the task definition and ContainerPort one of its ports."""
    problems: list[Problem] = []
    # No containers, or a placeholder left unresolved: already reported on their own; no echo of it here.
    if spec.container_name is None or not containers or "${" in spec.container_name:
        return problems
    if spec.container_name not in containers:
        have = ", ".join(repr(n) for n in containers) or "no containers"
        problems.append(
            problem(
                spec.doc,
                spec.lb_key("ContainerName"),
                f"appspec says ContainerName {spec.container_name!r}, but task definition {taskdef_file} "
                f"has {have}; CodeDeploy would fail the deployment",
            )
        )
        return problems
    ports = containers[spec.container_name]
    if spec.container_port is not None and spec.container_port not in ports:
        mapped = ", ".join(str(p) for p in ports) or "no port mappings"
        problems.append(
            problem(
                spec.doc,
                spec.lb_key("ContainerPort"),
                f"appspec says ContainerPort {spec.container_port}, but container {spec.container_name!r} of "
                f"{taskdef_file} maps {mapped}",
            )
        )
    return problems
