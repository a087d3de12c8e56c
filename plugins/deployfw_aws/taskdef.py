"""Check a rendered task definition before ECS sees it.

ECS answers a bad RegisterTaskDefinition with one terse ClientException at deploy
time, after the image was built and pushed. botocore ships the exact input shape of
that call, so the same checks (unknown keys, wrong types, missing required keys,
enum values) run here, at plan time, with the file, line and key of each mistake.

Templates are often copied from ``describe-task-definition`` output, which carries
read-only fields (``taskDefinitionArn``, ``revision``, ``status``...); those are
dropped rather than reported, as the GitHub ``amazon-ecs-deploy-task-definition``
action does.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

from deployfw import redact
from deployfw.errors import Problem
from deployfw.yamlsrc import Document, KeyPath
from deployfw_aws.located import problem

OUTPUT_ONLY = (
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
)
_URL_PATH = re.compile(r"https?://[^/\s'\"]+(/[^\s'\"?#|;]*)")


@cache
def _input_shape() -> Any:
    """RegisterTaskDefinition's input shape from botocore's bundled ECS model (loaded once)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def strip_output_only(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in OUTPUT_ONLY}


def check_shape(doc: Document, params: Mapping[str, Any]) -> list[Problem]:
    """Problems of ``params`` against RegisterTaskDefinition's input shape, located in ``doc``."""
    if not isinstance(params, Mapping):
        return [problem(doc, (), "a task definition must be a JSON object")]
    import botocore.validate

    shape = _input_shape()
    report = botocore.validate.ParamValidator().validate(dict(params), shape)
    problems: list[Problem] = []
    for error_type, name, details in getattr(report, "_errors", []):
        path = _path(name)
        if error_type == "unknown field":
            key = (*path, details["unknown_param"])
            problems.append(problem(doc, key, f"unknown key for RegisterTaskDefinition; valid here: "
                                              f"{', '.join(details['valid_names'])}"))
        elif error_type == "missing required field":
            problems.append(problem(doc, path, f"missing required key {details['required_name']!r}"))
        elif error_type == "invalid type":
            kinds = ", ".join(_type_name(t) for t in details["valid_types"])
            problems.append(
                problem(doc, path, f"{_show(details['param'])} is a {type(details['param']).__name__}; "
                                   f"RegisterTaskDefinition wants {kinds}")
            )
        else:
            problems.append(problem(doc, path, report._format_error((error_type, name, details))))
    if not problems and report.has_errors():  # a botocore without ``_errors``: keep its wording
        problems.append(problem(doc, (), report.generate_report()))
    problems.extend(problem(doc, path, message) for path, message in _enum_errors(params, shape, ()))
    return problems


def check_rules(doc: Document, params: Mapping[str, Any], reported: list[Problem]) -> list[Problem]:
    """What ECS refuses beyond the shape (Fargate sizes, awsvpc ports, names...), located in ``doc``.

    The rules are core data (:mod:`deployfw.aws.taskdef_rules`) the sandbox enforces too. A key
    the shape check already reported (an enum value, say) is not reported twice.
    """
    from deployfw.aws.taskdef_rules import violations

    already = {(p.line, p.key) for p in reported}
    found = []
    for violation in violations(params):
        message = f"ECS would refuse this ({violation.exception}): {violation.message}"
        located = problem(doc, violation.path, message)
        if located.line is None:  # a missing top-level key: the object that lacks it starts on line 1
            located = Problem(located.file, 1, located.key, message)
        if (located.line, located.key) not in already:
            already.add((located.line, located.key))
            found.append(located)
    return found


def _path(name: str) -> KeyPath:
    """``.containerDefinitions[0].cpu`` -> ("containerDefinitions", 0, "cpu")."""
    path: list[str | int] = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", name):
        path.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(path)


def _type_name(text: str) -> str:
    found = re.search(r"'(\w+)'", text)
    return {"str": "string", "int": "integer", "bool": "boolean", "list": "list", "dict": "object"}.get(
        found.group(1) if found else text, text
    )


def _show(value: Any) -> str:
    """A short rendering of a bad value; masked, since task definitions do carry environment values."""
    text = redact.mask(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def _enum_errors(value: Any, shape: Any, path: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    """ParamValidator ignores enums; ECS does not (``networkMode: awsvp`` fails at deploy)."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        for key, child in value.items():
            if key in shape.members:
                yield from _enum_errors(child, shape.members[key], (*path, key))
    elif kind == "list" and isinstance(value, list):
        for index, child in enumerate(value):
            yield from _enum_errors(child, shape.member, (*path, index))
    elif kind == "map" and isinstance(value, Mapping):
        for key, child in value.items():
            yield from _enum_errors(child, shape.value, (*path, key))
    elif kind == "string" and isinstance(value, str) and getattr(shape, "enum", None) and value not in shape.enum:
        yield path, f"{value!r} is not one of {', '.join(shape.enum)}"


def containers(params: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = params.get("containerDefinitions")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def names(params: Mapping[str, Any]) -> list[str]:
    return [str(c.get("name")) for c in containers(params)]


def find_container(params: Mapping[str, Any], name: str | None) -> tuple[int, dict[str, Any]] | None:
    """The container that receives the image: ``name`` when given, else the first."""
    for index, container in enumerate(containers(params)):
        if name is None or container.get("name") == name:
            return index, container
    return None


def container_ports(container: Mapping[str, Any]) -> list[int]:
    ports = []
    for mapping in container.get("portMappings") or []:
        if isinstance(mapping, dict) and isinstance(mapping.get("containerPort"), int):
            ports.append(mapping["containerPort"])
    return ports


def health_check_paths(container: Mapping[str, Any]) -> list[str]:
    """URL paths a container's healthCheck command requests (``curl http://127.0.0.1:8080/health``)."""
    command = (container.get("healthCheck") or {}).get("command")
    if not isinstance(command, list):
        return []
    return [m.group(1) or "/" for part in command if isinstance(part, str) for m in _URL_PATH.finditer(part)]
