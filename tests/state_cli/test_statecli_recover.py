"""Recovery: a deployment a killed run left in progress is awaited by the next run, never doubled.

The killed run is simulated the way it looks afterwards: a deployment exists (created
with the same revision deployfw created before), and the state store holds a "started"
record naming it under another run id, with nobody holding the module's lock. The next
``deployfw run`` must conclude that record from AWS's answer before it deploys anything
itself. The sandbox is slowed down so the left-over deployment is still active when the
run looks at it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from statecli_helpers import git

from deployfw.state import DeployRecord
from deployfw.state.sqlite import SqliteStore
from deployfw.testing import CliResult, SandboxProcess

SANDBOX_TIMINGS = {"deploy_step": 0.8, "rolling_step": 1.2}  # the left-over rollouts outlast run start-up


@pytest.fixture(scope="module")
def deployed(deployfw: Callable[..., CliResult]) -> None:
    """One ordinary run first, so each module has a recorded deploy (and a revision) to start from."""
    first = deployfw("run", "-m", "user-api", "-m", "product-api", "-m", "payment-api")
    assert first.code == 0, first.output


def store_of(example: Path) -> SqliteStore:
    return SqliteStore(example / ".deployfw" / "state.db")


def last_record(example: Path, sandbox: SandboxProcess, module: str) -> DeployRecord:
    [record] = store_of(example).history(sandbox.scope(), module, limit=1)
    return record


def killed_run(
    example: Path, sandbox: SandboxProcess, module: str, run_id: str, deployment_id: str, td: str | None
) -> None:
    """What a run killed right after creating its deployment leaves in the store (its lease long gone)."""
    store = store_of(example)
    head = git(example, "rev-parse", "HEAD").strip()
    store.record_start(DeployRecord(sandbox.scope(), module, run_id, head, backend="killed"))
    store.record_progress(sandbox.scope(), module, run_id, deployment_id=deployment_id, task_definition=td)


def test_run_awaits_a_bluegreen_deployment_a_killed_run_left_and_never_deploys_head_twice(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, deployed: None
) -> None:
    done = last_record(example, sandbox, "user-api")
    assert done.outcome == "succeeded" and done.deployment_id and done.task_definition
    codedeploy = sandbox.client("codedeploy")
    info = codedeploy.get_deployment(deploymentId=done.deployment_id)["deploymentInfo"]
    left = codedeploy.create_deployment(
        applicationName=info["applicationName"],
        deploymentGroupName=info["deploymentGroupName"],
        revision=info["revision"],
        description="deployfw run killed-1 module user-api",
    )["deploymentId"]
    killed_run(example, sandbox, "user-api", "killed-1", left, done.task_definition)
    sandbox.clear_requests()

    second = deployfw("run", "-m", "user-api")

    assert second.code == 0, second.output
    assert f"run killed-1 left deployment {left} in flight; concluding it" in second.stderr
    assert f"deployment {left} is " in second.stderr and "waiting up to" in second.stderr  # it was still active
    requests = sandbox.requests()
    creates = [r for r in requests if r["operation"] == "CreateDeployment"]
    assert creates == [], "the recovered deployment already put head in service: no second deployment"
    assert "by run killed-1 after this run planned; not deployed again" in second.stderr
    recovered = store_of(example).find(sandbox.scope(), "user-api", "killed-1")
    assert recovered is not None and recovered.outcome == "succeeded" and recovered.ended_at is not None
    assert codedeploy.get_deployment(deploymentId=left)["deploymentInfo"]["status"] == "Succeeded"
    assert last_record(example, sandbox, "user-api").run_id == "killed-1"


def test_run_awaits_a_rolling_deployment_a_killed_run_left(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, deployed: None
) -> None:
    done = last_record(example, sandbox, "product-api")
    ecs = sandbox.client("ecs")
    updated = ecs.update_service(cluster="shop", service="product-api", taskDefinition=done.task_definition,
                                 forceNewDeployment=True)["service"]  # fmt: skip
    left = next(d["id"] for d in updated["deployments"] if d["status"] == "PRIMARY")
    killed_run(example, sandbox, "product-api", "killed-2", left, done.task_definition)
    sandbox.clear_requests()

    second = deployfw("run", "-m", "product-api")

    assert second.code == 0, second.output
    assert f"run killed-2 left deployment {left} in flight; concluding it" in second.stderr
    assert f"deployment {left} is IN_PROGRESS" in second.stderr
    assert f"deployment {left} completed" in second.stderr
    updates = [r for r in sandbox.requests() if r["operation"] == "UpdateService"]
    assert updates == [], "the recovered rollout already put head in service: no second rollout"
    assert "by run killed-2 after this run planned; not deployed again" in second.stderr
    recovered = store_of(example).find(sandbox.scope(), "product-api", "killed-2")
    assert recovered is not None and recovered.outcome == "succeeded"


def test_a_deployment_aws_no_longer_knows_is_concluded_abandoned(
    deployfw: Callable[..., CliResult], example: Path, sandbox: SandboxProcess, deployed: None
) -> None:
    killed_run(example, sandbox, "payment-api", "killed-3", "d-GONE00000", None)

    result = deployfw("run", "-m", "payment-api", "--report", "report.json")

    assert result.code == 0, result.output
    recovered = store_of(example).find(sandbox.scope(), "payment-api", "killed-3")
    assert recovered is not None and recovered.outcome == "abandoned"
    assert "no longer exists" in (recovered.error or "")
    report = json.loads((example / "report.json").read_text())
    assert [m["status"] for m in report["modules"]] == ["succeeded"]
    assert last_record(example, sandbox, "payment-api").outcome == "succeeded"


def test_a_rolling_deployment_gone_from_the_service_is_concluded_from_its_events() -> None:
    from deployfw_aws.rolling import _concluded_from_events

    def service(*messages: str) -> dict[str, Any]:
        events = [{"id": str(i), "message": m} for i, m in enumerate(messages)]
        return {"events": events, "deployments": [{"id": "ecs-svc/2", "status": "PRIMARY", "taskDefinition": "a/b:3"}]}

    completed = service("(service s) (deployment ecs-svc/1) deployment completed.")
    failed = service("(service s) (deployment ecs-svc/1) deployment failed: tasks failed to start.")
    done = _concluded_from_events(completed, "ecs-svc/1")
    assert (done.recorded, done.error) == ("succeeded", None)
    assert _concluded_from_events(failed, "ecs-svc/1").recorded == "rolled_back"
    gone = _concluded_from_events(service("(service s) has reached a steady state."), "ecs-svc/1")
    assert gone.recorded == "failed" and "replaced by ecs-svc/2 (b:3)" in (gone.error or "")
