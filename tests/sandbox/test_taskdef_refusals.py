"""RegisterTaskDefinition's refusals: the sandbox answers ECS's exception, preflight says it first (exit 2).

One list of invalid task definitions drives both sides, so the rule table both read
(:mod:`deployfw.aws.taskdef_rules`) cannot drift from either.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from botocore.exceptions import ClientError

from deployfw.testing import GitRepoBuilder, run_cli, terminal_env

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"
VALID: dict[str, Any] = {
    "family": "refuse-api",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "<IMAGE1_NAME>",
            "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 8080}],
        },
    ],
}


def _with(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(VALID)
    change(doc)
    return doc


def _set(**values: Any) -> Any:
    return lambda doc: doc.update(values)


def _container(**values: Any) -> Any:
    return lambda doc: doc["containerDefinitions"][0].update(values)


INVALID = [
    # (id, task definition, the key preflight names, ECS's message or its start)
    ("network-mode-enum", _with(_set(networkMode="bogus")), "networkMode", "bogus"),
    ("fargate-cpu-100", _with(_set(cpu="100")), "cpu", "No Fargate configuration exists for given values: 100 CPU"),
    (
        "fargate-256-4096",
        _with(_set(memory="4096")),
        "memory",
        "No Fargate configuration exists for given values: 256 CPU, 4096 memory",
    ),
    ("fargate-bridge", _with(_set(networkMode="bridge")), "networkMode", "Fargate only supports network mode"),
    ("family-pattern", _with(_set(family="bad family!")), "family", "Family contains invalid characters."),
    (
        "duplicate-names",
        _with(
            lambda d: d["containerDefinitions"].append({"name": "app", "image": "<IMAGE1_NAME>", "essential": False})
        ),
        "containerDefinitions.1.name",
        "Duplicate container name 'app'",
    ),
    (
        "no-essential",
        _with(_container(essential=False)),
        "containerDefinitions",
        "A task definition must have at least one essential container.",
    ),
    (
        "awsvpc-host-port",
        _with(_container(portMappings=[{"containerPort": 8080, "hostPort": 80}])),
        "containerDefinitions.0.portMappings.0.hostPort",
        "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
    ),
    ("empty-containers", _with(_set(containerDefinitions=[])), "containerDefinitions", "Container definitions cannot"),
    ("compatibilities-enum", _with(_set(requiresCompatibilities=["BOGUS"])), "requiresCompatibilities", "BOGUS"),
    (
        "fargate-no-cpu",
        _with(lambda d: d.pop("cpu")),
        "cpu",
        "Fargate requires that 'cpu' be defined at the task level.",
    ),
    (
        "awsvpc-hostname",
        _with(_container(hostname="web")),
        "containerDefinitions.0.hostname",
        "hostname is not supported on container when networkMode=awsvpc.",
    ),
]


@pytest.mark.parametrize(("taskdef", "message"), [pytest.param(t, m, id=i) for i, t, _, m in INVALID])
def test_the_sandbox_refuses_what_ecs_refuses(aws_client, taskdef: dict[str, Any], message: str) -> None:
    ecs = aws_client("ecs")
    params = json.loads(json.dumps(taskdef).replace("<IMAGE1_NAME>", IMAGE))
    with pytest.raises(ClientError) as refused:
        ecs.register_task_definition(**params)
    assert refused.value.response["Error"]["Code"] == "ClientException"
    assert message in refused.value.response["Error"]["Message"]


def test_the_sandbox_registers_the_valid_one(aws_client) -> None:
    params = json.loads(json.dumps(VALID).replace("<IMAGE1_NAME>", IMAGE))
    answer = aws_client("ecs").register_task_definition(**params)["taskDefinition"]
    assert answer["networkMode"] == "awsvpc" and answer["family"] == "refuse-api"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> GitRepoBuilder:
    config = {
        "version": 1,
        "project": "shop",
        "region": "us-east-1",
        "defaults": {"build": {"backend": "local"}, "registry": {"backend": "ecr"}},
        "modules": {
            "refuse-api": {
                "path": "services/refuse-api",
                "deploy": {"backend": "ecs-rolling", "cluster": "c", "taskdef": "services/refuse-api/taskdef.json"},
            }
        },
    }
    files = {
        "modules.yaml": yaml.safe_dump(config, sort_keys=False),
        "services/refuse-api/buildspec.yml": (
            "version: 0.2\nphases:\n  build:\n    commands:\n"
            '      - deployfw image build "$DEPLOYFW_MODULE_PATH" --push --tag "$IMAGE_CONTENT_TAG"\n'
        ),
        "services/refuse-api/taskdef.json": json.dumps(VALID, indent=2),
    }
    return GitRepoBuilder(tmp_path_factory.mktemp("refusals") / "repo", files)


def _plan(repo: GitRepoBuilder, taskdef: dict[str, Any], endpoint: str) -> Any:
    path = Path(repo.path) / "services/refuse-api/taskdef.json"
    path.write_text(json.dumps(taskdef, indent=2) + "\n")
    env = terminal_env(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="y", AWS_ENDPOINT_URL=endpoint)
    return run_cli(env, repo.path, "plan", "--all")


def test_preflight_accepts_the_valid_one(repo: GitRepoBuilder, aws_sandbox: Any) -> None:
    result = _plan(repo, VALID, aws_sandbox.endpoint_url)
    # Preflight passes (bad input would be exit 2); the live checks then ask the sandbox account,
    # which has no cluster "c": that is the account's state, exit 1, and names no template.
    assert result.code == 1, result.output
    assert "live check(s) failed" in result.stderr and "taskdef.json:" not in result.output


@pytest.mark.parametrize(("taskdef", "key"), [pytest.param(t, k, id=i) for i, t, k, _ in INVALID])
def test_preflight_refuses_it_first_with_file_line_and_key(
    repo: GitRepoBuilder, aws_sandbox: Any, taskdef: dict[str, Any], key: str
) -> None:
    result = _plan(repo, taskdef, aws_sandbox.endpoint_url)
    assert result.code == 2, result.output
    located = [re.sub(r"\[(\d+)\]", r".\1", line) for line in result.output.splitlines()
               if re.search(r"services/refuse-api/taskdef\.json:\d+: ", line)]  # fmt: skip
    assert any(re.search(rf": {re.escape(key)}(\.\d+)?: ", line) for line in located), result.output
