"""What every CodeDeploy deployer does the same way, whatever the compute platform.

- A deployment's description carries a **marker** naming the run and the module, so this run
  (after a lost answer) or its successor (after a kill) recognises the deployment as its own.
- **CreateDeployment is made exactly once**: it is not idempotent, so an ambiguous answer
  (throttling, 5xx, no answer, or ``DeploymentLimitExceededException`` that our own first
  attempt may have caused) is followed by a search for the marker before another attempt -
  for as long as the AWS boundary retries any call, never a fixed count.
- **One deployment per group at a time**: an active deployment someone else started is waited
  for (with a deadline, honouring cancel) before ours is created.
- **Stop with rollback** on cancel or timeout, then follow the deployment to its end.

The ECS blue/green deployer and the EC2/on-premises deployer both use these; how each follows
its own deployment (traffic shifts, instances) stays theirs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from deployfw.aws.clients import RETRYABLE_CODES, Aws, AwsError
from deployfw.backends import ModuleJob, RunContext
from deployfw_aws.deploy_common import Backoff, Wait, minutes

ACTIVE = ("Created", "Queued", "InProgress", "Baking", "Ready")
TERMINAL = ("Succeeded", "Failed", "Stopped")
ROLLBACK_EVENTS = ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_REQUEST"]
STOP_WAIT_SECONDS = 300.0  # how long to follow a rollback we asked for


def marker(ctx: RunContext, module: str) -> str:
    """What a deployment's description carries so this run (or a successor) can recognise it."""
    return marker_of(ctx.run_id, module)


def marker_of(run_id: str, module: str) -> str:
    return f"deployfw run {run_id} module {module}"


def ambiguous(exc: AwsError) -> bool:
    """The request may have been carried out: no answer, a 5xx/throttle, or a limit hit by our own deployment."""
    return exc.code is None or exc.code in RETRYABLE_CODES or exc.code == "DeploymentLimitExceededException"


def get_group(aws: Aws, application: str, group: str) -> dict[str, Any]:
    info: dict[str, Any] = aws.call(
        "codedeploy", "get_deployment_group", applicationName=application, deploymentGroupName=group
    )["deploymentGroupInfo"]
    return info


def get_deployment(aws: Aws, deployment_id: str) -> dict[str, Any]:
    info: dict[str, Any] = aws.call("codedeploy", "get_deployment", deploymentId=deployment_id)["deploymentInfo"]
    return info


def find_marked(aws: Aws, application: str, group: str, mark: str, *, last_attempt: str | None = None) -> str | None:
    """The deployment of the group (its last attempt or an active one) whose description carries ``mark``."""
    candidates: list[Any] = [last_attempt]
    candidates += aws.call("codedeploy", "list_deployments", applicationName=application, deploymentGroupName=group,
                           includeOnlyStatuses=list(ACTIVE)).get("deployments") or []  # fmt: skip
    for deployment_id in dict.fromkeys(filter(None, candidates)):
        if mark in (get_deployment(aws, str(deployment_id)).get("description") or ""):
            return str(deployment_id)
    return None


def create_once(
    aws: Aws,
    params: dict[str, Any],
    *,
    mark: str,
    log: Callable[[str], None],
    cancel: threading.Event,
    clock: Callable[[], float],
    sleep: Callable[[float], Any] | None,
    backoff: Backoff,
) -> str:
    """CreateDeployment exactly once (see the module docstring); the deployment id."""
    application, group = params["applicationName"], params["deploymentGroupName"]
    give_up = clock() + aws.deadline
    attempt = 0
    while True:
        attempt += 1
        try:
            # One attempt: the retry policy must not repeat a call that starts a deployment.
            return str(aws.call("codedeploy", "create_deployment", retry=False, **params)["deploymentId"])
        except AwsError as exc:
            if not ambiguous(exc) or clock() >= give_up:
                raise
            log(f"CreateDeployment got no clear answer ({exc.code or 'connection'}); "
                "looking for the deployment this run may have started")  # fmt: skip
            found = find_marked(aws, application, group, mark)
            if found:
                log(f"found deployment {found}, created by this run; following it")
                return found
            if exc.code == "DeploymentLimitExceededException" or cancel.is_set():
                raise
            (sleep or cancel.wait)(min(backoff.first * attempt, backoff.cap))


def wait_for_others(aws: Aws, job: ModuleJob, where: str, group: dict[str, Any], wait: Wait) -> str | None:
    """Let an active deployment someone else started in the group finish; why not to go ahead, or None.

    Costs no call in the usual case (the group, already read, names its last attempt).
    """
    last = group.get("lastAttemptedDeployment") or {}
    other = last.get("deploymentId")
    if not other or last.get("status") not in ACTIVE:
        return None
    job.log(f"deployment {other} of {where} is still active (started outside this run); "
            "waiting for it to finish before deploying")  # fmt: skip
    while True:
        status = get_deployment(aws, other).get("status")
        if status not in ACTIVE:
            job.log(f"deployment {other}: {status}; deploying now")
            job.mark("waited", seconds=round(wait.elapsed, 3), reason=f"deployment {other} (not this run)")
            return None
        if wait.cancelled:
            return f"cancelled while waiting for deployment {other}; nothing changed"
        if wait.expired:
            return f"deployment {other} was still {status} after {minutes(wait.seconds)}; nothing changed"
        wait.pause()


def stop_and_follow(
    aws: Aws, job: ModuleJob, deployment_id: str, follow: Wait, reason: str
) -> tuple[dict[str, Any] | None, str | None]:
    """StopDeployment with rollback, then read it until it ends: ``(final info, error)``.

    ``error`` is set (and the info None) when the stop itself failed; a deployment that had
    already completed is simply read.
    """
    job.log(f"{reason}: stopping deployment {deployment_id} with rollback")
    job.mark("rollback", reason=reason)
    try:
        aws.call("codedeploy", "stop_deployment", deploymentId=deployment_id, autoRollbackEnabled=True)
    except AwsError as exc:
        if exc.code != "DeploymentAlreadyCompletedException":
            return None, f"{reason}; stopping deployment {deployment_id} failed: {exc}"
    while True:
        info = get_deployment(aws, deployment_id)
        if info["status"] in TERMINAL or follow.expired:
            return info, None
        follow.pause()


def never() -> threading.Event:
    """A cancel event nobody sets: following a rollback we asked for must not stop at the first cancel."""
    return threading.Event()
