"""What the server-deployment tests share: small revision bundles, a fleet in an in-process sandbox, waits.

Bundles are real zips made by ``deployfw_aws.bundle.pack`` from a folder of real shell scripts,
so the sandbox's agent runs them as it would run a team's scripts.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from deployfw_aws.bundle import pack

REPOSITORY = Path(__file__).resolve().parents[2]
SESSION = "arn:aws:sts::123456789012:assumed-role/CodeDeployInstanceRole/{name}"
TERMINAL = ("Succeeded", "Failed", "Stopped")

APPSPEC = """\
version: 0.0
os: linux
files:
  - source: app
    destination: /opt/{app}
hooks:
{hooks}"""


def write_bundle(folder: Path, app: str, scripts: Mapping[str, str], *, files: Mapping[str, str] | None = None,
                 extra: str = "") -> Path:  # fmt: skip
    """A bundle folder: ``app/`` with ``files``, ``scripts/EVENT.sh`` per hook (sh bodies), the AppSpec."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "app").mkdir(parents=True)
    (folder / "scripts").mkdir()
    for name, text in (files or {"version.txt": app}).items():
        (folder / "app" / name).write_text(text)
    hooks = ""
    for event, body in scripts.items():
        script = folder / "scripts" / f"{event}.sh"
        script.write_text("#!/bin/sh\nset -eu\nROOT=\"${DEPLOYFW_INSTANCE_ROOT:-}\"\n" + body + "\n")
        script.chmod(0o755)
        hooks += f"  {event}:\n    - location: scripts/{event}.sh\n      timeout: 30\n"
    (folder / "appspec.yml").write_text(APPSPEC.format(app=app, hooks=hooks or "  {}\n") + extra)
    return folder


def upload(sandbox: Any, folder: Path, bucket: str, key: str) -> dict[str, Any]:
    """Pack and PutObject; the S3 revision location CreateDeployment takes."""
    s3 = sandbox.client("s3")
    if bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=bucket)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=pack(folder).data)["ETag"].strip('"')
    return {"revisionType": "S3", "s3Location": {"bucket": bucket, "key": key, "bundleType": "zip", "eTag": etag}}


def make_group(sandbox: Any, app: str, instances: int, *, config: str | None = None, prefix: str = "") -> list[str]:
    """A Server application and group selecting ``instances`` registered on-premises instances by tag."""
    codedeploy = sandbox.client("codedeploy")
    names = [f"{prefix or app}-{n}" for n in range(1, instances + 1)]
    for name in names:
        codedeploy.register_on_premises_instance(instanceName=name, iamSessionArn=SESSION.format(name=name))
    codedeploy.add_tags_to_on_premises_instances(instanceNames=names, tags=[{"Key": "App", "Value": app}])
    codedeploy.create_application(applicationName=app, computePlatform="Server")
    codedeploy.create_deployment_group(
        applicationName=app, deploymentGroupName=app, serviceRoleArn="arn:aws:iam::123456789012:role/cd",
        onPremisesInstanceTagFilters=[{"Key": "App", "Value": app, "Type": "KEY_AND_VALUE"}],
        **({"deploymentConfigName": config} if config else {}),
    )  # fmt: skip
    return names


def deploy(sandbox: Any, app: str, revision: Mapping[str, Any], **extra: Any) -> str:
    return str(sandbox.client("codedeploy").create_deployment(
        applicationName=app, deploymentGroupName=app, revision=dict(revision), **extra)["deploymentId"])  # fmt: skip


def wait(sandbox: Any, deployment_id: str, seconds: float = 120) -> dict[str, Any]:
    codedeploy = sandbox.client("codedeploy")
    deadline = time.monotonic() + seconds
    while True:
        info: dict[str, Any] = codedeploy.get_deployment(deploymentId=deployment_id)["deploymentInfo"]
        if info["status"] in TERMINAL or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def targets(sandbox: Any, deployment_id: str) -> dict[str, dict[str, Any]]:
    """instance name -> instanceTarget, through ListDeploymentTargets + BatchGetDeploymentTargets."""
    codedeploy = sandbox.client("codedeploy")
    ids = codedeploy.list_deployment_targets(deploymentId=deployment_id)["targetIds"]
    found = codedeploy.batch_get_deployment_targets(deploymentId=deployment_id, targetIds=ids)["deploymentTargets"]
    return {t["instanceTarget"]["targetId"]: t["instanceTarget"] for t in found}


def event(target: Mapping[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in target["lifecycleEvents"] if e["lifecycleEventName"] == name)


def instances(endpoint: str) -> dict[str, dict[str, Any]]:
    """``GET /_sandbox/instances`` by name."""
    with urllib.request.urlopen(f"{endpoint}/_sandbox/instances", timeout=10) as answer:
        return {row["name"]: row for row in json.load(answer)}


def http_get(address: str, port: int = 8080, path: str = "/") -> str:
    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=5) as answer:
        return str(answer.read().decode())


def copy_shop(dest: Path) -> Path:
    """The example repository (modules.yaml, root templates, examples/shop) as it is on disk, committed anew."""
    for name in ("modules.yaml", "taskdef.json", "appspec.yml", "buildspec.yml"):
        if (REPOSITORY / name).is_file():
            shutil.copy2(REPOSITORY / name, dest / name)
    shutil.copytree(REPOSITORY / "examples" / "shop", dest / "examples" / "shop",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    git(dest, "init", "--quiet", "--initial-branch=main")
    commit_all(dest, "example")
    return dest


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(repo)}  # fmt: skip
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()
