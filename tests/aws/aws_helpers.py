"""Helpers for the ECS deployer tests: repositories on disk, configs, deploy jobs."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any

import yaml

from deployfw.backends import ImageRef, ModuleJob, RunContext
from deployfw.config import Config, load_config
from deployfw.plugins import PluginManager

REGION = "us-east-1"
ACCOUNT = "123456789012"
DIGEST = "sha256:" + "ab" * 32

TASKDEF: dict[str, Any] = {
    "family": "${FAMILY}",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::${ACCOUNT_ID}:role/ecs-task-exc-role",
    "containerDefinitions": [
        {
            "name": "app",
            "image": "<IMAGE1_NAME>",
            "essential": True,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "environment": [{"name": "DEPLOY_ENV", "value": "${ENV}"}, {"name": "REGION", "value": "${REGION}"}],
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://127.0.0.1:8080/health || exit 1"]},
        }
    ],
}
APPSPEC = """\
version: 0.0
Resources:
  - TargetService:
      Type: AWS::ECS::Service
      Properties:
        TaskDefinition: <TASK_DEFINITION>
        LoadBalancerInfo:
          ContainerName: ${CONTAINER}
          ContainerPort: 8080
"""


def write_repo(
    root: Path,
    modules: dict[str, dict[str, Any]],
    files: dict[str, str] | None = None,
    *,
    environments: dict[str, Any] | None = None,
) -> Path:
    """A repository with ``modules.yaml`` (project ``shop``) and each module's folder and files."""
    root.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "version": 1,
        "project": "shop",
        "region": REGION,
        "defaults": {"build": {"backend": "local"}, "registry": {"backend": "ecr"}},
        "modules": {},
    }
    for name, deploy in modules.items():
        (root / "services" / name).mkdir(parents=True, exist_ok=True)
        doc["modules"][name] = {"path": f"services/{name}", "deploy": deploy}
    if environments:
        doc["environments"] = environments
    (root / "modules.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for rel, content in (files or {}).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def module_files(
    name: str, taskdef: dict[str, Any] | str | None = None, appspec: str | None = APPSPEC
) -> dict[str, str]:
    """The default templates for ``name`` (task definition JSON, appspec YAML)."""
    text = taskdef if isinstance(taskdef, str) else json.dumps(taskdef or TASKDEF, indent=2)
    files = {f"services/{name}/taskdef.json": text}
    if appspec is not None:
        files[f"services/{name}/appspec.yaml"] = appspec
    return files


_catalog: Any = None


def load(root: Path, env: str | None = None) -> Config:
    """Load the repository's config with the installed backends' schemas, as ``plan`` does."""
    global _catalog
    if _catalog is None:
        _catalog = PluginManager(entry_points=False).backends.catalog()
    return load_config(root / "modules.yaml", env=env, catalog=_catalog)


class Lines:
    """Collects what a backend logs, for assertions."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def text(self) -> str:
        return "\n".join(self.lines)


def make_job(config: Config, module: str, endpoint_url: str | None, *, run_id: str | None = None) -> ModuleJob:
    """A deploy job with the image already pushed (repository URI + digest).

    Against a sandbox the image is a real one in the module's repository (the sandbox runs
    the tasks it deploys); without one, a made-up digest is enough.
    """
    run_id = run_id or f"run-{uuid.uuid4().hex[:8]}"  # unique: a shared deployment group must not match
    ctx = RunContext(config=config, head="0" * 40, run_id=run_id, region=REGION, endpoint_url=endpoint_url)
    uri = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{module}"
    digest = DIGEST
    if endpoint_url and endpoint_url != "http://127.0.0.1:9":
        digest = _pushed(endpoint_url, module)
        _settle(endpoint_url, module)
    image = ImageRef(module, uri, "c0ffee", "content")
    return ModuleJob(ctx=ctx, module=config.modules[module], log=Lines(), image=image, digest=digest)


def _pushed(endpoint_url: str, repository: str) -> str:
    import boto3

    from deployfw.testing.images import image_for

    ecr = boto3.client("ecr", region_name=REGION, endpoint_url=endpoint_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    return image_for(ecr, repository, "deployer-test").rsplit("@", 1)[1]


CANARY = "CodeDeployDefault.ECSCanary10Percent5Minutes"


def _settle(endpoint_url: str, module: str) -> None:
    """Wait until the previous test's deployment of ``module`` (or its rollback, which runs a while) is over."""
    import time

    import boto3
    from botocore.exceptions import ClientError

    options = {"region_name": REGION, "endpoint_url": endpoint_url,
               "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # fmt: skip
    cd, ecs = boto3.client("codedeploy", **options), boto3.client("ecs", **options)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            running = cd.list_deployments(
                applicationName=f"{module}-app", deploymentGroupName=f"{module}-dg",
                includeOnlyStatuses=["Created", "Queued", "InProgress", "Ready"],
            )["deployments"]
        except ClientError:
            running = []
        services = ecs.describe_services(cluster="test-cluster", services=[module])["services"]
        rolling = [d for s in services for d in s.get("deployments", []) if d.get("rolloutState") == "IN_PROGRESS"]
        if not running and not rolling:
            return
        time.sleep(0.1)
