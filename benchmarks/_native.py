"""``benchmarks/run`` section 4: ecs-native against ecs-bluegreen for the same service.

One service (a copy of the example's user-api behind an ALB) is deployed with CodeDeploy
(``ecs-bluegreen``), switched in place to the ECS controller with ``deployfw migrate``, and
deployed again ECS-natively - each way all at once and as a 10 % canary for 5 minutes, the
same shifts on the same sandbox clock. For every deploy stage it prints the AWS calls deployfw
made (from the end of the push stage to the end of the deploy stage, in the sandbox's request
log), the stage's wall time, and the time-to-notice: from the moment AWS recorded the end
(CodeDeploy's ``completeTime``, the service deployment's ``finishedAt``) to deployfw's log line
saying so.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROLE = "deployfw-ecs-infrastructure-role"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
CASES = [
    ("ecs-bluegreen", "all at once", {"deployment_config": "CodeDeployDefault.ECSAllAtOnce"}),
    ("ecs-bluegreen", "canary 10% 5 min", {"deployment_config": "CodeDeployDefault.ECSCanary10Percent5Minutes"}),
    ("ecs-native", "all at once", {"strategy": "BLUE_GREEN", "bake_time_minutes": 0}),
    ("ecs-native", "canary 10% 5 min",
     {"strategy": "CANARY", "canary_percent": 10, "canary_bake_time_minutes": 5, "bake_time_minutes": 0}),
]  # fmt: skip


def compare(work: Path, kit: Any) -> list[dict[str, Any]]:
    """Run the four cases; ``kit`` is benchmarks/run's namespace (make_repo, sandbox_for, full_run, ...)."""
    repo: Path = kit.make_repo(work / "native", 1)
    region = kit.REGION
    rows: list[dict[str, Any]] = []
    with kit.sandbox_for(repo) as session:
        kit.full_run(repo, session)  # build and push once; every case below deploys the same image
        session.aws.client("iam", region).create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(TRUST))
        migrated = False
        for backend, label, options in CASES:
            if backend == "ecs-native" and not migrated:
                code, out, err, _ = kit.deployfw(repo, "migrate", "svc-01", "--to", "ecs-native", "--role", ROLE,
                                                 "--yes")  # fmt: skip
                if code != 0:
                    raise SystemExit("deployfw migrate failed:\n" + out + "\n".join(line for _, line in err.lines))
                migrated = True
            _configure(repo, backend, options, kit.commit_all)
            run = kit.full_run(repo, session)
            calls = kit.deployfw_deploy_calls(run, "svc-01")
            start, end = kit.deploy_window(run, "svc-01")
            deploy = run.report["modules"][0]["deploy"]
            rows.append({"backend": backend, "strategy": label, "calls": calls, "seconds": end - start,
                         "notice": _notice(session, region, deploy, run)})  # fmt: skip
    return rows


def _configure(repo: Path, backend: str, options: dict[str, Any], commit_all: Callable[[Path, str], Any]) -> None:
    """svc-01's own deploy section, committed: the next ``run --all`` deploys with it."""
    path = repo / "modules.yaml"
    config = json.loads(path.read_text())
    config["modules"]["svc-01"]["deploy"] = {"backend": backend, **options}
    path.write_text(json.dumps(config, indent=2))
    commit_all(repo, f"svc-01: {backend} {options}")


def _notice(session: Any, region: str, deploy: dict[str, Any], run: Any) -> float | None:
    """Seconds from the deployment's end in AWS to deployfw's line saying it succeeded."""
    deployment = deploy.get("id")
    if not deployment:
        return None
    if deploy["backend"] == "ecs-bluegreen":
        info = session.aws.client("codedeploy", region).get_deployment(deploymentId=deployment)["deploymentInfo"]
        terminal = info["completeTime"].timestamp()
        seen = run.err.first(f"deployment {deployment}: Succeeded")
    else:
        ecs = session.aws.client("ecs", region)
        found = ecs.describe_service_deployments(serviceDeploymentArns=[deployment])["serviceDeployments"][0]
        terminal = found["finishedAt"].timestamp()
        seen = run.err.first(f"service deployment {deployment.rsplit('/', 1)[-1]}: SUCCESSFUL")
    return None if seen is None else seen - terminal


def print_rows(rows: list[dict[str, Any]], summarize: Callable[[list[str]], str]) -> None:
    for row in rows:
        notice = f"{row['notice']:.2f} s" if row["notice"] is not None else "-"
        print(f"  {row['backend']:<14} {row['strategy']:<17} {len(row['calls']):>2} calls  deploy stage "
              f"{row['seconds']:5.1f} s  notice {notice}  ({summarize(row['calls'])})", flush=True)  # fmt: skip
