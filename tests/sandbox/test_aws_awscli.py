"""The unmodified awscli `aws ecs deploy` completes a blue/green deployment here."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from deployfw.sandbox.aws import Timings


def test_aws_ecs_deploy_completes(aws_sandbox, aws_client, app_image, tmp_path, no_faults):
    image = app_image("cli-api", "v2")
    taskdef = {
        "family": "cli-api",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [
            {"name": "app", "image": image, "memory": 512, "portMappings": [{"containerPort": 8080}]}
        ],
    }
    appspec = (
        "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n"
        "      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n"
        "        LoadBalancerInfo:\n          ContainerName: app\n          ContainerPort: 8080\n"
    )
    (tmp_path / "taskdef.json").write_text(json.dumps(taskdef))
    (tmp_path / "appspec.yaml").write_text(appspec)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": aws_sandbox.endpoint_url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    env.pop("AWS_PROFILE", None)
    saved = aws_sandbox.timings.deploy_step
    aws_sandbox.timings.deploy_step = 0
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "awscli",
                "ecs",
                "deploy",
                "--cluster",
                "test-cluster",
                "--service",
                "cli-api",
                "--task-definition",
                str(tmp_path / "taskdef.json"),
                "--codedeploy-appspec",
                str(tmp_path / "appspec.yaml"),
                "--codedeploy-application",
                "cli-api-app",
                "--codedeploy-deployment-group",
                "cli-api-dg",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        aws_sandbox.timings.deploy_step = saved
    assert proc.returncode == 0, proc.stderr
    assert "Successfully deployed" in proc.stdout
    ecs = aws_client("ecs")
    service = ecs.describe_services(cluster="test-cluster", services=["cli-api"])["services"][0]
    (primary,) = [t for t in service["taskSets"] if t["status"] == "PRIMARY"]
    described = ecs.describe_task_definition(taskDefinition=primary["taskDefinition"])["taskDefinition"]
    assert described["containerDefinitions"][0]["image"] == image
    assert Timings().deploy_step > 0
