"""What ECS's RegisterTaskDefinition refuses, as data and checks (no boto3, no AWS call).

One table for two readers: deployfw's preflight (the AWS plugin) reports each
violation with the template's file, line and key before any AWS call, and the
sandbox refuses the same task definitions with the same exception, so a template the
sandbox accepts is one ECS accepts - and the user learns the rule from ``plan``.

:func:`violations` returns every rule a task definition (RegisterTaskDefinition's
request parameters) breaks, each with the key path it is about, the exception ECS
raises and ECS's message. Messages quoted as ECS words them come from ECS's answers
seen in the field; where no verbatim answer was found the message follows ECS's
style and ``verbatim`` is False (docs/sandbox-fidelity.md lists which).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
COMPATIBILITIES = ("EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES")
FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")

# Fargate task sizes: task cpu (units) -> the memory values (MiB) it accepts.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Violation:
    path: Path
    """Where in the request the rule is broken (``("containerDefinitions", 0, "portMappings", 0)``)."""
    exception: str
    """The error code ECS answers with (``ClientException``)."""
    message: str
    verbatim: bool = True
    """False where ECS's exact wording was not found and the message follows its style."""


def task_units(value: Any, unit: str) -> int | None:
    """Task-level ``cpu``/``memory`` as ECS reads them: ``"256"``, ``"1 vCPU"``, ``"2 GB"`` -> units/MiB."""
    if value is None:
        return None
    text = str(value).strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(vcpu|gb)?", text, re.IGNORECASE)
    if match is None:
        return -1
    number, suffix = float(match.group(1)), (match.group(2) or "").lower()
    if suffix == "vcpu" and unit == "cpu":
        return int(number * 1024)
    if suffix == "gb" and unit == "memory":
        return int(number * 1024)
    if suffix:
        return -1
    return int(number) if number == int(number) else -1


def violations(params: Mapping[str, Any]) -> list[Violation]:
    """Every rule ``params`` breaks, in request order (empty when ECS would register it)."""
    return list(_check(params))


def _check(params: Mapping[str, Any]) -> Iterator[Violation]:
    family = params.get("family")
    if family is None or str(family) == "":
        yield Violation(("family",), "ClientException", "Family can not be blank.")
    elif not FAMILY.fullmatch(str(family)):
        yield Violation(("family",), "ClientException", "Family contains invalid characters.")
    mode = params.get("networkMode")
    if mode is not None and mode not in NETWORK_MODES:
        yield Violation(
            ("networkMode",), "ClientException",
            f"Invalid networkMode '{mode}'. Valid values are: {', '.join(NETWORK_MODES)}.", verbatim=False,
        )  # fmt: skip
    compat = params.get("requiresCompatibilities") or []
    for index, item in enumerate(compat if isinstance(compat, list) else [compat]):
        if item not in COMPATIBILITIES:
            yield Violation(
                ("requiresCompatibilities", index), "ClientException",
                f"Invalid requiresCompatibilities '{item}'. Valid values are: {', '.join(COMPATIBILITIES)}.",
                verbatim=False,
            )  # fmt: skip
    containers = params.get("containerDefinitions")
    if not isinstance(containers, list) or not containers:
        yield Violation(
            ("containerDefinitions",), "ClientException",
            "Container definitions cannot be empty; a task definition needs at least one container.", verbatim=False,
        )  # fmt: skip
        containers = []
    yield from _containers(containers, mode)
    if "FARGATE" in compat:
        yield from _fargate(params, mode)


def _containers(containers: list[Any], mode: Any) -> Iterator[Violation]:
    seen: set[str] = set()
    essential = False
    for index, container in enumerate(containers):
        if not isinstance(container, Mapping):
            continue
        name = container.get("name")
        where: Path = ("containerDefinitions", index)
        if name is None or str(name) == "":
            yield Violation((*where, "name"), "ClientException", "Container.name should not be null or empty.")
        elif not CONTAINER_NAME.fullmatch(str(name)):
            yield Violation((*where, "name"), "ClientException", "Container.name contains invalid characters.")
        elif str(name) in seen:
            yield Violation(
                (*where, "name"), "ClientException",
                f"Duplicate container name '{name}': container names within a task definition must be unique.",
                verbatim=False,
            )  # fmt: skip
        else:
            seen.add(str(name))
        if not container.get("image"):
            yield Violation((*where, "image"), "ClientException", "Container.image should not be null or empty.")
        if container.get("essential", True) is not False:
            essential = True
        if mode == "awsvpc":
            for p_index, mapping in enumerate(container.get("portMappings") or []):
                if not isinstance(mapping, Mapping):
                    continue
                host, port = mapping.get("hostPort"), mapping.get("containerPort")
                if host is not None and port is not None and host != port:
                    yield Violation(
                        (*where, "portMappings", p_index, "hostPort"), "ClientException",
                        "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
                    )  # fmt: skip
            if container.get("hostname"):
                yield Violation(
                    (*where, "hostname"), "ClientException",
                    "hostname is not supported on container when networkMode=awsvpc.",
                )  # fmt: skip
    if containers and not essential:
        yield Violation(
            ("containerDefinitions",), "ClientException",
            "A task definition must have at least one essential container.", verbatim=False,
        )  # fmt: skip


def _fargate(params: Mapping[str, Any], mode: Any) -> Iterator[Violation]:
    if mode != "awsvpc":
        yield Violation(("networkMode",), "ClientException", "Fargate only supports network mode 'awsvpc'.")
    cpu, memory = task_units(params.get("cpu"), "cpu"), task_units(params.get("memory"), "memory")
    if cpu is None:
        yield Violation(("cpu",), "ClientException", "Fargate requires that 'cpu' be defined at the task level.")
    if memory is None:
        yield Violation(("memory",), "ClientException", "Fargate requires that 'memory' be defined at the task level.")
    if cpu is not None and memory is not None and memory not in FARGATE_SIZES.get(cpu, ()):
        yield Violation(
            ("memory",) if cpu in FARGATE_SIZES else ("cpu",), "ClientException",
            f"No Fargate configuration exists for given values: {params.get('cpu')} CPU, {params.get('memory')} memory."
            " See the Amazon ECS documentation for the valid values.",
        )  # fmt: skip
