"""Unmodified third-party ECS tools that wait for *running tasks* complete a deploy and a scale here.

fabfuel's ``ecs-deploy`` counts the service's running tasks of the new task definition
(ListTasks/DescribeTasks) and ``aws ecs wait services-stable`` waits for
``runningCount == desiredCount`` with one deployment: both hang forever against a
sandbox whose tasks never run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import Any

import pytest

from deployfw.testing.images import image_for


@pytest.fixture
def tool_env(aws_sandbox: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=aws_sandbox.endpoint_url, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")  # fmt: skip
    return env


def _ecs_deploy(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("ecs", path=os.path.dirname(sys.executable))
    assert tool, "ecs-deploy is in the test extra"
    return subprocess.run([tool, *args], env=env, capture_output=True, text=True, timeout=180)


def _service(ecs: Any) -> dict[str, Any]:
    return ecs.describe_services(cluster="test-cluster", services=["tool-api"])["services"][0]


def test_ecs_deploy_deploys_then_scales(aws_client, tool_env, no_faults) -> None:
    ecs = aws_client("ecs")
    image = image_for(ecs, "tool-api", "by-ecs-deploy")
    deployed = _ecs_deploy("deploy", "test-cluster", "tool-api", "--image", "app", image, "--timeout", "150",
                           env=tool_env)  # fmt: skip
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "Deployment successful" in deployed.stdout, deployed.stdout
    service = _service(ecs)
    taskdef = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert taskdef["containerDefinitions"][0]["image"] == image
    scaled = _ecs_deploy("scale", "test-cluster", "tool-api", "2", "--timeout", "150", env=tool_env)
    assert scaled.returncode == 0, scaled.stdout + scaled.stderr
    service = _service(ecs)
    assert service["runningCount"] == service["desiredCount"] == 2
    assert len(ecs.list_tasks(cluster="test-cluster", serviceName="tool-api")["taskArns"]) == 2


def test_aws_ecs_wait_services_stable_after_a_scale(aws_client, tool_env, no_faults) -> None:
    aws = [sys.executable, "-m", "awscli", "ecs"]
    update = [*aws, "update-service", "--cluster", "test-cluster", "--service", "tool-api", "--desired-count", "3"]
    scaled = subprocess.run(update, env=tool_env, capture_output=True, text=True, timeout=60)
    assert scaled.returncode == 0, scaled.stderr
    waited = subprocess.run([*aws, "wait", "services-stable", "--cluster", "test-cluster", "--services", "tool-api"],
                            env=tool_env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert waited.returncode == 0, waited.stderr
    service = _service(aws_client("ecs"))
    assert service["runningCount"] == service["desiredCount"] == 3 and len(service["deployments"]) == 1
